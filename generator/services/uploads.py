"""Photos uploaded through the dashboard: kept in the team's "uploads" storage, used as storage:// input.

Uploads do not pile up (docs/security.md, "Uploads"): a refused submit removes its photo, a refunded
job (cancelled, failed) removes its photo, the hourly purge removes photos older than
`GENERATOR_UPLOAD_RETENTION_DAYS`, and a team's upload area holds at most `GENERATOR_UPLOAD_QUOTA_MB`.
A photo still named by a queued or running job, or by a pending batch item, is never removed.
Only keys this module wrote (`<yyyy-mm>/<32 hex>...`) are counted or removed, so the files of a
storage the team itself connected under the name "uploads" are left alone.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from generator.engine.decode import ImageRejected, ImageTooLarge, image_format, open_image
from generator.errors import ValidationFailed
from generator.models import BatchItem, Generation, Storage, Team
from generator.naming import safe_stem
from generator.services.storage_connections import storage_create
from generator.storage.base import StorageError
from generator.storage.registry import get_connector

logger = logging.getLogger(__name__)

UPLOAD_STORAGE_NAME = "uploads"
UPLOAD_PREFIX = f"storage://{UPLOAD_STORAGE_NAME}/"
# The keys upload_store writes: <yyyy-mm>/<random>.<ext> or <yyyy-mm>/<random>/<stem>.<ext>.
UPLOAD_KEY_RE = re.compile(r"^\d{4}-\d{2}/[0-9a-f]{32}(\.[a-z]+|/[^/]+\.[a-z]+)$")
# How many files one listing of an upload area reads at most (usage and purge).
UPLOAD_SCAN_LIMIT = 50_000
UPLOAD_FORMATS = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
    "HEIF": ("heic", "image/heic"),
}


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"input": [message]})


def upload_check(data: bytes) -> tuple[str, str]:
    """Read an uploaded photo's header as the worker will (the same pixel cap); return its extension and type."""
    limit = settings.GENERATOR_FETCH_MAX_BYTES
    if len(data) > limit:
        raise _refuse(f"the image is larger than {limit // 1_000_000} MB")
    try:
        with open_image(data, max_pixels=settings.GENERATOR_MAX_PIXELS) as image:
            return UPLOAD_FORMATS[image_format(image)]
    except ImageTooLarge as exc:
        raise _refuse(f"the image has more than {exc.max_pixels:,} pixels") from None
    except (ImageRejected, KeyError):
        raise _refuse("the file is not a JPEG, PNG, WEBP or HEIF image") from None


def upload_store(*, team: Team, user, data: bytes, name: str = "") -> str:
    """Keep an uploaded photo in the team's "uploads" storage and return its storage:// URI.

    The storage is a `local` one created on first use unless the team connected its own storage
    named "uploads" (e.g. a bucket). Only the header is read here, the pixel cap included; the
    worker decodes and checks the image like any other input, so uploads follow the same rules as
    URLs. With `name` (the file name the user picked) the key ends in its safe stem,
    `<month>/<random>/<stem>.<ext>`, so a batch of uploads names its videos after the user's files.
    """
    ext, mime = upload_check(data)
    storage = _uploads_storage(team)
    if storage is not None:
        _check_quota(storage, adding=len(data))
    else:
        storage = storage_create(
            team=team,
            user=user,
            name=UPLOAD_STORAGE_NAME,
            type="local",
            parameters={"path": "uploads"},
        )
    random = uuid.uuid4().hex
    key = (
        f"{timezone.now():%Y-%m}/{random}/{safe_stem(name)}.{ext}" if name else f"{timezone.now():%Y-%m}/{random}.{ext}"
    )
    with tempfile.NamedTemporaryFile(suffix=f".{ext}", delete=False) as handle:
        handle.write(data)
    try:
        get_connector(storage).write_file(key, handle.name, content_type=mime)
    except StorageError as exc:
        raise _refuse(f"could not keep the upload in the {storage.name!r} storage: {exc}") from None
    finally:
        os.unlink(handle.name)
    return f"storage://{storage.name}/{key}"


def _uploads_storage(team: Team | int) -> Storage | None:
    team_id = team if isinstance(team, int) else team.pk
    return Storage.objects.filter(team_id=team_id, name=UPLOAD_STORAGE_NAME).first()


def _our_files(storage: Storage):
    """The files upload_store wrote in this storage (size and time included)."""
    entries = get_connector(storage).walk("", recursive=True, limit=UPLOAD_SCAN_LIMIT)
    return [entry for entry in entries if UPLOAD_KEY_RE.match(entry.key)]


def uploads_usage(storage: Storage) -> int:
    """Bytes of uploads kept in a team's upload area."""
    return sum(entry.size or 0 for entry in _our_files(storage))


def _check_quota(storage: Storage, *, adding: int) -> None:
    quota_mb = settings.GENERATOR_UPLOAD_QUOTA_MB
    try:
        used = uploads_usage(storage)
    except StorageError as exc:
        raise _refuse(f"could not keep the upload in the {storage.name!r} storage: {exc}") from None
    if used + adding > quota_mb * 1024 * 1024:
        raise _refuse(
            f"the team's upload area is full: {used / 1024 / 1024:.0f} of {quota_mb} MB used; uploads are removed "
            f"{settings.GENERATOR_UPLOAD_RETENTION_DAYS} days after they were made, or when their job is refunded"
        )


def upload_in_use(*, team_id: int, uri: str) -> bool:
    """True while a queued or running job, or a pending batch item, names this upload."""
    return (
        Generation.objects.filter(team_id=team_id, status=Generation.Status.PROCESSING, request__input=uri).exists()
        or BatchItem.objects.filter(batch__team_id=team_id, state=BatchItem.State.PENDING, input=uri).exists()
    )


def upload_discard(*, team: Team, uri: str) -> None:
    """Delete an uploaded photo whose submission was refused, so refusals leave no files behind."""
    storage = _uploads_storage(team)
    if storage is None or not uri.startswith(UPLOAD_PREFIX):
        return
    get_connector(storage).delete(uri.removeprefix(UPLOAD_PREFIX))


def upload_release(generation: Generation) -> bool:
    """Delete the upload a refunded job was made from, unless something still needs it; True if deleted.

    A batch's job keeps its photo (the batch's "retry failed" submits it again); the retention purge
    removes it later.
    """
    uri = str((generation.request or {}).get("input") or "")
    key = uri.removeprefix(UPLOAD_PREFIX)
    if not uri.startswith(UPLOAD_PREFIX) or not UPLOAD_KEY_RE.match(key):
        return False
    if BatchItem.objects.filter(generation_id=generation.pk).exists():
        return False
    if upload_in_use(team_id=generation.team_id, uri=uri):
        return False
    storage = _uploads_storage(generation.team_id)
    if storage is None:
        return False
    try:
        get_connector(storage).delete(key)
    except StorageError:
        logger.warning("could not delete the upload %s of job %s", uri, generation.pk, exc_info=True)
        return False
    return True


def uploads_purge(*, now: datetime | None = None) -> int:
    """Delete uploads older than the retention that nothing still needs; return how many (the hourly purge)."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.GENERATOR_UPLOAD_RETENTION_DAYS)
    removed = 0
    for storage in Storage.objects.filter(name=UPLOAD_STORAGE_NAME).order_by("pk"):
        try:
            old = [entry for entry in _our_files(storage) if entry.modified is not None and entry.modified < cutoff]
            connector = get_connector(storage)
            for entry in old:
                if upload_in_use(team_id=storage.team_id, uri=UPLOAD_PREFIX + entry.key):
                    continue
                connector.delete(entry.key)
                removed += 1
        except StorageError:
            logger.warning("could not purge the uploads of team %s; will retry", storage.team_id, exc_info=True)
    return removed
