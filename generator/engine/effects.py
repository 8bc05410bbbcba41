"""Effects drawn over a rendered frame, each in its own small class: prepared once, applied per frame.

Every effect works on a `Canvas`: the Y, U, V planes of the frame being drawn plus scratch planes
and constant planes shared by all effects (allocated once per video, never per frame).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .camera import crop as crop_plane
from .camera import forward, nonzero_box, shift_maps, warp
from .plan import Fade, LightSweep, Sparkles, Vignette, ease

# Limited-range BT.709 levels: black and white luma, neutral chroma.
Y_BLACK, Y_WHITE, C_NEUTRAL = 16, 235, 128
# blend_rows works this many rows at a time.
BLEND_ROWS = 256


def blend_rows(planes: tuple[np.ndarray, ...], a: np.ndarray, level: np.ndarray, inv: np.ndarray) -> None:
    """plane x (1 - a) + level x a for each plane, in place (cv2.blendLinear), BLEND_ROWS rows at
    a time through the scratch `inv` (a frame-sized float weight would cost 4 bytes a pixel);
    `level` is a constant band of BLEND_ROWS rows."""
    for r0 in range(0, a.shape[0], BLEND_ROWS):
        rows = slice(r0, r0 + BLEND_ROWS)
        n = a[rows].shape[0]
        np.subtract(np.float32(1.0), a[rows], out=inv[:n])
        for plane in planes:
            cv2.blendLinear(plane[rows], level[:n], inv[:n], a[rows], dst=plane[rows])


class Canvas:
    """The planes of the frame being drawn, with scratch and constant planes of the same sizes."""

    Y: np.ndarray
    U: np.ndarray
    V: np.ndarray

    def __init__(self, buf: np.ndarray, width: int, height: int) -> None:
        self.W, self.H = width, height
        hw, hh = width // 2, height // 2
        self.point(buf)
        self.black = np.full((BLEND_ROWS, width), Y_BLACK, np.uint8)  # for blend_rows
        self.white = np.full((BLEND_ROWS, width), Y_WHITE, np.uint8)  # for blend_rows
        self.neutral = np.full((hh, hw), C_NEUTRAL, np.uint8)
        self.tmp_y = np.empty((height, width), np.uint8)
        self.tmp_u = np.empty((hh, hw), np.uint8)
        self.tmp_v = np.empty((hh, hw), np.uint8)
        self.a_full = np.empty((height, width), np.float32)
        self.a_half = np.empty((hh, hw), np.float32)
        # blend_rows' scratch and levels for full and chroma planes.
        self.inv_full = np.empty((BLEND_ROWS, width), np.float32)
        self.inv_half = np.empty((BLEND_ROWS, hw), np.float32)
        self.zero_full = np.zeros((BLEND_ROWS, width), np.uint8)
        self.zero_half = np.zeros((BLEND_ROWS, hw), np.uint8)

    def point(self, buf: np.ndarray) -> None:
        """Aim the Y, U, V planes at a packed yuv420p buffer."""
        n = self.W * self.H
        self.Y = buf[:n].reshape(self.H, self.W)
        self.U = buf[n : n + n // 4].reshape(self.H // 2, self.W // 2)
        self.V = buf[n + n // 4 : n + n // 2].reshape(self.H // 2, self.W // 2)


class VignetteFx:
    """Darker corners: a smooth weight map built once, applied as two saturating uint8 passes."""

    # The darkening starts this far from the centre (in half-diagonals) and is full this much later.
    INNER, SPAN = 0.35, 0.7
    # Chroma fades less than luma so dark corners stay neutral rather than grey-washed.
    CHROMA_SHARE = 0.6

    def __init__(self, effect: Vignette, width: int, height: int) -> None:
        hw, hh = width // 2, height // 2
        # Separable radius terms on small vectors; the smooth map is built once per video.
        gx = (((np.arange(hw, dtype=np.float32) + 0.5) / hw - 0.5) ** 2 * 2.0)[None, :]
        gy = (((np.arange(hh, dtype=np.float32) + 0.5) / hh - 0.5) ** 2 * 2.0)[:, None]
        ramp = np.clip((np.sqrt(gx + gy) - self.INNER) / self.SPAN, 0.0, 1.0)
        wh = (1.0 - effect.amount * ramp * ramp * (3 - 2 * ramp)).astype(np.float32)
        w = cv2.resize(wh, (width, height), interpolation=cv2.INTER_LINEAR)
        wh = 1.0 - (1.0 - wh) * self.CHROMA_SHARE
        # out = in * w + black * (1 - w), as two saturating uint8 passes (cheap per frame). The
        # weights round to bytes in one OpenCV pass each (the bytes of np.round(255 * w) and of
        # np.round(black * (1 - w)): scaling by 255 or 16 and adding are each rounded once alike).
        self.w8 = cv2.convertScaleAbs(w, alpha=255.0)
        self.off8 = cv2.convertScaleAbs(w, alpha=-float(Y_BLACK), beta=float(Y_BLACK))
        self.wh8 = cv2.convertScaleAbs(wh, alpha=255.0)
        self.offh8 = cv2.convertScaleAbs(wh, alpha=-float(C_NEUTRAL), beta=float(C_NEUTRAL))

    def apply(self, c: Canvas, drawn: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        """Darken the canvas's planes; or write `drawn` (the frame's Y, U, V drawn elsewhere) into
        them darkened, which saves copying them in first."""
        y, u, v = drawn if drawn is not None else (c.Y, c.U, c.V)
        cv2.multiply(y, self.w8, dst=c.Y, scale=1.0 / 255.0)
        cv2.add(c.Y, self.off8, dst=c.Y)
        for src, plane in ((u, c.U), (v, c.V)):
            cv2.multiply(src, self.wh8, dst=plane, scale=1.0 / 255.0)
            cv2.add(plane, self.offh8, dst=plane)


class LightSweepFx:
    """A crisp specular streak on a faint wide glow, crossing the product (or the frame) per pass."""

    STREAK_SIGMA, GLOW_SIGMA, GLOW_SHARE = 0.032, 0.11, 0.2
    # Passes start and finish this far (sweep-axis fraction) off the product, so the streak enters
    # and leaves it; without a product mask they run from just before to just after the frame.
    LEAD = 0.08
    FRAME_SPAN = (-0.2, 1.2)
    UNMASKED_SHARE = 0.55  # without a mask: a softer sheen over the whole frame
    MAX_ALPHA = 0.9
    CHROMA_SHARE = 0.5

    def __init__(self, effect: LightSweep, width: int, height: int) -> None:
        self.effect = effect
        hw, hh = width // 2, height // 2
        ang = math.radians(effect.angle_deg)
        yy, xx = np.mgrid[0:hh, 0:hw].astype(np.float32)
        # Position along the sweep direction, 0 at one corner and 1 at the opposite one.
        q = (xx / hw) * math.cos(ang) + (yy / hh) * math.sin(ang)
        q = (q - q.min()) / max(1e-6, float(q.max() - q.min()))
        self.q = q.astype(np.float32)
        self._spans: dict[int, tuple[float, float]] = {}

    def _span(self, k: int, alpha_half: np.ndarray | None) -> tuple[float, float]:
        """Where pass k starts and ends along the sweep axis, fixed at its first frame."""
        if k not in self._spans:
            lo, hi = self.FRAME_SPAN
            if alpha_half is not None:
                q = self.q[alpha_half > 0.5]
                if q.size:
                    lo, hi = float(q.min()) - self.LEAD, float(q.max()) + self.LEAD
            self._spans[k] = (lo, hi)
        return self._spans[k]

    def _band(self, t: float, alpha_half: np.ndarray | None) -> np.ndarray | None:
        """The half-resolution strength of the sweep at time t, or None between passes."""
        for k, (start, end) in enumerate(self.effect.passes):
            if start <= t <= end:
                lo, hi = self._span(k, alpha_half)
                p = lo + (hi - lo) * ease((t - start) / (end - start))
                d = self.q - np.float32(p)
                band = np.exp(-(d * d) / np.float32(2 * self.STREAK_SIGMA**2)) + self.GLOW_SHARE * np.exp(
                    -(d * d) / np.float32(2 * self.GLOW_SIGMA**2)
                )
                return band.astype(np.float32) * np.float32(self.effect.strength)
        return None

    def apply(self, c: Canvas, t: float, alpha_half: np.ndarray | None) -> None:
        a_half = self._band(t, alpha_half)
        if a_half is None:
            return
        if alpha_half is not None:
            a_half *= alpha_half
        else:
            a_half *= np.float32(self.UNMASKED_SHARE)
        np.clip(a_half, 0.0, self.MAX_ALPHA, out=a_half)
        cv2.resize(a_half, (c.W, c.H), dst=c.a_full, interpolation=cv2.INTER_LINEAR)
        blend_rows((c.Y,), c.a_full, c.white, c.inv_full)
        k = self.CHROMA_SHARE
        cv2.blendLinear(c.U, c.neutral, 1.0 - k * a_half, k * a_half, dst=c.U)
        cv2.blendLinear(c.V, c.neutral, 1.0 - k * a_half, k * a_half, dst=c.V)


class SparklesFx:
    """Seeded four-point glints, placed on the product when it is known, that twinkle and drift."""

    AROUND_SHARE, AROUND_SPREAD = 0.3, 0.08  # some glitter drifts around the product, not only on it
    ON_PRODUCT = 0.6  # mask level that counts as the product
    BRIGHTEST = 0.95
    CHROMA_SHARE = 0.7

    def __init__(
        self,
        effect: Sparkles,
        *,
        rng: np.random.Generator,
        alpha: np.ndarray | None,
        luma: np.ndarray,
        duration: float,
        out_size: tuple[int, int],
        loop: bool = False,
    ) -> None:
        """Choose where (on the product when known), when and how big each glint is.

        In a loop time wraps around: a glint alive across the end is also alive at the start.
        """
        self.period = float(duration) if loop else None
        n = int(effect.count)
        life = float(effect.life)
        self.W, self.H = out_size
        self.Hs, self.Ws = luma.shape[:2]
        if alpha is not None:
            ys, xs = np.nonzero(alpha > self.ON_PRODUCT)
            idx = rng.integers(0, len(xs), n) if len(xs) else np.zeros(n, int)
            pts = (
                np.stack([xs[idx] + rng.random(n), ys[idx] + rng.random(n)], axis=1)
                if len(xs)
                else rng.random((n, 2)) * [self.Ws, self.Hs]
            )
            around = rng.random(n) < self.AROUND_SHARE
            pts[around] += rng.normal(0, self.AROUND_SPREAD, (int(around.sum()), 2)) * [self.Ws, self.Hs]
        else:
            # Without a product: where the picture is bright (cubed brightness as the odds).
            gray = cv2.resize(luma, (64, max(1, round(64 * self.Hs / self.Ws))), interpolation=cv2.INTER_AREA).astype(
                np.float64
            )
            prob = (gray - gray.min() + 1.0) ** 3
            prob /= prob.sum()
            cells = rng.choice(prob.size, size=n, p=prob.ravel())
            gy, gx = np.divmod(cells, gray.shape[1])
            pts = np.stack(
                [(gx + rng.random(n)) / gray.shape[1] * self.Ws, (gy + rng.random(n)) / gray.shape[0] * self.Hs], axis=1
            )
        births = rng.random(n) * max(0.1, duration - life * 0.6) - life * 0.3
        self.pts = pts.astype(np.float64)
        self.birth = births
        self.life = life * (0.7 + 0.6 * rng.random(n))
        self.size = 0.6 + 0.8 * rng.random(n)
        self.drift = rng.normal(0, 1, (n, 2)) * [0.004, 0.004] + [0.0, -0.01]
        self.spin = rng.random(n) * math.pi
        self.base = max(7, int(round(0.045 * min(self.W, self.H))) | 1)

    @staticmethod
    def sprite(size: float, spin: float) -> np.ndarray:
        """A four-point star with a soft core, float32 0..1, odd square."""
        r = max(3, int(math.ceil(size)))
        n = 2 * r + 1
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
        c, s = math.cos(spin), math.sin(spin)
        u = xx * c + yy * s
        v = -xx * s + yy * c
        rad = np.sqrt(xx * xx + yy * yy) / max(1.0, size)
        core = np.exp(-(rad**2) * 18.0)
        rays = np.exp(-np.abs(v) * 2.2 / max(1.0, size / 8)) * np.clip(1 - np.abs(u) / size, 0, 1) ** 2
        rays += np.exp(-np.abs(u) * 2.2 / max(1.0, size / 8)) * np.clip(1 - np.abs(v) / size, 0, 1) ** 2
        spr = np.clip(core + 0.8 * rays, 0.0, 1.0).astype(np.float32)
        assert spr.shape == (n, n)
        return spr

    def apply(self, c: Canvas, t: float, hc: np.ndarray) -> None:
        """Paste the glints alive at time t, placed through the out->src map hc."""
        if self.period is None:
            self._apply_at(c, t, hc)
            return
        for wrapped in (t - self.period, t, t + self.period):
            self._apply_at(c, wrapped, hc)

    def _apply_at(self, c: Canvas, t: float, hc: np.ndarray) -> None:
        age = (t - self.birth) / self.life
        live = np.nonzero((age > 0) & (age < 1))[0]
        if not len(live):
            return
        pts = self.pts[live] + self.drift[live] * (t - self.birth[live])[:, None] * [self.Ws, self.Hs]
        scr = forward(hc, pts)
        for j, (x, y) in zip(live, scr, strict=True):
            self._paste(c, float(x), float(y), float(age[j]), int(j))

    def _paste(self, c: Canvas, x: float, y: float, a: float, j: int) -> None:
        inten = math.sin(math.pi * a) ** 2
        size = self.base * self.size[j] * (0.6 + 0.4 * inten)
        spr = self.sprite(size, self.spin[j] + 0.8 * a)
        r = spr.shape[0] // 2
        ix, iy = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - ix - 0.5, y - iy - 0.5
        # Sub-pixel placement: shift the sprite by the fractional part before pasting.
        shift = np.array([[1, 0, fx], [0, 1, fy]], np.float32)
        spr = cv2.warpAffine(spr, shift, (spr.shape[1], spr.shape[0]), flags=cv2.INTER_LINEAR)
        x0, y0, x1, y1 = ix - r, iy - r, ix + r + 1, iy + r + 1
        sx0, sy0 = max(0, -x0), max(0, -y0)
        x0c, y0c, x1c, y1c = max(0, x0), max(0, y0), min(self.W, x1), min(self.H, y1)
        if x1c <= x0c or y1c <= y0c:
            return
        a_patch = spr[sy0 : sy0 + (y1c - y0c), sx0 : sx0 + (x1c - x0c)] * (self.BRIGHTEST * inten)
        patch = c.Y[y0c:y1c, x0c:x1c].astype(np.float32)
        c.Y[y0c:y1c, x0c:x1c] = np.clip(patch + (float(Y_WHITE) - patch) * a_patch + 0.5, 0, 255).astype(np.uint8)
        hx0, hy0, hx1, hy1 = x0c // 2, y0c // 2, (x1c + 1) // 2, (y1c + 1) // 2
        ah = cv2.resize(a_patch, (hx1 - hx0, hy1 - hy0), interpolation=cv2.INTER_AREA)
        for plane in (c.U, c.V):
            pp = plane[hy0:hy1, hx0:hx1].astype(np.float32)
            plane[hy0:hy1, hx0:hx1] = np.clip(
                pp + (float(C_NEUTRAL) - pp) * ah * self.CHROMA_SHARE + 0.5, 0, 255
            ).astype(np.uint8)


class FloatShadowFx:
    """The soft contact shadow a floating product casts: it darkens as the product rises."""

    BLUR = 0.02  # of the photo's long side
    DROP = 0.012  # of the photo's height: the shadow sits a little below the product
    DARKEST = 0.35
    # Where the shadow is fainter than this it darkens no pixel by half a level (DARKEST x 239
    # levels x FLOOR < 0.5, rounded away), so a crop leaves it out without changing a frame.
    FLOOR = 0.004

    def __init__(self, mask: np.ndarray, *, crop: bool = False) -> None:
        hs, ws = mask.shape[:2]
        sigma = max(2.0, self.BLUR * max(ws, hs))
        drop = max(1, round(self.DROP * hs))
        # Cropped, it is made and kept around the product only, where it reaches FLOOR: the blur
        # reaches no further than its kernel (OpenCV's float kernel is 8 sigma + 1 wide), and
        # outside it is drawn as zeros (docs/formats.md, "Memory"). A crop that would wrap
        # round the bottom (np.roll) is made whole.
        reach = round(sigma * 4) + 1
        x0, y0, x1, y1 = nonzero_box(mask) if crop else (0, 0, ws, hs)
        near = (max(0, x0 - 2 * reach), max(0, y0 - 2 * reach), min(ws, x1 + 2 * reach), min(hs, y1 + 2 * reach))
        if not crop or near[3] + drop > hs:
            shadow = cv2.GaussianBlur(mask, (0, 0), sigma)
            shadow = np.roll(shadow, drop, axis=0)
            self.box = nonzero_box(shadow >= self.FLOOR) if crop else (0, 0, ws, hs)
            self.shadow = crop_plane(shadow, self.box)
            return
        blurred = cv2.GaussianBlur(crop_plane(mask, near), (0, 0), sigma)
        inner = nonzero_box(blurred >= self.FLOOR)
        self.box = (near[0] + inner[0], near[1] + inner[1] + drop, near[0] + inner[2], near[1] + inner[3] + drop)
        self.shadow = crop_plane(blurred, inner)

    def apply(self, c: Canvas, luma_map: np.ndarray, lift: float) -> None:
        """Darken the background under the product, placed through the background's luma map."""
        if lift <= 0.0:
            return
        warp(self.shadow, shift_maps(luma_map, luma_map, self.box)[0], c.a_full, border=cv2.BORDER_CONSTANT)
        np.multiply(c.a_full, np.float32(self.DARKEST * lift), out=c.a_full)
        blend_rows((c.Y,), c.a_full, c.black, c.inv_full)


class FadeFx:
    """Fade in from black and out to black, through lookup tables."""

    def __init__(self, effect: Fade, duration: float) -> None:
        self.effect = effect
        self.duration = duration

    def level(self, t: float) -> float:
        """Brightness at time t: 0 is black, 1 the picture as drawn."""
        lvl = 1.0
        if self.effect.fade_in:
            lvl = min(lvl, ease(t / self.effect.fade_in))
        if self.effect.fade_out:
            lvl = min(lvl, ease((self.duration - t) / self.effect.fade_out))
        return lvl

    def apply(self, c: Canvas, t: float) -> None:
        lvl = self.level(t)
        if lvl >= 1.0:
            return
        # Table lookups, not cv2.addWeighted: its SIMD path depends on buffer alignment and
        # rounds differently from run to run, which broke frame-identical output.
        v = np.arange(256, dtype=np.float64)
        lut_y = np.clip(np.round(Y_BLACK + (v - Y_BLACK) * lvl), 0, 255).astype(np.uint8)
        lut_c = np.clip(np.round(C_NEUTRAL + (v - C_NEUTRAL) * lvl), 0, 255).astype(np.uint8)
        cv2.LUT(c.Y, lut_y, dst=c.Y)
        cv2.LUT(c.U, lut_c, dst=c.U)
        cv2.LUT(c.V, lut_c, dst=c.V)
