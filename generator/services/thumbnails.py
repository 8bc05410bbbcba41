"""Small JPEG thumbnails of images in a team's storage, for the storage browser."""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.conf import settings
from PIL import ImageOps

from generator.engine.decode import ImageRejected, load_reduced, open_image
from generator.errors import NotFound
from generator.models import Storage
from generator.storage.base import StorageError
from generator.storage.registry import get_connector
from generator.storage.uris import KeyRejected, validate_key

THUMB_MAX_BYTES = 15 * 1024 * 1024
THUMB_SIDE_PX = 240
# EXIF orientations that turn the picture a quarter: its width and height swap.
_QUARTER_TURNS = {5, 6, 7, 8}


@dataclass(frozen=True)
class Thumbnail:
    jpeg: bytes
    width: int  # the photo's own size, upright (EXIF orientation applied)
    height: int


def thumbnail_jpeg(*, storage: Storage, key: str) -> Thumbnail:
    """Read one image from the storage and return a small JPEG of it and its size; NotFound if that cannot be done.

    The image is opened like the worker opens it (the same pixel cap, from the header) and decoded
    reduced, so a picture the worker would refuse costs the web tier nothing.
    """
    try:
        key = validate_key(key, allow_folder=False)
        data = get_connector(storage).read(key, max_bytes=THUMB_MAX_BYTES)
        image = open_image(data, max_pixels=settings.GENERATOR_MAX_PIXELS)
        try:
            width, height = image.size
            if image.getexif().get(0x0112) in _QUARTER_TURNS:
                width, height = height, width
            image = load_reduced(image, (THUMB_SIDE_PX, THUMB_SIDE_PX))
            image = ImageOps.exif_transpose(image).convert("RGB")
            image.thumbnail((THUMB_SIDE_PX, THUMB_SIDE_PX))
            out = io.BytesIO()
            image.save(out, "JPEG", quality=80)
        finally:
            image.close()
    except (KeyRejected, StorageError, ImageRejected, OSError, ValueError):
        raise NotFound("no thumbnail for this key") from None
    return Thumbnail(jpeg=out.getvalue(), width=width, height=height)
