"""The motion engine: still product photo -> designed MP4 (pure numpy/OpenCV/PyAV, no Django)."""

from __future__ import annotations

from .decode import DecodedImage, ImageRejected, decode_image
from .framing import Format
from .plan import Plan
from .render import HandedPhoto, RenderOptions, RenderResult, make_plan, render_video
from .sizing import output_size

__all__ = [
    "DecodedImage",
    "Format",
    "HandedPhoto",
    "ImageRejected",
    "Plan",
    "RenderOptions",
    "RenderResult",
    "decode_image",
    "make_plan",
    "output_size",
    "render_video",
]
