"""The temporary store: the default Django storage (local MEDIA_ROOT, or S3 with GENERATOR_TEMP_STORAGE=s3)."""

from __future__ import annotations

from django.core.files.storage import storages
from storages.backends.s3 import S3Storage

MAX_URL_TTL_S = 300


def temp_is_remote() -> bool:
    """Return True when the temporary store is an S3 bucket rather than the local disk."""
    return isinstance(storages["default"], S3Storage)


def temp_download_url(name: str, *, expires_s: int = MAX_URL_TTL_S) -> str | None:
    """Return a presigned GET URL (at most 5 minutes) for a temporary file, or None when it is local."""
    storage = storages["default"]
    if not isinstance(storage, S3Storage):
        return None
    return storage.url(name, expire=max(1, min(expires_s, MAX_URL_TTL_S)))
