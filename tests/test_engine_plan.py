"""Prompt -> plan: synonyms, negatives, guidance, durations and auto analysis (no rendering)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from generator.engine import RenderOptions, make_plan
from generator.engine.plan import LightSweep, Orbit, Pan, Plan
from generator.engine.words import parse_text
from tests.test_engine_support import fixture_rgb


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return fixture_rgb("coffee", (360, 240))


@pytest.fixture(scope="module")
def product() -> np.ndarray:
    return fixture_rgb("product", (480, 360))


def _kinds(plan: Plan) -> list[str]:
    return [m.type if not isinstance(m, Pan) else f"pan_{m.direction}" for m in plan.moves]


def _effects(plan: Plan) -> list[str]:
    return [e.type for e in plan.effects]


@pytest.mark.parametrize(
    ("prompt", "move"),
    [
        ("camera zoom out", "zoom_out"),
        ("pull back to reveal the bottle", "zoom_out"),
        ("push in slowly", "zoom_in"),
        ("close-up", "zoom_in"),
        ("slow pan left", "pan_left"),
        ("camera slides to the right", "pan_right"),
        ("crane up", "pan_up"),
        ("pan down", "pan_down"),
        ("orbit", "orbit"),
        ("turntable 360", "orbit"),
        ("gentle perspective tilt", "tilt"),
    ],
)
def test_prompt_words_and_synonyms_choose_the_move(photo, prompt, move):
    plan, _ = make_plan(photo, RenderOptions(prompt=prompt))
    assert _kinds(plan)[0] == move


@pytest.mark.parametrize(
    ("prompt", "effect"),
    [
        ("glitter particles", "sparkles"),
        ("twinkling stars", "sparkles"),
        ("shine", "light_sweep"),
        ("a gleam of light", "light_sweep"),
        ("hovering product", "float"),
        ("levitate", "float"),
        ("dark corners", "vignette"),
        ("fade in", "fade"),
    ],
)
def test_prompt_words_and_synonyms_choose_the_effect(photo, prompt, effect):
    plan, _ = make_plan(photo, RenderOptions(prompt=prompt, guidance_scale=0.9))
    assert effect in _effects(plan)


def test_the_spec_example_prompt_gives_zoom_out_with_glitter(photo):
    plan, _ = make_plan(photo, RenderOptions(prompt="camera zoom out, glitter particles"))
    assert _kinds(plan) == ["zoom_out"]
    assert "sparkles" in _effects(plan)


def test_unknown_words_are_ignored_and_give_the_default_plan(photo):
    plan, _ = make_plan(photo, RenderOptions(prompt="purple elephant banana quantum"))
    default, _ = make_plan(photo, RenderOptions(prompt=None))
    assert _kinds(plan) == _kinds(default) == ["zoom_in"]
    assert _effects(plan) == _effects(default)


@pytest.mark.parametrize(
    ("prompt", "negative", "gone"),
    [
        ("zoom in, sparkles", "sparkles", "sparkles"),
        ("zoom in, sparkles", "zoom", "zoom_in"),
        ("zoom out and vignette", "no zoom", "zoom_out"),
        ("pan left, light sweep", "shine", "light_sweep"),
        ("orbit, fade", "fading", "fade"),
        ("float, zoom in", "hover", "float"),
        ("pan right", "pan", "pan_right"),
        ("tilt", "perspective", "tilt"),
    ],
)
def test_negative_prompt_words_remove_what_they_name(photo, prompt, negative, gone):
    plan, _ = make_plan(photo, RenderOptions(prompt=prompt, negative_prompt=negative))
    assert gone not in _kinds(plan) + _effects(plan)
    assert gone in plan.suppressed


def test_negation_inside_the_prompt_suppresses_too(photo):
    plan, _ = make_plan(photo, RenderOptions(prompt="light sweep, no zoom, without vignette"))
    assert not {"zoom_in", "zoom_out"} & set(_kinds(plan))
    assert "vignette" not in _effects(plan)
    assert "light_sweep" in _effects(plan)


def test_negative_motion_words_keep_the_camera_still(photo):
    plan, _ = make_plan(photo, RenderOptions(prompt="sparkles", negative_prompt="camera movement, shake"))
    assert plan.moves == ()
    assert "sparkles" in _effects(plan)


def test_guidance_scale_sets_how_strong_the_asked_motion_is(photo):
    amounts = []
    for g in (0.2, 0.5, 1.0):
        plan, _ = make_plan(photo, RenderOptions(prompt="zoom in", guidance_scale=g))
        amounts.append(plan.moves[0].amount)
    assert amounts[0] < amounts[1] < amounts[2]


def test_guidance_scale_weighs_prompt_against_defaults(photo):
    low, _ = make_plan(photo, RenderOptions(prompt="pan left", guidance_scale=0.0))
    mid, _ = make_plan(photo, RenderOptions(prompt="pan left", guidance_scale=0.5))
    high, _ = make_plan(photo, RenderOptions(prompt="pan left", guidance_scale=1.0))
    assert _kinds(low) == ["zoom_in"]  # at 0 the engine's defaults win
    assert _kinds(mid) == ["pan_left"]
    assert {"vignette", "fade"} <= set(_effects(mid))  # defaults still season the result
    assert _effects(high) == []  # full guidance: only what was asked


def test_slow_and_dramatic_modify_the_amount(photo):
    slow, _ = make_plan(photo, RenderOptions(prompt="slow zoom in"))
    plain, _ = make_plan(photo, RenderOptions(prompt="zoom in"))
    fast, _ = make_plan(photo, RenderOptions(prompt="dramatic zoom in"))
    assert slow.moves[0].amount < plain.moves[0].amount < fast.moves[0].amount


def test_ten_second_plan_is_designed_for_ten_seconds(photo):
    five, _ = make_plan(photo, RenderOptions(prompt="zoom in, shine", duration=5))
    ten, _ = make_plan(photo, RenderOptions(prompt="zoom in, shine", duration=10))
    assert five.frames == 150
    assert ten.frames == 300
    assert len(five.moves) == 1
    # Two acts that overlap, not the 5 s move stretched: a second move starts mid-video.
    assert len(ten.moves) == 2
    first, second = ten.moves
    assert first.end > second.start >= 3.0
    assert second.end == 10.0
    sweep5, sweep10 = five.effect(LightSweep), ten.effect(LightSweep)
    assert sweep5 is not None
    assert sweep10 is not None
    assert len(sweep5.passes) == 1
    assert len(sweep10.passes) == 2


def test_plan_is_json_serialisable_and_deterministic(product):
    a, _ = make_plan(product, RenderOptions(auto=True, duration=10))
    b, _ = make_plan(product, RenderOptions(auto=True, duration=10))
    assert json.loads(json.dumps(a.to_json())) == a.to_json()
    assert a == b


def test_auto_plan_on_a_product_shot_separates_the_product_and_uses_it(product):
    plan, sep = make_plan(product, RenderOptions(auto=True))
    assert sep is not None
    assert sep.confident
    assert plan.source == "auto"
    assert plan.separation is not None
    assert plan.separation.confident is True
    assert "light_sweep" in _effects(plan)
    assert set(_kinds(plan)) & {"orbit", "zoom_in", "zoom_out"}


def test_auto_plan_on_a_busy_photo_falls_back_to_camera_moves(photo):
    plan, sep = make_plan(photo, RenderOptions(auto=True))
    assert sep is not None
    assert not sep.confident
    assert "orbit" not in _kinds(plan)
    assert plan.moves


def test_auto_guidelines_steer_the_plan(product):
    plan, _ = make_plan(product, RenderOptions(auto=True, guidelines="pan left with sparkles, no vignette"))
    assert _kinds(plan)[0] == "pan_left"
    assert "sparkles" in _effects(plan)
    assert "vignette" not in _effects(plan)


def test_orbit_on_a_busy_photo_records_the_fallback(photo):
    plan, sep = make_plan(photo, RenderOptions(prompt="orbit"))
    assert not sep.confident
    assert isinstance(plan.moves[0], Orbit)
    assert plan.moves[0].fallback


def test_parse_text_handles_mixed_clauses():
    w = parse_text("Slow zoom in, then glitter; no fade")
    assert w.wanted == ["zoom_in", "sparkles"]
    assert "fade" in w.suppressed
    assert w.intensity < 1.0


# Plans as the dict-based engine stored them before plans were typed: what the job page, the
# gallery and the API's readers already hold in the database.
_STORED_BEFORE = [
    (
        "coffee",
        {
            "prompt": "orbit, pan up, tilt, zoom out, shine, float, sparkles, vignette, fade",
            "duration": 10,
            "guidance_scale": 0.3,
        },
        '{"version": 1, "source": "prompt", "duration": 10, "fps": 30, "frames": 300, "guidance": 0.3, "strength": 0.82, "moves": [{"type": "orbit", "start": 0.0, "end": 6.2, "easing": "smooth", "amount": 0.0369, "fallback": "plain camera move: product separation not confident"}, {"type": "pan", "start": 4.4, "end": 10.0, "easing": "smooth", "direction": "up", "amount": 0.0738}], "effects": [{"type": "light_sweep", "passes": [[1.4, 3.6], [6.2, 8.4]], "strength": 0.41, "angle_deg": 28.0}, {"type": "float", "cycles": 2, "lift": 0.0148}, {"type": "sparkles", "count": 34, "life": 1.3}, {"type": "vignette", "amount": 0.246}, {"type": "fade", "in": 0.8, "out": 1.0}], "suppressed": [], "requested": ["orbit", "pan_up", "tilt", "zoom_out", "light_sweep", "float", "sparkles", "vignette", "fade"], "separation": {"confident": false, "reason": "busy background", "plainness": 0.0}}',
    ),
    (
        "product",
        {"auto": True, "duration": 10},
        '{"version": 1, "source": "auto", "duration": 10, "fps": 30, "frames": 300, "guidance": 0.5, "strength": 1.0, "moves": [{"type": "orbit", "start": 0.0, "end": 6.2, "easing": "smooth", "amount": 0.045}, {"type": "zoom_in", "start": 4.4, "end": 10.0, "easing": "smooth", "amount": 0.13, "focus": [0.4982, 0.5378]}], "effects": [{"type": "light_sweep", "passes": [[1.4, 3.6], [6.2, 8.4]], "strength": 0.5, "angle_deg": 28.0}, {"type": "sparkles", "count": 42, "life": 1.3}, {"type": "vignette", "amount": 0.3}, {"type": "fade", "in": 0.8, "out": 1.0}], "suppressed": [], "requested": [], "separation": {"confident": true, "reason": "ok", "plainness": 0.908, "area": 0.24, "iou": 0.965, "touch": 0.0, "bottom_touch": 0.0}}',
    ),
    (
        "coffee",
        {"prompt": "tilt down, zoom out", "duration": 10, "guidance_scale": 1.0},
        '{"version": 1, "source": "prompt", "duration": 10, "fps": 30, "frames": 300, "guidance": 1.0, "strength": 1.45, "moves": [{"type": "tilt", "start": 0.0, "end": 6.2, "easing": "smooth", "axis": "pitch", "direction": "down", "degrees": 10.15}, {"type": "zoom_out", "start": 4.4, "end": 10.0, "easing": "smooth", "amount": 0.1885, "focus": [0.4962, 0.5007]}], "effects": [], "suppressed": [], "requested": ["tilt_down", "zoom_out"]}',
    ),
    (
        "coffee",
        {"prompt": "tilt"},
        '{"version": 1, "source": "prompt", "duration": 5, "fps": 30, "frames": 150, "guidance": 0.5, "strength": 1.0, "moves": [{"type": "tilt", "start": 0.0, "end": 5.0, "easing": "smooth", "axis": "yaw", "direction": "right", "degrees": 7.0}], "effects": [{"type": "vignette", "amount": 0.3}, {"type": "fade", "in": 0.5, "out": 0.6}], "suppressed": [], "requested": ["tilt"]}',
    ),
]


@pytest.mark.parametrize(
    ("fixture", "options", "stored"), _STORED_BEFORE, ids=["busy-10s", "auto-product", "tilt-zoom", "tilt"]
)
def test_typed_plan_is_stored_as_the_same_json_as_before(fixture, options, stored):
    image = fixture_rgb(fixture, (360, 240) if fixture == "coffee" else (480, 360))
    plan, _ = make_plan(image, RenderOptions(**options))
    assert plan.to_json() == json.loads(stored)
    assert list(plan.to_json()) == list(json.loads(stored))  # same keys, in the same order
