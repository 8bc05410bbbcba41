"""Render a photo into a video: plan it (moves, effects, separation), draw the frames, encode them."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .camera import Camera
from .encode import CRF, FPS, PRESET, encode_frames
from .frames import FrameRenderer, wants_layers, wants_matte
from .framing import Format, frame_photo, product_box, separation_on_canvas
from .handover import Handed, taken
from .plan import (
    Analysis,
    Brief,
    EncoderInfo,
    Fade,
    LightSweep,
    Orbit,
    Plan,
    SeparationReport,
    Zoom,
    build_plan,
    describe,
    saliency_focus,
)
from .segment import Separation, cut_out, separate
from .sizing import SOURCE, output_size

# The C library: glibc's malloc_trim and Linux's prctl (_hand_back_freed_memory, _small_pages).
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None)
except (OSError, TypeError):
    _LIBC = None
_PR_SET_THP_DISABLE, _PR_GET_THP_DISABLE = 41, 42
# Plans with any of these need the product separated from its background.
_NEEDS_SEPARATION = {"orbit", "float", "light_sweep", "sparkles"}
_FALLBACK = "plain camera move: product separation not confident"
# Zooms and pans move the whole picture every frame; a loop without them (a tilt, an orbit, effects
# alone) barely changes between neighbouring frames, so its end must meet its start more closely
# (encode_frames' slow_loop; docs/formats.md, "Loops").
_BROAD_MOVES = {"zoom_in", "zoom_out", "pan"}


@dataclass(frozen=True)
class RenderOptions(Brief):
    """What the user asked for (the request's options, already validated): the plan's brief and the format."""

    # The format options (shape, resolution, loop, background); None: the request sent none.
    format: Format | None = None


class HandedPhoto(Handed[np.ndarray]):
    """A decoded photo handed over to `render_video`, which lets go of it once it has what it
    draws from (docs/formats.md, "Memory"): a caller that passes the pixels themselves keeps
    them alive, 33 MiB at 40 MP, for the whole encode."""


@dataclass(frozen=True)
class RenderResult:
    """Facts about the video that was written; `plan.to_json()` is what the service stores."""

    width: int
    height: int
    frames: int
    fps: int
    duration_s: float
    plan: Plan
    generated_prompt: str | None
    poster_frame: int = 0


def _seed(image: np.ndarray, options: RenderOptions) -> int:
    """Seed from the image and options so the same inputs give the same video."""
    h = hashlib.sha256()
    h.update(str(image.shape).encode())
    # Every 3rd row and column is plenty to tell images apart, at a ninth of the hashing cost.
    h.update(np.ascontiguousarray(image[::3, ::3]).data)
    fields = dict(options.__dict__)
    if fields["format"] is None:  # a request without format options is seeded as it always was
        del fields["format"]
    else:
        fields["format"] = fields["format"].__dict__
    h.update(json.dumps(fields, sort_keys=True, default=str).encode())
    return int.from_bytes(h.digest()[:8], "big")


# What an analysis takes over from the separation as it is.
_FROM_SEPARATION = ("confident", "reason", "plainness", "area", "centroid", "bbox")
# A prompt-driven plan that needs no separation knows nothing about the product.
_NOT_ANALYSED = Separation(False, "not analysed")


def _analysis(image: np.ndarray, sep: Separation, *, focus: tuple[float, float], brightness: float) -> Analysis:
    """The separation's facts plus where to aim, the photo's aspect and the product's brightness."""
    h, w = image.shape[:2]
    facts = {name: getattr(sep, name) for name in _FROM_SEPARATION}
    return Analysis(**facts, focus=focus, aspect=w / h, brightness=brightness)


def analyse(image: np.ndarray, sep: Separation) -> Analysis:
    """Summarise the photo for planning."""
    h, w = image.shape[:2]
    if sep.drawable:
        cx, cy = sep.centroid
        focus = (0.5 + 0.85 * (cx - 0.5), 0.5 + 0.85 * (cy - 0.5))
        small = cv2.resize(image, (128, max(1, round(128 * h / w))), interpolation=cv2.INTER_AREA)
        m = cv2.resize(sep.product_mask(), (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA) > 0.5
        lum = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)[m]
        brightness = float(np.percentile(lum, 90) / 255.0) if lum.size else 0.5
    else:
        focus = saliency_focus(image)
        brightness = float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean() / 255.0)
    return _analysis(image, sep, focus=(round(focus[0], 4), round(focus[1], 4)), brightness=brightness)


def _unanalysed(image: np.ndarray) -> Analysis:
    """What a prompt-driven plan knows without separating the product: where the detail is."""
    return _analysis(image, _NOT_ANALYSED, focus=saliency_focus(image), brightness=0.5)


def _with_separation(plan: Plan, image: np.ndarray, sep: Separation, *, refocus: bool) -> Plan:
    """Record the separation in the plan; aim zooms at the product, or say why orbits fall back."""
    moves = plan.moves
    if refocus and sep.confident:
        focus = analyse(image, sep).focus
        moves = tuple(replace(m, focus=(focus[0], focus[1])) if isinstance(m, Zoom) else m for m in moves)
    if not sep.confident:
        moves = tuple(replace(m, fallback=_FALLBACK) if isinstance(m, Orbit) else m for m in moves)
    report = SeparationReport(confident=sep.confident, reason=sep.reason, stats=dict(sep.stats))
    return plan.with_(moves=moves, separation=report)


def make_plan(
    image: np.ndarray, options: RenderOptions, *, frame_aspect: float | None = None
) -> tuple[Plan, Separation | None]:
    """Decide what to render (no pixels written): the plan and the separation it relies on.

    With format options the product is always separated (framing needs it) and moves are planned
    for the output frame (`frame_aspect`: a tall frame pans vertically); a loop has no fade.
    """
    if options.duration not in (5, 10):
        raise ValueError("duration must be 5 or 10")
    sep: Separation | None = None
    # A framed video makes the separation's layers once the canvas is known (_frame).
    layers = options.format is None
    if options.auto or options.format is not None:
        sep = separate(image, layers=layers)
    analysis = analyse(image, sep) if options.auto and sep is not None else _unanalysed(image)
    if frame_aspect is not None:
        analysis = replace(analysis, aspect=frame_aspect)
    plan = build_plan(options, analysis=analysis, fps=FPS)
    kinds = plan.move_types() | {e.type for e in plan.effects}
    if not options.auto and kinds & _NEEDS_SEPARATION:
        sep = separate(image, layers=layers)
    if sep is not None:
        plan = _with_separation(plan, image, sep, refocus=not options.auto)
    if options.format is not None and options.format.loop:
        plan = plan.with_(effects=tuple(e for e in plan.effects if not isinstance(e, Fade)))
    return plan, sep


def render_plan(
    image: np.ndarray,
    plan: Plan,
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
    product: tuple[float, float, float, float] | None = None,
    loop: bool = False,
) -> int:
    """Render an explicit plan to an MP4 (and poster); returns the poster frame index."""
    image = np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)
    renderer = FrameRenderer(image, plan, out_size[0], out_size[1], sep, seed, product=product, loop=loop)
    return _encode(
        renderer, video_path, poster_path, progress=progress, preset=preset, crf=crf, threaded=threaded, loop=loop
    )


def _encode(
    renderer: FrameRenderer,
    video_path: str,
    poster_path: str | None,
    *,
    progress: Callable[[int, int], None] | None,
    crf: int,
    loop: bool,
    preset: str = PRESET,
    threaded: bool = True,
) -> int:
    """Encode a renderer's frames (and write the poster); returns the poster frame index."""
    poster_index = poster_frame_index(renderer.plan)
    encode_frames(
        video_path,
        renderer.W,
        renderer.H,
        renderer.total,
        lambda: renderer.frames(poster_index, poster_path),
        progress=progress,
        preset=preset,
        crf=crf,
        threaded=threaded,
        loop=loop,
        slow_loop=loop and not renderer.plan.move_types() & _BROAD_MOVES,
    )
    return poster_index


def poster_frame_index(plan: Plan) -> int:
    """A representative frame: mid light-sweep when there is one, else a little before the middle."""
    sweep = plan.effect(LightSweep)
    if sweep is not None:
        start, end = sweep.passes[0]
        return min(plan.frames - 1, int(((start + end) / 2) * plan.fps))
    return min(plan.frames - 1, int(plan.frames * 0.45))


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """Make a video in ordinary 4 KiB pages, not transparent huge pages (docs/formats.md, "Memory").

    libx264 and NumPy ask for 2 MiB pages (madvise) for their large buffers; where the kernel grants
    them on request (transparent_hugepage "madvise", as on the machines this runs on) each is
    resident whole, and a 40 MP job peaked 11-25 MiB higher, as many as the kernel could give, and
    no faster. Linux's per-process switch (prctl PR_SET_THP_DISABLE), set for the render and put
    back after, like the render thread's OpenCV setting; elsewhere nothing.
    """
    prctl: Callable[..., int] | None = getattr(_LIBC, "prctl", None) if _LIBC is not None else None
    was = prctl(_PR_GET_THP_DISABLE, 0, 0, 0, 0) if prctl is not None else -1
    if prctl is None or was < 0 or (was == 0 and prctl(_PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0):
        yield
        return
    try:
        yield
    finally:
        prctl(_PR_SET_THP_DISABLE, was, 0, 0, 0)


@_small_pages()
def render_video(
    image: np.ndarray | HandedPhoto,
    options: RenderOptions,
    *,
    video_path: str,
    poster_path: str,
    progress: Callable[[int, int], None] | None = None,
    source_size: tuple[int, int] | None = None,
    preview_fps: int | None = None,
    crf: int = CRF,
) -> RenderResult:
    """Animate a still photo into an MP4 at video_path and a JPEG poster at poster_path.

    `image` is H x W x 3 uint8 RGB (a DecodedImage's pixels), or a `HandedPhoto` of them that
    the render may let go of before it encodes (the worker's way). The video size follows the output
    rule (docs: the photo's shape, long side min(2x, 1920)) from `source_size` (the original
    width, height) or, when omitted, from the image itself; decode_image's working-size reduction
    keeps both answers equal. With format options (`options.format`) the size follows the shape
    and resolution and the photo is framed for it (docs/formats.md). `preview_fps` draws the same
    clip with fewer frames (tests and contact sheets); `crf` 0 encodes losslessly (tests and benches).
    """
    image = taken(image)
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError("image must be H x W x 3 RGB")
    h, w = image.shape[:2]
    fmt = options.format
    if fmt is None:
        out_w, out_h = output_size(*(source_size or (w, h)))
        plan, sep = make_plan(image, options)
    else:
        src_w, src_h = source_size or (w, h)
        out_w, out_h = output_size(src_w, src_h, fmt.aspect_ratio, fmt.resolution)
        plan, sep = make_plan(image, options, frame_aspect=None if fmt.aspect_ratio == SOURCE else out_w / out_h)
    if preview_fps is not None:
        plan = plan.with_(fps=preview_fps, frames=plan.duration * preview_fps)
    seed = _seed(image, options)
    plan = plan.with_(seed=seed, encoder=EncoderInfo(preset=PRESET, crf=crf))
    generated = describe(plan) if options.auto else None
    product = None
    if fmt is not None:
        photo = Handed(image)
        del image  # _frame lets go of the photo once the canvas and the layers are made
        image, sep, product, plan = _frame(photo, plan, sep, fmt, (out_w, out_h))
        _hand_back_freed_memory()
    loop = fmt is not None and fmt.loop
    # The renderer keeps what it draws: it takes the canvas and the separation's layers as they
    # were placed on it and lets go of each once it has turned it into what it draws, and the
    # heap they leave is handed back before the encoder's own memory is added (docs/formats.md,
    # "Memory").
    canvas, layers = (
        Handed(np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)),
        Handed(sep) if sep is not None else None,
    )
    del image, sep
    renderer = FrameRenderer(
        canvas, plan, out_w, out_h, layers, seed, product=product, loop=loop, crop_layers=fmt is not None
    )
    _hand_back_freed_memory()
    poster_frame = _encode(renderer, video_path, poster_path, progress=progress, crf=crf, loop=loop)
    return RenderResult(
        width=out_w,
        height=out_h,
        frames=plan.frames,
        fps=plan.fps,
        duration_s=plan.frames / plan.fps,
        plan=plan,
        generated_prompt=generated,
        poster_frame=poster_frame,
    )


def _hand_back_freed_memory() -> None:
    """Return freed heap pages to the system (glibc's malloc_trim; elsewhere nothing).

    Arrays below glibc's mmap threshold come from the heap, and their pages stay resident after
    they are freed while anything lives above them; libx264 does not reuse them all
    (docs/formats.md, "Memory": about 60 MiB of a 40 MP orbit's peak).
    """
    with contextlib.suppress(AttributeError):
        if _LIBC is not None:
            _LIBC.malloc_trim(0)


def _frame(
    photo: np.ndarray | Handed[np.ndarray], plan: Plan, sep: Separation | None, fmt: Format, out_size: tuple[int, int]
) -> tuple[np.ndarray, Separation | None, tuple[float, float, float, float], Plan]:
    """Put the photo on the canvas the camera films (docs/formats.md, "Framing"); a photo handed
    over is let go of once the canvas and the layers are made from it."""
    image = taken(photo)
    h, w = image.shape[:2]
    box, origin = product_box(image, sep)
    layered = wants_layers(plan, sep)
    reach = Camera(plan, out_size[0], out_size[1], w, h, layered=layered, loop=fmt.loop).reach(plan.fps, plan.frames)
    framing = frame_photo(image, out_size, box, reach=reach, background=fmt.background)
    if sep is not None:
        # Only a confident separation is drawn (frames.FrameRenderer); a doubtful mask is not moved.
        # Its layers are made at the photo's size on the canvas, only when something draws them:
        # the plate, product colours and shadow for a layered render, the matte alone for a
        # sweep or sparkles, nothing for a plain camera move.
        if sep.confident and wants_matte(plan, sep):
            sized = image
            if (w, h) != framing.photo_size:
                sized = cv2.resize(image, framing.photo_size, interpolation=cv2.INTER_AREA)
            del image
            cut = Handed(cut_out(sep, sized, plate=layered))
            del sized
            sep = separation_on_canvas(cut, framing)
        else:
            sep = replace(sep, mask=None, background=None, foreground=None, shadow=None, pending=None)
    described = {
        "aspect_ratio": fmt.aspect_ratio,
        "resolution": fmt.resolution,
        "loop": fmt.loop,
        "background": fmt.background,
        "product_from": origin,
        **framing.to_json(),
    }
    return framing.canvas, sep, framing.product, plan.with_(format=described)
