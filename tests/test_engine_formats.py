"""Formats in the engine, measured in the decoded video: sizes, framing, fills and loops (docs/formats.md)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from generator.engine import Format, RenderOptions, render_video
from generator.engine.sizing import ASPECT_RATIOS, RESOLUTIONS
from tests.test_engine_support import fixture_rgb, frames_rgb, probe

# Tests draw each clip at a few frames a second: the same moves, a fraction of the work.
PREVIEW_FPS = 3
PRODUCT_RED = (200, 30, 30)
STILL = "vignette, fade"  # the negative prompt that leaves the fill as it was drawn


def studio_photo(
    size: tuple[int, int] = (640, 480), centre: tuple[float, float] = (0.5, 0.5)
) -> tuple[np.ndarray, np.ndarray]:
    """A red product on a plain, softly graded studio backdrop, and the product's known mask."""
    w, h = size
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    backdrop = np.broadcast_to(np.float32(214) + 14 * yy, (h, w, 3))
    noise = np.random.default_rng(7).normal(0, 1.5, (h, w, 3)).astype(np.float32)
    img = np.clip(backdrop + noise, 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cx, cy = int(centre[0] * w), int(centre[1] * h)
    cv2.ellipse(mask, (cx, cy), (int(0.2 * w), int(0.36 * h)), 0, 0, 360, 1, -1)
    img[mask > 0] = PRODUCT_RED
    # A little shading so the product is not one flat colour.
    img[(mask > 0) & (np.arange(w)[None, :] > cx + 0.1 * w)] = (170, 25, 25)
    return img, mask.astype(bool)


def render(
    tmp_path, img, *, name="v", prompt="slow zoom in", negative=None, preview=True, crf=20, **fmt
) -> tuple[str, dict]:
    path = str(tmp_path / f"{name}.mp4")
    result = render_video(
        img,
        RenderOptions(prompt=prompt, negative_prompt=negative, format=Format(**fmt)),
        video_path=path,
        poster_path=str(tmp_path / f"{name}.jpg"),
        preview_fps=PREVIEW_FPS if preview else None,
        crf=crf,
    )
    return path, result.plan.to_json()


def all_frames(path: str) -> list[np.ndarray]:
    n = probe(path)["frames"]
    got = frames_rgb(path, list(range(n)))
    return [got[i] for i in range(n)]


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("shape", sorted(ASPECT_RATIOS))
def test_every_shape_and_resolution_has_its_exact_frame_size(tmp_path, shape, resolution):
    img, _ = studio_photo()
    path, plan = render(tmp_path, img, aspect_ratio=shape, resolution=resolution, prompt="static")
    short = 1080 if resolution == "1080p" else 720
    rw, rh = ASPECT_RATIOS[shape]
    expected = (short * rw // rh, short) if rw >= rh else (short, short * rh // rw)
    facts = probe(path)
    assert (facts["width"], facts["height"]) == expected
    assert facts["frames"] == 5 * PREVIEW_FPS
    first = frames_rgb(path, [0])[0]
    assert first.shape[:2] == (expected[1], expected[0])
    assert plan["format"]["aspect_ratio"] == shape


def test_the_photos_own_shape_at_720p_caps_the_long_side_at_1280(tmp_path):
    img, _ = studio_photo()
    path, _ = render(tmp_path, img, resolution="720p", prompt="static")
    facts = probe(path)
    assert (facts["width"], facts["height"]) == (1280, 960)


def red_box(frame: np.ndarray) -> tuple[tuple[int, int, int, int], int]:
    """Bounding box and pixel count of the product's red in a decoded frame."""
    r, g, b = (frame[:, :, i].astype(np.int16) for i in range(3))
    red = (r > 120) & (r - g > 70) & (r - b > 70)
    ys, xs = np.nonzero(red)
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1), int(red.sum())


MOVES = ["zoom in", "zoom out", "pan left", "pan right", "pan up", "pan down", "tilt", "orbit", "float up"]


@pytest.mark.parametrize(
    ("move", "shape"),
    [(m, s) for m in MOVES for s in ("9:16", "16:9")] + [("zoom in", "1:1"), ("zoom in", "4:5"), ("pan up", "4:5")],
)
def test_the_product_stays_inside_every_frame_of_every_move(tmp_path, shape, move):
    # Off-centre and large: a plain cut of the shape would lose part of it.
    img, mask = studio_photo(centre=(0.42, 0.55))
    path, plan = render(tmp_path, img, aspect_ratio=shape, resolution="720p", prompt=f"dramatic {move}", negative=STILL)
    assert plan["moves"] or plan["effects"], plan
    frames = all_frames(path)
    h, w = frames[0].shape[:2]
    counts = []
    for i, frame in enumerate(frames):
        (x0, y0, x1, y1), n = red_box(frame)
        # Half the framing margin, for the encoder's blur and a tilt's perspective.
        mx, my = 0.025 * w, 0.025 * h
        inside = (x0 >= mx, y0 >= my, x1 <= w - mx, y1 <= h - my)
        assert all(inside), (i, (x0, y0, x1, y1), (w, h))
        counts.append(n)
    # Never cut: the product's area on screen follows the zoom smoothly, no frame loses a piece.
    assert min(counts) > 0.5 * max(counts)


def band_rows(frame: np.ndarray, rows: slice) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[rows].astype(np.float32)


@pytest.mark.parametrize("background", ["blur", "extend", "#1A2B3C"])
def test_blur_extend_and_colour_fill_every_pixel(tmp_path, background):
    img = fixture_rgb("chelsea")
    path, plan = render(
        tmp_path, img, aspect_ratio="9:16", resolution="720p", prompt="static", negative=STILL, background=background
    )
    assert plan["format"]["fill"] == background
    frame = frames_rgb(path, [7])[7]
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    # No black bars: every row and column is picture or fill.
    darkest = 10 if background.startswith("#") else 20
    assert gray.mean(axis=1).min() > darkest
    assert gray.mean(axis=0).min() > darkest
    photo = plan["format"]["photo"]
    scale = frame.shape[0] / plan["format"]["canvas"][1]
    top = int(photo[1] * scale)
    assert top > 50  # the photo is padded above (the cat's face is wide)
    fill = frame[: top - 8].reshape(-1, 3).astype(np.float32)
    if background.startswith("#"):
        want = np.array([int(background[i : i + 2], 16) for i in (1, 3, 5)], np.float32)
        assert np.abs(fill.mean(axis=0) - want).max() < 4
    else:
        # A fill made from the photo: its colours (not a flat grey), without its detail.
        assert fill.std(axis=0).max() > 1.0
        assert fill.mean(axis=0)[0] > fill.mean(axis=0)[2] + 10  # the cat's warm browns
        detail = np.abs(cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F))
        assert detail[: top - 8].mean() < 0.3 * detail[top + 8 : top + 200].mean()


def test_extend_on_a_plain_backdrop_shows_no_seam_at_the_photos_edge(tmp_path):
    img, _ = studio_photo()
    path, plan = render(
        tmp_path, img, aspect_ratio="9:16", resolution="1080p", prompt="static", negative=STILL, background="extend"
    )
    frame = frames_rgb(path, [7])[7]
    scale = frame.shape[0] / plan["format"]["canvas"][1]
    top = round(plan["format"]["photo"][1] * scale)
    bottom = round((plan["format"]["photo"][1] + plan["format"]["photo"][3]) * scale)
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    cols = slice(40, 200)  # the backdrop beside the product
    rows = gray[:, cols].mean(axis=1)
    step = 6

    def jump(y: int) -> float:
        return abs(float(rows[y + step // 2] - rows[y - step // 2]))

    for edge in (top, bottom):
        # Differences inside the photo between rows as far apart as the ones across the edge.
        inside = [jump(y) for y in range(top + 40, bottom - 40, step)]
        assert jump(edge) <= max(inside), (edge, jump(edge), max(inside))


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


@pytest.mark.parametrize(
    ("photo", "prompt"),
    [
        ("studio", "zoom in with sparkles and a light sweep"),
        ("chelsea", "pan right, float"),
        # Slow loops: neighbouring decoded frames differ by 0.05-0.34 grey levels only.
        ("studio", "orbit"),
        ("studio", "tilt"),
        ("chelsea", "tilt"),
    ],
)
@pytest.mark.parametrize("crf", [0, 20])
# Lossless (the motion alone) and at the shipped CRF 20, where the first frame is intra-coded and
# the last one predicted down the whole clip (encode._LoopCloser closes that gap, docs/formats.md).
def test_a_loop_closes_no_larger_than_a_step_between_neighbouring_frames(tmp_path, photo, prompt, crf):
    img = studio_photo()[0] if photo == "studio" else fixture_rgb("chelsea")
    path, plan = render(
        tmp_path, img, aspect_ratio="1:1", resolution="720p", prompt=prompt, preview=False, crf=crf, loop=True
    )
    assert not any(e["type"] == "fade" for e in plan["effects"])
    frames = all_frames(path)
    assert len(frames) == 150
    steps = [mad(frames[i], frames[i + 1]) for i in range(len(frames) - 1)]
    closure = mad(frames[-1], frames[0])
    assert closure <= float(np.median(steps)), (closure, np.median(steps), max(steps))
    # And it is a moving picture, not a still: halfway round the loop the picture has travelled.
    assert mad(frames[0], frames[len(frames) // 2]) > 1.0


def test_without_loop_the_same_clip_jumps_from_its_last_frame_to_its_first(tmp_path):
    img, _ = studio_photo()
    path, _ = render(
        tmp_path, img, aspect_ratio="1:1", resolution="720p", prompt="zoom in", negative=STILL, preview=False, crf=0
    )
    frames = all_frames(path)
    steps = [mad(frames[i], frames[i + 1]) for i in range(len(frames) - 1)]
    assert mad(frames[-1], frames[0]) > 3 * max(steps)  # a zoom that ends where it began is a loop


@pytest.mark.parametrize("prompt", ["orbit", "float up with a light sweep"])
def test_cropped_layers_draw_the_frames_the_whole_layers_draw(prompt):
    # A framed layered render keeps only what the camera can see (docs/formats.md, "Memory"); it
    # must draw what the uncropped layers draw, to OpenCV's rounding of a shifted map.
    from generator.engine.frames import FrameRenderer
    from generator.engine.render import _frame, make_plan

    img, _ = studio_photo(centre=(0.42, 0.55))
    fmt = Format(aspect_ratio="9:16", resolution="720p", background="blur")
    size = (720, 1280)
    plan, sep = make_plan(img, RenderOptions(prompt=prompt, format=fmt), frame_aspect=size[0] / size[1])
    plan = plan.with_(fps=6, frames=plan.duration * 6)
    canvas, sep, product, plan = _frame(img, plan, sep, fmt, size)
    assert sep is not None
    assert sep.confident
    whole = FrameRenderer(canvas, plan, *size, sep, 1, product=product)
    cropped = FrameRenderer(canvas, plan, *size, sep, 1, product=product, crop_layers=True)
    assert whole.layered
    assert cropped.layered
    # The crop really holds less than the whole canvas.
    assert cropped.fg_y.size < whole.fg_y.size
    assert cropped.bg_y.size < whole.bg_y.size
    moved = 0.0
    for i in range(0, plan.frames, 3):
        a = whole.frame(i).astype(np.int16)
        b = cropped.frame(i).astype(np.int16)
        assert np.abs(a - b).max() <= 1, i
        assert (a != b).mean() < 1e-3, i
        moved = max(moved, float(np.abs(a - whole.frame(0).astype(np.int16)).mean()))
    assert moved > 1.0  # the layers really move


@pytest.mark.parametrize(("prompt", "fmt"), [("float", {"aspect_ratio": "9:16"}), ("slow zoom in", None)])
def test_a_handed_photo_is_let_go_before_the_video_is_encoded(tmp_path, prompt, fmt):
    # The worker hands its decoded photo over (docs/formats.md, "Memory"): while frames are being
    # encoded nothing holds it, and the video is the one the pixels themselves give.
    import weakref

    from generator.engine import HandedPhoto

    img, _ = studio_photo()
    options = RenderOptions(prompt=prompt, format=Format(**fmt) if fmt else None)
    expected = str(tmp_path / "a.mp4")
    render_video(img.copy(), options, video_path=expected, poster_path=str(tmp_path / "a.jpg"), preview_fps=3)
    photo = HandedPhoto(img)
    alive = weakref.ref(img)
    del img
    seen: list[bool] = []
    path = str(tmp_path / "b.mp4")
    render_video(
        photo,
        options,
        video_path=path,
        poster_path=str(tmp_path / "b.jpg"),
        preview_fps=3,
        progress=lambda done, total: seen.append(alive() is None),
    )
    assert seen
    assert all(seen)
    with open(expected, "rb") as a, open(path, "rb") as b:
        assert a.read() == b.read()
    with pytest.raises(ValueError, match="already handed over"):
        photo.take()


def test_each_layer_and_the_canvas_are_let_go_of_once_they_are_drawn_from(monkeypatch):
    # docs/formats.md, "Memory": each photo-size layer goes once it is placed on the canvas, and
    # the frame renderer lets go of a handed canvas and separation once it has their planes; the
    # frames are those the same arrays give when the caller keeps them.
    import weakref
    from dataclasses import replace

    from generator.engine import frames as frames_module
    from generator.engine.frames import FrameRenderer
    from generator.engine.framing import Framing
    from generator.engine.handover import Handed
    from generator.engine.render import _frame, make_plan

    img, _ = studio_photo(centre=(0.42, 0.55))
    fmt = Format(aspect_ratio="9:16", resolution="720p", background="blur")
    size = (720, 1280)
    plan, sep = make_plan(img, RenderOptions(prompt="float", format=fmt), frame_aspect=size[0] / size[1])
    plan = plan.with_(fps=6, frames=plan.duration * 6)
    given: list[weakref.ref] = []
    earlier_gone: list[bool] = []
    place = Framing.place

    def spy(self, layer, **kwargs):
        earlier_gone.append(all(ref() is None for ref in given) and photo_ref() is None)
        given.append(weakref.ref(layer))
        return place(self, layer, **kwargs)

    monkeypatch.setattr(Framing, "place", spy)
    own_photo = img.copy()
    photo_ref = weakref.ref(own_photo)  # gone once the canvas and the photo-size layers are made
    photo = Handed(own_photo)
    del own_photo
    canvas, sep, product, plan = _frame(photo, plan, sep, fmt, size)
    assert sep is not None
    assert sep.background is not None
    assert len(given) == 4  # mask, plate, product colours, shadow
    assert all(earlier_gone)
    assert all(ref() is None for ref in given)
    with pytest.raises(ValueError, match="already handed over"):
        photo.take()

    kept = FrameRenderer(canvas, plan, *size, sep, 1, product=product, crop_layers=True)
    expected = [kept.frame(i).copy() for i in range(0, plan.frames, 5)]
    own_canvas = canvas.copy()
    own_sep = replace(sep, background=sep.background.copy(), foreground=sep.foreground.copy(), shadow=sep.shadow.copy())
    refs = [weakref.ref(own_canvas)] + [
        weakref.ref(getattr(own_sep, n)) for n in ("background", "foreground", "shadow")
    ]
    handed_canvas, handed_sep = Handed(own_canvas), Handed(own_sep)
    del own_canvas, own_sep
    # What is gone each time the renderer turns a picture into planes (the canvas, the plate, the
    # product's colours): after the canvas's planes, the canvas; after the separation's layers are
    # taken, a float's shadow layer and its unshaded plate (the plate drawn is a shaded copy, the
    # fifth reference, gone once its planes are cropped).
    gone: list[list[bool]] = []
    planes, layers = frames_module.rgb_to_planes, frames_module.product_layers

    def planes_spy(rgb):
        gone.append([ref() is None for ref in refs])
        return planes(rgb)

    def layers_spy(*args, **kwargs):
        made = layers(*args, **kwargs)
        refs.append(weakref.ref(made[2]))  # the shaded plate the float draws
        return made

    monkeypatch.setattr(frames_module, "rgb_to_planes", planes_spy)
    monkeypatch.setattr(frames_module, "product_layers", layers_spy)
    renderer = FrameRenderer(handed_canvas, plan, *size, handed_sep, 1, product=product, crop_layers=True)
    assert gone == [
        [False, False, False, False],
        [True, True, False, True, False],
        [True, True, False, True, True],
    ]
    assert [ref() is None for ref in refs] == [True] * 5
    got = [renderer.frame(i).copy() for i in range(0, plan.frames, 5)]
    assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))


def test_a_video_is_made_in_small_pages_and_the_setting_is_put_back(tmp_path):
    # docs/formats.md, "Memory": while it renders and encodes, the process has transparent huge
    # pages turned off (Linux's prctl switch; 4 KiB pages keep a 40 MP job's peak lower), and the
    # process's own setting is back once the video is made, whichever it was.
    import ctypes

    prctl = ctypes.CDLL(None).prctl
    get, set_ = 42, 41  # PR_GET_THP_DISABLE, PR_SET_THP_DISABLE
    img, _ = studio_photo()
    before = prctl(get, 0, 0, 0, 0)
    try:
        for own in (0, 1):
            assert prctl(set_, own, 0, 0, 0) == 0
            during: list[int] = []
            render_video(
                img,
                RenderOptions(prompt="zoom in", format=Format(aspect_ratio="1:1", resolution="720p")),
                video_path=str(tmp_path / f"{own}.mp4"),
                poster_path=str(tmp_path / f"{own}.jpg"),
                preview_fps=3,
                progress=lambda done, total, during=during: during.append(prctl(get, 0, 0, 0, 0)),
            )
            assert during
            assert set(during) == {1}
            assert prctl(get, 0, 0, 0, 0) == own
    finally:
        prctl(set_, before, 0, 0, 0)


@pytest.mark.parametrize("size", [(365, 244), (150, 100), (97, 61), (1100, 733), (3000, 2000)])
def test_the_fill_is_reduced_to_its_size_and_close_to_one_area_pass(size):
    # framing._area_reduced (docs/formats.md, "Speed"): the largest whole factor first, then the
    # remainder; exactly the size asked for and, once blurred as the fill is, within a level or so
    # of one INTER_AREA pass (a whole factor, or no reduction at all, gives the same pixels).
    from generator.engine.framing import _EXTEND_SMOOTH, _area_reduced

    photo = cv2.resize(fixture_rgb("astronaut"), (2400, 1600), interpolation=cv2.INTER_CUBIC)
    got = _area_reduced(photo, size).astype(np.float32)
    want = cv2.resize(photo, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    assert got.shape == want.shape
    if size in ((150, 100), (3000, 2000)):
        assert np.array_equal(got, want)
        return
    sigma = max(1.0, _EXTEND_SMOOTH * max(size))  # the lighter of the two fills' blurs
    blurred = np.abs(cv2.GaussianBlur(got, (0, 0), sigma) - cv2.GaussianBlur(want, (0, 0), sigma))
    assert blurred.mean() < 1.5
