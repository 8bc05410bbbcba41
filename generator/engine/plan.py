"""Prompt words and image analysis -> a JSON plan of moves and effects over time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import cv2
import numpy as np

MOVES = ("zoom_in", "zoom_out", "pan_left", "pan_right", "pan_up", "pan_down", "tilt", "orbit")
EFFECTS = ("light_sweep", "float", "sparkles", "vignette", "fade")
# Patterns are tried in this order; a matched span is blanked so "zoom out" is not also "zoom".
_CONCEPTS: list[tuple[str, str]] = [
    ("static", r"\b(static|still camera|locked[- ]off|no camera (movement|motion)|tripod)\b"),
    (
        "zoom_out",
        r"\b(zoom(s|ing|ed)?\s*(out|back|away)|pull(s|ing|ed)?\s*(back|out|away)|dolly(ing)?\s*out|push(ing)?\s*out|reveal(s|ing)?|widen(s|ing)?|wide shot|back(s|ing)? away|unzoom)\b",
    ),
    (
        "zoom_in",
        r"\b(zoom(s|ing|ed)?\s*in(to)?|push(es|ing|ed)?\s*in|dolly(ing)?\s*in|close[- ]?ups?|closer|move(s|ing)? in|punch(es|ing)?\s*in|magnif\w*|ken burns|zoom(s|ing|ed)?|push(es|ing)?\s*forward|approach\w*)\b",
    ),
    ("tilt_up", r"\btilt(s|ing|ed)?\s*(up|upward|upwards)\b"),
    ("tilt_down", r"\btilt(s|ing|ed)?\s*(down|downward|downwards)\b"),
    (
        "pan_left",
        r"\b(pan|move|slide|truck|track|glide|drift|scroll|dolly|camera|sweep|travel)(s|ing|ed|s)?\s+(to\s+(the\s+)?)?left(ward|wards)?\b|\bright[- ]to[- ]left\b",
    ),
    (
        "pan_right",
        r"\b(pan|move|slide|truck|track|glide|drift|scroll|dolly|camera|sweep|travel)(s|ing|ed|s)?\s+(to\s+(the\s+)?)?right(ward|wards)?\b|\bleft[- ]to[- ]right\b",
    ),
    (
        "pan_up",
        r"\b(pan|move|slide|crane|pedestal|boom|glide|drift|scroll|camera|rise|rising|travel|jib)(s|ing|ed)?\s+(up|upward|upwards)\b|\b(crane|rising|ascend\w*)\b|\bbottom[- ]to[- ]top\b",
    ),
    (
        "pan_down",
        r"\b(pan|move|slide|crane|pedestal|boom|glide|drift|scroll|camera|travel|jib)(s|ing|ed)?\s+(down|downward|downwards)\b|\b(descend\w*|lower(s|ing)?)\b|\btop[- ]to[- ]bottom\b",
    ),
    (
        "orbit",
        r"\b(orbit\w*|parallax|rotat\w*\s*around|circl\w*\s*(around|the)|turntable|360|3d|three[- ]dimensional|depth|revolv\w*|arc shot|spin\w*|rotat\w*)\b",
    ),
    ("tilt", r"\b(tilt\w*|perspective|swivel\w*|rock(s|ing)?|swing\w*|dutch angle|angled)\b"),
    ("pan_right", r"\b(pan(s|ning|ned)?|tracking shot|truck(ing)?|side[- ]to[- ]side|slide|sliding|lateral)\b"),
    (
        "light_sweep",
        r"\b(light sweep\w*|sweep(s|ing)? of light|light streak\w*|shin(e|es|ing|y)|shimmer\w*|gleam\w*|glint\w*|sheen|glare|reflections?|highlights?|gloss\w*|flare\w*|lustre|luster|polish\w*|glossy|light)\b",
    ),
    ("float", r"\b(float\w*|hover\w*|levitat\w*|bob(s|bing)?|weightless\w*|suspend\w*|bounc\w*|hang\w* in the air)\b"),
    (
        "sparkles",
        r"\b(sparkl\w*|glitter\w*|particles?|twinkl\w*|stars?|starry|magic\w*|fairy|bokeh|dust|confetti|snow\w*|glow\w*|stardust)\b",
    ),
    ("vignette", r"\b(vignett\w*|dark(er)? (corners|edges)|spotlight\w*|moody|cinematic|dramatic lighting)\b"),
    ("fade", r"\b(fad(e|es|ing|ed)(\s*(in|out|in and out|in/out))?|dissolv\w*|from black|to black)\b"),
    ("shake", r"\b(shak\w*|jitter\w*|wobbl\w*|handheld|hand[- ]held|jerk\w*|vibrat\w*|flicker\w*)\b"),
    ("all_moves", r"\b(motion|movement|moving|camera moves?|camera)\b"),
    ("all_effects", r"\b(effects?|fx|overlays?)\b"),
]
_COMPILED = [(name, re.compile(rx)) for name, rx in _CONCEPTS]
_NEGATION = re.compile(r"\b(no|not|without|avoid\w*|don'?t|do not|never|stop|none|zero|minus|less)\b")
_SLOW = re.compile(
    r"\b(slow\w*|gentl\w*|subtl\w*|soft\w*|calm\w*|smooth\w*|slight\w*|lightly|easy|delicate\w*|minimal)\b"
)
_FAST = re.compile(
    r"\b(fast\w*|quick\w*|dramatic\w*|strong\w*|dynamic\w*|energetic\w*|bold\w*|big|intense\w*|rapid\w*|punchy|epic|powerful\w*)\b"
)
# A wish for one direction of a pair replaces the other; these are mutually exclusive.
_EXCLUSIVE = [("zoom_in", "zoom_out"), ("pan_left", "pan_right"), ("pan_up", "pan_down"), ("tilt_up", "tilt_down")]


@dataclass
class Wishes:
    """What a text asks for: wanted concepts (in order), suppressed ones and an intensity."""

    wanted: list[str] = field(default_factory=list)
    suppressed: set[str] = field(default_factory=set)
    intensity: float = 1.0
    static: bool = False


def _concepts(text: str) -> list[str]:
    """Find concepts in a clause, longest/most specific patterns first."""
    found: list[tuple[int, str]] = []
    work = text
    for name, rx in _COMPILED:
        for m in rx.finditer(work):
            found.append((m.start(), name))
        work = rx.sub(lambda m: " " * len(m.group(0)), work)
    return [name for _, name in sorted(found)]


def _expand(name: str) -> set[str]:
    """Map a suppressed concept to the plan items it removes."""
    if name == "all_moves":
        return set(MOVES) | {"tilt_up", "tilt_down"}
    if name == "all_effects":
        return set(EFFECTS) - {"fade"}
    if name in ("zoom_in", "zoom_out"):
        return {"zoom_in", "zoom_out"}
    if name.startswith("pan_"):
        return {name}
    if name.startswith("tilt"):
        return {"tilt", "tilt_up", "tilt_down"}
    return {name}


def parse_text(text: str | None, *, negative: bool = False) -> Wishes:
    """Read prompt (or negative prompt) words; unknown words are ignored."""
    w = Wishes()
    if not text:
        return w
    low = text.lower().replace("_", " ")
    clauses = re.split(r"[,.;!?\n]+|\bbut\b|\bthen\b|\band\b|\bwith\b|\bplus\b|&", low)
    for clause in clauses:
        clause = clause.strip()
        if not clause:
            continue
        names = _concepts(clause)
        neg = negative or bool(_NEGATION.search(clause))
        if neg:
            for n in names:
                # A bare "pan" in a negative means every pan, not just the default direction.
                if n == "pan_right" and not re.search(r"right", clause):
                    w.suppressed |= {"pan_left", "pan_right", "pan_up", "pan_down"}
                elif n == "zoom_in" and re.search(r"\bzoom\w*\b(?!\s*in)", clause):
                    w.suppressed |= {"zoom_in", "zoom_out"}
                else:
                    w.suppressed |= _expand(n)
            continue
        for n in names:
            if n == "static":
                w.static = True
            elif n in ("shake", "all_moves", "all_effects"):
                continue  # we never shake; generic words add nothing
            elif n not in w.wanted:
                w.wanted.append(n)
        if _SLOW.search(clause):
            w.intensity = min(w.intensity, 0.7)
        if _FAST.search(clause):
            w.intensity = max(w.intensity, 1.35)
    for a, b in _EXCLUSIVE:
        if a in w.wanted and b in w.wanted:
            w.wanted.remove(b if w.wanted.index(a) < w.wanted.index(b) else a)
    return w


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


def build_plan(
    *,
    prompt: str | None,
    auto: bool,
    guidelines: str | None,
    negative_prompt: str | None,
    duration: int,
    guidance_scale: float,
    analysis: Analysis | None,
    fps: int = 30,
) -> dict:
    """Combine prompt wishes, negatives, guidance and image analysis into a timed plan."""
    g = _clamp(float(guidance_scale), 0.0, 1.0)
    negative = parse_text(negative_prompt, negative=True)
    if auto:
        wishes = parse_text(guidelines)
        source = "auto"
    else:
        wishes = parse_text(prompt)
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

    plan: dict = {
        "version": 1,
        "source": source,
        "duration": duration,
        "fps": fps,
        "frames": duration * fps,
        "guidance": round(g, 3),
        "strength": round(strength, 3),
        "moves": [],
        "effects": [],
        "suppressed": sorted(suppressed),
        "requested": list(wishes.wanted),
    }
    plan["moves"] = _time_moves(moves, duration, strength, a)
    plan["effects"] = _time_effects(effects, duration, strength)
    return plan


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


def _time_moves(moves: list[str], duration: int, strength: float, a: Analysis | None) -> list[dict]:
    """Lay moves out in time: together in 5 s, as two overlapping acts in 10 s."""
    focus = list(a.focus) if a is not None else [0.5, 0.5]
    long10 = duration >= 10
    out = []
    scale = 1.35 if long10 else 1.0
    for i, m in enumerate(moves):
        if long10 and len(moves) > 1:
            start, end = (0.0, 6.2) if i == 0 else (4.4, 10.0)
            span_scale = 1.0
        else:
            start, end = 0.0, float(duration)
            span_scale = scale
        item: dict = {"type": m, "start": start, "end": end, "easing": "smooth"}
        if m in ("zoom_in", "zoom_out"):
            item["amount"] = round(_clamp(0.13 * strength * span_scale, 0.03, 0.32), 4)
            item["focus"] = [round(focus[0], 4), round(focus[1], 4)]
        elif m.startswith("pan_"):
            item["type"] = "pan"
            item["direction"] = m[4:]
            item["amount"] = round(_clamp(0.09 * strength * span_scale, 0.02, 0.22), 4)
        elif m.startswith("tilt"):
            item["type"] = "tilt"
            item["axis"] = "pitch" if m in ("tilt_up", "tilt_down") else "yaw"
            item["direction"] = "down" if m == "tilt_down" else "up" if m == "tilt_up" else "right"
            item["degrees"] = round(_clamp(7.0 * strength * span_scale, 1.5, 14.0), 3)
        elif m == "orbit":
            item["amount"] = round(_clamp(0.045 * strength * span_scale, 0.01, 0.1), 4)
        out.append(item)
    return out


def _time_effects(effects: list[str], duration: int, strength: float) -> list[dict]:
    """Give each effect its timing and strength, designed per duration."""
    long10 = duration >= 10
    out = []
    for e in effects:
        if e == "light_sweep":
            passes = [[1.0, 3.0]] if not long10 else [[1.4, 3.6], [6.2, 8.4]]
            out.append(
                {
                    "type": e,
                    "passes": passes,
                    "strength": round(_clamp(0.5 * strength, 0.12, 0.8), 3),
                    "angle_deg": 28.0,
                }
            )
        elif e == "float":
            out.append(
                {"type": e, "cycles": 1 if not long10 else 2, "lift": round(_clamp(0.018 * strength, 0.005, 0.04), 4)}
            )
        elif e == "sparkles":
            out.append(
                {"type": e, "count": int(round(_clamp(26 * strength, 8, 60) * (1.6 if long10 else 1.0))), "life": 1.3}
            )
        elif e == "vignette":
            out.append({"type": e, "amount": round(_clamp(0.3 * strength, 0.08, 0.55), 3)})
        elif e == "fade":
            out.append({"type": e, "in": 0.5 if not long10 else 0.8, "out": 0.6 if not long10 else 1.0})
    return out


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


def describe(plan: dict) -> str:
    """Say in words what a plan does (the auto mode's generated_prompt)."""
    parts = []
    for i, m in enumerate(plan["moves"]):
        words = _WORDS[m["type"]].format(direction=m.get("direction", ""))
        if m["type"] == "zoom_in" and plan.get("separation", {}).get("confident"):
            words = "slow zoom in on the product"
        if i and plan["duration"] >= 10:
            words = "then " + words
        parts.append(words)
    if not parts:
        parts.append("static camera")
    for e in plan["effects"]:
        words = _WORDS[e["type"]]
        if e["type"] == "light_sweep" and not plan.get("separation", {}).get("confident"):
            words = "light sweep across the frame"
        if e["type"] == "float" and not plan.get("separation", {}).get("confident"):
            words = "gentle float"
        parts.append(words)
    return ", ".join(parts)
