"""Output and working sizes: the photo's own shape, or a fixed shape at 1080p or 720p (docs/links.md,
"The video file")."""

from __future__ import annotations

MAX_LONG_SIDE = 1920
MAX_UPSCALE = 2.0
# Working images keep 1.5 source pixels per output pixel: enough for every zoom the engine
# plans (at most ~1.45x) to stay at or above one source pixel per output pixel.
WORKING_SCALE = 1.5

ASPECT_RATIOS: dict[str, tuple[int, int]] = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:5": (4, 5)}
SOURCE = "source"
RESOLUTIONS = ("1080p", "720p")
# A fixed shape's short side, and the long-side cap of the photo's own shape, per resolution.
_SHORT_SIDE = {"1080p": 1080, "720p": 720}
_SOURCE_LONG_SIDE = {"1080p": MAX_LONG_SIDE, "720p": 1280}


def output_size(width: int, height: int, aspect_ratio: str = SOURCE, resolution: str = "1080p") -> tuple[int, int]:
    """Return the video size for a source of width x height (after EXIF orientation).

    The photo's own shape: long side scaled by min(2, 1920 / L) (1280 at 720p), even sides. A fixed
    shape: the short side is 1080 (or 720), e.g. 9:16 at 1080p is 1080x1920.
    """
    if width <= 0 or height <= 0:
        raise ValueError("image size must be positive")
    if aspect_ratio != SOURCE:
        rw, rh = ASPECT_RATIOS[aspect_ratio]
        short = _SHORT_SIDE[resolution]
        return (short * rw // rh, short) if rw >= rh else (short, short * rh // rw)
    long_side = max(width, height)
    s = min(MAX_UPSCALE, _SOURCE_LONG_SIDE[resolution] / long_side)
    return 2 * round(width * s / 2), 2 * round(height * s / 2)


def working_size(width: int, height: int, aspect_ratio: str = SOURCE, resolution: str = "1080p") -> tuple[int, int]:
    """Return the size large sources are reduced to before any per-frame work.

    For the photo's own shape the reduced size is exactly WORKING_SCALE times the output size, so
    output_size() of the working image equals output_size() of the original: callers may pass
    either. For a fixed shape it keeps WORKING_SCALE photo pixels per output pixel when the photo
    is scaled to cover the frame (the closest framing the engine uses).
    """
    out_w, out_h = output_size(width, height, aspect_ratio, resolution)
    if aspect_ratio == SOURCE:
        work_w, work_h = round(out_w * WORKING_SCALE), round(out_h * WORKING_SCALE)
    else:
        k = WORKING_SCALE * max(out_w / width, out_h / height)
        work_w, work_h = round(width * k), round(height * k)
    if work_w >= width or work_h >= height:
        return width, height
    return work_w, work_h
