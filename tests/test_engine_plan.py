"""Prompt -> plan: synonyms, negatives, guidance, durations and auto analysis (no rendering)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from generator.engine import RenderOptions, make_plan
from generator.engine.plan import parse_text
from tests.test_engine_support import fixture_rgb


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return fixture_rgb("coffee", (360, 240))


@pytest.fixture(scope="module")
def product() -> np.ndarray:
    return fixture_rgb("product", (480, 360))


def _kinds(plan: dict) -> list[str]:
    out = []
    for m in plan["moves"]:
        out.append(m["type"] if m["type"] != "pan" else f"pan_{m['direction']}")
    return out


def _effects(plan: dict) -> list[str]:
    return [e["type"] for e in plan["effects"]]


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
    assert gone in plan["suppressed"]


def test_negation_inside_the_prompt_suppresses_too(photo):
    plan, _ = make_plan(photo, RenderOptions(prompt="light sweep, no zoom, without vignette"))
    assert not {"zoom_in", "zoom_out"} & set(_kinds(plan))
    assert "vignette" not in _effects(plan)
    assert "light_sweep" in _effects(plan)


def test_negative_motion_words_keep_the_camera_still(photo):
    plan, _ = make_plan(photo, RenderOptions(prompt="sparkles", negative_prompt="camera movement, shake"))
    assert plan["moves"] == []
    assert "sparkles" in _effects(plan)


def test_guidance_scale_sets_how_strong_the_asked_motion_is(photo):
    amounts = []
    for g in (0.2, 0.5, 1.0):
        plan, _ = make_plan(photo, RenderOptions(prompt="zoom in", guidance_scale=g))
        amounts.append(plan["moves"][0]["amount"])
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
    assert slow["moves"][0]["amount"] < plain["moves"][0]["amount"] < fast["moves"][0]["amount"]


def test_ten_second_plan_is_designed_for_ten_seconds(photo):
    five, _ = make_plan(photo, RenderOptions(prompt="zoom in, shine", duration=5))
    ten, _ = make_plan(photo, RenderOptions(prompt="zoom in, shine", duration=10))
    assert five["frames"] == 150
    assert ten["frames"] == 300
    assert len(five["moves"]) == 1
    # Two acts that overlap, not the 5 s move stretched: a second move starts mid-video.
    assert len(ten["moves"]) == 2
    first, second = ten["moves"]
    assert first["end"] > second["start"] >= 3.0
    assert second["end"] == 10.0
    sweep5 = next(e for e in five["effects"] if e["type"] == "light_sweep")
    sweep10 = next(e for e in ten["effects"] if e["type"] == "light_sweep")
    assert len(sweep5["passes"]) == 1
    assert len(sweep10["passes"]) == 2


def test_plan_is_json_serialisable_and_deterministic(product):
    a, _ = make_plan(product, RenderOptions(auto=True, duration=10))
    b, _ = make_plan(product, RenderOptions(auto=True, duration=10))
    assert json.loads(json.dumps(a)) == a
    assert a == b


def test_auto_plan_on_a_product_shot_separates_the_product_and_uses_it(product):
    plan, sep = make_plan(product, RenderOptions(auto=True))
    assert sep is not None
    assert sep.confident
    assert plan["source"] == "auto"
    assert plan["separation"]["confident"] is True
    assert "light_sweep" in _effects(plan)
    assert set(_kinds(plan)) & {"orbit", "zoom_in", "zoom_out"}


def test_auto_plan_on_a_busy_photo_falls_back_to_camera_moves(photo):
    plan, sep = make_plan(photo, RenderOptions(auto=True))
    assert sep is not None
    assert not sep.confident
    assert "orbit" not in _kinds(plan)
    assert plan["moves"]


def test_auto_guidelines_steer_the_plan(product):
    plan, _ = make_plan(product, RenderOptions(auto=True, guidelines="pan left with sparkles, no vignette"))
    assert _kinds(plan)[0] == "pan_left"
    assert "sparkles" in _effects(plan)
    assert "vignette" not in _effects(plan)


def test_orbit_on_a_busy_photo_records_the_fallback(photo):
    plan, sep = make_plan(photo, RenderOptions(prompt="orbit"))
    assert not sep.confident
    assert "fallback" in plan["moves"][0]


def test_parse_text_handles_mixed_clauses():
    w = parse_text("Slow zoom in, then glitter; no fade")
    assert w.wanted == ["zoom_in", "sparkles"]
    assert "fade" in w.suppressed
    assert w.intensity < 1.0
