"""Prompt words -> wishes: which moves and effects a text asks for or forbids, and how strongly."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
