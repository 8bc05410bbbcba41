"""Helpers shared by the engine and image-decode tests (no tests here)."""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_rgb(name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Load a fixture photo as RGB, optionally resized to (w, h)."""
    img = Image.open(FIXTURES / f"{name}.png").convert("RGB")
    if size is not None:
        img = img.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(img).copy()


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    """Save a Pillow image to bytes in the given format."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def top_level_atoms(path: str) -> list[str]:
    """List the top-level MP4 box types in file order."""
    names = []
    with open(path, "rb") as fh:
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            size, kind = struct.unpack(">I4s", head)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0]
                fh.seek(size - 16, 1)
            elif size == 0:
                names.append(kind.decode("latin-1"))
                break
            else:
                fh.seek(size - 8, 1)
            names.append(kind.decode("latin-1"))
    return names


def probe(path: str) -> dict:
    """Decode an MP4 and report its stream facts and frame count."""
    with av.open(path) as c:
        s = c.streams.video[0]
        cc = s.codec_context
        count = 0
        for _ in c.decode(s):
            count += 1
        return {
            "codec": cc.name,
            "profile": cc.profile,
            "pix_fmt": cc.pix_fmt,
            "width": cc.width,
            "height": cc.height,
            "frames": count,
            "rate": s.average_rate,
            "duration": float(s.duration * s.time_base) if s.duration else None,
            "container_duration": c.duration / 1_000_000 if c.duration else None,
            "colorspace": cc.colorspace,
            "color_primaries": cc.color_primaries,
            "color_trc": cc.color_trc,
            "fps_exact": s.average_rate == Fraction(30, 1),
        }


def frames_gray(path: str, indices: list[int] | None = None) -> dict[int, np.ndarray]:
    """Decode frames (all, or the given indices) as float32 greyscale."""
    out = {}
    with av.open(path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if indices is None or i in indices:
                out[i] = cv2.cvtColor(f.to_ndarray(format="rgb24"), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return out


def frames_rgb(path: str, indices: list[int]) -> dict[int, np.ndarray]:
    """Decode the given frames as RGB uint8."""
    out = {}
    with av.open(path) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in indices:
                out[i] = f.to_ndarray(format="rgb24")
    return out


def patch_shift(a: np.ndarray, b: np.ndarray, cx: float, cy: float, size: int = 64) -> tuple[float, float]:
    """Displacement (dx, dy) of the content of a size x size patch centred at (cx, cy) from a to b."""
    h, w = a.shape
    x0 = int(round(cx * w - size / 2))
    y0 = int(round(cy * h - size / 2))
    # Copies: cv2.phaseCorrelate applies the window to its inputs in place.
    pa = a[y0 : y0 + size, x0 : x0 + size].copy()
    pb = b[y0 : y0 + size, x0 : x0 + size].copy()
    win = cv2.createHanningWindow((size, size), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(pa, pb, win)
    return dx, dy
