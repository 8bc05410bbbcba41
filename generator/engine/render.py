"""Render a photo into a video: plan it (moves, effects, separation), draw the frames, encode them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .encode import CRF, FPS, PRESET, encode_frames
from .frames import FrameRenderer
from .plan import (
    Analysis,
    EncoderInfo,
    LightSweep,
    Orbit,
    Plan,
    SeparationReport,
    Zoom,
    build_plan,
    describe,
    saliency_focus,
)
from .segment import Separation, separate
from .sizing import output_size

# Plans with any of these need the product separated from its background.
_NEEDS_SEPARATION = {"orbit", "float", "light_sweep", "sparkles"}
_FALLBACK = "plain camera move: product separation not confident"


@dataclass(frozen=True)
class RenderOptions:
    """What the user asked for (the request's options, already validated)."""

    prompt: str | None = None
    auto: bool = False
    guidelines: str | None = None
    negative_prompt: str | None = None
    duration: int = 5
    guidance_scale: float = 0.5


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
    h.update(json.dumps(options.__dict__, sort_keys=True, default=str).encode())
    return int.from_bytes(h.digest()[:8], "big")


def analyse(image: np.ndarray, sep: Separation) -> Analysis:
    """Summarise the photo for planning."""
    h, w = image.shape[:2]
    if sep.confident and sep.mask is not None:
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


def _unanalysed(image: np.ndarray) -> Analysis:
    """What a prompt-driven plan knows without separating the product: where the detail is."""
    return Analysis(
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


def make_plan(image: np.ndarray, options: RenderOptions) -> tuple[Plan, Separation | None]:
    """Decide what to render (no pixels written): the plan and the separation it relies on."""
    if options.duration not in (5, 10):
        raise ValueError("duration must be 5 or 10")
    sep: Separation | None = None
    if options.auto:
        sep = separate(image)
        analysis = analyse(image, sep)
    else:
        analysis = _unanalysed(image)
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
    kinds = plan.move_types() | {e.type for e in plan.effects}
    if not options.auto and kinds & _NEEDS_SEPARATION:
        sep = separate(image)
    if sep is not None:
        plan = _with_separation(plan, image, sep, refocus=not options.auto)
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
) -> int:
    """Render an explicit plan to an MP4 (and poster); returns the poster frame index."""
    image = np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)
    renderer = FrameRenderer(image, plan, out_size[0], out_size[1], sep, seed)
    poster_index = poster_frame_index(plan)
    encode_frames(
        video_path,
        out_size[0],
        out_size[1],
        renderer.total,
        lambda: renderer.frames(poster_index, poster_path),
        progress=progress,
        preset=preset,
        crf=crf,
        threaded=threaded,
    )
    return poster_index


def poster_frame_index(plan: Plan) -> int:
    """A representative frame: mid light-sweep when there is one, else a little before the middle."""
    sweep = plan.effect(LightSweep)
    if sweep is not None:
        start, end = sweep.passes[0]
        return min(plan.frames - 1, int(((start + end) / 2) * plan.fps))
    return min(plan.frames - 1, int(plan.frames * 0.45))


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

    `image` is H x W x 3 uint8 RGB (a DecodedImage's pixels). The video size follows the output
    rule (docs: the photo's shape, long side min(2x, 1920)) from `source_size` (the original
    width, height) or, when omitted, from the image itself; decode_image's working-size reduction
    keeps both answers equal.
    """
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError("image must be H x W x 3 RGB")
    h, w = image.shape[:2]
    out_w, out_h = output_size(*(source_size or (w, h)))
    plan, sep = make_plan(image, options)
    seed = _seed(image, options)
    plan = plan.with_(seed=seed, encoder=EncoderInfo(preset=PRESET, crf=CRF))
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
        frames=plan.frames,
        fps=plan.fps,
        duration_s=plan.frames / plan.fps,
        plan=plan,
        generated_prompt=generated,
        poster_frame=poster_frame,
    )
