"""Render a plan into frames: sub-pixel camera moves, layered parallax and effects, in YUV."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import cv2
import numpy as np
from PIL import Image

from .color import i420_to_rgb, rgb_to_planes
from .encode import CRF, FPS, PRESET, encode_frames
from .plan import Analysis, build_plan, describe, saliency_focus
from .segment import Separation, separate
from .sizing import output_size

_NEEDS_SEPARATION = {"orbit", "float", "light_sweep", "sparkles"}
# More buffers than frames can be in flight (see encode.encode_frames: at most 7).
_RING = 8
_PAD = 4096
_WARP = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


@dataclass(frozen=True)
class RenderOptions:
    """What the user asked for (SPEC 2.1 options, already validated)."""

    prompt: str | None = None
    auto: bool = False
    guidelines: str | None = None
    negative_prompt: str | None = None
    duration: int = 5
    guidance_scale: float = 0.5


@dataclass(frozen=True)
class RenderResult:
    """Facts about the video that was written."""

    width: int
    height: int
    frames: int
    fps: int
    duration_s: float
    plan: dict
    generated_prompt: str | None
    poster_frame: int = 0


def _ease(u: float, kind: str = "smooth") -> float:
    """Map linear progress 0..1 to eased progress (zero velocity at both ends)."""
    u = min(1.0, max(0.0, u))
    if kind == "linear":
        return u
    return 0.5 - 0.5 * math.cos(math.pi * u)


def _progress(item: dict, t: float) -> float:
    """Eased progress of a timed plan item at time t."""
    start, end = float(item.get("start", 0.0)), float(item.get("end", 1.0))
    return _ease((t - start) / max(1e-6, end - start), item.get("easing", "smooth"))


def _translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _scale(k: float) -> np.ndarray:
    return np.array([[k, 0.0, 0.0], [0.0, k, 0.0], [0.0, 0.0, 1.0]])


_TO_IDX = _translate(-0.5, -0.5)
_FROM_IDX = _translate(0.5, 0.5)
_HALF = _scale(0.5)
_DOUBLE = _scale(2.0)


def _index_matrices(hc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn an out->src map in continuous coordinates into pixel-index maps for luma and chroma."""
    luma = _TO_IDX @ hc @ _FROM_IDX
    chroma = _TO_IDX @ (_HALF @ hc @ _DOUBLE) @ _FROM_IDX
    return luma, chroma


def _warp(src: np.ndarray, m: np.ndarray, dst: np.ndarray, *, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Sample src through an inverse map into dst (affine when possible: it is cheaper)."""
    size = (dst.shape[1], dst.shape[0])
    if abs(m[2, 0]) < 1e-12 and abs(m[2, 1]) < 1e-12:
        a = (m[:2] / m[2, 2]).astype(np.float64)
        return cv2.warpAffine(src, a, size, dst=dst, flags=_WARP, borderMode=border, borderValue=0)
    return cv2.warpPerspective(src, m, size, dst=dst, flags=_WARP, borderMode=border, borderValue=0)


def _card_homography(width: int, height: int, yaw: float, pitch: float) -> tuple[np.ndarray, float]:
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
    proj = np.array(proj)
    # The projected quad is smaller than the screen on its far side: scale it up until it covers.
    lo, hi = 1.0, 1.6
    for _ in range(30):
        k = (lo + hi) / 2
        quad = proj * k
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
    quad = proj * hi
    hmat = cv2.getPerspectiveTransform((corners + [w2, h2]).astype(np.float32), (quad + [w2, h2]).astype(np.float32))
    return hmat.astype(np.float64), hi


@dataclass
class _Camera:
    zoom: float
    center: tuple[float, float]
    persp: np.ndarray | None
    bg_shift: tuple[float, float]
    bg_zoom: float
    fg_shift: tuple[float, float]
    lift: float  # 0..1 float progress (for the shadow)


class Stage:
    """Everything precomputed for one render; `frames()` yields packed yuv420p buffers."""

    def __init__(self, rgb: np.ndarray, plan: dict, out_w: int, out_h: int, sep: Separation | None, seed: int) -> None:
        self.plan = plan
        self.W, self.H = out_w, out_h
        self.Hs, self.Ws = rgb.shape[:2]
        self.b = max(out_w / self.Ws, out_h / self.Hs)
        self.fps = plan["fps"]
        self.total = plan["frames"]
        self.duration = plan["duration"]
        self.y, self.u, self.v = rgb_to_planes(rgb)
        self.sep = sep
        self.rng = np.random.default_rng(seed)
        self.moves = plan["moves"]
        self.effects = {e["type"]: e for e in plan["effects"]}
        sep_ok = sep is not None and sep.confident
        self.layered = sep_ok and any(m["type"] == "orbit" for m in self.moves) or (sep_ok and "float" in self.effects)
        if self.layered:
            assert sep is not None
            assert sep.background is not None
            assert sep.mask is not None
            self.bg_y, self.bg_u, self.bg_v = rgb_to_planes(sep.background)
        if sep_ok and sep is not None and sep.mask is not None:
            self.alpha = sep.mask
            self.alpha_half = cv2.resize(sep.mask, (self.u.shape[1], self.u.shape[0]), interpolation=cv2.INTER_AREA)
            blur = max(2.0, 0.02 * max(self.Ws, self.Hs))
            shadow = cv2.GaussianBlur(sep.mask, (0, 0), blur)
            self.shadow = np.ascontiguousarray(np.roll(shadow, max(1, round(0.012 * self.Hs)), axis=0))
        else:
            self.alpha = None
        self.base_zoom = self._base_zoom()
        n = out_w * out_h
        self.size = n * 3 // 2
        # Frames are rendered straight into a ring of buffers with zeroed margins that the encoder
        # reads without a copy (libx264 copies a frame before stream.encode returns: a buffer
        # overwritten right after encode gives the same file). The margins are cheap insurance
        # in case libx264's SIMD input copy reads past a plane's end; the run-to-run differences
        # once blamed on them came from libx264's own lookahead (see encode.open_h264).
        self.ring = [np.zeros(_PAD + self.size + _PAD, np.uint8)[_PAD : _PAD + self.size] for _ in range(_RING)]
        self.buf = self.ring[0]
        self._point(self.buf)
        self._prepare_effects()

    # -- camera -----------------------------------------------------------------------------
    def _base_zoom(self) -> float:
        """Zoom that gives every move room to travel without showing an edge."""
        travel_x = travel_y = 0.0
        z = 1.0
        for m in self.moves:
            if m["type"] == "pan":
                if m["direction"] in ("left", "right"):
                    travel_x += m["amount"]
                else:
                    travel_y += m["amount"]
            elif m["type"] == "orbit" and not self.layered:
                travel_x += m["amount"] * 1.5
        z = max(z, 1.0 / max(0.5, 1.0 - travel_x - 0.004), 1.0 / max(0.5, 1.0 - travel_y - 0.004))
        fl = self.effects.get("float")
        if fl and not self.layered:
            z = max(z, 1.0 / (1.0 - 2.2 * fl["lift"]))
        return z

    def camera(self, t: float) -> _Camera:
        """Evaluate every move at time t into one camera state."""
        zoom = self.base_zoom
        cu, cv = 0.5, 0.5
        yaw = pitch = 0.0
        bg_shift = [0.0, 0.0]
        bg_zoom = 1.0
        fg_shift = [0.0, 0.0]
        for m in self.moves:
            e = _progress(m, t)
            kind = m["type"]
            if kind == "zoom_in":
                zoom *= 1.0 + m["amount"] * e
                fx, fy = m.get("focus", [0.5, 0.5])
                cu += (fx - 0.5) * e
                cv += (fy - 0.5) * e
            elif kind == "zoom_out":
                zoom *= 1.0 + m["amount"] * (1.0 - e)
                fx, fy = m.get("focus", [0.5, 0.5])
                cu += (fx - 0.5) * (1.0 - e)
                cv += (fy - 0.5) * (1.0 - e)
            elif kind == "pan":
                d = m["direction"]
                off = m["amount"] * (e - 0.5)
                if d == "left":
                    cu -= off
                elif d == "right":
                    cu += off
                elif d == "up":
                    cv -= off
                else:
                    cv += off
            elif kind == "tilt":
                ang = math.radians(m["degrees"]) * (e - 0.5)
                if m.get("axis") == "pitch":
                    pitch += ang if m.get("direction") == "up" else -ang
                else:
                    yaw += ang
            elif kind == "orbit":
                a = m["amount"]
                if self.layered:
                    # The camera circles the product: the far background sweeps past, the product
                    # (the pivot) barely moves, and a slight push-in sells the depth.
                    bg_shift[0] += a * (e - 0.5)
                    bg_zoom = max(bg_zoom, 1.0 / (1.0 - a - 0.01))
                    fg_shift[0] -= 0.12 * a * (e - 0.5)
                    zoom *= 1.0 + 0.35 * a * e
                else:
                    cu += 1.5 * a * (e - 0.5)
                    zoom *= 1.0 + 0.6 * a * e
        lift = 0.0
        fl = self.effects.get("float")
        if fl:
            phase = 2.0 * math.pi * fl["cycles"] * t / self.duration
            lift = 0.5 - 0.5 * math.cos(phase)
            dy = fl["lift"] * lift
            if self.layered:
                fg_shift[1] += dy * self.H / (self.b * zoom) / self.Hs
            else:
                cv += dy * self.H / (self.b * zoom) / self.Hs
        persp = None
        if yaw or pitch:
            # The homography carries its own cover scale, so the frame edges never show.
            persp, _ = _card_homography(self.W, self.H, yaw, pitch)
        cu, cv = self._clamp_center(cu, cv, zoom)
        return _Camera(zoom, (cu, cv), persp, (bg_shift[0], bg_shift[1]), bg_zoom, (fg_shift[0], fg_shift[1]), lift)

    def _clamp_center(self, cu: float, cv: float, zoom: float) -> tuple[float, float]:
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

    def forward(self, hc: np.ndarray, pts: np.ndarray) -> np.ndarray:
        """Map source pixel positions (continuous) to screen positions."""
        inv = np.linalg.inv(hc)
        p = np.hstack([pts, np.ones((len(pts), 1))]) @ inv.T
        return p[:, :2] / p[:, 2:3]

    # -- effects ----------------------------------------------------------------------------
    def _prepare_effects(self) -> None:
        W, H = self.W, self.H
        hw, hh = W // 2, H // 2
        self.c16 = np.full((H, W), 16, np.uint8)
        self.c235 = np.full((H, W), 235, np.uint8)
        self.c128 = np.full((hh, hw), 128, np.uint8)
        self.tmp_y = np.empty((H, W), np.uint8)
        self.tmp_u = np.empty((hh, hw), np.uint8)
        self.tmp_v = np.empty((hh, hw), np.uint8)
        self.a_full = np.empty((H, W), np.float32)
        self.a_half = np.empty((hh, hw), np.float32)
        vg = self.effects.get("vignette")
        if vg:
            # Separable radius terms on small vectors; the smooth map is built once per video.
            gx = (((np.arange(hw, dtype=np.float32) + 0.5) / hw - 0.5) ** 2 * 2.0)[None, :]
            gy = (((np.arange(hh, dtype=np.float32) + 0.5) / hh - 0.5) ** 2 * 2.0)[:, None]
            ramp = np.clip((np.sqrt(gx + gy) - 0.35) / 0.7, 0.0, 1.0)
            wh = (1.0 - vg["amount"] * ramp * ramp * (3 - 2 * ramp)).astype(np.float32)
            w = cv2.resize(wh, (W, H), interpolation=cv2.INTER_LINEAR)
            # Chroma fades less than luma so dark corners stay neutral rather than grey-washed.
            wh = 1.0 - (1.0 - wh) * 0.6
            # out = in * w + black * (1 - w), as two saturating uint8 passes (cheap per frame).
            self.vig_w8 = np.round(w * 255.0).astype(np.uint8)
            self.vig_off8 = np.round(16.0 * (1.0 - w)).astype(np.uint8)
            self.vig_wh8 = np.round(wh * 255.0).astype(np.uint8)
            self.vig_offh8 = np.round(128.0 * (1.0 - wh)).astype(np.uint8)
        sw = self.effects.get("light_sweep")
        if sw:
            ang = math.radians(sw.get("angle_deg", 28.0))
            yy, xx = np.mgrid[0:hh, 0:hw].astype(np.float32)
            # Position along the sweep direction, 0 at one corner and 1 at the opposite one.
            q = (xx / hw) * math.cos(ang) + (yy / hh) * math.sin(ang)
            q = (q - q.min()) / max(1e-6, float(q.max() - q.min()))
            self.sweep_q = q.astype(np.float32)
        sp = self.effects.get("sparkles")
        if sp:
            self._prepare_sparkles(sp)

    def _prepare_sparkles(self, sp: dict) -> None:
        """Seeded particles: where (on the product when known), when, how big."""
        n = int(sp["count"])
        life = float(sp.get("life", 1.3))
        rng = self.rng
        if self.alpha is not None:
            ys, xs = np.nonzero(self.alpha > 0.6)
            idx = rng.integers(0, len(xs), n) if len(xs) else np.zeros(n, int)
            pts = (
                np.stack([xs[idx] + rng.random(n), ys[idx] + rng.random(n)], axis=1)
                if len(xs)
                else rng.random((n, 2)) * [self.Ws, self.Hs]
            )
            # Some glitter drifts around the product too, not only on it.
            around = rng.random(n) < 0.3
            pts[around] += rng.normal(0, 0.08, (int(around.sum()), 2)) * [self.Ws, self.Hs]
        else:
            gray = cv2.resize(self.y, (64, max(1, round(64 * self.Hs / self.Ws))), interpolation=cv2.INTER_AREA).astype(
                np.float64
            )
            prob = (gray - gray.min() + 1.0) ** 3
            prob /= prob.sum()
            cells = rng.choice(prob.size, size=n, p=prob.ravel())
            gy, gx = np.divmod(cells, gray.shape[1])
            pts = np.stack(
                [(gx + rng.random(n)) / gray.shape[1] * self.Ws, (gy + rng.random(n)) / gray.shape[0] * self.Hs], axis=1
            )
        births = rng.random(n) * max(0.1, self.duration - life * 0.6) - life * 0.3
        self.sparks = {
            "pts": pts.astype(np.float64),
            "birth": births,
            "life": life * (0.7 + 0.6 * rng.random(n)),
            "size": 0.6 + 0.8 * rng.random(n),
            "drift": rng.normal(0, 1, (n, 2)) * [0.004, 0.004] + [0.0, -0.01],
            "spin": rng.random(n) * math.pi,
        }
        base = max(7, int(round(0.045 * min(self.W, self.H))) | 1)
        self.spark_base = base

    def _sprite(self, size: float, spin: float) -> np.ndarray:
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

    def _apply_sparkles(self, t: float, hc: np.ndarray) -> None:
        sp = self.sparks
        age = (t - sp["birth"]) / sp["life"]
        live = np.nonzero((age > 0) & (age < 1))[0]
        if not len(live):
            return
        pts = sp["pts"][live] + sp["drift"][live] * (t - sp["birth"][live])[:, None] * [self.Ws, self.Hs]
        scr = self.forward(hc, pts)
        Y = self.Y
        for j, (x, y) in zip(live, scr, strict=True):
            a = age[j]
            inten = math.sin(math.pi * a) ** 2
            size = self.spark_base * sp["size"][j] * (0.6 + 0.4 * inten)
            spr = self._sprite(size, sp["spin"][j] + 0.8 * a)
            r = spr.shape[0] // 2
            ix, iy = int(math.floor(x)), int(math.floor(y))
            fx, fy = x - ix - 0.5, y - iy - 0.5
            # Sub-pixel placement: shift the sprite by the fractional part before pasting.
            spr = cv2.warpAffine(spr, np.float32([[1, 0, fx], [0, 1, fy]]), spr.shape[::-1], flags=cv2.INTER_LINEAR)
            x0, y0, x1, y1 = ix - r, iy - r, ix + r + 1, iy + r + 1
            sx0, sy0 = max(0, -x0), max(0, -y0)
            x0c, y0c, x1c, y1c = max(0, x0), max(0, y0), min(self.W, x1), min(self.H, y1)
            if x1c <= x0c or y1c <= y0c:
                continue
            a_patch = spr[sy0 : sy0 + (y1c - y0c), sx0 : sx0 + (x1c - x0c)] * (0.95 * inten)
            patch = Y[y0c:y1c, x0c:x1c].astype(np.float32)
            Y[y0c:y1c, x0c:x1c] = np.clip(patch + (235.0 - patch) * a_patch + 0.5, 0, 255).astype(np.uint8)
            hx0, hy0, hx1, hy1 = x0c // 2, y0c // 2, (x1c + 1) // 2, (y1c + 1) // 2
            ah = cv2.resize(a_patch, (hx1 - hx0, hy1 - hy0), interpolation=cv2.INTER_AREA)
            for plane in (self.U, self.V):
                pp = plane[hy0:hy1, hx0:hx1].astype(np.float32)
                plane[hy0:hy1, hx0:hx1] = np.clip(pp + (128.0 - pp) * ah * 0.7 + 0.5, 0, 255).astype(np.uint8)

    def _sweep_span(self, k: int, alpha_half: np.ndarray | None) -> tuple[float, float]:
        """Where a pass starts and ends along the sweep axis: across the product when known."""
        spans = self.__dict__.setdefault("_spans", {})
        if k not in spans:
            lo, hi = -0.2, 1.2
            if alpha_half is not None:
                q = self.sweep_q[alpha_half > 0.5]
                if q.size:
                    # Start and finish just off the product so the streak enters and leaves it.
                    lo, hi = float(q.min()) - 0.08, float(q.max()) + 0.08
            spans[k] = (lo, hi)
        return spans[k]

    def _apply_sweep(self, t: float, alpha_half: np.ndarray | None) -> None:
        sw = self.effects["light_sweep"]
        a_half = None
        for k, (start, end) in enumerate(sw["passes"]):
            if start <= t <= end:
                lo, hi = self._sweep_span(k, alpha_half)
                u = _ease((t - start) / (end - start))
                p = lo + (hi - lo) * u
                d = self.sweep_q - np.float32(p)
                # A crisp specular streak riding on a faint wide glow.
                band = np.exp(-(d * d) / np.float32(2 * 0.032**2)) + 0.2 * np.exp(-(d * d) / np.float32(2 * 0.11**2))
                a_half = band.astype(np.float32) * np.float32(sw["strength"])
                break
        if a_half is None:
            return
        if alpha_half is not None:
            a_half *= alpha_half
        else:
            a_half *= np.float32(0.55)  # unmasked: a softer sheen over the whole frame
        np.clip(a_half, 0.0, 0.9, out=a_half)
        cv2.resize(a_half, (self.W, self.H), dst=self.a_full, interpolation=cv2.INTER_LINEAR)
        cv2.blendLinear(self.Y, self.c235, 1.0 - self.a_full, self.a_full, dst=self.Y)
        cv2.blendLinear(self.U, self.c128, 1.0 - 0.5 * a_half, 0.5 * a_half, dst=self.U)
        cv2.blendLinear(self.V, self.c128, 1.0 - 0.5 * a_half, 0.5 * a_half, dst=self.V)

    def _fade_level(self, t: float) -> float:
        fd = self.effects.get("fade")
        if not fd:
            return 1.0
        lvl = 1.0
        if fd.get("in"):
            lvl = min(lvl, _ease(t / fd["in"]))
        if fd.get("out"):
            lvl = min(lvl, _ease((self.duration - t) / fd["out"]))
        return lvl

    # -- frames -----------------------------------------------------------------------------
    def _point(self, buf: np.ndarray) -> None:
        """Aim the Y, U, V plane views at a packed yuv420p buffer."""
        n = self.W * self.H
        self.buf = buf
        self.Y = buf[:n].reshape(self.H, self.W)
        self.U = buf[n : n + n // 4].reshape(self.H // 2, self.W // 2)
        self.V = buf[n + n // 4 : n + n // 2].reshape(self.H // 2, self.W // 2)

    def frame(self, i: int) -> np.ndarray:
        """Render frame i into a packed yuv420p buffer and return it (reused after _RING frames)."""
        self._point(self.ring[i % _RING])
        self._render(i)
        return self.buf

    def video_frame(self, i: int) -> av.VideoFrame:
        """Render frame i and wrap its buffer as an encoder frame without copying."""
        buf = self.frame(i)
        return av.VideoFrame.from_numpy_buffer(buf.reshape(self.H * 3 // 2, self.W), format="yuv420p")

    def packed(self) -> np.ndarray:
        """A copy of the frame just rendered."""
        return self.buf.copy()

    def _render(self, i: int) -> None:
        t = i / self.fps
        cam = self.camera(t)
        hc = self.matrix(cam.zoom, cam.center, cam.persp)
        alpha_half = None
        if self.layered:
            bz = cam.zoom * cam.bg_zoom
            bc = self._clamp_center(cam.center[0] + cam.bg_shift[0], cam.center[1] + cam.bg_shift[1], bz)
            hb = self.matrix(bz, bc, cam.persp)
            lb, cb = _index_matrices(hb)
            _warp(self.bg_y, lb, self.Y)
            _warp(self.bg_u, cb, self.U)
            _warp(self.bg_v, cb, self.V)
            if cam.lift > 0.0:
                # A soft contact shadow grows as the product rises.
                _warp(self.shadow, lb, self.a_full, border=cv2.BORDER_CONSTANT)
                np.multiply(self.a_full, np.float32(0.35 * cam.lift), out=self.a_full)
                cv2.blendLinear(self.Y, self.c16, 1.0 - self.a_full, self.a_full, dst=self.Y)
            hf = self.matrix(cam.zoom, (cam.center[0] + cam.fg_shift[0], cam.center[1] + cam.fg_shift[1]), cam.persp)
            lf, cf = _index_matrices(hf)
            _warp(self.y, lf, self.tmp_y)
            _warp(self.u, cf, self.tmp_u)
            _warp(self.v, cf, self.tmp_v)
            _warp(self.alpha, lf, self.a_full, border=cv2.BORDER_CONSTANT)
            _warp(self.alpha_half, cf, self.a_half, border=cv2.BORDER_CONSTANT)
            cv2.blendLinear(self.tmp_y, self.Y, self.a_full, 1.0 - self.a_full, dst=self.Y)
            cv2.blendLinear(self.tmp_u, self.U, self.a_half, 1.0 - self.a_half, dst=self.U)
            cv2.blendLinear(self.tmp_v, self.V, self.a_half, 1.0 - self.a_half, dst=self.V)
            alpha_half = self.a_half
            hspark = hf
        else:
            ly, cc = _index_matrices(hc)
            _warp(self.y, ly, self.Y)
            _warp(self.u, cc, self.U)
            _warp(self.v, cc, self.V)
            hspark = hc
            if self.alpha is not None and "light_sweep" in self.effects:
                _warp(self.alpha_half, cc, self.a_half, border=cv2.BORDER_CONSTANT)
                alpha_half = self.a_half
        if "light_sweep" in self.effects:
            self._apply_sweep(t, alpha_half)
        if "sparkles" in self.effects:
            self._apply_sparkles(t, hspark)
        if "vignette" in self.effects:
            cv2.multiply(self.Y, self.vig_w8, dst=self.Y, scale=1.0 / 255.0)
            cv2.add(self.Y, self.vig_off8, dst=self.Y)
            for plane in (self.U, self.V):
                cv2.multiply(plane, self.vig_wh8, dst=plane, scale=1.0 / 255.0)
                cv2.add(plane, self.vig_offh8, dst=plane)
        lvl = self._fade_level(t)
        if lvl < 1.0:
            # Table lookups, not cv2.addWeighted: its SIMD path depends on buffer alignment and
            # rounds differently from run to run, which broke frame-identical output.
            v = np.arange(256, dtype=np.float64)
            lut_y = np.clip(np.round(16.0 + (v - 16.0) * lvl), 0, 255).astype(np.uint8)
            lut_c = np.clip(np.round(128.0 + (v - 128.0) * lvl), 0, 255).astype(np.uint8)
            cv2.LUT(self.Y, lut_y, dst=self.Y)
            cv2.LUT(self.U, lut_c, dst=self.U)
            cv2.LUT(self.V, lut_c, dst=self.V)

    def frames(self, poster_index: int, poster_path: str | None) -> Iterator[av.VideoFrame | np.ndarray]:
        """Yield every frame for the encoder; write the poster as soon as its frame exists."""
        for i in range(self.total):
            item = self.video_frame(i)
            if i == poster_index and poster_path is not None:
                # Done here, on the render thread, so it overlaps the encoder instead of following it.
                rgb = i420_to_rgb(self.packed(), self.W, self.H)
                Image.fromarray(rgb).save(poster_path, format="JPEG", quality=88)
            yield item


def _seed(image: np.ndarray, options: RenderOptions) -> int:
    """Seed from the image and options so the same inputs give the same video."""
    h = hashlib.sha256()
    h.update(str(image.shape).encode())
    # Every 3rd row and column is plenty to tell images apart, at a ninth of the hashing cost.
    h.update(np.ascontiguousarray(image[::3, ::3]).data)
    h.update(json.dumps(options.__dict__, sort_keys=True, default=str).encode())
    return int.from_bytes(h.digest()[:8], "big")


def analyse(image: np.ndarray, sep: Separation) -> Analysis:
    """Summarise the photo for planning."""
    h, w = image.shape[:2]
    if sep.confident:
        cx, cy = sep.centroid
        focus = (0.5 + 0.85 * (cx - 0.5), 0.5 + 0.85 * (cy - 0.5))
        small = cv2.resize(image, (128, max(1, round(128 * h / w))), interpolation=cv2.INTER_AREA)
        m = cv2.resize(sep.mask, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA) > 0.5
        lum = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)[m]
        brightness = float(np.percentile(lum, 90) / 255.0) if lum.size else 0.5
    else:
        focus = saliency_focus(image)
        brightness = float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean() / 255.0)
    return Analysis(
        confident=sep.confident,
        reason=sep.reason,
        plainness=sep.plainness,
        area=sep.area,
        centroid=sep.centroid,
        bbox=sep.bbox,
        focus=(round(focus[0], 4), round(focus[1], 4)),
        aspect=w / h,
        brightness=brightness,
    )


def make_plan(image: np.ndarray, options: RenderOptions) -> tuple[dict, Separation | None]:
    """Decide what to render (no pixels written): the plan and the separation it relies on."""
    if options.duration not in (5, 10):
        raise ValueError("duration must be 5 or 10")
    sep: Separation | None = None
    analysis: Analysis | None = None

    def needed(plan: dict) -> bool:
        kinds = {m["type"] for m in plan["moves"]} | {e["type"] for e in plan["effects"]}
        return bool(kinds & _NEEDS_SEPARATION)

    if options.auto:
        sep = separate(image)
        analysis = analyse(image, sep)
    else:
        analysis = Analysis(
            False,
            "not analysed",
            0.0,
            0.0,
            (0.5, 0.5),
            (0, 0, 1, 1),
            saliency_focus(image),
            image.shape[1] / image.shape[0],
            0.5,
        )
    plan = build_plan(
        prompt=options.prompt,
        auto=options.auto,
        guidelines=options.guidelines,
        negative_prompt=options.negative_prompt,
        duration=options.duration,
        guidance_scale=options.guidance_scale,
        analysis=analysis,
        fps=FPS,
    )
    if not options.auto and needed(plan):
        sep = separate(image)
        if sep.confident:
            analysis = analyse(image, sep)
            for m in plan["moves"]:
                if "focus" in m:
                    m["focus"] = [analysis.focus[0], analysis.focus[1]]
    if sep is not None:
        plan["separation"] = {"confident": sep.confident, "reason": sep.reason, **sep.stats}
        if not sep.confident:
            for m in plan["moves"]:
                if m["type"] == "orbit":
                    m["fallback"] = "plain camera move: product separation not confident"
    return plan, sep


def render_plan(
    image: np.ndarray,
    plan: dict,
    *,
    video_path: str,
    poster_path: str | None,
    out_size: tuple[int, int],
    sep: Separation | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    preset: str = PRESET,
    crf: int = CRF,
    threaded: bool = True,
) -> int:
    """Render an explicit plan to an MP4 (and poster); returns the poster frame index."""
    image = np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)
    stage = Stage(image, plan, out_size[0], out_size[1], sep, seed)
    poster_index = _poster_index(plan)
    encode_frames(
        video_path,
        out_size[0],
        out_size[1],
        stage.total,
        lambda: stage.frames(poster_index, poster_path),
        progress=progress,
        preset=preset,
        crf=crf,
        threaded=threaded,
    )
    return poster_index


def _poster_index(plan: dict) -> int:
    """A representative frame: mid light-sweep when there is one, else a little before the middle."""
    fps, total = plan["fps"], plan["frames"]
    for e in plan["effects"]:
        if e["type"] == "light_sweep":
            start, end = e["passes"][0]
            return min(total - 1, int(((start + end) / 2) * fps))
    return min(total - 1, int(total * 0.45))


def render_video(
    image: np.ndarray,
    options: RenderOptions,
    *,
    video_path: str,
    poster_path: str,
    progress: Callable[[int, int], None] | None = None,
    source_size: tuple[int, int] | None = None,
) -> RenderResult:
    """Animate a still photo into an MP4 at video_path and a JPEG poster at poster_path.

    `image` is H x W x 3 uint8 RGB (a DecodedImage's pixels). The video size follows SPEC 3
    from `source_size` (the original width, height) or, when omitted, from the image itself;
    decode_image's working-size reduction keeps both answers equal.
    """
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError("image must be H x W x 3 RGB")
    h, w = image.shape[:2]
    out_w, out_h = output_size(*(source_size or (w, h)))
    plan, sep = make_plan(image, options)
    seed = _seed(image, options)
    plan["seed"] = seed
    plan["encoder"] = {"codec": "libx264", "profile": "high", "preset": PRESET, "crf": CRF, "pix_fmt": "yuv420p"}
    generated = describe(plan) if options.auto else None
    poster_frame = render_plan(
        image,
        plan,
        video_path=video_path,
        poster_path=poster_path,
        out_size=(out_w, out_h),
        sep=sep,
        seed=seed,
        progress=progress,
    )
    return RenderResult(
        width=out_w,
        height=out_h,
        frames=plan["frames"],
        fps=plan["fps"],
        duration_s=plan["frames"] / plan["fps"],
        plan=plan,
        generated_prompt=generated,
        poster_frame=poster_frame,
    )
