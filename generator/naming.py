"""What people call a video: its photo's name, and the file name it downloads as.

A job is known by the photo it animates: the last segment of the input URL or storage key, or, for
an upload (whose stored key is a random name), the file name the user picked. Downloads are named
`<photo-stem>-<shape>-<duration>s.mp4`, e.g. `blue-shirt-landscape-5s.mp4` or `blue-shirt-9x16-10s.mp4`.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from django.utils.text import slugify

from generator.contract.generate import STORAGE_SCHEME
from generator.models import Generation

NAME_MAX_CHARS = 255
STEM_MAX_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(name: str, *, default: str = "video") -> str:
    """Return a file name's stem in letters, digits and `._-` only: safe as a storage key or ZIP entry name."""
    stem = _UNSAFE.sub("-", PurePosixPath(name).stem).strip("-._")[:STEM_MAX_CHARS].strip("-._")
    return stem or default


def name_from_input(value: str) -> str:
    """Return the file name an input URL or storage:// URI ends in ("" if it names none)."""
    if not value:
        return ""
    path = value[len(STORAGE_SCHEME) :] if value.startswith(STORAGE_SCHEME) else urlsplit(value).path
    return unquote(path.rstrip("/").rsplit("/", 1)[-1])[:NAME_MAX_CHARS] if "/" in path else ""


def photo_name(generation: Generation) -> str:
    """Return the name of the photo a generation animates, as its owner knows it."""
    return generation.source_name or name_from_input((generation.request or {}).get("input", ""))


def _shape(generation: Generation) -> str:
    ratio = ((generation.request or {}).get("options") or {}).get("aspect_ratio")
    if isinstance(ratio, str) and ratio and ratio != "source":
        return ratio.replace(":", "x")
    size = generation.input_object or {}
    width, height = size.get("width"), size.get("height")
    if not isinstance(width, int) or not isinstance(height, int) or not width or not height:
        return "video"
    if width == height:
        return "square"
    return "landscape" if width > height else "portrait"


def video_filename(generation: Generation, *, ext: str = "mp4") -> str:
    """Return the file name a generation's video (or poster, ext="jpg") downloads as."""
    stem = slugify(PurePosixPath(photo_name(generation)).stem)[:80] or "video"
    return f"{stem}-{_shape(generation)}-{generation.duration}s.{ext}"
