"""Moves and effects measured in real decoded output: parallax, sweep, float, sparkles, fades."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from generator.engine import RenderOptions, make_plan, output_size, render_video
from generator.engine.frames import FrameRenderer
from generator.engine.render import _seed
from tests.test_engine_support import fixture_rgb, frames_gray, patch_shift


def studio_shot(w: int = 400, h: int = 300) -> np.ndarray:
    """A product on a plain, softly mottled backdrop: separable, yet textured enough to track."""
    rng = np.random.default_rng(7)
    mottle = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 5)
    mottle = mottle / mottle.std() * 6.0
    base = np.linspace(214, 198, h, dtype=np.float32)[:, None] + mottle
    bg = np.dstack([base * 0.98, base, base * 1.02])
    tex = cv2.resize(fixture_rgb("astronaut"), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = ((xx - w / 2) ** 2 + (yy - h * 0.52) ** 2) < (0.27 * h) ** 2
    alpha = cv2.GaussianBlur(disc.astype(np.float32), (0, 0), 1.0)[:, :, None]
    out = bg * (1 - alpha) + tex * 0.8 * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def _render(tmp_path, image, name="v", crf=None, **opts):
    video = tmp_path / f"{name}.mp4"
    result = render_video(
        image,
        RenderOptions(**opts),
        video_path=str(video),
        poster_path=str(tmp_path / f"{name}.jpg"),
        **({} if crf is None else {"crf": crf}),
    )
    return result, str(video)


@pytest.fixture(scope="module")
def shot() -> np.ndarray:
    return studio_shot()


def test_parallax_moves_product_and_background_by_different_amounts(tmp_path, shot):
    result, video = _render(tmp_path, shot, prompt="orbit", guidance_scale=0.9)
    assert result.plan.separation.confident
    # Mid-move frames: shifts stay well inside the measuring patch.
    f = frames_gray(video, [55, 95])
    bg = patch_shift(f[55], f[95], 0.12, 0.45, size=96)
    fg = patch_shift(f[55], f[95], 0.5, 0.52, size=96)
    assert bg[0] < -8.0, bg  # the backdrop sweeps past
    assert abs(fg[0]) < abs(bg[0]) / 3, (fg, bg)  # the product, the pivot, barely moves
    assert abs(bg[1]) < abs(bg[0]) / 2  # a horizontal orbit


def test_orbit_without_confident_separation_is_a_plain_camera_move(tmp_path):
    photo = fixture_rgb("chelsea", (330, 300))
    result, video = _render(tmp_path, photo, prompt="orbit", guidance_scale=0.9)
    assert not result.plan.separation.confident
    f = frames_gray(video, [60, 90])
    left = patch_shift(f[60], f[90], 0.3, 0.5, size=96)
    right = patch_shift(f[60], f[90], 0.7, 0.5, size=96)
    # One rigid camera move: the whole picture shifts together (no torn layers).
    assert abs(left[1] - right[1]) < 2.0
    assert left[0] < -3.0


def test_light_sweep_moves_a_bright_band_across_the_product(tmp_path, shot):
    result, video = _render(tmp_path, shot, prompt="light sweep", negative_prompt="zoom", guidance_scale=0.9)
    assert result.plan.moves == ()
    f = frames_gray(video, [15, 48, 60, 72, 110])
    ref = f[15]  # before the pass
    h, w = ref.shape
    cols = np.arange(w, dtype=np.float64)
    centres = []
    for i in (48, 60, 72):
        lift = np.clip(f[i] - ref, 0, None)
        assert lift.max() > 25  # a clearly bright band
        col_energy = lift.sum(axis=0)
        centres.append(float((col_energy * cols).sum() / col_energy.sum()))
    assert centres[0] + 10 < centres[1] < centres[2] - 10, centres
    # Masked to the product: the backdrop corners are untouched by the sweep.
    corner = np.abs(f[60][:40, :40] - ref[:40, :40]).mean()
    assert corner < 1.5
    assert np.abs(f[110] - ref).mean() < 1.0  # and it is gone after the pass


def test_float_lifts_the_product_and_leaves_the_backdrop(tmp_path, shot):
    result, video = _render(tmp_path, shot, prompt="float", negative_prompt="zoom", guidance_scale=0.9)
    assert result.plan.separation.confident
    f = frames_gray(video, [2, 75])
    product = patch_shift(f[2], f[75], 0.5, 0.5, size=96)
    backdrop = patch_shift(f[2], f[75], 0.1, 0.3, size=64)
    assert product[1] < -3.0, product  # up at mid-video
    assert abs(backdrop[1]) < 0.5


def test_sparkles_add_bright_glints_and_negative_removes_them(tmp_path, shot):
    _, plain = _render(tmp_path, shot, "plain", prompt="sparkles", negative_prompt="zoom, sparkles", guidance_scale=0.9)
    _, sparkly = _render(tmp_path, shot, "sparkly", prompt="sparkles", negative_prompt="zoom", guidance_scale=0.9)
    fp = frames_gray(plain, [40, 80, 120])
    fs = frames_gray(sparkly, [40, 80, 120])
    for i in (40, 80, 120):
        assert np.abs(fp[i] - fp[40]).max() < 12  # nothing moves without sparkles
    glints = [(fs[i] - fp[i]) for i in (40, 80, 120)]
    assert max(g.max() for g in glints) > 60
    # Glints are small points, not a wash over the picture.
    assert all((g > 30).mean() < 0.02 for g in glints)


def test_fade_starts_from_black_and_negative_fade_removes_it(tmp_path):
    photo = fixture_rgb("coffee", (360, 240))
    _, faded = _render(tmp_path, photo, "faded", prompt="zoom in")
    _, unfaded = _render(tmp_path, photo, "unfaded", prompt="zoom in", negative_prompt="fade")
    a = frames_gray(faded, [0, 75, 149])
    b = frames_gray(unfaded, [0])
    assert a[0].mean() < 25
    assert a[149].mean() < 40
    assert a[75].mean() > 70
    assert b[0].mean() > 70


def test_vignette_darkens_corners_relative_to_the_centre(tmp_path):
    flat = np.full((240, 360, 3), 180, np.uint8)
    _, with_v = _render(tmp_path, flat, "v", prompt="vignette", negative_prompt="zoom, fade", guidance_scale=0.9)
    _, without = _render(
        tmp_path, flat, "n", prompt="vignette", negative_prompt="zoom, fade, vignette", guidance_scale=0.9
    )
    fv = frames_gray(with_v, [60])[60]
    fn = frames_gray(without, [60])[60]
    assert fv[:30, :30].mean() < fv[200:280, 320:400].mean() - 25
    assert abs(fn[:30, :30].mean() - fn[200:280, 320:400].mean()) < 2


@pytest.mark.parametrize(("amount", "size"), [(0.3, (1080, 1920)), (0.08, (1001, 777)), (0.55, (640, 360))])
def test_vignette_weights_are_the_float_weights_rounded(amount, size):
    from generator.engine.effects import C_NEUTRAL, Y_BLACK, VignetteFx
    from generator.engine.plan import Vignette

    fx = VignetteFx(Vignette(amount=amount), *size)
    # The smooth map as the effect defines it, rounded by NumPy: 1 in the middle, falling to the corners.
    w, h = size
    gx = (((np.arange(w // 2, dtype=np.float32) + 0.5) / (w // 2) - 0.5) ** 2 * 2.0)[None, :]
    gy = (((np.arange(h // 2, dtype=np.float32) + 0.5) / (h // 2) - 0.5) ** 2 * 2.0)[:, None]
    ramp = np.clip((np.sqrt(gx + gy) - fx.INNER) / fx.SPAN, 0.0, 1.0)
    half = (1.0 - amount * ramp * ramp * (3 - 2 * ramp)).astype(np.float32)
    full = cv2.resize(half, size, interpolation=cv2.INTER_LINEAR)
    half = 1.0 - (1.0 - half) * fx.CHROMA_SHARE
    assert np.array_equal(fx.w8, np.round(full * 255.0).astype(np.uint8))
    assert np.array_equal(fx.off8, np.round(Y_BLACK * (1.0 - full)).astype(np.uint8))
    assert np.array_equal(fx.wh8, np.round(half * 255.0).astype(np.uint8))
    assert np.array_equal(fx.offh8, np.round(C_NEUTRAL * (1.0 - half)).astype(np.uint8))
    assert fx.w8[h // 2, w // 2] == 255
    assert fx.w8[0, 0] < 255 * (1 - amount / 2)


def test_a_vignette_drawn_on_the_way_in_gives_the_frames_of_one_drawn_after(monkeypatch):
    # frames.FrameRenderer: with nothing between the photo and the vignette, the planes cv2.resize
    # draws are darkened on their way into the frame (docs/formats.md, "Speed"); the frames are
    # those of drawing the photo in and darkening it after.
    from generator.engine import frames
    from generator.engine.frames import RING

    photo = fixture_rgb("astronaut", (480, 360))
    options = RenderOptions(prompt="zoom in, vignette", negative_prompt="fade", guidance_scale=0.9)
    plan, sep = make_plan(photo, options)
    renderer = FrameRenderer(photo, plan, 320, 240, sep, 0)
    assert renderer.vignette is not None
    assert renderer.fade is None
    assert renderer.sweep is None
    assert renderer.sparkles is None
    assert not renderer.layered
    left_in_scratch = []
    real = frames.warp_padded

    def spy(src, m, dst, *, copy=True):
        out = real(src, m, dst, copy=copy)
        left_in_scratch.append(out is not dst)
        return out

    monkeypatch.setattr(frames, "warp_padded", spy)
    for i in range(0, renderer.total, 7):
        fused = renderer.frame(i).copy()
        renderer.buf = renderer.ring[(i + 1) % RING]
        renderer.canvas.point(renderer.buf)
        renderer._draw_photo(renderer.camera.at(i / renderer.fps))  # the photo copied in
        renderer.vignette.apply(renderer.canvas)  # then darkened where it lies
        assert np.array_equal(fused, renderer.buf), i
    assert sum(left_in_scratch) > len(left_in_scratch) // 4  # cv2.resize's planes went in through it


def test_negative_zoom_leaves_the_camera_still(tmp_path):
    photo = fixture_rgb("astronaut", (320, 320))
    result, video = _render(tmp_path, photo, prompt="zoom in", negative_prompt="zoom, fade")
    assert result.plan.moves == ()
    f = frames_gray(video, [20, 130])
    dx, dy = patch_shift(f[20], f[130], 0.78, 0.5, size=96)
    assert abs(dx) < 0.1
    assert abs(dy) < 0.1


def test_tilt_swings_the_picture_in_perspective(tmp_path):
    photo = fixture_rgb("astronaut", (320, 320))
    # Lossless: the geometry is the engine's; at CRF 20 the coding noise on this small photo's
    # flat corners moved the phase correlation's answer by up to 4 px between two encodes of the
    # very same frames 15 and 135.
    _, video = _render(tmp_path, photo, crf=0, prompt="tilt", negative_prompt="fade, vignette", guidance_scale=0.9)
    f = frames_gray(video, [15, 135])
    tl = patch_shift(f[15], f[135], 0.15, 0.18, size=64)[1]
    bl = patch_shift(f[15], f[135], 0.15, 0.82, size=64)[1]
    tr = patch_shift(f[15], f[135], 0.85, 0.18, size=64)[1]
    br = patch_shift(f[15], f[135], 0.85, 0.82, size=64)[1]
    left_stretch, right_stretch = bl - tl, br - tr
    # One side grows while the other shrinks: a perspective swing, not a zoom or a pan.
    assert left_stretch * right_stretch < 0
    assert abs(left_stretch - right_stretch) > 3.0


def _frame_hashes(image: np.ndarray, options: RenderOptions) -> list[str]:
    """Hash every frame the engine hands to the encoder, without encoding."""
    plan, sep = make_plan(image, options)
    h, w = image.shape[:2]
    renderer = FrameRenderer(image, plan, *output_size(w, h), sep, _seed(image, options))
    return [hashlib.sha256(renderer.frame(i).tobytes()).hexdigest() for i in range(renderer.total)]


def test_same_input_and_options_give_identical_frames(tmp_path, shot):
    options = RenderOptions(auto=True, guidelines="sparkles and shine")
    # The rendered frames (what the encoder is given) are bit-identical.
    first = _frame_hashes(shot, options)
    assert first == _frame_hashes(shot.copy(), options)
    assert len(set(first)) > 100  # and they really change over time
    r1, v1 = _render(tmp_path, shot, "a", auto=True, guidelines="sparkles and shine")
    r2, v2 = _render(tmp_path, shot, "b", auto=True, guidelines="sparkles and shine")
    assert r1.plan == r2.plan
    assert r1.generated_prompt == r2.generated_prompt
    f1, f2 = frames_gray(v1), frames_gray(v2)
    assert len(f1) == len(f2) == 150
    assert all(np.array_equal(f1[i], f2[i]) for i in f1)
    with open(v1, "rb") as a, open(v2, "rb") as b:
        assert a.read() == b.read()


HEAP_CHILD = r"""
import ctypes, hashlib, sys
ctypes.CDLL(None).mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD: big blocks from the heap, so MALLOC_PERTURB_ reaches them
from generator.engine import RenderOptions, render_video
from tests.test_engine_effects import studio_shot
options = RenderOptions(auto=True, guidelines="sparkles and shine")
render_video(studio_shot(), options, video_path=sys.argv[1], poster_path=sys.argv[1] + ".jpg")
print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="MALLOC_PERTURB_ is a glibc feature")
def test_encoded_video_does_not_depend_on_uninitialised_heap_memory(tmp_path):
    # libx264's adaptive B-frame decision with mbtree reads uninitialised heap memory; that made
    # the same render give different files from run to run. Fill fresh heap blocks with two
    # different bytes: a video that depends on heap garbage comes out different.
    root = Path(__file__).resolve().parent.parent
    digests = set()
    for fill in ("85", "170"):
        proc = subprocess.run(
            [sys.executable, "-c", HEAP_CHILD, str(tmp_path / f"heap{fill}.mp4")],
            cwd=root,
            capture_output=True,
            text=True,
            env={**os.environ, "MALLOC_PERTURB_": fill},
        )
        assert proc.returncode == 0, proc.stderr
        digests.add(proc.stdout.strip())
    assert len(digests) == 1, digests


def test_different_prompts_give_different_videos(tmp_path, shot):
    _, v1 = _render(tmp_path, shot, "a", prompt="zoom in")
    _, v2 = _render(tmp_path, shot, "b", prompt="zoom out")
    assert not np.array_equal(frames_gray(v1, [100])[100], frames_gray(v2, [100])[100])


def test_auto_reports_generated_prompt_and_prompt_mode_does_not(tmp_path, shot):
    auto, _ = _render(tmp_path, shot, "a", auto=True)
    manual, _ = _render(tmp_path, shot, "m", prompt="zoom in")
    assert auto.generated_prompt
    assert manual.generated_prompt is None
    words = auto.generated_prompt.lower()
    assert any(w in words for w in ("zoom", "orbit", "pan", "tilt"))
    assert "light sweep" in words


@pytest.mark.slow
def test_full_size_ten_second_render_of_a_large_photo(tmp_path):
    big = cv2.resize(fixture_rgb("coffee"), (3000, 2000), interpolation=cv2.INTER_CUBIC)
    result, video = _render(tmp_path, big, prompt="orbit, shine, sparkles", duration=10)
    assert (result.width, result.height) == (1920, 1280)
    f = frames_gray(video, [0, 299])
    assert set(f) == {0, 299}
