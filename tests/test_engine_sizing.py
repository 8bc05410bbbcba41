"""output_size: the video's size for every shape and resolution (docs/formats.md), computed in one place."""

from __future__ import annotations

import pytest

from generator.engine.sizing import ASPECT_RATIOS, RESOLUTIONS, SOURCE, output_size

FIXED = {
    ("16:9", "1080p"): (1920, 1080),
    ("9:16", "1080p"): (1080, 1920),
    ("1:1", "1080p"): (1080, 1080),
    ("4:5", "1080p"): (1080, 1350),
    ("16:9", "720p"): (1280, 720),
    ("9:16", "720p"): (720, 1280),
    ("1:1", "720p"): (720, 720),
    ("4:5", "720p"): (720, 900),
}


@pytest.mark.parametrize(("shape", "resolution"), list(FIXED))
@pytest.mark.parametrize("photo", [(4000, 3000), (3000, 4000), (300, 300), (2400, 1600), (1080, 1920)])
def test_a_fixed_shape_has_its_size_whatever_the_photo(shape, resolution, photo):
    assert output_size(*photo, aspect_ratio=shape, resolution=resolution) == FIXED[(shape, resolution)]


def test_every_shape_and_resolution_is_covered():
    assert {(shape, res) for shape in ASPECT_RATIOS for res in RESOLUTIONS} == set(FIXED)


@pytest.mark.parametrize(
    ("photo", "expected_1080p", "expected_720p"),
    [
        ((4000, 3000), (1920, 1440), (1280, 960)),
        ((3000, 4000), (1440, 1920), (960, 1280)),
        ((600, 400), (1200, 800), (1200, 800)),  # at most twice the photo, at either resolution
        ((700, 500), (1400, 1000), (1280, 914)),
        ((1921, 1081), (1920, 1080), (1280, 720)),
    ],
)
def test_the_photos_own_shape_caps_the_long_side_at_1920_or_1280(photo, expected_1080p, expected_720p):
    assert output_size(*photo) == expected_1080p
    assert output_size(*photo, aspect_ratio=SOURCE, resolution="1080p") == expected_1080p
    assert output_size(*photo, resolution="720p") == expected_720p


@pytest.mark.parametrize("shape", [SOURCE, *ASPECT_RATIOS])
@pytest.mark.parametrize("resolution", list(RESOLUTIONS))
def test_every_size_is_even_for_yuv420(shape, resolution):
    for photo in [(301, 333), (333, 301), (1000, 999), (5001, 2999)]:
        width, height = output_size(*photo, aspect_ratio=shape, resolution=resolution)
        assert (width % 2, height % 2) == (0, 0)


def test_unknown_shape_or_resolution_and_empty_photos_are_refused():
    with pytest.raises(KeyError):
        output_size(800, 600, aspect_ratio="21:9")
    with pytest.raises(KeyError):
        output_size(800, 600, resolution="4k")
    with pytest.raises(ValueError, match="positive"):
        output_size(0, 600, aspect_ratio="9:16")
