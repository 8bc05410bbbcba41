"""The motion engine: encoding contract, sizes, progress, and motion measured in real output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.engine import RenderOptions, output_size, render_video
from tests.test_engine_support import (
    fixture_rgb,
    frames_gray,
    patch_shift,
    probe,
    top_level_atoms,
)

ROOT = Path(__file__).resolve().parent.parent


def _render(tmp_path, image, crf=None, **opts):
    video = tmp_path / "out.mp4"
    poster = tmp_path / "poster.jpg"
    extra = {} if crf is None else {"crf": crf}
    result = render_video(image, RenderOptions(**opts), video_path=str(video), poster_path=str(poster), **extra)
    return result, str(video), str(poster)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((600, 400), (1200, 800)),  # small photos double
        ((4000, 3000), (1920, 1440)),  # large ones fit 1920 on the long side
        ((3000, 4000), (1440, 1920)),
        ((1921, 1081), (1920, 1080)),
        ((333, 301), (666, 602)),
        ((1000, 999), (1920, 1918)),
    ],
)
def test_output_size_follows_spec_formula(size, expected):
    assert output_size(*size) == expected


def test_five_second_render_is_h264_high_yuv420p_bt709_faststart_at_spec_size(tmp_path):
    image = fixture_rgb("coffee", (360, 240))
    result, video, poster = _render(tmp_path, image, prompt="zoom in")
    info = probe(video)
    assert (result.width, result.height) == (720, 480)
    assert info["codec"] == "h264"
    assert info["profile"] == "High"
    assert info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (720, 480)
    assert info["frames"] == 150 == result.frames
    assert info["fps_exact"]
    assert info["duration"] == pytest.approx(5.0, abs=1e-6)
    assert result.duration_s == 5.0
    assert info["colorspace"] == 1
    assert info["color_primaries"] == 1
    assert info["color_trc"] == 1
    atoms = top_level_atoms(video)
    assert atoms.index("moov") < atoms.index("mdat")
    with Image.open(poster) as p:
        assert p.format == "JPEG"
        assert p.size == (720, 480)


def test_ten_second_render_has_exactly_300_frames(tmp_path):
    image = fixture_rgb("chelsea", (330, 300))
    result, video, _ = _render(tmp_path, image, prompt="pan right", duration=10)
    info = probe(video)
    assert info["frames"] == 300 == result.frames
    assert info["duration"] == pytest.approx(10.0, abs=1e-6)
    assert (info["width"], info["height"]) == output_size(330, 300) == (660, 600)


def test_source_size_sets_output_size_for_a_reduced_working_image(tmp_path):
    image = fixture_rgb("coffee", (360, 240))
    video, poster = tmp_path / "v.mp4", tmp_path / "p.jpg"
    result = render_video(
        image,
        RenderOptions(prompt="zoom out"),
        video_path=str(video),
        poster_path=str(poster),
        source_size=(3600, 2400),
    )
    assert (result.width, result.height) == (1920, 1280)
    assert probe(str(video))["width"] == 1920


def test_progress_reports_every_encoded_frame_in_order(tmp_path):
    seen = []
    image = fixture_rgb("coffee", (360, 240))
    render_video(
        image,
        RenderOptions(prompt="zoom in"),
        video_path=str(tmp_path / "v.mp4"),
        poster_path=str(tmp_path / "p.jpg"),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[0] == (1, 150)
    assert seen[-1] == (150, 150)
    assert [d for d, _ in seen] == list(range(1, 151))


def test_progress_exception_aborts_render_and_propagates(tmp_path):
    class Abort(Exception):
        pass

    calls = []

    def progress(done, total):
        calls.append(done)
        if done == 20:
            raise Abort("cancelled")

    image = fixture_rgb("coffee", (360, 240))
    video = tmp_path / "v.mp4"
    with pytest.raises(Abort):
        render_video(
            image,
            RenderOptions(prompt="zoom in"),
            video_path=str(video),
            poster_path=str(tmp_path / "p.jpg"),
            progress=progress,
        )
    assert calls[-1] == 20
    assert not video.exists()


def test_engine_package_imports_no_django():
    code = "import sys, generator.engine; assert 'django' not in sys.modules, sorted(m for m in sys.modules if m.startswith('django'))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert proc.returncode == 0, proc.stderr
    # and no module in the package imports it lazily either
    for path in (ROOT / "generator" / "engine").rglob("*.py"):
        text = path.read_text()
        assert "import django" not in text, path
        assert "from django" not in text, path


def test_zoom_in_makes_offcentre_patches_drift_outward_frame_over_frame(tmp_path):
    image = fixture_rgb("astronaut", (320, 320))
    _, video, _ = _render(tmp_path, image, prompt="zoom in", guidance_scale=0.9, negative_prompt="fade, vignette")
    frames = frames_gray(video, [30, 60, 90, 120])
    right = [patch_shift(frames[a], frames[b], 0.78, 0.5)[0] for a, b in ((30, 60), (60, 90), (90, 120))]
    left = [patch_shift(frames[a], frames[b], 0.22, 0.5)[0] for a, b in ((30, 60), (60, 90), (90, 120))]
    assert all(dx > 0.3 for dx in right), right
    assert all(dx < -0.3 for dx in left), left


def test_zoom_out_makes_offcentre_patches_drift_inward(tmp_path):
    image = fixture_rgb("astronaut", (320, 320))
    # Lossless: the motion is the engine's. The left patch moves 19 px between these frames, and
    # at CRF 20 the coding noise has tipped phase correlation to a wrong peak (-8.5 px) on the
    # very frames that decode losslessly to +19.1.
    _, video, _ = _render(tmp_path, image, crf=0, prompt="zoom out", guidance_scale=0.9)
    frames = frames_gray(video, [40, 100])
    assert patch_shift(frames[40], frames[100], 0.78, 0.5)[0] < -1.0
    assert patch_shift(frames[40], frames[100], 0.22, 0.5)[0] > 1.0


@pytest.mark.parametrize(
    ("prompt", "axis", "sign"),
    [("pan left", 0, 1), ("pan right", 0, -1), ("pan up", 1, 1), ("camera moves down", 1, -1)],
)
def test_pan_moves_content_opposite_to_the_camera(tmp_path, prompt, axis, sign):
    # Camera language: "pan left" moves the camera left, so the picture slides right.
    image = fixture_rgb("coffee", (360, 240))
    _, video, _ = _render(tmp_path, image, prompt=prompt)
    frames = frames_gray(video, [30, 75, 120])
    for a, b in ((30, 75), (75, 120)):
        shift = patch_shift(frames[a], frames[b], 0.5, 0.5, size=128)
        assert shift[axis] * sign > 2.0, (prompt, shift)
        assert abs(shift[1 - axis]) < 1.0, (prompt, shift)


def test_motion_is_smooth_subpixel_without_jumps(tmp_path):
    image = fixture_rgb("astronaut", (320, 320))
    _, video, _ = _render(tmp_path, image, prompt="zoom in", negative_prompt="fade, vignette")
    frames = frames_gray(video)
    steps = np.array([patch_shift(frames[i], frames[i + 1], 0.72, 0.6, size=128)[0] for i in range(20, 130)])
    # Per-frame steps are sub-pixel, never go backwards and change gradually (no integer-pixel
    # snapping, which shows up as steps alternating between 0 and 1 px).
    assert np.all(steps < 0.6)
    assert np.all(steps > -0.1)
    assert np.std(np.diff(steps)) < 0.12


def test_zooms_and_pans_drawn_through_resize_match_warp_affine(monkeypatch):
    # camera.warp_padded (docs/formats.md, "Speed"): an axis-aligned map is drawn by cv2.resize
    # where an offset places every sample within 1/128 px of its place, else by warpAffine; both
    # give the frame OpenCV's exact bilinear warp gives, to a level.
    import cv2

    from generator.engine import camera
    from generator.engine.camera import PaddedPlane, _resize_axis, warp, warp_padded

    fell_back: list[bool] = []
    monkeypatch.setattr(camera, "warp", lambda *a, **k: (fell_back.append(True), warp(*a, **k))[1])
    rng = np.random.default_rng(3)
    plane = cv2.GaussianBlur(rng.integers(0, 256, (700, 1100), dtype=np.uint8), (0, 0), 1.5)
    padded = PaddedPlane(plane)
    resized = 0
    for scale, bx, by in [
        (1.3719, 40.3, 12.7),
        (0.8421, 5.1, 3.9),
        (1.61803, 0.2, 0.4),
        (1.0, 17.25, 3.5),
        (2.0, 9.5, 4.5),
    ]:
        m = np.array([[scale, 0.0, bx], [0.0, scale, by], [0.0, 0.0, 1.0]])
        want, got = np.empty((320, 480), np.uint8), np.empty((320, 480), np.uint8)
        warp(plane, m, want)
        fell_back.clear()
        warp_padded(padded, m, got)
        fast = _resize_axis(scale, bx, 480, 1100) is not None and _resize_axis(scale, by, 320, 700) is not None
        fast = fast and scale != 2.0  # exact halving is left to warpAffine (OpenCV's area shortcut)
        assert fell_back == ([] if fast else [True]), scale  # drawn by cv2.resize exactly when placeable
        resized += fast
        diff = np.abs(want.astype(np.int16) - got)
        assert diff.max() <= 1, scale
        if not fast:
            assert diff.max() == 0, scale  # drawn by warpAffine itself
    assert resized >= 2  # the fast path was really taken
    assert _resize_axis(1.0, 17.25, 480, 1100) is None  # every offset lands a quarter pixel off
    # A perspective map is always warpAffine's / warpPerspective's.
    m = np.array([[1.2, 0.01, 30.0], [0.0, 1.2, 20.0], [1e-5, 0.0, 1.0]])
    want, got = np.empty((320, 480), np.uint8), np.empty((320, 480), np.uint8)
    warp(plane, m, want)
    warp_padded(padded, m, got)
    assert np.array_equal(want, got)


def test_any_zoom_or_pan_draws_within_a_level_of_warp_affine():
    # warp_padded on arbitrary scales, offsets and plane/frame sizes (odd ones included): never
    # fails, never reads outside what BORDER_REPLICATE gives, stays within a level of warpAffine.
    import cv2
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from generator.engine.camera import PaddedPlane, warp, warp_padded

    rng = np.random.default_rng(5)
    plane = cv2.GaussianBlur(rng.integers(0, 256, (411, 537), dtype=np.uint8), (0, 0), 1.5)
    padded = PaddedPlane(plane)

    @settings(max_examples=150, deadline=None, database=None)
    @given(
        scale=st.floats(0.3, 3.5),
        bx=st.floats(-20.0, 300.0),
        by=st.floats(-20.0, 200.0),
        w=st.integers(16, 301),
        h=st.integers(16, 223),
    )
    def check(scale, bx, by, w, h):
        m = np.array([[scale, 0.0, bx], [0.0, scale * 1.0001, by], [0.0, 0.0, 1.0]])
        want, got = np.empty((h, w), np.uint8), np.empty((h, w), np.uint8)
        warp(plane, m, want)
        assert warp_padded(padded, m, got) is got
        assert np.abs(want.astype(np.int16) - got).max() <= 1
        # Left in the scratch for the caller (the vignette's way in): the same frame, dst untouched
        # where cv2.resize drew it, dst itself where warpAffine did.
        other = np.zeros((h, w), np.uint8)
        drawn = warp_padded(padded, m, other, copy=False)
        assert drawn.shape == (h, w)
        assert np.array_equal(drawn, got)
        assert drawn is other or not other.any()

    check()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice is Linux's")
def test_frames_are_drawn_ahead_of_the_encoder_at_a_lower_priority(tmp_path):
    # docs/formats.md, "Speed": the render thread may run up to encode.AHEAD frames ahead of
    # libx264, never so far that it draws into a buffer the encoder has not copied yet (frames
    # are drawn into a ring of frames.RING buffers handed over without a copy, as the renderer
    # does), and at RENDER_NICE lower priority than the caller, whose own is untouched.
    import os
    import threading
    import time

    import av

    from generator.engine.encode import AHEAD, IN_FLIGHT, RENDER_NICE, encode_frames
    from generator.engine.frames import RING

    w, h, total = 64, 48, 40
    ring = [np.empty(w * h * 3 // 2, np.uint8) for _ in range(RING)]
    done = [0]
    ahead: list[int] = []
    priority: list[int] = []
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def produce():
        priority.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        for i in range(total):
            ahead.append(i - done[0])  # frames drawn and not yet encoded, this one aside
            buf = ring[i % RING]
            buf[:] = 16 + i
            yield av.VideoFrame.from_numpy_buffer(buf.reshape(h * 3 // 2, w), format="yuv420p")

    def progress(count: int, _total: int) -> None:
        done[0] = count
        time.sleep(0.01)  # a slow encoder: the renderer gets as far ahead as it may

    encode_frames(str(tmp_path / "a.mp4"), w, h, total, produce, progress=progress)
    assert priority == [min(19, mine + RENDER_NICE)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
    # AHEAD queued and one being encoded (one more while progress is being reported).
    assert AHEAD <= max(ahead) <= IN_FLIGHT < RING
    with av.open(str(tmp_path / "a.mp4")) as video:  # every frame, in order, none overwritten
        levels = [round(float(f.to_ndarray(format="yuv420p")[:h].mean())) for f in video.decode(video=0)]
    assert levels == [16 + i for i in range(total)]
