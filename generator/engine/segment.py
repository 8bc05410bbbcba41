"""Separate a product from a plain-ish background: border colour model, GrabCut, matting.

`separate` runs in named phases: a colour model of the border, GrabCut seeded from it, the
product's parts, measurements that decide whether to trust the result, then, for a confident
result, a closed-form matte of GrabCut's edge (the soft alpha and the product's own colours
past it), the product's contact shadow, and the background plate with both painted out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from .matting import closed_form_alpha

# Analysis runs at this long side: GrabCut and inpainting stay cheap, a product stays recognisable.
_ANALYSIS_SIDE = 384
# Border strip that shows the backdrop, as a fraction of the short side (plainness and colours).
_STRIP = 0.04
# Background colour model: k-means over the strip's Lab colours, seeded so runs agree.
_BG_COLOURS = 3
_KMEANS_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
_KMEANS_ATTEMPTS = 2
_KMEANS_SEED = 12345
_KMEANS_SAMPLES = 4000
# A pixel is a product candidate when its Lab distance to the nearest backdrop colour exceeds
# max(_MIN_DISTANCE, _DISTANCE_GAIN x the strip's own 95th percentile); sure product past
# _SURE_GAIN times that.
_MIN_DISTANCE = 12.0
_DISTANCE_PERCENTILE = 95
_DISTANCE_GAIN = 1.8
_SURE_GAIN = 2.2
# The outermost border (a fraction of the short side) is sure backdrop, except along the bottom,
# where a product standing on the edge may touch it.
_SURE_BORDER = 0.02
_MIN_CANDIDATES = 0.01  # fewer candidate pixels than this share: nothing stands out
_GRABCUT_ITERATIONS = 4
_PART_SHARE = 0.15  # further parts count when at least this share of the largest part
# Trust the result only inside these limits.
_MIN_PLAINNESS = 0.45
_AREA_RANGE = (0.04, 0.7)
_MIN_AGREEMENT = 0.55  # IoU of the colour model's candidates and GrabCut's product
_MAX_TOUCH = 0.12  # share of the top/left/right edges the product may touch
_MAX_BOTTOM_TOUCH = 0.6
# Feathering of the painted-out hole's edge on the full-size plate (a fraction of the long side).
_FEATHER = 0.004
# Background plate: the hole painted out around the product, and the smoothing of the fill.
_INPAINT_RADIUS = 5
# Full-size float work on the plate is done this many pixels at a time (memory, not speed).
_BAND_PIXELS = 1 << 18
_FILL_BLUR = 0.015  # of the analysis long side (at least 2 px)
# Matting (closed-form, matting.py) of a band around GrabCut's edge, on a crop around the product
# reduced to at most _MATTE_SIDE px: the band's half-width covers GrabCut's error of about
# _MATTE_BAND analysis pixels (at least _MIN_BAND matte px).
_MATTE_SIDE = 640
_MATTE_BAND = 2.2
_MIN_BAND = 3
_SOLID = 0.9  # alpha from which the product's colours are the photo's own
# Blur-fusion foreground estimation: its wide pass (of the matte's long side) and narrow pass (px).
_FUSION_WIDE = 0.045
_FUSION_NARROW = 6
# Contact shadow: how far from the product it may reach (of the analysis long side), the
# darkening the backdrop's own texture reaches just beyond that (this percentile: not shadow),
# and its darkest.
_SHADOW_REACH = 0.09
_SHADOW_FLOOR = 95
_SHADOW_MAX = 0.8
# A shadow pixel is the plain backdrop's colour times this much, give or take this share of its
# colour; the matte looks for them this many bands deep inside GrabCut's edge.
_SHADE_RANGE = (0.45, 0.97)
_SHADE_HUE = 0.06
_SHADE_DEPTH = 3


@dataclass(frozen=True)
class Separation:
    """A soft foreground mask at working size, the background plate and how far to trust them.

    A confident separation's mask is a matte (the product's coverage of each pixel), its
    `foreground` the product's own colours (the photo where the product is solid, estimated
    under its soft edge and carried on past it), `shadow` its contact shadow (how much it darkens
    the backdrop, 0..1) and `background` the photo with the product and its shadow painted out,
    so that `foreground` over `shadow` over `background` gives the photo back (docs/formats.md,
    "Cut-out edges").
    """

    confident: bool
    reason: str
    mask: np.ndarray | None = None  # float32 0..1, working size, the matte (confident only)
    background: np.ndarray | None = None  # RGB uint8 with the product (and its shadow) painted away
    foreground: np.ndarray | None = None  # RGB uint8, the product's colours (confident only)
    shadow: np.ndarray | None = None  # float32 0..1, the product's contact shadow (confident only)
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # x0, y0, x1, y1 normalised
    centroid: tuple[float, float] = (0.5, 0.5)
    area: float = 0.0
    plainness: float = 0.0  # 1 = perfectly uniform border, 0 = busy
    stats: dict = field(default_factory=dict)
    # A confident separation whose layers are still to be made (separate(layers=False), cut_out).
    pending: Pending | None = None

    @property
    def drawable(self) -> bool:
        """Confident, with its layers made or still to be made: the product can be drawn apart."""
        return self.confident and (self.mask is not None or self.pending is not None)

    def product_mask(self) -> np.ndarray:
        """The matte, or while it is still to be made GrabCut's product (0/1, analysis size)."""
        if self.mask is not None:
            return self.mask
        if self.pending is None:
            raise ValueError("a doubtful separation has no product mask")
        return self.pending.fg.astype(np.float32)


@dataclass(frozen=True)
class Pending:
    """What a separation's layers are made from, at analysis size: the photo and GrabCut's product."""

    small: np.ndarray
    fg: np.ndarray


def small_copy(rgb: np.ndarray) -> np.ndarray:
    """Downscale for analysis so GrabCut and inpainting stay cheap."""
    h, w = rgb.shape[:2]
    s = _ANALYSIS_SIDE / max(h, w)
    if s >= 1:
        return rgb.copy()
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _strip(a: np.ndarray, m: int) -> np.ndarray:
    """The border strip of width m of an H x W (x C) array, flattened: top, bottom, left, right."""
    c = a.shape[2] if a.ndim == 3 else 1
    parts = [a[:m], a[-m:], a[:, :m], a[:, -m:]]
    return np.concatenate([p.reshape(-1, c) if c > 1 else p.ravel() for p in parts])


def border_plainness(rgb_small: np.ndarray) -> tuple[float, np.ndarray]:
    """Score how uniform the border strip is (0..1) and return its pixels in Lab."""
    lab = cv2.cvtColor(rgb_small, cv2.COLOR_RGB2LAB).astype(np.float32)
    h, w = lab.shape[:2]
    m = max(2, round(_STRIP * min(h, w)))
    strip = _strip(lab, m)
    # Local texture (not slow gradients) is what makes separation hard: use a high-pass spread.
    gray = cv2.cvtColor(rgb_small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    hp = np.abs(gray - cv2.GaussianBlur(gray, (0, 0), 3))
    texture = float(np.mean(_strip(hp, m)))
    spread = float(np.mean(np.std(strip, axis=0)))
    score = float(np.clip(1.0 - (texture / 6.0) * 0.6 - (spread / 30.0) * 0.4, 0.0, 1.0))
    return score, strip


def _backdrop_distance(small: np.ndarray, strip: np.ndarray) -> tuple[np.ndarray, float]:
    """Lab distance of every pixel to the nearest dominant border colour, and the candidate threshold."""
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    cv2.setRNGSeed(_KMEANS_SEED)
    sample = strip[:: max(1, len(strip) // _KMEANS_SAMPLES)]
    # The stubs do not allow bestLabels=None.
    _, _, centers = cv2.kmeans(sample, _BG_COLOURS, None, _KMEANS_CRITERIA, _KMEANS_ATTEMPTS, cv2.KMEANS_PP_CENTERS)  # type: ignore[call-overload]
    dist = np.min(np.linalg.norm(lab[:, :, None, :] - centers[None, None, :, :], axis=3), axis=2)
    strip_dist = np.min(np.linalg.norm(sample[:, None, :] - centers[None, :, :], axis=2), axis=1)
    thr = max(_MIN_DISTANCE, float(np.percentile(strip_dist, _DISTANCE_PERCENTILE)) * _DISTANCE_GAIN)
    return dist, thr


def _grabcut_seeds(dist: np.ndarray, thr: float) -> np.ndarray:
    """GrabCut's starting labels: probable product where the colour stands out, sure backdrop at the border."""
    h, w = dist.shape
    gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    gc[dist > thr] = cv2.GC_PR_FGD
    gc[dist > thr * _SURE_GAIN] = cv2.GC_FGD
    m = max(2, round(_SURE_BORDER * min(h, w)))
    gc[:m, :] = cv2.GC_BGD
    gc[:, :m] = cv2.GC_BGD
    gc[:, -m:] = cv2.GC_BGD
    gc[-m:, :] = np.where(gc[-m:, :] == cv2.GC_FGD, cv2.GC_PR_FGD, cv2.GC_BGD)
    return gc


def _grabcut(small: np.ndarray, gc: np.ndarray) -> np.ndarray | None:
    """Run GrabCut from the seeds; the product as a 0/1 mask, or None when it fails."""
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    try:
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        # The stubs do not allow rect=None, which GC_INIT_WITH_MASK takes.
        cv2.grabCut(bgr, gc, None, bgd, fgd, _GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]
    except cv2.error:
        return None
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    return cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))


def _product_parts(fg: np.ndarray) -> np.ndarray | None:
    """Keep the largest part and sizeable others, with their holes filled; None when nothing is left."""
    h, w = fg.shape
    n, labels, cc_stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return None
    areas = cc_stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1]
    keep = np.zeros(n, bool)
    keep[1 + order[0]] = True
    for j in order[1:]:  # keep sizeable parts of a multi-piece product
        if areas[j] > _PART_SHARE * areas[order[0]]:
            keep[1 + j] = True
    fg = keep[labels].astype(np.uint8)
    # Fill holes: background not reachable from the border belongs to the product.
    outside = (1 - fg).astype(np.uint8)
    ff = np.zeros((h + 2, w + 2), np.uint8)
    for x, y in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)):
        if outside[y, x] == 1:
            cv2.floodFill(outside, ff, (x, y), 2)
    fg = np.where(outside == 1, 1, fg).astype(np.uint8)
    return cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))


@dataclass(frozen=True)
class _Measures:
    area: float
    iou: float
    touch: float
    bottom_touch: float
    bbox: tuple[float, float, float, float]
    centroid: tuple[float, float]

    def stats(self) -> dict:
        return {
            "area": round(self.area, 3),
            "iou": round(self.iou, 3),
            "touch": round(self.touch, 3),
            "bottom_touch": round(self.bottom_touch, 3),
        }


def _measure(fg: np.ndarray, candidates: np.ndarray) -> _Measures:
    """Size, place and agreement of the product mask with the colour model's candidates."""
    h, w = fg.shape
    inter = float(np.logical_and(fg, candidates).sum())
    union = float(np.logical_or(fg, candidates).sum()) or 1.0
    ys, xs = np.nonzero(fg)
    return _Measures(
        area=float(fg.mean()),
        iou=inter / union,
        touch=float(np.concatenate([fg[0], fg[:, 0], fg[:, -1]]).mean()),
        bottom_touch=float(fg[-1].mean()),
        bbox=(float(xs.min() / w), float(ys.min() / h), float((xs.max() + 1) / w), float((ys.max() + 1) / h)),
        centroid=(float(xs.mean() / w), float(ys.mean() / h)),
    )


def _doubts(plain: float, m: _Measures) -> list[str]:
    """Reasons not to trust the separation (none: confident)."""
    reasons = []
    if plain < _MIN_PLAINNESS:
        reasons.append("busy background")
    if not _AREA_RANGE[0] <= m.area <= _AREA_RANGE[1]:
        reasons.append("subject size out of range")
    if m.iou < _MIN_AGREEMENT:
        reasons.append("colour model and GrabCut disagree")
    if m.touch > _MAX_TOUCH or m.bottom_touch > _MAX_BOTTOM_TOUCH:
        reasons.append("subject runs off the frame")
    return reasons


def _ellipse(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _crop(fg: np.ndarray, size: tuple[int, int], pad: float) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1, full-size pixels) around the product, `pad` px wider each side."""
    big_w, big_h = size
    h, w = fg.shape
    ys, xs = np.nonzero(fg)
    sx, sy = big_w / w, big_h / h
    x0, y0 = max(0, int(xs.min() * sx - pad)), max(0, int(ys.min() * sy - pad))
    x1, y1 = (
        min(big_w, int(math.ceil((xs.max() + 1) * sx + pad))),
        min(big_h, int(math.ceil((ys.max() + 1) * sy + pad))),
    )
    return x0, y0, x1, y1


def _matte(
    rgb: np.ndarray, fg: np.ndarray, plain: np.ndarray, *, colours: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """The product's alpha and (with `colours`) colours at full size, from a closed-form matte of GrabCut's edge.

    The trimap is GrabCut's mask (analysis size) on a crop around the product, reduced to at most
    _MATTE_SIDE px: sure product and sure backdrop beyond a band either side of its edge, unknown
    inside it; near the edge, pixels that are the plain backdrop's colour darkened (GrabCut often
    takes a contact shadow for the product) are sure backdrop, so the shadow is not cut out with it.
    Closed-form matting (matting.closed_form_alpha) solves the band; blur-fusion gives the
    product's colours under the soft edge and past it, so an edge pixel is drawn with the
    product's colour, not the photo's mix of product and old backdrop.
    """
    big_h, big_w = rgb.shape[:2]
    h, w = fg.shape
    sx, sy = big_w / w, big_h / h
    # Matte px per analysis px (k <= 1 reduces the crop), the band, and the crop's margin for it.
    k = min(1.0, _MATTE_SIDE / max(big_w, big_h, 1))
    band = max(_MIN_BAND, math.ceil(_MATTE_BAND * k * sx))
    x0, y0, x1, y1 = _crop(fg, (big_w, big_h), (band + 2) / k)
    k = min(1.0, _MATTE_SIDE / max(x1 - x0, y1 - y0))
    band = max(_MIN_BAND, math.ceil(_MATTE_BAND * k * sx))
    cw, ch = x1 - x0, y1 - y0
    mw, mh = max(1, round(cw * k)), max(1, round(ch * k))
    crop = rgb[y0:y1, x0:x1]
    small = crop if (mw, mh) == (cw, ch) else cv2.resize(crop, (mw, mh), interpolation=cv2.INTER_AREA)
    # GrabCut's mask sampled on the matte grid (pixel centres mapped matte -> full -> analysis).
    kx, ky = cw / mw, ch / mh
    to_fg = np.array([[kx / sx, 0.0, (x0 + 0.5 * kx) / sx - 0.5], [0.0, ky / sy, (y0 + 0.5 * ky) / sy - 0.5]])
    on_grid = cv2.warpAffine(
        fg.astype(np.float32),
        to_fg,
        (mw, mh),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    inside = (on_grid > 0.5).astype(np.uint8)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    plain_grid = cv2.warpAffine(plain, to_fg, (mw, mh), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    rim = cv2.erode(inside, _ellipse(_SHADE_DEPTH * band)) == 0
    shade = rim & _shadow_like(cv2.GaussianBlur(small.astype(np.float32), (0, 0), 0.8), plain_grid)
    # Two pixels left unknown between the product and the shadow: the matte draws that edge.
    product = (inside > 0) & ~shade
    gap = _ellipse(2)
    trimap = np.full((mh, mw), 0.5)
    sure = cv2.erode(inside, _ellipse(band)) > 0
    trimap[sure & (cv2.dilate(shade.astype(np.uint8), gap) == 0)] = 1.0
    trimap[(cv2.dilate(inside, _ellipse(band)) == 0) | (shade & (cv2.dilate(product.astype(np.uint8), gap) == 0))] = 0.0
    alpha32 = np.clip(closed_form_alpha(small.astype(np.float64) / 255.0, trimap), 0.0, 1.0).astype(np.float32)
    mask = np.zeros((big_h, big_w), np.float32)
    if not colours:
        mask[y0:y1, x0:x1] = (
            alpha32 if (mw, mh) == (cw, ch) else cv2.resize(alpha32, (cw, ch), interpolation=cv2.INTER_LINEAR)
        )
        return mask, None
    estimate = _foreground_colours(small.astype(np.float32), alpha32)
    if (mw, mh) != (cw, ch):
        alpha32 = cv2.resize(alpha32, (cw, ch), interpolation=cv2.INTER_LINEAR)
        estimate = cv2.resize(estimate, (cw, ch), interpolation=cv2.INTER_LINEAR)
    mask[y0:y1, x0:x1] = alpha32
    # The photo where the product is solid; the estimate under its edge and past it.
    solid = np.clip((alpha32 - _SOLID) / (1.0 - _SOLID), 0.0, 1.0)[:, :, None]
    foreground = rgb.copy()
    foreground[y0:y1, x0:x1] = np.clip(crop * solid + estimate * (1.0 - solid) + 0.5, 0, 255).astype(np.uint8)
    return mask, foreground


def _fusion(
    image: np.ndarray, fore: np.ndarray, back: np.ndarray, alpha: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """One pass of blur-fusion foreground estimation (Forte and Pitie, 2021): F and the local B."""
    a = alpha[:, :, None]
    box = (size, size)
    blurred_a = cv2.blur(alpha, box)[:, :, None]
    f = cv2.blur(fore * a, box) / (blurred_a + 1e-5)
    b = cv2.blur(back * (1.0 - a), box) / ((1.0 - blurred_a) + 1e-5)
    return np.clip(f + a * (image - a * f - (1.0 - a) * b), 0.0, 255.0), b


def _foreground_colours(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The product's colours under its soft edge and just past it (float32 0..255, image size).

    Blur-fusion: each pixel's product colour is the local mean of the product's colours, corrected
    so that it and the local backdrop colour mixed by alpha give the photo back; a wide pass, then
    a narrow one. Box filters only: milliseconds where a multilevel solve takes a second.
    """
    wide = max(7, round(_FUSION_WIDE * max(alpha.shape)))
    fore, back = _fusion(image, image, image, alpha, wide)
    fore, _ = _fusion(image, fore, back, alpha, _FUSION_NARROW)
    return fore


def _plain_backdrop(small: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """The backdrop without the product and its shadow (analysis size, RGB float32).

    The product and the shadow's reach painted out with the backdrop from beyond it (a normalised
    blur), then a grey closing as wide as the reach, which lifts dark valleys narrower than that
    (a contact shadow) and keeps a studio backdrop's slow gradients.
    """
    h, w = fg.shape
    reach = max(3, round(_SHADOW_REACH * max(h, w)))
    zone = cv2.dilate(fg, _ellipse(reach))
    known = (1 - zone).astype(np.float32)
    photo = cv2.GaussianBlur(small.astype(np.float32), (0, 0), 1.0)
    weight = np.maximum(cv2.GaussianBlur(known, (0, 0), reach), 1e-3)[:, :, None]
    far = cv2.GaussianBlur(photo * known[:, :, None], (0, 0), reach) / weight
    near = cv2.dilate(fg, _ellipse(1))[:, :, None] > 0
    plain = cv2.morphologyEx(np.where(near, far, photo), cv2.MORPH_CLOSE, _ellipse(max(1, reach // 2)))
    return np.asarray(cv2.GaussianBlur(plain, (0, 0), max(1.0, reach / 4)), np.float32)


def _shadow_like(image: np.ndarray, plain: np.ndarray) -> np.ndarray:
    """Pixels that are the backdrop's own colour, darkened as a shadow darkens it (not a dark product)."""
    dot = (image * plain).sum(axis=2)
    norm = np.maximum((plain * plain).sum(axis=2), 1.0)
    k = dot / norm
    off = np.sqrt(((image - k[:, :, None] * plain) ** 2).sum(axis=2) / norm)
    return (k > _SHADE_RANGE[0]) & (k < _SHADE_RANGE[1]) & (off < _SHADE_HUE)


def _contact_shadow(small: np.ndarray, fg: np.ndarray, plain: np.ndarray) -> np.ndarray:
    """How much the product's own shadow darkens the backdrop around it (analysis size, 0..1).

    The shadow is the photo's darkening against the plain backdrop where it is deeper than what
    the backdrop's own texture reaches just beyond the shadow's reach (so a mottled backdrop is
    not taken for a shadow). Under the product it carries on inwards, so when the product moves the backdrop it
    uncovers is shaded as its shadow would be.
    """
    h, w = fg.shape
    reach = max(3, round(_SHADOW_REACH * max(h, w)))
    zone = cv2.dilate(fg, _ellipse(reach))
    near = cv2.dilate(fg, _ellipse(1))
    beyond = (cv2.dilate(zone, _ellipse(max(2, reach // 2))) > 0) & (zone == 0)
    lum = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
    plain_l = cv2.cvtColor(plain, cv2.COLOR_RGB2GRAY)
    dark = 1.0 - lum / np.maximum(plain_l, 1.0)
    floor = max(0.01, float(np.percentile(dark[beyond > 0], _SHADOW_FLOOR))) if beyond.any() else 0.01
    around = (zone > 0) & (near == 0)
    # Fading out towards the edge of the reach: no step where the shadow stops.
    fade = np.clip(cv2.distanceTransform(zone, cv2.DIST_L2, 3) / (0.5 * reach), 0.0, 1.0)
    # Texture-deep darkening is not shadow; from twice that on, all of it is.
    gate = np.clip((dark - floor) / floor, 0.0, 1.0)
    shadow = np.where(around, np.clip(dark, 0.0, _SHADOW_MAX) * gate * fade, 0.0).astype(np.float32)
    ring = around.astype(np.float32)
    # The nearest ring values carry on under the edge; deeper in, a wider average of them.
    close = cv2.GaussianBlur(ring, (0, 0), 2.0)
    under = np.where(
        close > 0.05,
        cv2.GaussianBlur(shadow, (0, 0), 2.0) / np.maximum(close, 1e-3),
        cv2.GaussianBlur(shadow, (0, 0), reach / 2) / np.maximum(cv2.GaussianBlur(ring, (0, 0), reach / 2), 1e-3),
    )
    shadow = np.where(around | (zone == 0), shadow, under).astype(np.float32)
    return np.asarray(cv2.GaussianBlur(shadow, (0, 0), 1.0), np.float32)


def _background_plate(
    rgb: np.ndarray, small: np.ndarray, fg: np.ndarray, feather: float, shadow_small: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The photo with the product and its shadow painted out, and the shadow at full size.

    Everything is done on the crop around the product and its shadow's reach; the rest of the
    plate is the photo as it is.
    """
    h, w = small.shape[:2]
    big_h, big_w = rgb.shape[:2]
    # Lift the shadow off the backdrop (it is carried with the product), then paint the product
    # out at analysis size (fast, and a plain background needs no detail) and paste the fill
    # into the full-resolution plate only where the product was.
    lift_small = (1.0 / (1.0 - shadow_small))[:, :, None]
    clean_small = np.clip(small * lift_small + 0.5, 0, 255).astype(np.uint8)
    hole = cv2.dilate(fg, np.ones((7, 7), np.uint8), iterations=2)
    filled_small = cv2.inpaint(cv2.cvtColor(clean_small, cv2.COLOR_RGB2BGR), hole, _INPAINT_RADIUS, cv2.INPAINT_TELEA)
    filled_small = cv2.cvtColor(filled_small, cv2.COLOR_BGR2RGB)
    # Telea leaves streaks across a large hole; a plain backdrop is smooth, so soften the fill.
    soft_fill = cv2.GaussianBlur(filled_small, (0, 0), max(2.0, _FILL_BLUR * max(h, w)))
    inner = cv2.GaussianBlur(cv2.erode(hole, np.ones((5, 5), np.uint8), iterations=2).astype(np.float32), (0, 0), 3)[
        :, :, None
    ]
    filled_small = np.clip(filled_small * (1 - inner) + soft_fill * inner + 0.5, 0, 255).astype(np.uint8)
    reach = max(3, round(_SHADOW_REACH * max(h, w)))
    x0, y0, x1, y1 = _crop(cv2.dilate(fg, _ellipse(reach + 2)), (big_w, big_h), 2 * feather + 2)
    # Full-size crop of the analysis-size maps: sample them on the crop's pixel centres.
    sx, sy = big_w / w, big_h / h
    cw, ch = x1 - x0, y1 - y0
    to_small = np.array([[1 / sx, 0.0, (x0 + 0.5) / sx - 0.5], [0.0, 1 / sy, (y0 + 0.5) / sy - 0.5]])

    def sample(a: np.ndarray, interpolation: int) -> np.ndarray:
        flags = interpolation | cv2.WARP_INVERSE_MAP
        return cv2.warpAffine(a, to_small, (cw, ch), flags=flags, borderMode=cv2.BORDER_REPLICATE)

    filled_big = sample(filled_small, cv2.INTER_CUBIC)
    hole_big = cv2.GaussianBlur(sample(hole.astype(np.float32), cv2.INTER_LINEAR), (0, 0), feather * 2)[:, :, None]
    shade = np.clip(sample(shadow_small, cv2.INTER_LINEAR), 0.0, _SHADOW_MAX)
    background = rgb.copy()
    # A band of rows at a time: the float copies of a large crop would cost ~12 bytes a pixel each.
    step = max(1, _BAND_PIXELS // max(1, cw))
    for a in range(0, ch, step):
        b = min(ch, a + step)
        region = rgb[y0 + a : y0 + b, x0:x1].astype(np.float32) / (1.0 - shade[a:b])[:, :, None]
        hole_band = hole_big[a:b]
        filled = filled_big[a:b].astype(np.float32)
        blend = region * (1 - hole_band) + filled * hole_band + 0.5
        background[y0 + a : y0 + b, x0:x1] = np.clip(blend, 0, 255).astype(np.uint8)
    shadow = np.zeros((big_h, big_w), np.float32)
    shadow[y0:y1, x0:x1] = shade
    return background, shadow


def _layers(
    rgb: np.ndarray, small: np.ndarray, fg: np.ndarray, *, plate: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The matte at rgb's size; with `plate` also the product's colours, the background plate and shadow."""
    plain_backdrop = _plain_backdrop(small, fg)
    mask, foreground = _matte(rgb, fg, plain_backdrop, colours=plate)
    if not plate or foreground is None:
        return mask, None, None, None
    # The matte's product (GrabCut's, less any shadow it took) is what is painted out.
    cut = (cv2.resize(mask, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA) > 0.5).astype(np.uint8)
    feather = max(1.0, _FEATHER * max(rgb.shape[:2]))
    shade = _contact_shadow(small, cut, plain_backdrop)
    background, shadow = _background_plate(rgb, small, cut, feather, shade)
    return mask, foreground, background, shadow


def cut_out(sep: Separation, rgb: np.ndarray, *, plate: bool = True) -> Separation:
    """Make a pending separation's layers at rgb's size (the photo, possibly reduced).

    A framed video makes them at the size the canvas uses (render._frame), not at working size:
    a 40 MP photo then stays within its memory budget (docs/formats.md, "Memory"). Without `plate`
    (nothing draws the product apart from its background) only the matte is made; the plate,
    product colours and shadow are None.
    """
    if sep.pending is None:
        return sep
    mask, foreground, background, shadow = _layers(rgb, sep.pending.small, sep.pending.fg, plate=plate)
    return replace(sep, mask=mask, foreground=foreground, background=background, shadow=shadow, pending=None)


def separate(rgb: np.ndarray, *, layers: bool = True) -> Separation:
    """Estimate the product mask; `confident` is False whenever a torn composite is a risk.

    Without `layers` a confident separation keeps what its layers are made from (`pending`) and
    cut_out makes them later, at the size they are drawn at.
    """
    small = small_copy(rgb)
    plain, strip = border_plainness(small)
    stats: dict = {"plainness": round(plain, 3)}
    if plain < _MIN_PLAINNESS:
        # A busy background is never trusted (_doubts), whatever GrabCut finds: its ~0.13 s per
        # photo would buy nothing but more reasons.
        return Separation(False, "busy background", plainness=plain, stats=stats)
    dist, thr = _backdrop_distance(small, strip)
    candidates = dist > thr
    if candidates.mean() < _MIN_CANDIDATES:
        return Separation(False, "no distinct subject", plainness=plain, stats=stats)
    fg = _grabcut(small, _grabcut_seeds(dist, thr))
    if fg is None:
        return Separation(False, "segmentation failed", plainness=plain, stats=stats)
    fg = _product_parts(fg)
    if fg is None:
        return Separation(False, "no distinct subject", plainness=plain, stats=stats)
    measures = _measure(fg, candidates)
    stats.update(measures.stats())
    reasons = _doubts(plain, measures)
    confident = not reasons
    mask = foreground = background = shadow = None
    pending = None
    if confident and not layers:
        pending = Pending(small, fg)
    elif confident:
        mask, foreground, background, shadow = _layers(rgb, small, fg, plate=True)
    # Nothing draws or measures a doubtful mask (frames.FrameRenderer and framing draw only a
    # confident one; the plan reports the stats): a full-size feathered copy would cost ~0.1 s
    # per render for nothing.
    return Separation(
        confident=confident,
        reason="ok" if confident else ", ".join(reasons),
        mask=mask,
        background=background,
        foreground=foreground,
        shadow=shadow,
        bbox=measures.bbox,
        centroid=measures.centroid,
        area=measures.area,
        plainness=plain,
        stats=stats,
        pending=pending,
    )


def product_layers(sep: Separation, *, carry_shadow: bool) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """What a layered render draws: the product's colours, the shadow carried with it, the plate.

    With `carry_shadow` the contact shadow moves with the product (frames.FrameRenderer draws the
    product over it as one premultiplied layer) and the plate is clean. Without it (a float: the
    product lifts off, its shadow stays on the ground) the shadow is put back on the plate and
    None is returned for it. A separation without a matte has no colours of its own (None: the
    photo's are drawn through its mask) and no shadow.
    """
    if sep.mask is None or sep.background is None:
        raise ValueError("layers need a confident separation")
    if sep.foreground is None or sep.shadow is None:
        return None, None, sep.background
    if carry_shadow:
        return sep.foreground, sep.shadow, sep.background
    plate = sep.background
    ys, xs = np.nonzero(sep.shadow > 0)
    if len(xs):
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        plate = plate.copy()
        shade = (1.0 - sep.shadow[y0:y1, x0:x1])[:, :, None]
        plate[y0:y1, x0:x1] = np.clip(plate[y0:y1, x0:x1] * shade + 0.5, 0, 255).astype(np.uint8)
    return sep.foreground, None, plate
