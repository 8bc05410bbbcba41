"""GET /v/<token>: the bearer link to a video or poster (no login; SPEC 3 and 10 "Links")."""

from __future__ import annotations

import logging
import re

from django.core.files.storage import default_storage
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseGone,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.views.decorators.http import require_http_methods

from generator.services.links import LinkExpired, LinkInvalid, link_resolve
from generator.storage import registry
from generator.storage.base import ObjectMissing, StorageError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
PRESIGNED_TTL_S = 300
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CONTENT_TYPES = {"video": "video/mp4", "poster": "image/jpeg"}


def _parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """Return (first, last) for one satisfiable byte range, None to send it all, False if unsatisfiable."""
    match = _RANGE_RE.match(header.strip())
    if not match:
        return None  # multi-range or malformed: RFC 9110 lets us ignore it and send 200
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0:
            return False
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return False
    return start, end


def _chunks(handle, remaining: int):
    try:
        while remaining > 0:
            block = handle.read(min(CHUNK_BYTES, remaining))
            if not block:
                break
            remaining -= len(block)
            yield block
    finally:
        handle.close()


def _stream(request: HttpRequest, handle, *, size: int, content_type: str, filename: str) -> HttpResponse:
    byte_range = _parse_range(request.headers.get("Range", ""), size) if "Range" in request.headers else None
    if byte_range is False:
        handle.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    if byte_range is None:
        first, last, status = 0, size - 1, 200
    else:
        first, last = byte_range
        status = 206
    length = max(0, last - first + 1)
    handle.seek(first)
    response = StreamingHttpResponse(_chunks(handle, length), status=status, content_type=content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    if status == 206:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    # Not stored by browsers or proxies: expiry and deletion are decided on each click.
    response["Cache-Control"] = "private, no-store"
    return response


def _serve_default(request: HttpRequest, name: str, *, content_type: str, filename: str) -> HttpResponse:
    if not name or not default_storage.exists(name):
        raise LinkExpired
    try:
        default_storage.path(name)
    except NotImplementedError:
        # A remote default storage (S3): hand out its short presigned URL.
        return HttpResponseRedirect(default_storage.url(name))
    handle = default_storage.open(name, "rb")
    return _stream(
        request,
        handle,
        size=default_storage.size(name),
        content_type=content_type,
        filename=filename,
    )


def _serve_output(request: HttpRequest, generation, *, filename: str) -> HttpResponse:
    storage = generation.output_storage
    if storage is None:
        raise LinkExpired  # the storage was disconnected: gone, not unknown
    connector = registry.get_connector(storage)
    key = generation.output_key
    url = connector.download_url(key, expires_s=PRESIGNED_TTL_S)
    if url:
        return HttpResponseRedirect(url)
    handle = connector.open_local(key)
    handle.seek(0, 2)
    size = handle.tell()
    return _stream(
        request,
        handle,
        size=size,
        content_type=CONTENT_TYPES["video"],
        filename=filename,
    )


@require_http_methods(["GET", "HEAD"])
def link_serve(request: HttpRequest, token: str) -> HttpResponse:
    """Stream (with Range) or redirect to the file a signed link names; 410 expired, 404 invalid."""
    try:
        target = link_resolve(token)
        generation = target.generation
        if target.file == "poster":
            return _serve_default(
                request,
                generation.poster_name,
                content_type=CONTENT_TYPES["poster"],
                filename=f"{generation.uuid}.jpg",
            )
        filename = f"{generation.uuid}.mp4"
        if generation.is_temporary:
            return _serve_default(
                request,
                generation.video_name,
                content_type=CONTENT_TYPES["video"],
                filename=filename,
            )
        return _serve_output(request, generation, filename=filename)
    except LinkInvalid:
        raise Http404("unknown link") from None
    except (LinkExpired, ObjectMissing, FileNotFoundError):
        return HttpResponseGone("this link has expired")
    except StorageError:
        logger.warning("link for %s: the storage could not be reached", token[:40], exc_info=True)
        return HttpResponse(
            "the storage holding this video could not be reached",
            status=502,
            content_type="text/plain",
        )
