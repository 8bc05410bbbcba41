"""Subject-aware framing for a fixed shape: where the product is, and the canvas the camera films.

The camera films a *canvas*: the photo itself when the shape can be cut from it without cutting
the product, otherwise the photo placed on a larger area of the output's shape whose uncovered
part is filled as `background` says (docs/formats.md, "Framing"). Everything per frame (camera,
layers, effects) then works on the canvas exactly as it works on a photo, so a filled frame costs
no more to draw than a plain one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from .camera import PRODUCT_MARGIN
from .handover import Handed
from .segment import Separation, border_plainness, small_copy
from .sizing import SOURCE, WORKING_SCALE

MARGIN = PRODUCT_MARGIN
# `auto` extends a border at least this plain (segment.border_plainness), else blurs.
_PLAIN_ENOUGH = 0.6
# Blur fill: drawn at 1/_FILL_DOWN of the canvas, blurred by this share of its long side, darkened.
_FILL_DOWN = 8
_BLUR_SIGMA = 0.03
_BLUR_DARKEN = 0.72
# Extend fill: the photo's edge colours (blurred along the edge) fade to the border's mean colour
# over this share of the canvas' long side; the photo's own edge is feathered into them over
# _FEATHER of its short side.
_EXTEND_FADE = 0.15
_EXTEND_SMOOTH = 0.02
_FEATHER = 0.03
# Without a separation the product is the middle of the detail, this many spreads either side.
_SALIENT_SPREAD = 0.75


@dataclass(frozen=True)
class Format:
    """The request's format options (docs/formats.md), already validated."""

    aspect_ratio: str = SOURCE
    resolution: str = "1080p"
    loop: bool = False
    background: str = "auto"


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions


@dataclass(frozen=True)
class Framing:
    """The canvas the camera films and where the photo and the product sit on it."""

    canvas: np.ndarray  # RGB uint8
    offset: tuple[int, int]  # the photo's top-left corner on the canvas (px)
    photo_size: tuple[int, int]  # the (possibly reduced) photo's size on the canvas (px)
    product: Box  # the product's box, canvas fractions
    fill: str  # "none", "blur", "extend" or "#RRGGBB"
    backdrop: np.ndarray | None  # the fill alone (canvas size), when there is one
    feather: np.ndarray | None  # the photo's weight over the backdrop (photo size), for extend

    def to_json(self) -> dict:
        h, w = self.canvas.shape[:2]
        return {
            "canvas": [w, h],
            "photo": [self.offset[0], self.offset[1], self.photo_size[0], self.photo_size[1]],
            "product": [round(v, 4) for v in self.product],
            "fill": self.fill,
        }

    def place(self, layer: np.ndarray, *, resize: bool = True) -> np.ndarray:
        """A photo-sized layer (RGB picture or float mask) placed on the canvas like the photo."""
        pw, ph = self.photo_size
        if resize and (layer.shape[1], layer.shape[0]) != (pw, ph):
            layer = cv2.resize(layer, (pw, ph), interpolation=cv2.INTER_AREA)
        h, w = self.canvas.shape[:2]
        x, y = self.offset
        if (w, h) == (pw, ph):
            return np.ascontiguousarray(layer)
        if layer.ndim == 2:
            out = np.zeros((h, w), layer.dtype)
            out[y : y + ph, x : x + pw] = layer
            return out
        if self.backdrop is None:
            raise ValueError("a padded canvas has a backdrop")
        return _compose(self.backdrop, layer, self.offset, self.feather)


def saliency_box(rgb: np.ndarray) -> Box:
    """Where the detail is, as a box: the spread of gradient energy around its centre."""
    small = cv2.resize(rgb, (96, max(1, round(96 * rgb.shape[0] / rgb.shape[1]))), interpolation=cv2.INTER_AREA)
    g = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    e = np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1))
    e = cv2.GaussianBlur(e, (0, 0), 3)
    h, w = e.shape
    total = float(e.sum()) or 1.0
    xs = (np.arange(w, dtype=np.float64) + 0.5) / w
    ys = (np.arange(h, dtype=np.float64) + 0.5) / h
    px, py = e.sum(axis=0) / total, e.sum(axis=1) / total
    mx, my = float((px * xs).sum()), float((py * ys).sum())
    sx = math.sqrt(float((px * (xs - mx) ** 2).sum()))
    sy = math.sqrt(float((py * (ys - my) ** 2).sum()))
    # Three quarters of a spread either side: the busy heart of the picture, not all of it.
    k = _SALIENT_SPREAD
    return (max(0.0, mx - k * sx), max(0.0, my - k * sy), min(1.0, mx + k * sx), min(1.0, my + k * sy))


def product_box(rgb: np.ndarray, sep: Separation | None) -> tuple[Box, str]:
    """The product's box (photo fractions) and where it came from: the separation, else saliency."""
    if sep is not None and sep.confident:
        return sep.bbox, "separation"
    return saliency_box(rgb), "saliency"


def resolve_background(background: str, rgb: np.ndarray) -> str:
    """`auto` becomes `extend` on a plain studio border and `blur` otherwise."""
    if background != "auto":
        return background
    plain, _ = border_plainness(small_copy(rgb))
    return "extend" if plain >= _PLAIN_ENOUGH else "blur"


def frame_photo(
    rgb: np.ndarray,
    out_size: tuple[int, int],
    product: Box,
    *,
    reach: float,
    background: str,
) -> Framing:
    """Choose the canvas for a fixed shape.

    `reach` is the largest zoom the plan's camera uses (its base zoom times its peak, tilts
    included): at that zoom the product plus MARGIN must still fit the frame. When cutting the
    shape from the photo leaves room for that, the canvas is the photo; otherwise the photo is
    padded, around the product, to the area the widest frame needs. The photo is reduced so the
    narrowest frame still has WORKING_SCALE photo pixels per output pixel.
    """
    out_w, out_h = out_size
    h, w = rgb.shape[:2]
    px0, py0, px1, py1 = (product[0] * w, product[1] * h, product[2] * w, product[3] * h)
    pw, ph = max(1.0, px1 - px0), max(1.0, py1 - py0)
    usable = 1.0 - 2.0 * MARGIN
    # Output pixels per photo pixel at which the product plus margin just fills the frame.
    s_fit = min(out_w * usable / pw, out_h * usable / ph)
    # The widest frame (zoom 1) the camera may show, centred on the product.
    rw, rh = out_w * reach / s_fit, out_h * reach / s_fit
    cx, cy = (px0 + px1) / 2, (py0 + py1) / 2
    x0, y0 = min(0.0, cx - rw / 2), min(0.0, cy - rh / 2)
    x1, y1 = max(float(w), cx + rw / 2), max(float(h), cy + rh / 2)
    # Cover scale of that canvas at zoom 1, and at the narrowest frame.
    cover = max(out_w / (x1 - x0), out_h / (y1 - y0))
    r = min(1.0, WORKING_SCALE * cover * reach)
    if r < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * r)), max(1, round(h * r))), interpolation=cv2.INTER_AREA)
    sh, sw = rgb.shape[:2]
    ox, oy = round(-x0 * r), round(-y0 * r)
    cw, ch = max(sw, round((x1 - x0) * r)), max(sh, round((y1 - y0) * r))
    ox, oy = min(ox, cw - sw), min(oy, ch - sh)
    prod = (
        (px0 * r + ox) / cw,
        (py0 * r + oy) / ch,
        (px1 * r + ox) / cw,
        (py1 * r + oy) / ch,
    )
    if (cw, ch) == (sw, sh):
        return Framing(np.ascontiguousarray(rgb), (0, 0), (sw, sh), prod, "none", None, None)
    fill = resolve_background(background, rgb)
    backdrop = _backdrop(rgb, (cw, ch), (ox, oy), fill)
    feather = _feather((sw, sh), (ox, oy), (cw, ch)) if fill == "extend" else None
    canvas = _compose(backdrop, rgb, (ox, oy), feather)
    return Framing(canvas, (ox, oy), (sw, sh), prod, fill, backdrop, feather)


def _compose(
    backdrop: np.ndarray, photo: np.ndarray, offset: tuple[int, int], feather: np.ndarray | None
) -> np.ndarray:
    out = backdrop.copy()
    x, y = offset
    ph, pw = photo.shape[:2]
    if feather is None:
        out[y : y + ph, x : x + pw] = photo
    else:
        # In bytes with float weights: no float copy of the photo.
        region = np.ascontiguousarray(out[y : y + ph, x : x + pw])
        out[y : y + ph, x : x + pw] = cv2.blendLinear(np.ascontiguousarray(photo), region, feather, 1.0 - feather)
    return out


def _feather(photo: tuple[int, int], offset: tuple[int, int], canvas: tuple[int, int]) -> np.ndarray:
    """The photo's weight: 1 inside, falling to 0 at each edge that borders the fill."""
    pw, ph = photo
    ox, oy = offset
    cw, ch = canvas
    band = max(2.0, _FEATHER * min(pw, ph))
    xs = np.arange(pw, dtype=np.float32) + 0.5
    ys = np.arange(ph, dtype=np.float32) + 0.5
    wx = np.ones(pw, np.float32)
    wy = np.ones(ph, np.float32)
    if ox > 0:
        wx = np.minimum(wx, xs / band)
    if ox + pw < cw:
        wx = np.minimum(wx, (pw - xs) / band)
    if oy > 0:
        wy = np.minimum(wy, ys / band)
    if oy + ph < ch:
        wy = np.minimum(wy, (ph - ys) / band)
    wx, wy = np.clip(wx, 0, 1), np.clip(wy, 0, 1)
    # Smoothstep: no crease where the ramp starts.
    wx, wy = wx * wx * (3 - 2 * wx), wy * wy * (3 - 2 * wy)
    return np.ascontiguousarray(wy[:, None] * wx[None, :])


def _area_reduced(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The photo area-averaged down to `size`, first by the largest whole factor that fits.

    cv2.resize averages whole blocks through a much cheaper shortcut (docs/formats.md, "Speed");
    the small remainder is averaged after. The pixels differ from one INTER_AREA pass only where
    the blocks fall differently, a few levels on average: for the fill, which is blurred next.
    """
    w, h = size
    k = min(rgb.shape[1] // max(1, w), rgb.shape[0] // max(1, h))
    if k >= 2:
        rgb = cv2.resize(rgb, None, fx=1 / k, fy=1 / k, interpolation=cv2.INTER_AREA)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _backdrop(rgb: np.ndarray, canvas: tuple[int, int], offset: tuple[int, int], fill: str) -> np.ndarray:
    """The fill alone, canvas size: drawn small (it is smooth) and enlarged."""
    cw, ch = canvas
    ph, pw = rgb.shape[:2]
    if fill.startswith("#"):
        colour = [int(fill[i : i + 2], 16) for i in (1, 3, 5)]
        return np.full((ch, cw, 3), colour, np.uint8)
    sw, sh = max(4, cw // _FILL_DOWN), max(4, ch // _FILL_DOWN)
    k = sw / cw
    if fill == "blur":
        # The photo scaled to cover the canvas, blurred and a little darker.
        cover = max(sw / pw, sh / ph)
        cov = _area_reduced(rgb, (math.ceil(pw * cover), math.ceil(ph * cover)))
        y0, x0 = (cov.shape[0] - sh) // 2, (cov.shape[1] - sw) // 2
        crop = cov[y0 : y0 + sh, x0 : x0 + sw].astype(np.float32)
        small = np.asarray(cv2.GaussianBlur(crop, (0, 0), max(1.0, _BLUR_SIGMA * max(sw, sh))), np.float32)
        small *= np.float32(_BLUR_DARKEN)
    else:  # extend
        ox, oy = offset
        iw, ih = max(1, round(pw * k)), max(1, round(ph * k))
        reduced = _area_reduced(rgb, (iw, ih)).astype(np.float32)
        inner = np.asarray(cv2.GaussianBlur(reduced, (0, 0), max(1.0, _EXTEND_SMOOTH * max(iw, ih))), np.float32)
        left, top = round(ox * k), round(oy * k)
        right, bottom = max(0, sw - left - iw), max(0, sh - top - ih)
        padded = cv2.copyMakeBorder(inner, top, bottom, left, right, cv2.BORDER_REPLICATE)[:sh, :sw]
        # Far from the photo the edge colours fade into the border's mean colour.
        border = np.concatenate([inner[0], inner[-1], inner[:, 0], inner[:, -1]]).mean(axis=0)
        yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
        dx = np.maximum(np.maximum(left - xx, xx - (left + iw - 1)), 0)
        dy = np.maximum(np.maximum(top - yy, yy - (top + ih - 1)), 0)
        d = np.sqrt(dx * dx + dy * dy) / max(1.0, _EXTEND_FADE * max(sw, sh))
        t = np.clip(d, 0, 1)[:, :, None]
        t = t * t * (3 - 2 * t)
        small = np.asarray(padded * (1 - t) + border[None, None, :] * t, np.float32)
    # Rounded to bytes while small: a float canvas-size copy would be 12 bytes a pixel.
    small8 = np.clip(small + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(cv2.resize(small8, (cw, ch), interpolation=cv2.INTER_LINEAR), np.uint8)


def separation_on_canvas(handed: Handed[Separation], framing: Framing) -> Separation:
    """The separation's mask, plate, product colours and shadow placed on the canvas like the photo.

    One layer at a time, each photo-size layer let go of once it is placed: all four of a 40 MP
    cup's at once were about 100 MiB over its canvas-size ones (docs/formats.md, "Memory").
    """
    sep = handed.take()
    placed: dict[str, Any] = {}
    for name in ("mask", "background", "foreground", "shadow"):
        layer = getattr(sep, name)
        cleared: dict[str, Any] = {name: None}
        sep = replace(sep, **cleared)
        placed[name] = framing.place(layer) if layer is not None else None
        del layer
    return replace(sep, **placed)
