"""Output and working sizes (the rule is in docs/links.md, "The video file")."""

from __future__ import annotations

MAX_LONG_SIDE = 1920
MAX_UPSCALE = 2.0
# Working images keep 1.5 source pixels per output pixel: enough for every zoom the engine
# plans (at most ~1.45x) to stay at or above one source pixel per output pixel.
WORKING_SCALE = 1.5


def output_size(width: int, height: int) -> tuple[int, int]:
    """Return the video size for a source of width x height (after EXIF orientation)."""
    if width <= 0 or height <= 0:
        raise ValueError("image size must be positive")
    long_side = max(width, height)
    s = min(MAX_UPSCALE, MAX_LONG_SIDE / long_side)
    return 2 * round(width * s / 2), 2 * round(height * s / 2)


def working_size(width: int, height: int) -> tuple[int, int]:
    """Return the size large sources are reduced to before any per-frame work.

    The reduced size is exactly WORKING_SCALE times the output size, so output_size() of the
    working image equals output_size() of the original: callers may pass either.
    """
    out_w, out_h = output_size(width, height)
    work_w, work_h = round(out_w * WORKING_SCALE), round(out_h * WORKING_SCALE)
    if work_w >= width or work_h >= height:
        return width, height
    return work_w, work_h
