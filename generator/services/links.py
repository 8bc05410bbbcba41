"""Signed bearer links /v/<token> to a generation's video or poster (docs/links.md).

The token names the generation's UUID and the file. A temporary video's link works while
now < completed_at + 24 h, checked on every click whatever token is shown; other links live
24 h from when they were minted (the signer's timestamp). A storage output whose storage was
disconnected (output_storage NULL) has no link: we can no longer reach the object.
"""

from __future__ import annotations

import uuid as uuid_module
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from generator.models import Generation
from generator.naming import video_filename
from generator.netpolicy import reachable_from_outside
from generator.storage import registry

LINK_SALT = "generator.links"
FILES = ("video", "poster")
CONTENT_TYPES = {"video": "video/mp4", "poster": "image/jpeg"}
# A link to a bucket hands out a presigned URL this short-lived, so expiry stays ours to decide.
PRESIGNED_TTL_S = 300
Status = Generation.Status


class LinkInvalid(Exception):
    """Bad signature, unknown or deleted generation: answer 404."""


class LinkExpired(Exception):
    """Expired, purged, or its output storage was disconnected: answer 410."""


@dataclass(frozen=True)
class LinkTarget:
    generation: Generation
    file: str


def _ttl_s() -> int:
    return int(settings.GENERATOR_LINK_TTL_S)


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=LINK_SALT)


def link_token(generation: Generation, *, file: str = "video", now: datetime | None = None) -> str:
    """Sign "<uuid>:<file>" with the minting time (`now`, default the current time)."""
    if file not in FILES:
        raise ValueError(f"file must be one of {FILES}")
    signer = _signer()
    # Stamped from timezone.now() rather than time.time() so expiry follows one clock.
    stamp = signing.b62_encode(int((now or timezone.now()).timestamp()))
    return signing.Signer.sign(signer, f"{generation.uuid}:{file}{signer.sep}{stamp}")


def link_is_available(generation: Generation, *, file: str = "video") -> bool:
    """Return True when a finished, live generation's file can still be linked to.

    False when deleted or not DONE, and for a storage output whose storage was disconnected.
    Expiry is separate (link_is_expired): an expired temporary video still "has" a link, which
    answers 410.
    """
    if generation.deleted_at is not None or generation.status != Status.DONE:
        return False
    if file == "poster":
        return bool(generation.poster_name)
    return generation.is_temporary or generation.output_storage_id is not None


def public_base_url() -> str | None:
    """Return GENERATOR_PUBLIC_URL when an upstream engine could reach it (webhooks, /i/ links), else None."""
    base = settings.GENERATOR_PUBLIC_URL.rstrip("/")
    return base if reachable_from_outside(base, allow_hosts=settings.GENERATOR_FETCH_ALLOW_HOSTS) else None


def link_url(generation: Generation, *, file: str = "video") -> str | None:
    """Return the absolute link for a finished generation's file, or None when there is none."""
    if not link_is_available(generation, file=file):
        return None
    path = reverse("link", kwargs={"token": link_token(generation, file=file)})
    return f"{settings.GENERATOR_PUBLIC_URL}{path}"


def link_expires_at(generation: Generation, *, now: datetime | None = None) -> datetime | None:
    """Return when the video link stops working (a link minted now, for storage outputs)."""
    if not link_is_available(generation):
        return None
    if generation.is_temporary:
        if generation.completed_at is None:
            return None
        return generation.completed_at + timedelta(seconds=_ttl_s())
    return (now or timezone.now()) + timedelta(seconds=_ttl_s())


def link_is_expired(generation: Generation, *, now: datetime | None = None) -> bool:
    """Return True when a temporary video is past its 24 h or purged (storage outputs never expire)."""
    if not generation.is_temporary or generation.status != Status.DONE:
        return False
    if generation.purged_at is not None:
        return True
    expires = link_expires_at(generation, now=now)
    return expires is not None and (now or timezone.now()) >= expires


def link_resolve(token: str, *, now: datetime | None = None) -> LinkTarget:
    """Check a token and the generation behind it; raise LinkInvalid (404) or LinkExpired (410)."""
    now = now or timezone.now()
    signer = _signer()
    try:
        # Signer.unsign checks the signature only; the timestamp is judged below against `now`.
        stamped = signing.Signer.unsign(signer, token)
        value, _, stamp = stamped.rpartition(signer.sep)
        minted = signing.b62_decode(stamp)
    except (signing.BadSignature, ValueError):
        raise LinkInvalid from None
    generation_uuid, _, file = value.partition(":")
    try:
        parsed = uuid_module.UUID(generation_uuid)
    except ValueError:
        raise LinkInvalid from None
    if file not in FILES:
        raise LinkInvalid
    generation = (
        Generation.objects.select_related("team", "output_storage")
        .filter(uuid=parsed, deleted_at__isnull=True, status=Status.DONE)
        .first()
    )
    if generation is None:
        raise LinkInvalid
    temporary_video = file == "video" and generation.is_temporary
    if file == "video" and not generation.is_temporary and generation.output_storage_id is None:
        raise LinkExpired  # the storage was disconnected: the link was fine but is gone now
    if temporary_video:
        if link_is_expired(generation, now=now):
            raise LinkExpired
    else:
        # Minted-when-shown links: the token's own timestamp bounds them.
        if now.timestamp() - minted > _ttl_s():
            raise LinkExpired
    return LinkTarget(generation=generation, file=file)


@dataclass(frozen=True)
class LinkFile:
    """Where a linked file is: a short presigned URL to send the client to, or an open file to stream."""

    content_type: str
    filename: str
    redirect_url: str | None = None
    handle: IO[bytes] | None = None
    size: int = 0


def default_file(name: str, *, content_type: str, filename: str) -> LinkFile:
    """Open a default-storage file to stream, or a short presigned URL when that storage is a bucket."""
    if not name or not default_storage.exists(name):
        raise LinkExpired
    try:
        default_storage.path(name)
    except NotImplementedError:
        # A remote default storage (S3): hand out its short presigned URL.
        return LinkFile(content_type, filename, redirect_url=default_storage.url(name))
    return LinkFile(content_type, filename, handle=default_storage.open(name, "rb"), size=default_storage.size(name))


def link_file(target: LinkTarget) -> LinkFile:
    """Find the file a resolved link names; LinkExpired when it is gone, StorageError when unreachable."""
    generation = target.generation
    if target.file == "poster":
        return default_file(
            generation.poster_name, content_type=CONTENT_TYPES["poster"], filename=video_filename(generation, ext="jpg")
        )
    # Named after its photo (<photo-stem>-<shape>-5s.mp4), so a downloaded file says what it shows.
    filename = video_filename(generation)
    if generation.is_temporary:
        return default_file(generation.video_name, content_type=CONTENT_TYPES["video"], filename=filename)
    if generation.output_storage is None:
        raise LinkExpired  # the storage was disconnected: gone, not unknown
    connector = registry.get_connector(generation.output_storage)
    url = connector.download_url(generation.output_key, expires_s=PRESIGNED_TTL_S)
    if url:
        return LinkFile(CONTENT_TYPES["video"], filename, redirect_url=url)
    handle = connector.open_local(generation.output_key)
    handle.seek(0, 2)
    return LinkFile(CONTENT_TYPES["video"], filename, handle=handle, size=handle.tell())
