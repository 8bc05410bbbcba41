"""Small JPEG thumbnails of images in a team's storage, for the storage browser."""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from generator.errors import NotFound
from generator.models import Storage
from generator.storage.base import StorageError
from generator.storage.registry import get_connector
from generator.storage.uris import KeyRejected, validate_key

THUMB_MAX_BYTES = 15 * 1024 * 1024
THUMB_SIDE_PX = 240


def thumbnail_jpeg(*, storage: Storage, key: str) -> bytes:
    """Read one image from the storage and return a small JPEG of it; NotFound if that cannot be done."""
    try:
        key = validate_key(key, allow_folder=False)
        data = get_connector(storage).read(key, max_bytes=THUMB_MAX_BYTES)
        with Image.open(io.BytesIO(data), formats=["JPEG", "PNG", "WEBP", "HEIF"]) as image:
            image.draft("RGB", (THUMB_SIDE_PX, THUMB_SIDE_PX))
            image = ImageOps.exif_transpose(image).convert("RGB")
            image.thumbnail((THUMB_SIDE_PX, THUMB_SIDE_PX))
            out = io.BytesIO()
            image.save(out, "JPEG", quality=80)
    except (
        KeyRejected,
        StorageError,
        UnidentifiedImageError,
        OSError,
        Image.DecompressionBombError,
    ):
        raise NotFound("no thumbnail for this key") from None
    return out.getvalue()
