"""Separate a product from a plain-ish background: border colour model, GrabCut, feathering."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

_ANALYSIS_SIDE = 384


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


def _small(rgb: np.ndarray) -> np.ndarray:
    """Downscale for analysis so GrabCut and inpainting stay cheap."""
    h, w = rgb.shape[:2]
    s = _ANALYSIS_SIDE / max(h, w)
    if s >= 1:
        return rgb.copy()
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def border_plainness(rgb_small: np.ndarray) -> tuple[float, np.ndarray]:
    """Score how uniform the border strip is (0..1) and return its pixels in Lab."""
    lab = cv2.cvtColor(rgb_small, cv2.COLOR_RGB2LAB).astype(np.float32)
    h, w = lab.shape[:2]
    m = max(2, round(0.04 * min(h, w)))
    strip = np.concatenate(
        [lab[:m].reshape(-1, 3), lab[-m:].reshape(-1, 3), lab[:, :m].reshape(-1, 3), lab[:, -m:].reshape(-1, 3)]
    )
    # Local texture (not slow gradients) is what makes separation hard: use a high-pass spread.
    gray = cv2.cvtColor(rgb_small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    hp = np.abs(gray - cv2.GaussianBlur(gray, (0, 0), 3))
    border_hp = np.concatenate([hp[:m].ravel(), hp[-m:].ravel(), hp[:, :m].ravel(), hp[:, -m:].ravel()])
    texture = float(np.mean(border_hp))
    spread = float(np.mean(np.std(strip, axis=0)))
    score = float(np.clip(1.0 - (texture / 6.0) * 0.6 - (spread / 30.0) * 0.4, 0.0, 1.0))
    return score, strip


def separate(rgb: np.ndarray) -> Separation:
    """Estimate the product mask; `confident` is False whenever a torn composite is a risk."""
    small = _small(rgb)
    h, w = small.shape[:2]
    plain, strip = border_plainness(small)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    # Background model: a few dominant border colours; distance to the nearest marks candidates.
    k = 3
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(12345)
    sample = strip[:: max(1, len(strip) // 4000)]
    _, _, centers = cv2.kmeans(sample, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    dist = np.min(np.linalg.norm(lab[:, :, None, :] - centers[None, None, :, :], axis=3), axis=2)
    strip_dist = np.min(np.linalg.norm(sample[:, None, :] - centers[None, :, :], axis=2), axis=1)
    thr = max(12.0, float(np.percentile(strip_dist, 95)) * 1.8)
    init_fg = dist > thr

    gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    gc[init_fg] = cv2.GC_PR_FGD
    gc[dist > thr * 2.2] = cv2.GC_FGD
    m = max(2, round(0.02 * min(h, w)))
    gc[:m, :] = cv2.GC_BGD
    gc[:, :m] = cv2.GC_BGD
    gc[:, -m:] = cv2.GC_BGD
    gc[-m:, :] = np.where(gc[-m:, :] == cv2.GC_FGD, cv2.GC_PR_FGD, cv2.GC_BGD)
    stats: dict = {"plainness": round(plain, 3)}
    if init_fg.mean() < 0.01:
        return Separation(False, "no distinct subject", plainness=plain, stats=stats)
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), gc, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return Separation(False, "segmentation failed", plainness=plain, stats=stats)
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, cc_stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return Separation(False, "no distinct subject", plainness=plain, stats=stats)
    areas = cc_stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1]
    keep = np.zeros(n, bool)
    keep[1 + order[0]] = True
    for j in order[1:]:  # keep sizeable parts of a multi-piece product
        if areas[j] > 0.15 * areas[order[0]]:
            keep[1 + j] = True
    fg = keep[labels].astype(np.uint8)
    # Fill holes: background not reachable from the border belongs to the product.
    flood = (1 - fg).astype(np.uint8)
    ff = np.zeros((h + 2, w + 2), np.uint8)
    outside = flood.copy()
    for x, y in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)):
        if outside[y, x] == 1:
            cv2.floodFill(outside, ff, (x, y), 2)
    fg = np.where(outside == 1, 1, fg).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))

    area = float(fg.mean())
    inter = float(np.logical_and(fg, init_fg).sum())
    union = float(np.logical_or(fg, init_fg).sum()) or 1.0
    iou = inter / union
    edge = np.concatenate([fg[0], fg[:, 0], fg[:, -1]])
    touch = float(edge.mean())
    bottom_touch = float(fg[-1].mean())
    ys, xs = np.nonzero(fg)
    bbox = (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)
    centroid = (float(xs.mean() / w), float(ys.mean() / h))
    stats.update(
        {"area": round(area, 3), "iou": round(iou, 3), "touch": round(touch, 3), "bottom_touch": round(bottom_touch, 3)}
    )
    reasons = []
    if plain < 0.45:
        reasons.append("busy background")
    if not 0.04 <= area <= 0.7:
        reasons.append("subject size out of range")
    if iou < 0.55:
        reasons.append("colour model and GrabCut disagree")
    if touch > 0.12 or bottom_touch > 0.6:
        reasons.append("subject runs off the frame")
    confident = not reasons

    big_h, big_w = rgb.shape[:2]
    soft = cv2.resize(fg.astype(np.float32), (big_w, big_h), interpolation=cv2.INTER_LINEAR)
    feather = max(1.0, 0.004 * max(big_w, big_h))
    soft = cv2.GaussianBlur(soft, (0, 0), feather)
    soft = np.clip((soft - 0.5) * 1.6 + 0.5, 0.0, 1.0).astype(np.float32)

    background = None
    if confident:
        # Inpaint at analysis size (fast, and a plain background needs no detail), then paste
        # the fill into the full-resolution plate only where the product was.
        hole = cv2.dilate(fg, np.ones((7, 7), np.uint8), iterations=2)
        filled_small = cv2.inpaint(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), hole, 5, cv2.INPAINT_TELEA)
        filled_small = cv2.cvtColor(filled_small, cv2.COLOR_BGR2RGB)
        # Telea leaves streaks across a large hole; a plain backdrop is smooth, so soften the fill.
        soft_fill = cv2.GaussianBlur(filled_small, (0, 0), max(2.0, 0.015 * max(h, w)))
        inner = cv2.GaussianBlur(
            cv2.erode(hole, np.ones((5, 5), np.uint8), iterations=2).astype(np.float32), (0, 0), 3
        )[:, :, None]
        filled_small = np.clip(filled_small * (1 - inner) + soft_fill * inner + 0.5, 0, 255).astype(np.uint8)
        filled_big = cv2.resize(filled_small, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
        hole_big = cv2.resize(hole.astype(np.float32), (big_w, big_h), interpolation=cv2.INTER_LINEAR)
        hole_big = cv2.GaussianBlur(hole_big, (0, 0), feather * 2)[:, :, None]
        background = rgb.astype(np.float32) * (1 - hole_big) + filled_big.astype(np.float32) * hole_big
        background = np.clip(background + 0.5, 0, 255).astype(np.uint8)
    return Separation(
        confident=confident,
        reason="ok" if confident else ", ".join(reasons),
        mask=soft,
        background=background,
        bbox=tuple(float(v) for v in bbox),
        centroid=centroid,
        area=area,
        plainness=plain,
        stats=stats,
    )
