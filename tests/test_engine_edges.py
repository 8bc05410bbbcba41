"""Cut-out edges measured in decoded frames: no dark rim, no shadow ring, no sweep outside the product.

The product layer is drawn from a matte (segment._matte) with its own colours and its contact
shadow moves with it (docs/formats.md, "Cut-out edges"). Each test compares the decoded frame with
the photo moved as the product moves (the "ideal" frame: product and shadow carried together),
or with the same video without the sweep.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from generator.engine import RenderOptions, make_plan, render_video
from generator.engine.camera import index_matrices, warp
from generator.engine.frames import FrameRenderer
from tests.test_engine_support import fixture_rgb, frames_gray

PREVIEW_FPS = 6
SHADOW, SHADOW_DECAY = 0.3, 6.0  # darkening at the product's edge, its fall-off (photo px)


def shadowed_shot(w: int = 400, h: int = 300) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A textured disc on a plain graded backdrop with a soft contact shadow; and the disc (cx, cy, r)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 212 - 10 * yy / h + rng.normal(0, 1.0, (h, w)).astype(np.float32)
    cx, cy, r = w / 2, h * 0.5, 0.27 * h
    d = np.hypot(xx - cx, yy - cy) - r
    backdrop = base * (1 - SHADOW * np.exp(-np.maximum(d, 0) / SHADOW_DECAY))
    ss = 4  # the disc's edge anti-aliased like a photo's: coverage from 4x4 samples a pixel
    y2, x2 = np.mgrid[0 : h * ss, 0 : w * ss]
    disc = (np.hypot((x2 + 0.5) / ss - cx, (y2 + 0.5) / ss - cy) < r).astype(np.float32)
    a = cv2.resize(disc, (w, h), interpolation=cv2.INTER_AREA)[:, :, None]
    tex = cv2.resize(fixture_rgb("astronaut"), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    product = 0.35 * tex + 0.65 * np.array([200, 120, 60], np.float32)
    out = backdrop[:, :, None] * (1 - a) + product * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), (cx, cy, r)


def _orbit_end(tmp_path, image: np.ndarray, guidance: float):
    """The last frame of an orbit (decoded, grey), the renderer that drew it and its view."""
    options = RenderOptions(prompt="orbit", guidance_scale=guidance)
    video = tmp_path / "orbit.mp4"
    result = render_video(
        image, options, video_path=str(video), poster_path=str(tmp_path / "o.jpg"), crf=0, preview_fps=PREVIEW_FPS
    )
    assert result.plan.separation.confident
    _, sep = make_plan(image, options)
    renderer = FrameRenderer(image, result.plan, result.width, result.height, sep, 0)
    last = result.frames - 1
    view = renderer.camera.at(last / result.plan.fps)
    return frames_gray(str(video), [last])[last], renderer, view


def _through(m: np.ndarray, src: np.ndarray, shape: tuple[int, ...], *, constant: bool = False) -> np.ndarray:
    """A photo-sized float plane as the frame shows it through the out->src map m."""
    out = np.empty(shape[:2], np.float32)
    luma, _ = index_matrices(m)
    return warp(src.astype(np.float32), luma, out, border=cv2.BORDER_CONSTANT if constant else cv2.BORDER_REPLICATE)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _disc_distance(m: np.ndarray, disc: tuple[float, float, float], shape: tuple[int, ...]) -> np.ndarray:
    """Signed distance (frame px) of every frame pixel from the disc's edge seen through map m."""
    cx, cy, r = disc
    c = np.linalg.inv(m) @ np.array([cx, cy, 1.0])
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.hypot(xx - c[0] / c[2], yy - c[1] / c[2]) - r / m[0, 0]


@pytest.fixture(scope="module")
def shot():
    return shadowed_shot()


def test_the_saucer_edge_has_no_dark_rim_in_an_orbit_frame(tmp_path):
    """Real photo (the studio cup): the band along the saucer's lower-left edge, relative to the
    backdrop beyond it, is no darker than in the photo moved with the product (a rim is a band
    darker than its surroundings: the old backdrop and shadow carried on the cut-out's edge)."""
    photo = fixture_rgb("product")
    frame, renderer, view = _orbit_end(tmp_path, photo, 0.85)
    _, hf = renderer.layer_maps(view)
    ideal = _through(hf, _grey(photo), frame.shape)
    # The saucer: its saturated red, in the lower-left quarter of the photo.
    hsv = cv2.cvtColor(photo, cv2.COLOR_RGB2HSV)
    red = cv2.morphologyEx(
        ((hsv[:, :, 1] > 110) & (hsv[:, :, 2] > 40)).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5))
    )
    h, w = red.shape
    yy, xx = np.mgrid[0:h, 0:w]
    quarter = _through(hf, (yy > 0.55 * h) & (xx < 0.5 * w), frame.shape, constant=True) > 0.5
    saucer = (_through(hf, red, frame.shape, constant=True) > 0.5).astype(np.uint8)
    outside = cv2.distanceTransform(1 - saucer, cv2.DIST_L2, 3)
    inside = cv2.distanceTransform(saucer, cv2.DIST_L2, 3)

    def contrast(img: np.ndarray, dist: np.ndarray, band: tuple[float, float], around: tuple[float, float]) -> float:
        near = quarter & (dist > band[0]) & (dist <= band[1])
        far = quarter & (dist > around[0]) & (dist <= around[1])
        return float(img[near].mean() - img[far].mean())

    for dist, band, around in ((outside, (3, 6), (12, 24)), (inside, (0.5, 3), (6, 12))):
        excess = contrast(frame, dist, band, around) - contrast(ideal, dist, band, around)
        assert excess > -3.0, (band, round(excess, 2))


def test_the_sweep_adds_no_light_outside_the_product(tmp_path, shot):
    image, disc = shot
    video = tmp_path / "sweep.mp4"
    result = render_video(
        image,
        RenderOptions(prompt="light sweep", negative_prompt="zoom", guidance_scale=0.9),
        video_path=str(video),
        poster_path=str(tmp_path / "s.jpg"),
        crf=0,
    )
    assert result.plan.moves == ()
    assert result.plan.separation.confident
    start, end = result.plan.to_json()["effects"][0]["passes"][0]
    frames = frames_gray(str(video), [5] + [int(result.fps * (start + (end - start) * k / 8)) for k in range(1, 8)])
    still = frames.pop(5)  # before the pass: the same picture without the sweep
    scale = result.width / image.shape[1]
    d = _disc_distance(np.diag([1 / scale, 1 / scale, 1.0]), disc, still.shape)
    around = (d > 3) & (d < 30)  # the shadow, just outside the product's edge (dilated by 3 px)
    on = d < -6
    lit_inside = max(float((f - still)[on].mean()) for f in frames.values())
    spill = max(float(np.clip(f - still, 0, None)[around].mean()) for f in frames.values())
    assert lit_inside > 8.0  # the sweep does light the product
    assert spill < 0.5, (spill, lit_inside)


def test_the_background_keeps_no_ring_where_the_contact_shadow_was(tmp_path, shot):
    image, disc = shot
    frame, renderer, view = _orbit_end(tmp_path, image, 0.9)
    hb, hf = renderer.layer_maps(view)
    moved = _disc_distance(hf, disc, frame.shape)  # the product (and its shadow) now
    left = _disc_distance(hb, disc, frame.shape)  # where the background layer had them
    scale = 1 / hf[0, 0]
    # Uncovered backdrop where the shadow was (its darkest part), away from where the product is.
    ring = (left > 0) & (left < 2 * SHADOW_DECAY * scale) & (moved > 4 * SHADOW_DECAY * scale)
    assert ring.sum() > 500
    ideal = _through(hf, _grey(image), frame.shape)
    darker = float((frame - ideal)[ring].mean())
    assert darker > -1.0, (darker, int(ring.sum()))
