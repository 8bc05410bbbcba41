"""Photos uploaded through the dashboard: kept in the team's "uploads" storage, used as storage:// input."""

from __future__ import annotations

import os
import tempfile
import uuid

from django.conf import settings
from django.utils import timezone

from generator.engine.decode import ImageRejected, ImageTooLarge, image_format, open_image
from generator.errors import ValidationFailed
from generator.models import Storage, Team
from generator.naming import safe_stem
from generator.services.storage_connections import storage_create
from generator.storage.base import StorageError
from generator.storage.registry import get_connector

UPLOAD_STORAGE_NAME = "uploads"
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
    storage = Storage.objects.filter(team=team, name=UPLOAD_STORAGE_NAME).first()
    if storage is None:
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


def upload_discard(*, team: Team, uri: str) -> None:
    """Delete an uploaded photo whose submission was refused, so refusals leave no files behind."""
    prefix = f"storage://{UPLOAD_STORAGE_NAME}/"
    storage = Storage.objects.filter(team=team, name=UPLOAD_STORAGE_NAME).first()
    if storage is None or not uri.startswith(prefix):
        return
    get_connector(storage).delete(uri.removeprefix(prefix))
