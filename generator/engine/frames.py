"""Draw a plan frame by frame into packed yuv420p buffers: the photo (or its layers), then effects."""

from __future__ import annotations

from collections.abc import Iterator

import av
import cv2
import numpy as np
from PIL import Image

from .camera import (
    Camera,
    PaddedPlane,
    View,
    crop,
    index_matrices,
    nonzero_box,
    overlap,
    seen_box,
    shift_maps,
    warp,
    warp_padded,
)
from .color import i420_to_rgb, rgb_to_planes
from .effects import C_NEUTRAL, Y_BLACK, Canvas, FadeFx, FloatShadowFx, LightSweepFx, SparklesFx, VignetteFx, blend_rows
from .encode import IN_FLIGHT
from .handover import Handed, taken
from .plan import Fade, Float, LightSweep, Orbit, Plan, Sparkles, Vignette
from .segment import Separation, product_layers

# More buffers than frames can be in flight (encode.encode_frames), two to spare.
RING = IN_FLIGHT + 2
# Zeroed bytes on both sides of every frame buffer (see FrameRenderer.__init__).
_PAD = 4096
# The product layer's float work is done this many pixels at a time (memory, not speed).
_BAND_PIXELS = 1 << 18


def wants_layers(plan: Plan, sep: Separation | None) -> bool:
    """Product and background drawn as layers: an orbit or a float over a confident separation."""
    confident = sep is not None and sep.drawable
    return confident and (any(isinstance(m, Orbit) for m in plan.moves) or plan.effect(Float) is not None)


def wants_matte(plan: Plan, sep: Separation | None) -> bool:
    """The product's matte is drawn: as layers, or to keep a light sweep or sparkles on the product."""
    on_product = plan.effect(LightSweep) is not None or plan.effect(Sparkles) is not None
    return wants_layers(plan, sep) or (sep is not None and sep.drawable and on_product)


def _premultiplied(
    planes: tuple[np.ndarray, np.ndarray, np.ndarray],
    alpha: np.ndarray,
    alpha_half: np.ndarray,
    shadow: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The product layer as premultiplied Y, U, V planes and its alpha (full and chroma size).

    Premultiplied planes warp without a fringe: interpolating a colour and its alpha separately
    mixes an edge pixel's colour with its transparent neighbour's as if both were opaque. With a
    shadow (at full and chroma size) the layer is the product over it: black (Y 16, neutral
    chroma) at the shadow's strength.
    """
    y, u, v = planes
    a, ah = alpha, alpha_half
    if shadow is None:
        black_y = black_c = None
    else:
        full, half = shadow
        black_y = np.subtract(1.0, a)
        black_y *= full
        black_c = np.subtract(1.0, ah)
        black_c *= half
        a, ah = a + black_y, ah + black_c

    def pre(plane: np.ndarray, own: np.ndarray, black: np.ndarray | None, level: float) -> np.ndarray:
        # A band of rows at a time: a large canvas' float copies would cost 4 bytes a pixel each.
        result = np.empty(plane.shape, np.uint8)
        step = max(1, _BAND_PIXELS // max(1, plane.shape[1]))
        for r0 in range(0, plane.shape[0], step):
            rows = slice(r0, r0 + step)
            out = plane[rows] * own[rows]
            if black is not None:
                out += black[rows] * np.float32(level)
            out += 0.5
            result[rows] = np.clip(out, 0, 255)
        return result

    return (
        pre(y, alpha, black_y, Y_BLACK),
        pre(u, alpha_half, black_c, C_NEUTRAL),
        pre(v, alpha_half, black_c, C_NEUTRAL),
        np.ascontiguousarray(a, np.float32),
        np.ascontiguousarray(ah, np.float32),
    )


class FrameRenderer:
    """Everything precomputed for one render; `frames()` yields the frames for the encoder."""

    def __init__(
        self,
        rgb: np.ndarray | Handed[np.ndarray],
        plan: Plan,
        out_w: int,
        out_h: int,
        sep: Separation | Handed[Separation] | None,
        seed: int,
        *,
        product: tuple[float, float, float, float] | None = None,
        loop: bool = False,
        crop_layers: bool = False,
    ) -> None:
        """`crop_layers` keeps the layers cropped to what can show (a framed canvas: docs/formats.md,
        "Memory"); without it they span the whole picture, as an own-shape video always drew them.
        A canvas and a separation handed over are let go of as soon as they have been drawn from."""
        self.plan = plan
        self.W, self.H = out_w, out_h
        self.fps = plan.fps
        self.total = plan.frames
        rgb, sep = taken(rgb), taken(sep) if sep is not None else None
        y, u, v = rgb_to_planes(rgb)
        rgb_w, rgb_h = rgb.shape[1], rgb.shape[0]
        del rgb
        # Only a confident separation is used: a doubtful cut-out would tear the picture.
        mask = sep.mask if sep is not None and sep.confident else None
        has_plate = sep is not None and sep.confident and sep.background is not None
        self.layered = wants_layers(plan, sep)
        self.camera = Camera(plan, out_w, out_h, rgb_w, rgb_h, layered=self.layered, product=product, loop=loop)
        self.alpha_half = None
        self.shadow: FloatShadowFx | None = None
        if mask is not None:
            self.alpha_half = cv2.resize(mask, (u.shape[1], u.shape[0]), interpolation=cv2.INTER_AREA)
        if not self.layered:
            # In replicated borders, so zooms and pans draw through cv2.resize (camera.warp_padded).
            self.y, self.u, self.v = (PaddedPlane(p) for p in (y, u, v))
        else:
            if not has_plate or sep is None or mask is None or self.alpha_half is None:
                raise ValueError("a confident separation has a background plate")
            layers = Handed(sep)
            del sep
            self._layers(layers, mask, (y, u, v), crop_layers=crop_layers)
        size = out_w * out_h * 3 // 2
        # Frames are rendered straight into a ring of buffers with zeroed margins that the encoder
        # reads without a copy (libx264 copies a frame before stream.encode returns: a buffer
        # overwritten right after encode gives the same file). The margins are cheap insurance
        # in case libx264's SIMD input copy reads past a plane's end; the run-to-run differences
        # once blamed on them came from libx264's own lookahead (see encode.open_h264).
        self.ring = [np.zeros(_PAD + size + _PAD, np.uint8)[_PAD : _PAD + size] for _ in range(RING)]
        self.buf = self.ring[0]
        self.canvas = Canvas(self.buf, out_w, out_h)
        # The product's own alpha for a sweep over layers (their alpha includes the shadow).
        self.sweep_half = np.empty_like(self.canvas.a_half) if self.layered and plan.effect(LightSweep) else None
        self.sweep = self.vignette = self.fade = self.sparkles = None
        if (sw := plan.effect(LightSweep)) is not None:
            self.sweep = LightSweepFx(sw, out_w, out_h)
        if (sp := plan.effect(Sparkles)) is not None:
            self.sparkles = SparklesFx(
                sp,
                rng=np.random.default_rng(seed),
                alpha=mask,
                luma=y,
                duration=plan.duration,
                out_size=(out_w, out_h),
                loop=loop,
            )
        if (vg := plan.effect(Vignette)) is not None:
            self.vignette = VignetteFx(vg, out_w, out_h)
        if (fd := plan.effect(Fade)) is not None:
            self.fade = FadeFx(fd, plan.duration)

    def _layers(
        self,
        handed: Handed[Separation],
        mask: np.ndarray,
        photo: tuple[np.ndarray, np.ndarray, np.ndarray],
        *,
        crop_layers: bool,
    ) -> None:
        """The plate, the premultiplied product layer and the float's shadow. With `crop_layers`
        (docs/formats.md, "Memory") the plate is cropped to what any frame's background view
        samples, the product layer to its nonzero pixels that its views sample, the shadow to
        where it shows; the maps that draw them are translated by each crop's corner."""
        if self.alpha_half is None:
            raise ValueError("layers need the product's alpha")
        sep = handed.take()
        colours, shadow, plate = product_layers(sep, carry_shadow=self.plan.effect(Float) is None)
        del sep  # what is not drawn goes now: a float's own shadow layer and its unshaded plate
        h, w = mask.shape[:2]
        whole = (0, 0, w, h)
        self.fg_box = self.bg_box = whole
        if crop_layers:
            views = [self.layer_maps(self.camera.at(i / self.fps)) for i in range(self.total)]
            self.bg_box = seen_box([hb for hb, _ in views], self.W, self.H, w, h)
            drawn = nonzero_box(mask) if shadow is None else nonzero_box(mask, shadow)
            seen = overlap(drawn, seen_box([hf for _, hf in views], self.W, self.H, w, h))
            self.fg_box = seen if seen[2] > seen[0] and seen[3] > seen[1] else drawn
        shadows = None
        if shadow is not None:
            # At chroma size from the whole shadow: an odd-sized plane's area weights depend on it.
            half = cv2.resize(
                shadow, (self.alpha_half.shape[1], self.alpha_half.shape[0]), interpolation=cv2.INTER_AREA
            )
            shadows = (crop(shadow, self.fg_box), crop(half, self.fg_box, chroma=True))
        # The plate's planes first, then the product's: each picture goes once its planes are cropped.
        self.bg_y, self.bg_u, self.bg_v = (
            crop(p, self.bg_box, chroma=k > 0) for k, p in enumerate(rgb_to_planes(plate))
        )
        del plate
        planes = rgb_to_planes(colours) if colours is not None else photo
        del colours
        self.alpha_half = crop(self.alpha_half, self.fg_box, chroma=True)
        self.fg_y, self.fg_u, self.fg_v, self.layer_alpha, self.layer_half = _premultiplied(
            (
                crop(planes[0], self.fg_box),
                crop(planes[1], self.fg_box, chroma=True),
                crop(planes[2], self.fg_box, chroma=True),
            ),
            crop(mask, self.fg_box),
            self.alpha_half,
            shadows,
        )
        del planes
        if self.plan.effect(LightSweep) is None:
            self.alpha_half = None  # only a sweep draws the product's own alpha
        if self.plan.effect(Float) is not None:
            self.shadow = FloatShadowFx(mask, crop=crop_layers)

    def frame(self, i: int) -> np.ndarray:
        """Render frame i into a packed yuv420p buffer and return it (reused after RING frames)."""
        self.buf = self.ring[i % RING]
        self.canvas.point(self.buf)
        self._render(i / self.fps)
        return self.buf

    def video_frame(self, i: int) -> av.VideoFrame:
        """Render frame i and wrap its buffer as an encoder frame without copying."""
        buf = self.frame(i)
        return av.VideoFrame.from_numpy_buffer(buf.reshape(self.H * 3 // 2, self.W), format="yuv420p")

    def packed(self) -> np.ndarray:
        """A copy of the frame just rendered."""
        return self.buf.copy()

    def layer_maps(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        """The out->src maps of the background plate and of the product layer in a view."""
        cam = self.camera
        bz = view.zoom * view.bg_zoom
        bc = cam.clamp_center(view.center[0] + view.bg_shift[0], view.center[1] + view.bg_shift[1], bz)
        fc = (view.center[0] + view.fg_shift[0], view.center[1] + view.fg_shift[1])
        return cam.matrix(bz, bc, view.persp), cam.matrix(view.zoom, fc, view.persp)

    def _draw_layers(self, view: View) -> tuple[np.ndarray, np.ndarray | None]:
        """Background plate, float shadow, then the product over it; returns its map and alpha."""
        c, alpha, alpha_half = self.canvas, self.layer_alpha, self.layer_half
        if alpha is None or alpha_half is None:
            raise ValueError("layers need the product's alpha")
        hb, hf = self.layer_maps(view)
        lb, cb = index_matrices(hb)
        pl, pc = shift_maps(lb, cb, self.bg_box)
        warp(self.bg_y, pl, c.Y)
        warp(self.bg_u, pc, c.U)
        warp(self.bg_v, pc, c.V)
        if self.shadow is not None:
            self.shadow.apply(c, lb, view.lift)
        lf, cf = shift_maps(*index_matrices(hf), self.fg_box)
        warp(self.fg_y, lf, c.tmp_y)
        warp(self.fg_u, cf, c.tmp_u)
        warp(self.fg_v, cf, c.tmp_v)
        warp(alpha, lf, c.a_full, border=cv2.BORDER_CONSTANT)
        warp(alpha_half, cf, c.a_half, border=cv2.BORDER_CONSTANT)
        # Premultiplied: the layer's colours already carry their alpha, so out = layer + (1 - a) x plate
        # (the plate scaled towards zero by the blend, then the layer added, saturating).
        blend_rows((c.Y,), c.a_full, c.zero_full, c.inv_full)
        blend_rows((c.U, c.V), c.a_half, c.zero_half, c.inv_half)
        cv2.add(c.Y, c.tmp_y, dst=c.Y)
        cv2.add(c.U, c.tmp_u, dst=c.U)
        cv2.add(c.V, c.tmp_v, dst=c.V)
        if self.sweep is None:
            return hf, None
        if alpha_half is self.alpha_half:
            return hf, c.a_half
        if self.alpha_half is None or self.sweep_half is None:
            raise ValueError("a sweep over layers needs the product's alpha")
        # The layer's alpha includes the shadow: the sweep gets the product's own.
        warp(self.alpha_half, cf, self.sweep_half, border=cv2.BORDER_CONSTANT)
        return hf, self.sweep_half

    def _draw_photo(self, view: View, *, vignette: VignetteFx | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The photo through the camera; returns its map and, for a sweep, the product's alpha.

        With `vignette` the frame goes into the canvas through it: the planes cv2.resize draws
        are darkened on their way in instead of being copied in first (docs/formats.md, "Speed").
        """
        c = self.canvas
        hc = self.camera.matrix(view.zoom, view.center, view.persp)
        ly, cc = index_matrices(hc)
        copy = vignette is None
        drawn = (
            warp_padded(self.y, ly, c.Y, copy=copy),
            warp_padded(self.u, cc, c.U, copy=copy),
            warp_padded(self.v, cc, c.V, copy=copy),
        )
        if vignette is not None:
            vignette.apply(c, drawn)
        if self.alpha_half is not None and self.sweep is not None:
            warp(self.alpha_half, cc, c.a_half, border=cv2.BORDER_CONSTANT)
            return hc, c.a_half
        return hc, None

    def _render(self, t: float) -> None:
        view = self.camera.at(t)
        # The vignette is drawn with the photo when nothing comes between them.
        on_the_way = self.vignette if self.sweep is None and self.sparkles is None else None
        if self.layered:
            hc, alpha_half = self._draw_layers(view)
            on_the_way = None
        else:
            hc, alpha_half = self._draw_photo(view, vignette=on_the_way)
        c = self.canvas
        if self.sweep is not None:
            self.sweep.apply(c, t, alpha_half)
        if self.sparkles is not None:
            self.sparkles.apply(c, t, hc)
        if self.vignette is not None and on_the_way is None:
            self.vignette.apply(c)
        if self.fade is not None:
            self.fade.apply(c, t)

    def frames(self, poster_index: int, poster_path: str | None) -> Iterator[av.VideoFrame]:
        """Yield every frame for the encoder; write the poster as soon as its frame exists."""
        for i in range(self.total):
            item = self.video_frame(i)
            if i == poster_index and poster_path is not None:
                # Done here, on the render thread, so it overlaps the encoder instead of following it.
                rgb = i420_to_rgb(self.packed(), self.W, self.H)
                Image.fromarray(rgb).save(poster_path, format="JPEG", quality=88)
            yield item
