"""The camera: plan moves evaluated at a time into a view of the photo, and the maps that draw it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .plan import Float, Move, Orbit, Pan, Plan, Tilt, ZoomIn, ZoomOut

# The product stays this far (a fraction of the frame's side) inside every frame (docs/formats.md).
PRODUCT_MARGIN = 0.05

# Pans and non-layered orbits need this much more room than their travel (in photo fractions),
# so the last frame of a move stays a hair inside the picture.
_TRAVEL_SLACK = 0.004
# A layered orbit: the product (the pivot) moves this fraction of the background's sweep, the
# other way, and the camera pushes in by this fraction of the orbit amount.
_ORBIT_FG_SHARE = 0.12
_ORBIT_PUSH = 0.35
# Without separation an orbit is a plain sideways move this many times its amount, with a push-in.
_ORBIT_FLAT_TRAVEL = 1.5
_ORBIT_FLAT_PUSH = 0.6
# A float that moves the whole picture needs zoom headroom of this many times its lift.
_FLOAT_HEADROOM = 2.2


def _translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _scale(k: float) -> np.ndarray:
    return np.array([[k, 0.0, 0.0], [0.0, k, 0.0], [0.0, 0.0, 1.0]])


_WARP = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
_TO_IDX = _translate(-0.5, -0.5)
_FROM_IDX = _translate(0.5, 0.5)
_HALF = _scale(0.5)
_DOUBLE = _scale(2.0)


def index_matrices(hc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn an out->src map in continuous coordinates into pixel-index maps for luma and chroma."""
    luma = _TO_IDX @ hc @ _FROM_IDX
    chroma = _TO_IDX @ (_HALF @ hc @ _DOUBLE) @ _FROM_IDX
    return luma, chroma


def warp(src: np.ndarray, m: np.ndarray, dst: np.ndarray, *, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Sample src through an inverse pixel-index map into dst (affine when possible: it is cheaper)."""
    size = (dst.shape[1], dst.shape[0])
    if abs(m[2, 0]) < 1e-12 and abs(m[2, 1]) < 1e-12:
        a = (m[:2] / m[2, 2]).astype(np.float64)
        return cv2.warpAffine(src, a, size, dst=dst, flags=_WARP, borderMode=border, borderValue=0)
    return cv2.warpPerspective(src, m, size, dst=dst, flags=_WARP, borderMode=border, borderValue=0)


# The separable path of warp_padded (docs/formats.md, "Speed"): a plane kept inside this many
# replicated pixels a side, and how far from its place a sample may be drawn there (px; OpenCV 5's
# warpAffine computes positions in floating point, so this is the path's own error).
PAD = 256
_RESIZE_TOLERANCE = 1 / 128


class PaddedPlane:
    """A plane inside a border of PAD replicated pixels, for warp_padded.

    `plane` is the plane itself (a view); the border is what BORDER_REPLICATE would read there.
    """

    def __init__(self, plane: np.ndarray) -> None:
        self.padded = cv2.copyMakeBorder(plane, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
        self.plane = self.padded[PAD:-PAD, PAD:-PAD]
        self._scratch = np.empty((0, 0), np.uint8)

    def scratch(self, height: int, width: int) -> np.ndarray:
        """A reused buffer of at least height x width (cv2.resize writes into a view of it)."""
        if self._scratch.shape[0] < height or self._scratch.shape[1] < width:
            self._scratch = np.empty(
                (max(height, self._scratch.shape[0]), max(width, self._scratch.shape[1])), np.uint8
            )
        return self._scratch[:height, :width]


def _resize_axis(a: float, b: float, n: int, length: int) -> tuple[int, int, int] | None:
    """Place n samples at a*j + b (pixel index, j = 0..n-1) along an axis of `length` pixels with cv2.resize.

    cv2.resize at scale 1/a puts its output sample k at (k + 0.5) * a - 0.5 from the start of the
    source range it is given, which must start on a whole pixel. Its output from sample k0 on is
    this axis' samples when the range starts at b + 0.5 - (k0 + 0.5) * a, so the first k0 (up to
    PAD / a) that lands that start within _RESIZE_TOLERANCE of a whole pixel, inside the border,
    is taken. Returns the range's start (from -PAD), its length and k0, or None when no k0 does
    (a near a simple fraction, such as 1: every k0 lands on the same fraction of a pixel).
    """
    if not 0.25 <= a <= 4.0:
        return None
    k = np.arange(int(PAD / a) + 1, dtype=np.float64)
    start = b + 0.5 - (k + 0.5) * a
    first = np.round(start)
    # The first sample's left-hand tap and the last one's right-hand tap are inside the range:
    # cv2.resize clamps them to its edge otherwise (an enlargement's first output sample lies
    # before the range's first pixel).
    span = np.floor((k + n - 0.5) * a - 0.5) + 2
    inside = (k + 0.5) * a - 0.5 >= 0
    fits = (np.abs(first - start) <= _RESIZE_TOLERANCE) & inside & (first >= -PAD) & (first + span <= length + PAD)
    hits = np.flatnonzero(fits)
    if hits.size == 0:
        return None
    i = int(hits[0])
    return int(first[i]), int(span[i]), i


def warp_padded(src: PaddedPlane, m: np.ndarray, dst: np.ndarray, *, copy: bool = True) -> np.ndarray:
    """warp(src.plane, m, dst) with a replicated border, drawn by cv2.resize when `m` only scales and moves.

    A zoom or a pan maps each axis on its own, and cv2.resize's separable bilinear filter draws
    such a frame at about 40% of warpAffine's cost, with its samples within _RESIZE_TOLERANCE
    of where warpAffine puts them (_resize_axis); other maps, and scales that no offset places
    that closely, are warped as before. Returns the drawn frame: `dst`, or with `copy=False` where
    cv2.resize drew it, a view of `src`'s scratch (valid until its next warp) for the caller to
    write into `dst` on the way (frames.FrameRenderer: the vignette).
    """
    h, w = dst.shape[:2]
    if abs(m[0, 1]) < 1e-12 and abs(m[1, 0]) < 1e-12 and abs(m[2, 0]) < 1e-12 and abs(m[2, 1]) < 1e-12:
        ax, ay = m[0, 0] / m[2, 2], m[1, 1] / m[2, 2]
        plane_h, plane_w = src.plane.shape[:2]
        across = _resize_axis(ax, m[0, 2] / m[2, 2], w, plane_w)
        down = _resize_axis(ay, m[1, 2] / m[2, 2], h, plane_h)
        # At exactly half size both ways cv2.resize averages areas instead (OpenCV's INTER_AREA shortcut).
        halving = abs(ax - 2.0) < 1e-9 and abs(ay - 2.0) < 1e-9
        if across is not None and down is not None and not halving:
            (x0, span_x, kx), (y0, span_y, ky) = across, down
            fx, fy = 1.0 / ax, 1.0 / ay
            rows, cols = round(span_y * fy), round(span_x * fx)  # the size cv2.resize makes
            # A range resized to its own size is copied, not resampled (OpenCV's shortcut).
            if (rows, cols) != (span_y, span_x):
                part = src.padded[y0 + PAD : y0 + PAD + span_y, x0 + PAD : x0 + PAD + span_x]
                out = cv2.resize(part, None, dst=src.scratch(rows, cols), fx=fx, fy=fy, interpolation=cv2.INTER_LINEAR)
                if out.shape[0] >= ky + h and out.shape[1] >= kx + w:  # as computed; else warped below
                    drawn = out[ky : ky + h, kx : kx + w]
                    if not copy:
                        return drawn
                    dst[...] = drawn
                    return dst
    return warp(src.plane, m, dst)


# Crops keep this many pixels around what is drawn (bilinear taps, and a zero rim for layers).
CROP_MARGIN = 8

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in luma pixels, end exclusive, x0 and y0 even


def even_box(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Box:
    """A pixel box widened by CROP_MARGIN to even corners (chroma stays aligned), clamped to a plane."""
    m = CROP_MARGIN
    bx0, by0 = max(0, math.floor(x0) - m) & ~1, max(0, math.floor(y0) - m) & ~1
    bx1, by1 = min(width, (math.ceil(x1) + m + 1) & ~1), min(height, (math.ceil(y1) + m + 1) & ~1)
    return bx0, by0, max(bx0, bx1), max(by0, by1)


def nonzero_box(*layers: np.ndarray) -> Box:
    """The even box around every nonzero pixel of same-sized layers (the whole plane if none)."""
    h, w = layers[0].shape[:2]
    rows, cols = np.zeros(h, bool), np.zeros(w, bool)
    for layer in layers:
        rows |= layer.any(axis=1)
        cols |= layer.any(axis=0)
    ys, xs = np.flatnonzero(rows), np.flatnonzero(cols)
    if not len(xs):
        return 0, 0, w, h
    return even_box(xs[0], ys[0], xs[-1] + 1, ys[-1] + 1, w, h)


def seen_box(maps: list[np.ndarray], out_w: int, out_h: int, width: int, height: int) -> Box:
    """The even box of a width x height plane that out->src maps (continuous) ever sample.

    The frame's corners bound what a map samples (a homography maps the frame to a quad);
    bilinear sampling reads the pixel below and the one after each position.
    """
    corners = np.array([[0.0, 0.0, 1.0], [out_w, 0.0, 1.0], [out_w, out_h, 1.0], [0.0, out_h, 1.0]])
    p = np.concatenate([corners @ m.T for m in maps])
    x, y = p[:, 0] / p[:, 2] - 0.5, p[:, 1] / p[:, 2] - 0.5
    return even_box(x.min(), y.min(), x.max() + 2, y.max() + 2, width, height)


def overlap(a: Box, b: Box) -> Box:
    """Where two boxes meet (an empty box at a's corner if they do not)."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    return x0, y0, max(x0, min(a[2], b[2])), max(y0, min(a[3], b[3]))


def crop(plane: np.ndarray, box: Box, *, chroma: bool = False) -> np.ndarray:
    """A box of a plane (of a chroma plane: the same box at half size) as its own array."""
    x0, y0, x1, y1 = box
    if chroma:
        x0, y0, x1, y1 = x0 // 2, y0 // 2, (x1 + 1) // 2, (y1 + 1) // 2
    return plane[y0:y1, x0:x1].copy()


def shift_maps(luma: np.ndarray, chroma: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-index maps (luma, chroma) into a crop at the box instead of into the whole plane."""
    x0, y0 = box[0], box[1]
    return _translate(-x0, -y0) @ luma, _translate(-(x0 // 2), -(y0 // 2)) @ chroma


def forward(hc: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map source pixel positions (continuous) to screen positions through an out->src map."""
    inv = np.linalg.inv(hc)
    p = np.hstack([pts, np.ones((len(pts), 1))]) @ inv.T
    return p[:, :2] / p[:, 2:3]


def card_homography(width: int, height: int, yaw: float, pitch: float) -> tuple[np.ndarray, float]:
    """Homography (flat view -> screen) of a card swung by yaw/pitch radians, and its cover zoom."""
    f = 1.6 * max(width, height)
    w2, h2 = width / 2.0, height / 2.0
    corners = np.array([[-w2, -h2], [w2, -h2], [w2, h2], [-w2, h2]], np.float64)
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    proj = []
    for x, y in corners:
        # Rotate about the vertical axis (yaw), then the horizontal one (pitch), then project.
        x1, z1 = x * cy, x * sy
        y1, z2 = y * cp, y * sp + z1
        d = f + z2
        proj.append([f * x1 / d, f * y1 / d])
    quad0 = np.array(proj)
    # The projected quad is smaller than the screen on its far side: scale it up until it covers.
    lo, hi = 1.0, 1.6
    for _ in range(30):
        k = (lo + hi) / 2
        quad = quad0 * k
        hmat = cv2.getPerspectiveTransform(
            (corners + [w2, h2]).astype(np.float32), (quad + [w2, h2]).astype(np.float32)
        )
        inv = np.linalg.inv(hmat)
        pts = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], np.float64)
        back = (inv @ pts.T).T
        back = back[:, :2] / back[:, 2:3]
        inside = np.all(back >= -1e-6) and np.all(back[:, 0] <= width + 1e-6) and np.all(back[:, 1] <= height + 1e-6)
        if inside:
            hi = k
        else:
            lo = k
    quad = quad0 * hi
    hmat = cv2.getPerspectiveTransform((corners + [w2, h2]).astype(np.float32), (quad + [w2, h2]).astype(np.float32))
    return hmat.astype(np.float64), hi


@dataclass(frozen=True)
class View:
    """The camera at one instant: zoom and centre (photo fractions), perspective, layer offsets."""

    zoom: float
    center: tuple[float, float]
    persp: np.ndarray | None
    bg_shift: tuple[float, float]
    bg_zoom: float
    fg_shift: tuple[float, float]
    lift: float  # 0..1 float progress (for the shadow)
    cover: float = 1.0  # how much a tilt's perspective enlarges the picture


class Camera:
    """Evaluates a plan's moves over a photo of src_w x src_h shown in an out_w x out_h frame."""

    def __init__(
        self,
        plan: Plan,
        out_w: int,
        out_h: int,
        src_w: int,
        src_h: int,
        *,
        layered: bool,
        product: tuple[float, float, float, float] | None = None,
        loop: bool = False,
    ) -> None:
        self.moves = plan.moves
        # The product's box (source fractions) that every frame keeps inside with a margin.
        self.product = product
        # A loop: every move goes there and back over the whole clip (docs/formats.md).
        self.loop = loop
        self.float = plan.effect(Float)
        self.duration = plan.duration
        self.W, self.H = out_w, out_h
        self.Ws, self.Hs = src_w, src_h
        self.layered = layered
        # Cover scale: output pixels per photo pixel at zoom 1.
        self.b = max(out_w / src_w, out_h / src_h)
        self.base_zoom = self._base_zoom()

    def _base_zoom(self) -> float:
        """Zoom that gives every move room to travel without showing an edge."""
        travel_x = travel_y = 0.0
        z = 1.0
        for m in self.moves:
            if isinstance(m, Pan):
                if m.direction in ("left", "right"):
                    travel_x += m.amount
                else:
                    travel_y += m.amount
            elif isinstance(m, Orbit) and not self.layered:
                travel_x += m.amount * _ORBIT_FLAT_TRAVEL
        z = max(
            z,
            1.0 / max(0.5, 1.0 - travel_x - _TRAVEL_SLACK),
            1.0 / max(0.5, 1.0 - travel_y - _TRAVEL_SLACK),
        )
        if self.float is not None and not self.layered:
            z = max(z, 1.0 / (1.0 - _FLOAT_HEADROOM * self.float.lift))
        return z

    def at(self, t: float) -> View:
        """Evaluate every move at time t into one view."""
        zoom = self.base_zoom
        cu, cv = 0.5, 0.5
        yaw = pitch = 0.0
        bg_shift = [0.0, 0.0]
        bg_zoom = 1.0
        fg_shift = [0.0, 0.0]
        for m in self.moves:
            e = self._progress(m, t)
            if isinstance(m, ZoomIn):
                zoom *= 1.0 + m.amount * e
                fx, fy = m.focus
                cu += (fx - 0.5) * e
                cv += (fy - 0.5) * e
            elif isinstance(m, ZoomOut):
                zoom *= 1.0 + m.amount * (1.0 - e)
                fx, fy = m.focus
                cu += (fx - 0.5) * (1.0 - e)
                cv += (fy - 0.5) * (1.0 - e)
            elif isinstance(m, Pan):
                off = m.amount * (e - 0.5)
                if m.direction == "left":
                    cu -= off
                elif m.direction == "right":
                    cu += off
                elif m.direction == "up":
                    cv -= off
                else:
                    cv += off
            elif isinstance(m, Tilt):
                ang = math.radians(m.degrees) * (e - 0.5)
                if m.axis == "pitch":
                    pitch += ang if m.direction == "up" else -ang
                else:
                    yaw += ang
            elif isinstance(m, Orbit):
                a = m.amount
                if self.layered:
                    # The camera circles the product: the far background sweeps past, the product
                    # (the pivot) barely moves, and a slight push-in sells the depth.
                    bg_shift[0] += a * (e - 0.5)
                    bg_zoom = max(bg_zoom, 1.0 / (1.0 - a - 0.01))
                    fg_shift[0] -= _ORBIT_FG_SHARE * a * (e - 0.5)
                    zoom *= 1.0 + _ORBIT_PUSH * a * e
                else:
                    cu += _ORBIT_FLAT_TRAVEL * a * (e - 0.5)
                    zoom *= 1.0 + _ORBIT_FLAT_PUSH * a * e
        lift = 0.0
        if self.float is not None:
            phase = 2.0 * math.pi * self.float.cycles * t / self.duration
            lift = 0.5 - 0.5 * math.cos(phase)
            dy = self.float.lift * lift
            if self.layered:
                fg_shift[1] += dy * self.H / (self.b * zoom) / self.Hs
            else:
                cv += dy * self.H / (self.b * zoom) / self.Hs
        persp = None
        cover = 1.0
        if yaw or pitch:
            # The homography carries its own cover scale, so the frame edges never show.
            persp, cover = card_homography(self.W, self.H, yaw, pitch)
        if self.product is not None:
            cu, cv = self._keep_product(cu, cv, zoom * cover)
        cu, cv = self.clamp_center(cu, cv, zoom)
        return View(zoom, (cu, cv), persp, (bg_shift[0], bg_shift[1]), bg_zoom, (fg_shift[0], fg_shift[1]), lift, cover)

    def _progress(self, m: Move, t: float) -> float:
        if self.loop:
            return 0.5 - 0.5 * math.cos(2.0 * math.pi * t / self.duration)
        return m.progress(t)

    def reach(self, fps: int, frames: int) -> float:
        """The largest zoom any frame uses (tilts' enlargement included), for framing."""
        return max(v.zoom * v.cover for v in (self.at(i / fps) for i in range(frames)))

    def _keep_product(self, cu: float, cv: float, zoom: float) -> tuple[float, float]:
        """Move the centre so the product's box stays inside the frame with the framing margin."""
        if self.product is None:
            return cu, cv
        s = self.b * zoom
        x0, y0, x1, y1 = self.product
        for axis, (lo, hi, half) in enumerate(
            ((x0, x1, self.W / (2 * s) / self.Ws), (y0, y1, self.H / (2 * s) / self.Hs))
        ):
            inner = half * (1.0 - 2.0 * PRODUCT_MARGIN)
            c = cu if axis == 0 else cv
            low, high = hi - inner, lo + inner
            c = min(max(c, low), high) if low <= high else (lo + hi) / 2
            if axis == 0:
                cu = c
            else:
                cv = c
        return cu, cv

    def clamp_center(self, cu: float, cv: float, zoom: float) -> tuple[float, float]:
        """Keep the view inside the picture (no edges ever show)."""
        s = self.b * zoom
        hx = self.W / (2 * s) / self.Ws
        hy = self.H / (2 * s) / self.Hs
        cu = min(max(cu, hx), 1.0 - hx) if hx < 0.5 else 0.5
        cv = min(max(cv, hy), 1.0 - hy) if hy < 0.5 else 0.5
        return cu, cv

    def matrix(self, zoom: float, center: tuple[float, float], persp: np.ndarray | None) -> np.ndarray:
        """Out->src map (continuous coordinates) for a view of the source."""
        s = self.b * zoom
        cx, cy = center[0] * self.Ws, center[1] * self.Hs
        a = np.array([[1.0 / s, 0.0, cx - self.W / (2 * s)], [0.0, 1.0 / s, cy - self.H / (2 * s)], [0.0, 0.0, 1.0]])
        if persp is not None:
            a = a @ np.linalg.inv(persp)
        return a
