"""Prompt wishes and image analysis -> a typed plan of camera moves and effects over time.

The plan is what the renderer follows and, as `Plan.to_json()`, what is stored on the generation
and shown on the job page: `moves` and `effects` are lists of objects with a `type`, plus the
timing and strength of each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, TypeVar, cast

import cv2
import numpy as np

from .words import EFFECTS, MOVES, parse_text

PLAN_VERSION = 1
Easing = Literal["smooth", "linear"]
E = TypeVar("E", bound="Effect")
PanDirection = Literal["left", "right", "up", "down"]


def ease(u: float, kind: str = "smooth") -> float:
    """Map linear progress 0..1 to eased progress (zero velocity at both ends)."""
    u = min(1.0, max(0.0, u))
    if kind == "linear":
        return u
    return 0.5 - 0.5 * math.cos(math.pi * u)


# -- moves -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Move:
    """A camera move over [start, end] seconds."""

    start: float
    end: float
    easing: Easing = "smooth"
    type: ClassVar[str]

    def progress(self, t: float) -> float:
        """Eased progress of the move at time t (0 before it starts, 1 after it ends)."""
        return ease((t - self.start) / max(1e-6, self.end - self.start), self.easing)

    def _fields_json(self) -> dict[str, Any]:
        return {}

    def to_json(self) -> dict[str, Any]:
        """The stored form: {"type", "start", "end", "easing", ...the move's own fields}."""
        return {"type": self.type, "start": self.start, "end": self.end, "easing": self.easing, **self._fields_json()}


@dataclass(frozen=True, kw_only=True)
class Zoom(Move):
    """A zoom by `amount` whose close end looks at `focus` (normalised x, y in the photo)."""

    amount: float
    focus: tuple[float, float] = (0.5, 0.5)

    def _fields_json(self) -> dict[str, Any]:
        return {"amount": self.amount, "focus": [self.focus[0], self.focus[1]]}


@dataclass(frozen=True, kw_only=True)
class ZoomIn(Zoom):
    """The camera moves toward the focus."""

    type: ClassVar[str] = "zoom_in"


@dataclass(frozen=True, kw_only=True)
class ZoomOut(Zoom):
    """The camera starts close on the focus and pulls back."""

    type: ClassVar[str] = "zoom_out"


@dataclass(frozen=True, kw_only=True)
class Pan(Move):
    """The camera travels `amount` (a fraction of the photo) toward `direction`."""

    direction: PanDirection
    amount: float
    type: ClassVar[str] = "pan"

    def _fields_json(self) -> dict[str, Any]:
        return {"direction": self.direction, "amount": self.amount}


@dataclass(frozen=True, kw_only=True)
class Tilt(Move):
    """A perspective swing of the picture by `degrees` about one axis."""

    axis: Literal["yaw", "pitch"]
    direction: Literal["up", "down", "right"]
    degrees: float
    type: ClassVar[str] = "tilt"

    def _fields_json(self) -> dict[str, Any]:
        return {"axis": self.axis, "direction": self.direction, "degrees": self.degrees}


@dataclass(frozen=True, kw_only=True)
class Orbit(Move):
    """Parallax around the product; `fallback` says why it became a plain camera move."""

    amount: float
    fallback: str | None = None
    type: ClassVar[str] = "orbit"

    def _fields_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"amount": self.amount}
        if self.fallback is not None:
            out["fallback"] = self.fallback
        return out


# -- effects -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Effect:
    """An effect laid over the moving picture."""

    type: ClassVar[str]

    def _fields_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The stored form: {"type", ...the effect's own fields}."""
        return {"type": self.type, **self._fields_json()}


@dataclass(frozen=True, kw_only=True)
class LightSweep(Effect):
    """Bright bands crossing the product, one per (start, end) pass, at `angle_deg`."""

    passes: tuple[tuple[float, float], ...]
    strength: float
    angle_deg: float = 28.0
    type: ClassVar[str] = "light_sweep"

    def _fields_json(self) -> dict[str, Any]:
        return {"passes": [list(p) for p in self.passes], "strength": self.strength, "angle_deg": self.angle_deg}


@dataclass(frozen=True, kw_only=True)
class Float(Effect):
    """The product rises by `lift` (a fraction of the frame height) and settles, `cycles` times."""

    cycles: int
    lift: float
    type: ClassVar[str] = "float"

    def _fields_json(self) -> dict[str, Any]:
        return {"cycles": self.cycles, "lift": self.lift}


@dataclass(frozen=True, kw_only=True)
class Sparkles(Effect):
    """`count` seeded glints, each living about `life` seconds."""

    count: int
    life: float = 1.3
    type: ClassVar[str] = "sparkles"

    def _fields_json(self) -> dict[str, Any]:
        return {"count": self.count, "life": self.life}


@dataclass(frozen=True, kw_only=True)
class Vignette(Effect):
    """Darker corners by `amount`."""

    amount: float
    type: ClassVar[str] = "vignette"

    def _fields_json(self) -> dict[str, Any]:
        return {"amount": self.amount}


@dataclass(frozen=True, kw_only=True)
class Fade(Effect):
    """Fade in from black over `fade_in` seconds and out over `fade_out` (0: none)."""

    fade_in: float
    fade_out: float
    type: ClassVar[str] = "fade"

    def _fields_json(self) -> dict[str, Any]:
        return {"in": self.fade_in, "out": self.fade_out}


# -- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SeparationReport:
    """How the product separation went, as reported in the plan."""

    confident: bool
    reason: str
    stats: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"confident": self.confident, "reason": self.reason, **self.stats}


@dataclass(frozen=True, kw_only=True)
class EncoderInfo:
    """The encoder settings a video was made with."""

    preset: str
    crf: int
    codec: str = "libx264"
    profile: str = "high"
    pix_fmt: str = "yuv420p"

    def to_json(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "profile": self.profile,
            "preset": self.preset,
            "crf": self.crf,
            "pix_fmt": self.pix_fmt,
        }


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What the renderer draws: timed moves and effects, and the facts that led to them."""

    duration: int
    fps: int
    frames: int
    moves: tuple[Move, ...] = ()
    effects: tuple[Effect, ...] = ()
    source: str = "prompt"
    guidance: float = 0.5
    strength: float = 1.0
    suppressed: tuple[str, ...] = ()
    requested: tuple[str, ...] = ()
    separation: SeparationReport | None = None
    seed: int | None = None
    encoder: EncoderInfo | None = None
    # The format the video was framed for (docs/formats.md); None for a request without one.
    format: dict[str, Any] | None = None
    version: int = PLAN_VERSION

    def effect(self, kind: type[E]) -> E | None:
        """The plan's effect of that class, if any (a plan has at most one of each)."""
        for e in self.effects:
            if isinstance(e, kind):
                return e
        return None

    def move_types(self) -> set[str]:
        return {m.type for m in self.moves}

    def to_json(self) -> dict[str, Any]:
        """The JSON stored on the generation (what the job page and the API's readers see)."""
        out: dict[str, Any] = {
            "version": self.version,
            "source": self.source,
            "duration": self.duration,
            "fps": self.fps,
            "frames": self.frames,
            "guidance": self.guidance,
            "strength": self.strength,
            "moves": [m.to_json() for m in self.moves],
            "effects": [e.to_json() for e in self.effects],
            "suppressed": list(self.suppressed),
            "requested": list(self.requested),
        }
        if self.separation is not None:
            out["separation"] = self.separation.to_json()
        if self.seed is not None:
            out["seed"] = self.seed
        if self.encoder is not None:
            out["encoder"] = self.encoder.to_json()
        if self.format is not None:
            out["format"] = self.format
        return out

    def with_(self, **changes: Any) -> Plan:
        """A copy with some fields changed (plans are immutable)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Analysis:
    """What the engine sees in the photo, used by auto plans and move focus."""

    confident: bool
    reason: str
    plainness: float
    area: float
    centroid: tuple[float, float]
    bbox: tuple[float, float, float, float]
    focus: tuple[float, float]
    aspect: float
    brightness: float


def saliency_focus(rgb: np.ndarray) -> tuple[float, float]:
    """Centre of detail (gradient energy with a centre prior): where a zoom should head."""
    small = cv2.resize(rgb, (96, max(1, round(96 * rgb.shape[0] / rgb.shape[1]))), interpolation=cv2.INTER_AREA)
    g = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    e = np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1))
    e = cv2.GaussianBlur(e, (0, 0), 4)
    h, w = e.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    prior = np.exp(-(((xx / w - 0.5) ** 2) + ((yy / h - 0.5) ** 2)) / 0.08)
    e = e * prior
    total = float(e.sum()) or 1.0
    fx, fy = float((e * xx).sum() / total + 0.5) / w, float((e * yy).sum() / total + 0.5) / h
    # Stay near the middle: a zoom that heads for a corner feels like a mistake.
    return 0.5 + 0.6 * (fx - 0.5), 0.5 + 0.6 * (fy - 0.5)


def _clamp(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


@dataclass(frozen=True)
class Brief:
    """What the user asked the plan for (validated): a prompt or auto guidelines, negatives, length."""

    prompt: str | None = None
    auto: bool = False
    guidelines: str | None = None
    negative_prompt: str | None = None
    duration: int = 5
    guidance_scale: float = 0.5


def build_plan(brief: Brief, *, analysis: Analysis | None, fps: int = 30) -> Plan:
    """Combine prompt wishes, negatives, guidance and image analysis into a timed plan."""
    auto, duration = brief.auto, brief.duration
    g = _clamp(float(brief.guidance_scale), 0.0, 1.0)
    negative = parse_text(brief.negative_prompt, negative=True)
    if auto:
        wishes = parse_text(brief.guidelines)
        source = "auto"
    else:
        wishes = parse_text(brief.prompt)
        source = "prompt"
    suppressed = set(negative.suppressed) | set(wishes.suppressed)
    # Guidance weighs the prompt against the defaults and sets how strong the motion is.
    strength = (0.55 + 0.9 * g) * wishes.intensity
    use_prompt = g >= 0.1 or auto
    long10 = duration >= 10
    a = analysis

    wanted_moves = [m for m in wishes.wanted if m in MOVES or m in ("tilt_up", "tilt_down")] if use_prompt else []
    wanted_effects = [e for e in wishes.wanted if e in EFFECTS] if use_prompt else []
    if wishes.static and use_prompt:
        suppressed |= set(MOVES) | {"tilt_up", "tilt_down"}

    default_moves: list[str]
    default_effects: list[str]
    if auto and a is not None:
        default_moves, default_effects = _auto_choice(a, long10)
    else:
        default_moves = ["zoom_in"] + (["pan_right"] if long10 else [])
        default_effects = ["vignette", "fade"]

    moves = wanted_moves[:2] if wanted_moves else list(default_moves)
    if auto and wanted_moves:
        moves = wanted_moves[:2]
    if wanted_moves and long10 and len(moves) == 1 and g < 0.8:
        # A single asked-for move gets a designed second act in 10 s, unless the user insists.
        moves.append(_companion(moves[0], a))
    moves = [m for m in moves if m not in suppressed]
    if (
        not moves
        and not wishes.static
        and not (suppressed & {"zoom_in"})
        and not wanted_moves
        and not (suppressed >= set(MOVES))
    ):
        moves = [m for m in default_moves if m not in suppressed]

    effects: list[str] = list(wanted_effects)
    keep_defaults = g < 0.7 or not (wanted_moves or wanted_effects)
    if keep_defaults:
        for e in default_effects:
            if e not in effects:
                effects.append(e)
    effects = [e for e in effects if e not in suppressed]

    return Plan(
        source=source,
        duration=duration,
        fps=fps,
        frames=duration * fps,
        guidance=round(g, 3),
        strength=round(strength, 3),
        moves=_time_moves(moves, duration, strength, a),
        effects=_time_effects(effects, duration, strength),
        suppressed=tuple(sorted(suppressed)),
        requested=tuple(wishes.wanted),
    )


def _companion(move: str, a: Analysis | None) -> str:
    """Pick a second move that complements the first for a 10 s video."""
    landscape = a is None or a.aspect >= 1.0
    if move in ("zoom_in", "zoom_out", "tilt", "tilt_up", "tilt_down", "orbit"):
        return "pan_right" if landscape else "pan_up"
    return "zoom_in"


def _auto_choice(a: Analysis, long10: bool) -> tuple[list[str], list[str]]:
    """Choose moves and effects from subject size, position and background plainness."""
    effects = ["vignette", "fade"]
    if a.confident:
        effects = ["light_sweep", *effects]
        if a.area < 0.18:
            moves = ["zoom_in", "orbit"] if long10 else ["zoom_in"]
            effects.insert(1, "float")
        elif a.area > 0.5:
            moves = ["zoom_out", "orbit"] if long10 else ["zoom_out"]
        else:
            moves = ["orbit", "zoom_in"] if long10 else ["orbit"]
        if a.brightness > 0.55 and long10:
            effects.insert(1, "sparkles")
    else:
        side = "pan_right" if a.aspect >= 1.0 else "pan_up"
        moves = ["zoom_in", side] if long10 else ["zoom_in", side] if a.plainness < 0.3 else ["zoom_in"]
    return moves, effects


def _time_moves(moves: list[str], duration: int, strength: float, a: Analysis | None) -> tuple[Move, ...]:
    """Lay moves out in time: together in 5 s, as two overlapping acts in 10 s."""
    focus = a.focus if a is not None else (0.5, 0.5)
    long10 = duration >= 10
    out: list[Move] = []
    scale = 1.35 if long10 else 1.0
    for i, m in enumerate(moves):
        if long10 and len(moves) > 1:
            start, end = (0.0, 6.2) if i == 0 else (4.4, 10.0)
            span_scale = 1.0
        else:
            start, end = 0.0, float(duration)
            span_scale = scale
        if m in ("zoom_in", "zoom_out"):
            zoom = ZoomIn if m == "zoom_in" else ZoomOut
            out.append(
                zoom(
                    amount=round(_clamp(0.13 * strength * span_scale, 0.03, 0.32), 4),
                    focus=(round(focus[0], 4), round(focus[1], 4)),
                    start=start,
                    end=end,
                )
            )
        elif m.startswith("pan_"):
            direction = cast(PanDirection, m[4:])
            out.append(
                Pan(
                    direction=direction,
                    amount=round(_clamp(0.09 * strength * span_scale, 0.02, 0.22), 4),
                    start=start,
                    end=end,
                )
            )
        elif m.startswith("tilt"):
            out.append(
                Tilt(
                    axis="pitch" if m in ("tilt_up", "tilt_down") else "yaw",
                    direction="down" if m == "tilt_down" else "up" if m == "tilt_up" else "right",
                    degrees=round(_clamp(7.0 * strength * span_scale, 1.5, 14.0), 3),
                    start=start,
                    end=end,
                )
            )
        elif m == "orbit":
            out.append(Orbit(amount=round(_clamp(0.045 * strength * span_scale, 0.01, 0.1), 4), start=start, end=end))
    return tuple(out)


def _time_effects(effects: list[str], duration: int, strength: float) -> tuple[Effect, ...]:
    """Give each effect its timing and strength, designed per duration."""
    long10 = duration >= 10
    out: list[Effect] = []
    for e in effects:
        if e == "light_sweep":
            passes = ((1.0, 3.0),) if not long10 else ((1.4, 3.6), (6.2, 8.4))
            out.append(LightSweep(passes=passes, strength=round(_clamp(0.5 * strength, 0.12, 0.8), 3), angle_deg=28.0))
        elif e == "float":
            out.append(Float(cycles=1 if not long10 else 2, lift=round(_clamp(0.018 * strength, 0.005, 0.04), 4)))
        elif e == "sparkles":
            out.append(Sparkles(count=int(round(_clamp(26 * strength, 8, 60) * (1.6 if long10 else 1.0))), life=1.3))
        elif e == "vignette":
            out.append(Vignette(amount=round(_clamp(0.3 * strength, 0.08, 0.55), 3)))
        elif e == "fade":
            out.append(Fade(fade_in=0.5 if not long10 else 0.8, fade_out=0.6 if not long10 else 1.0))
    return tuple(out)


_WORDS = {
    "zoom_in": "slow zoom in",
    "zoom_out": "slow zoom out",
    "pan": "pan {direction}",
    "tilt": "gentle perspective tilt",
    "orbit": "orbit with parallax",
    "light_sweep": "light sweep across the product",
    "float": "gentle float with a soft shadow",
    "sparkles": "sparkle particles",
    "vignette": "soft vignette",
    "fade": "fade in and out",
}


def describe(plan: Plan) -> str:
    """Say in words what a plan does (the auto mode's generated_prompt)."""
    confident = plan.separation is not None and plan.separation.confident
    parts = []
    for i, m in enumerate(plan.moves):
        words = _WORDS[m.type].format(direction=getattr(m, "direction", ""))
        if m.type == "zoom_in" and confident:
            words = "slow zoom in on the product"
        if i and plan.duration >= 10:
            words = "then " + words
        parts.append(words)
    if not parts:
        parts.append("static camera")
    for e in plan.effects:
        words = _WORDS[e.type]
        if e.type == "light_sweep" and not confident:
            words = "light sweep across the frame"
        if e.type == "float" and not confident:
            words = "gentle float"
        parts.append(words)
    return ", ".join(parts)
