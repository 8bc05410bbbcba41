"""Photos uploaded through the dashboard: kept in the team's "uploads" storage, used as storage:// input."""

from __future__ import annotations

import io
import os
import tempfile
import uuid

from django.conf import settings
from django.utils import timezone
from PIL import Image, UnidentifiedImageError
from pillow_heif import register_heif_opener

from generator.engine.decode import image_format
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

register_heif_opener()


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"input": [message]})


def upload_store(*, team: Team, user, data: bytes, name: str = "") -> str:
    """Keep an uploaded photo in the team's "uploads" storage and return its storage:// URI.

    The storage is a `local` one created on first use unless the team connected its own storage
    named "uploads" (e.g. a bucket). Only the header is read here; the worker decodes and checks
    the image like any other input, so uploads follow exactly the same rules as URLs. With `name`
    (the file name the user picked) the key ends in its safe stem, `<month>/<random>/<stem>.<ext>`,
    so a batch of uploads names its videos after the user's files.
    """
    limit = settings.GENERATOR_FETCH_MAX_BYTES
    if len(data) > limit:
        raise _refuse(f"the image is larger than {limit // 1_000_000} MB")
    try:
        with Image.open(io.BytesIO(data), formats=list(UPLOAD_FORMATS)) as image:
            ext, mime = UPLOAD_FORMATS[image_format(image)]
    except (UnidentifiedImageError, OSError, KeyError):
        raise _refuse("the file is not a JPEG, PNG, WEBP or HEIF image") from None
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
