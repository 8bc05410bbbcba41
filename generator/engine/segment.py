"""Separate a product from a plain-ish background: border colour model, GrabCut, feathering.

`separate` runs in named phases: a colour model of the border, GrabCut seeded from it, the
product's parts, measurements that decide whether to trust the result, then the soft mask and
the background plate with the product painted out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

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
# Feathering of the full-size mask (a fraction of the long side) and its edge contrast.
_FEATHER = 0.004
_FEATHER_CONTRAST = 1.6
# Background plate: the hole painted out around the product, and the smoothing of the fill.
_INPAINT_RADIUS = 5
_FILL_BLUR = 0.015  # of the analysis long side (at least 2 px)


@dataclass(frozen=True)
class Separation:
    """A soft foreground mask at working size, the background plate and how far to trust them."""

    confident: bool
    reason: str
    mask: np.ndarray | None = None  # float32 0..1, working size, feathered
    background: np.ndarray | None = None  # RGB uint8 with the product inpainted away
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # x0, y0, x1, y1 normalised
    centroid: tuple[float, float] = (0.5, 0.5)
    area: float = 0.0
    plainness: float = 0.0  # 1 = perfectly uniform border, 0 = busy
    stats: dict = field(default_factory=dict)


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


def _soft_mask(fg: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """The product mask at full size (w, h), feathered; and the feather radius used."""
    big_w, big_h = size
    soft = cv2.resize(fg.astype(np.float32), (big_w, big_h), interpolation=cv2.INTER_LINEAR)
    feather = max(1.0, _FEATHER * max(big_w, big_h))
    soft = cv2.GaussianBlur(soft, (0, 0), feather)
    soft = np.clip((soft - 0.5) * _FEATHER_CONTRAST + 0.5, 0.0, 1.0).astype(np.float32)
    return soft, feather


def _background_plate(rgb: np.ndarray, small: np.ndarray, fg: np.ndarray, feather: float) -> np.ndarray:
    """The photo with the product painted out, for layers that move apart."""
    h, w = small.shape[:2]
    big_h, big_w = rgb.shape[:2]
    # Inpaint at analysis size (fast, and a plain background needs no detail), then paste
    # the fill into the full-resolution plate only where the product was.
    hole = cv2.dilate(fg, np.ones((7, 7), np.uint8), iterations=2)
    filled_small = cv2.inpaint(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), hole, _INPAINT_RADIUS, cv2.INPAINT_TELEA)
    filled_small = cv2.cvtColor(filled_small, cv2.COLOR_BGR2RGB)
    # Telea leaves streaks across a large hole; a plain backdrop is smooth, so soften the fill.
    soft_fill = cv2.GaussianBlur(filled_small, (0, 0), max(2.0, _FILL_BLUR * max(h, w)))
    inner = cv2.GaussianBlur(cv2.erode(hole, np.ones((5, 5), np.uint8), iterations=2).astype(np.float32), (0, 0), 3)[
        :, :, None
    ]
    filled_small = np.clip(filled_small * (1 - inner) + soft_fill * inner + 0.5, 0, 255).astype(np.uint8)
    filled_big = cv2.resize(filled_small, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
    hole_big = cv2.resize(hole.astype(np.float32), (big_w, big_h), interpolation=cv2.INTER_LINEAR)
    hole_big = cv2.GaussianBlur(hole_big, (0, 0), feather * 2)[:, :, None]
    background = rgb.astype(np.float32) * (1 - hole_big) + filled_big.astype(np.float32) * hole_big
    return np.clip(background + 0.5, 0, 255).astype(np.uint8)


def separate(rgb: np.ndarray) -> Separation:
    """Estimate the product mask; `confident` is False whenever a torn composite is a risk."""
    small = small_copy(rgb)
    plain, strip = border_plainness(small)
    stats: dict = {"plainness": round(plain, 3)}
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
    mask, feather = _soft_mask(fg, (rgb.shape[1], rgb.shape[0]))
    return Separation(
        confident=confident,
        reason="ok" if confident else ", ".join(reasons),
        mask=mask,
        background=_background_plate(rgb, small, fg, feather) if confident else None,
        bbox=measures.bbox,
        centroid=measures.centroid,
        area=measures.area,
        plainness=plain,
        stats=stats,
    )
