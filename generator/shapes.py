"""What the dashboard says about a video's shape: the picker's choices and sizes, a job's format (docs/formats.md).

The size itself always comes from the engine's output_size; this module only words it.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.contract.generate import SHAPES
from generator.engine.sizing import RESOLUTIONS, SOURCE, output_size
from generator.models import Generation

USES = {
    "source": "Shop page, as photographed",
    "16:9": "YouTube, banners",
    "9:16": "Reels, TikTok, Shorts",
    "1:1": "Square feed posts",
    "4:5": "Portrait feed posts",
}
NAMES = {"source": "Photo's shape", "16:9": "16:9", "9:16": "9:16", "1:1": "1:1", "4:5": "4:5"}
BADGES = {"source": "Original", "16:9": "16:9", "9:16": "9:16", "1:1": "1:1", "4:5": "4:5"}
BACKGROUND_NAMES = {"auto": "automatic", "blur": "blurred photo", "extend": "extended border"}
# Any photo at least this long on its long side is scaled to the resolution's cap.
_LARGE_PHOTO_PX = 10_000
# A side the browser reports beyond this is not a photo's (the decoder refuses far smaller ones).
_PHOTO_SIDE_MAX_PX = 100_000


def size_label(size: tuple[int, int]) -> str:
    """Word a frame size the way people read it: "1080 × 1920"."""
    return f"{size[0]} × {size[1]}"


@dataclass(frozen=True)
class ShapeChoice:
    value: str
    name: str
    use: str
    ratio: float | None  # width / height; None: the photo's own
    sizes: dict[str, str]  # resolution -> "1080 × 1920", or what is known without the photo
    size: str  # at the chosen resolution


def _sizes(shape: str, photo: tuple[int, int] | None) -> dict[str, str]:
    sizes = {}
    for resolution in RESOLUTIONS:
        if shape == SOURCE and photo is None:
            long_cap = output_size(_LARGE_PHOTO_PX, _LARGE_PHOTO_PX, SOURCE, resolution)[0]
            sizes[resolution] = f"up to {long_cap} px"
        else:
            sizes[resolution] = size_label(output_size(*(photo or (1, 1)), shape, resolution))
    return sizes


def shape_choice(shape: str, *, photo: tuple[int, int] | None = None, resolution: str = "1080p") -> ShapeChoice:
    """One shape of the picker with its size at every resolution (the photo's own shape needs the photo's size)."""
    sizes = _sizes(shape, photo)
    ratio = None
    if shape != SOURCE:
        width, height = output_size(1, 1, shape)  # a fixed shape's size does not depend on the photo
        ratio = width / height
    return ShapeChoice(
        value=shape,
        name=NAMES[shape],
        use=USES[shape],
        ratio=ratio,
        sizes=sizes,
        size=sizes.get(resolution, sizes[RESOLUTIONS[0]]),
    )


def shape_choices(*, photo: tuple[int, int] | None = None, resolution: str = "1080p") -> list[ShapeChoice]:
    """Every shape of the picker, in the order the API lists them."""
    return [shape_choice(shape, photo=photo, resolution=resolution) for shape in SHAPES]


def photo_size(width: str | None, height: str | None) -> tuple[int, int] | None:
    """Read a photo size the browser reports (query parameters); None unless both are sensible."""
    try:
        size = int(width or ""), int(height or "")
    except ValueError:
        return None
    return size if all(0 < side <= _PHOTO_SIDE_MAX_PX for side in size) else None


@dataclass(frozen=True)
class JobFormat:
    """A generation's format as the job page and the gallery card show it."""

    shape: str
    badge: str
    name: str
    resolution: str
    loop: bool
    background: str
    size: str | None  # known once the worker has read the photo


def job_format(generation: Generation) -> JobFormat:
    """Describe a generation's format from its request (defaults for requests without format options)."""
    options = (generation.request or {}).get("options", {}) or {}
    shape = generation.aspect_ratio
    resolution = options.get("resolution") or "1080p"
    background = options.get("background") or "auto"
    source = generation.input_object or {}
    size = None
    if isinstance(source.get("width"), int) and isinstance(source.get("height"), int) and resolution in RESOLUTIONS:
        size = size_label(output_size(source["width"], source["height"], shape, resolution))
    return JobFormat(
        shape=shape,
        badge=BADGES.get(shape, shape),
        name=Generation.AspectRatio(shape).label if shape in Generation.AspectRatio.values else shape,
        resolution=resolution,
        loop=bool(options.get("loop")),
        background=BACKGROUND_NAMES.get(background, background),
        size=size,
    )
