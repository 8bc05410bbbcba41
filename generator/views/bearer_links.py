"""GET /v/<token>: the bearer link to a video or poster; GET /i/<token>: a photo handed to an upstream (no login; docs/links.md)."""

from __future__ import annotations

import logging
import re
from typing import Literal

from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseGone,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_http_methods

from generator.services.links import LinkExpired, LinkFile, LinkInvalid, link_file, link_resolve
from generator.services.upstream_handover import input_link_file
from generator.storage.base import ObjectMissing, StorageError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
# At most 15 digits per bound (a petabyte): a longer number is no file position, and Python refuses to
# turn more than 4300 digits into an int at all. Such a header is malformed, so the file is sent whole.
_RANGE_RE = re.compile(r"^bytes=(\d{0,15})-(\d{0,15})$")


def _parse_range(header: str, size: int) -> tuple[int, int] | None | Literal[False]:
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


class _Chunks:
    """`remaining` bytes of an open file in blocks; closing it (the response does, read or not) closes the file."""

    def __init__(self, handle, remaining: int) -> None:
        self.handle = handle
        self.remaining = remaining

    def __iter__(self):
        try:
            while self.remaining > 0:
                block = self.handle.read(min(CHUNK_BYTES, self.remaining))
                if not block:
                    break
                self.remaining -= len(block)
                yield block
        finally:
            self.close()

    def close(self) -> None:
        self.handle.close()


def _stream(request: HttpRequest, handle, *, size: int, content_type: str, filename: str) -> HttpResponseBase:
    try:
        byte_range = _parse_range(request.headers.get("Range", ""), size) if "Range" in request.headers else None
        if byte_range is False:
            handle.close()
            refused = HttpResponse(status=416)
            refused["Content-Range"] = f"bytes */{size}"
            refused["Accept-Ranges"] = "bytes"
            return refused
        if byte_range is None:
            first, last, status = 0, size - 1, 200
        else:
            first, last = byte_range
            status = 206
        length = max(0, last - first + 1)
        handle.seek(first)
    except Exception:
        handle.close()
        raise
    response = StreamingHttpResponse(_Chunks(handle, length), status=status, content_type=content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    if status == 206:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    # Not stored by browsers or proxies: expiry and deletion are decided on each click.
    response["Cache-Control"] = "private, no-store"
    return response


@require_http_methods(["GET", "HEAD"])
def link_serve(request: HttpRequest, token: str) -> HttpResponseBase:
    """Stream (with Range) or redirect to the file a signed link names; 410 expired, 404 invalid."""
    try:
        found = link_file(link_resolve(token))
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
    return _serve(request, found)


def _serve(request: HttpRequest, found: LinkFile) -> HttpResponseBase:
    if found.redirect_url is not None:
        return HttpResponseRedirect(found.redirect_url)
    return _stream(request, found.handle, size=found.size, content_type=found.content_type, filename=found.filename)


@require_http_methods(["GET", "HEAD"])
def input_link_serve(request: HttpRequest, token: str) -> HttpResponseBase:
    """Stream the photo a job handed to its upstream engine (docs/engines.md); 404 for a bad, old or finished one."""
    try:
        found = input_link_file(token)
    except (LinkInvalid, LinkExpired, FileNotFoundError):
        raise Http404("unknown link") from None
    return _serve(request, found)
