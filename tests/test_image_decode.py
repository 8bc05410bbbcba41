"""decode_image: every accepted format comes out upright with the right colours; bad input is refused."""

from __future__ import annotations

import io
import time

import cv2
import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms

from generator.engine import DecodedImage, ImageRejected, decode_image, output_size
from generator.engine import decode as decode_module
from generator.engine.decode import ImageTooLarge, load_reduced, open_image
from tests.factories import matrix_icc_profile, png_header_only
from tests.test_engine_support import encode, fixture_rgb

pillow_heif.register_heif_opener()


def _quadrant_means(rgb: np.ndarray) -> np.ndarray:
    """Mean colour of the four quadrants: catches rotation, mirroring and colour errors at once."""
    h, w = rgb.shape[:2]
    quads = [rgb[: h // 2, : w // 2], rgb[: h // 2, w // 2 :], rgb[h // 2 :, : w // 2], rgb[h // 2 :, w // 2 :]]
    return np.array([q.reshape(-1, 3).mean(axis=0) for q in quads])


def _assert_same_picture(decoded: DecodedImage, source: np.ndarray, tol: float = 6.0) -> None:
    assert decoded.pixels.dtype == np.uint8
    assert decoded.pixels.shape == source.shape
    diff = np.abs(_quadrant_means(decoded.pixels) - _quadrant_means(source))
    assert diff.max() < tol, diff


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return fixture_rgb("coffee", (450, 300))


def test_jpeg_decodes_with_source_colours(photo):
    d = decode_image(encode(Image.fromarray(photo), "JPEG", quality=92))
    assert (d.format, d.mime, d.ext) == ("jpeg", "image/jpeg", "jpg")
    assert (d.width, d.height) == (450, 300)
    _assert_same_picture(d, photo)


def test_png_with_alpha_is_composited_over_white(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[:, :150, 3] = 0  # left third fully transparent
    rgba[:, 150:300, 3] = 128  # middle third half transparent
    d = decode_image(encode(Image.fromarray(rgba), "PNG"))
    assert d.format == "png"
    px = d.pixels.astype(float)
    assert np.all(d.pixels[:, :150] == 255)
    expected_mid = photo[:, 150:300].astype(float) * (128 / 255) + 255 * (1 - 128 / 255)
    assert np.abs(px[:, 150:300] - expected_mid).max() <= 1.0
    assert np.array_equal(d.pixels[:, 300:], photo[:, 300:])


def test_la_png_is_grey_over_white():
    grey = np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (320, 1))
    alpha = np.full_like(grey, 255)
    alpha[:160] = 0
    d = decode_image(encode(Image.fromarray(np.dstack([grey, alpha])), "PNG"))
    assert np.all(d.pixels[:160] == 255)
    assert np.array_equal(d.pixels[160:, :, 0], grey[160:])
    assert np.array_equal(d.pixels[160:, :, 1], grey[160:])


def test_palette_png_keeps_palette_colours(photo):
    pal = Image.fromarray(photo).quantize(colors=64)
    expected = np.asarray(pal.convert("RGB"))
    d = decode_image(encode(pal, "PNG"))
    assert np.array_equal(d.pixels, expected)


def test_palette_png_with_transparent_index_goes_white(photo):
    pal = Image.fromarray(photo).quantize(colors=32)
    img = pal.copy()
    img.paste(31, (0, 0, 100, 100))
    d = decode_image(encode(img, "PNG", transparency=31))
    assert np.all(d.pixels[:100, :100] == 255)


def test_sixteen_bit_rgb_png_is_scaled_not_clipped(photo):
    deep = photo.astype(np.uint16) * 257
    ok, data = cv2.imencode(".png", cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    assert ok
    d = decode_image(data.tobytes())
    assert np.abs(d.pixels.astype(int) - photo.astype(int)).max() <= 1


def test_sixteen_bit_grey_png_is_scaled_not_clipped():
    grey = np.tile(np.linspace(0, 65535, 400).astype(np.uint16), (300, 1))
    d = decode_image(encode(Image.fromarray(grey), "PNG"))
    expected = np.round(grey / 257).astype(int)
    assert np.abs(d.pixels[:, :, 0].astype(int) - expected).max() <= 1
    assert d.pixels[:, -1].min() >= 254  # not a clipped white band everywhere above 255
    assert d.pixels[:, 0].max() <= 1


def test_cmyk_jpeg_is_converted_to_rgb(photo):
    cmyk = Image.fromarray(photo).convert("CMYK")
    d = decode_image(encode(cmyk, "JPEG", quality=95))
    assert d.format == "jpeg"
    _assert_same_picture(d, np.asarray(cmyk.convert("RGB")), tol=8.0)


@pytest.mark.parametrize("lossless", [True, False])
def test_webp_decodes_with_source_colours(photo, lossless):
    d = decode_image(encode(Image.fromarray(photo), "WEBP", lossless=lossless, quality=90))
    assert (d.format, d.mime, d.ext) == ("webp", "image/webp", "webp")
    _assert_same_picture(d, photo)


def test_heic_decodes_with_source_colours(photo):
    data = encode(Image.fromarray(photo), "HEIF", quality=90)
    assert data[4:8] == b"ftyp"
    d = decode_image(data)
    assert (d.format, d.ext) == ("heif", "heic")
    assert (d.width, d.height) == (450, 300)
    _assert_same_picture(d, photo, tol=8.0)


# Stored pixels for each EXIF orientation, such that applying the tag gives the upright photo.
_STORE = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.transpose(a, (1, 0, 2)),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.transpose(a[::-1, ::-1], (1, 0, 2)),
    8: lambda a: np.rot90(a, -1),
}


@pytest.mark.parametrize("orientation", sorted(_STORE))
def test_exif_rotated_jpeg_comes_out_upright(photo, orientation):
    stored = np.ascontiguousarray(_STORE[orientation](photo))
    img = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    d = decode_image(encode(img, "JPEG", quality=95, exif=exif))
    assert (d.width, d.height) == (450, 300)
    _assert_same_picture(d, photo)


def test_exif_rotation_is_applied_before_the_size_check():
    stored = np.zeros((400, 300, 3), np.uint8)  # 300 wide, 400 tall as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    d = decode_image(encode(Image.fromarray(stored), "JPEG", exif=exif))
    assert (d.width, d.height) == (400, 300)


def test_large_jpeg_is_reduced_to_working_size_but_reports_original_size():
    big = cv2.resize(fixture_rgb("coffee"), (4800, 3200), interpolation=cv2.INTER_CUBIC)
    d = decode_image(encode(Image.fromarray(big), "JPEG", quality=85))
    assert (d.width, d.height) == (4800, 3200)
    assert d.pixels.shape == (1920, 2880, 3)
    assert output_size(d.pixels.shape[1], d.pixels.shape[0]) == output_size(4800, 3200)
    small = cv2.resize(big, (2880, 1920), interpolation=cv2.INTER_AREA)
    _assert_same_picture(d, small)


def _with_exif(arr: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(arr), "JPEG", exif=exif)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (lambda: encode(Image.new("RGB", (299, 400), "red"), "PNG"), "too small"),
        (lambda: encode(Image.new("RGB", (400, 299), "red"), "JPEG"), "too small"),
        (lambda: _with_exif(np.zeros((299, 400, 3), np.uint8), 6), "299x400"),
        (lambda: encode(Image.new("RGB", (400, 400), "red"), "GIF"), "'GIF'"),
        (lambda: encode(Image.new("RGB", (400, 400), "red"), "BMP"), "'BMP'"),
        (lambda: encode(Image.new("RGB", (400, 400), "red"), "TIFF"), "'TIFF'"),
        (
            lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="400" height="400"></svg>',
            "'SVG'",
        ),
        (lambda: b"<!DOCTYPE html><html><body>Not found</body></html>", "'HTML'"),
        (lambda: b"", "empty"),
        (lambda: bytes(range(256)) * 40, "not a readable image"),
        (lambda: png_header_only(60000, 60000), "too large"),
        (lambda: png_header_only(8000, 6000), "too large"),
    ],
    ids=[
        "299-wide",
        "299-tall",
        "exif-rotated-to-299",
        "gif",
        "bmp",
        "tiff",
        "svg",
        "html-named-jpg",
        "empty",
        "noise",
        "bomb-60000",
        "48mp",
    ],
)
def test_bad_input_is_refused_with_a_readable_message(data, words):
    with pytest.raises(ImageRejected) as info:
        decode_image(data())
    message = str(info.value)
    assert words.lower() in message.lower(), message
    assert "Traceback" not in message


def test_unsupported_format_message_names_the_accepted_ones():
    with pytest.raises(ImageRejected, match=r"Unsupported image format 'GIF': use JPEG, PNG, WEBP or HEIC"):
        decode_image(encode(Image.new("RGB", (400, 400)), "GIF"))


def test_bomb_header_is_refused_without_decoding():
    data = png_header_only(60000, 60000)
    start = time.perf_counter()
    with pytest.raises(ImageRejected):
        decode_image(data)
    # Decoding 3.6 gigapixels would take minutes and ~10 GB; the header check takes microseconds.
    assert time.perf_counter() - start < 0.5


def test_truncated_jpeg_is_refused(photo):
    data = encode(Image.fromarray(photo), "JPEG", quality=90)
    with pytest.raises(ImageRejected, match="truncated"):
        decode_image(data[: len(data) // 2])


def test_truncated_png_is_refused(photo):
    data = encode(Image.fromarray(photo), "PNG")
    with pytest.raises(ImageRejected, match="truncated"):
        decode_image(data[: len(data) * 2 // 3])


def test_pixel_cap_is_configurable(photo):
    data = encode(Image.fromarray(photo), "PNG")
    with pytest.raises(ImageRejected, match="too large"):
        decode_image(data, max_pixels=100_000)
    assert decode_image(data, max_pixels=135_000).width == 450


def test_large_png_is_box_reduced_to_working_size_with_source_colours():
    big = cv2.resize(fixture_rgb("chelsea"), (4510, 3000), interpolation=cv2.INTER_LINEAR)
    ok, data = cv2.imencode(".png", cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    d = decode_image(data.tobytes())
    assert (d.width, d.height) == (4510, 3000)
    assert output_size(d.pixels.shape[1], d.pixels.shape[0]) == output_size(4510, 3000)
    small = cv2.resize(big, (d.pixels.shape[1], d.pixels.shape[0]), interpolation=cv2.INTER_AREA)
    _assert_same_picture(d, small, tol=2.0)


def _mpo(first: np.ndarray, second: np.ndarray, **kwargs) -> bytes:
    """A multi-picture JPEG (what stereo and some phone cameras save as .jpg) of two pictures."""
    data = encode(Image.fromarray(first), "MPO", save_all=True, append_images=[Image.fromarray(second)], **kwargs)
    with Image.open(io.BytesIO(data)) as check:  # really an MPO, not a plain JPEG
        assert (check.format, check.n_frames) == ("MPO", 2)
    return data


def test_mpo_photo_is_accepted_as_jpeg_using_its_first_picture(photo):
    d = decode_image(_mpo(photo, 255 - photo, quality=92))
    assert (d.format, d.mime, d.ext) == ("jpeg", "image/jpeg", "jpg")
    assert (d.width, d.height) == (450, 300)
    _assert_same_picture(d, photo)  # the first picture, not the inverted second one


def test_large_exif_rotated_mpo_is_reduced_upright_from_its_first_picture():
    upright = cv2.resize(fixture_rgb("coffee"), (6000, 4000), interpolation=cv2.INTER_LINEAR)
    stored = np.ascontiguousarray(_STORE[6](upright))
    exif = Image.Exif()
    exif[0x0112] = 6
    d = decode_image(_mpo(stored, np.zeros_like(stored), quality=85, exif=exif))
    assert (d.width, d.height) == (6000, 4000)
    assert d.pixels.shape == (1920, 2880, 3)
    _assert_same_picture(d, cv2.resize(upright, (2880, 1920), interpolation=cv2.INTER_AREA))


def test_a_header_over_pillows_own_bomb_limit_is_the_same_refusal():
    data = png_header_only(20_000, 20_000)  # 400 MP: more than twice Pillow's MAX_IMAGE_PIXELS
    assert len(data) < 100
    with pytest.raises(ImageTooLarge, match="too large") as info:
        open_image(data, max_pixels=40_000_000)
    assert info.value.max_pixels == 40_000_000


def test_open_image_checks_the_cap_on_the_header_alone():
    with pytest.raises(ImageTooLarge) as info:
        open_image(png_header_only(8000, 6000), max_pixels=40_000_000)
    assert info.value.size == (8000, 6000)
    with open_image(encode(Image.new("RGB", (400, 300)), "PNG"), max_pixels=120_000) as image:
        assert image.size == (400, 300)


@pytest.mark.parametrize(
    ("fmt", "mode", "largest"),
    [("PNG", "RGB", (334, 267)), ("PNG", "RGBA", (334, 267)), ("WEBP", "RGB", (334, 267)), ("JPEG", "RGB", (500, 400))],
)
def test_load_reduced_decodes_a_big_picture_small(fmt, mode, largest):
    data = encode(Image.new(mode, (2000, 1600), "red"), fmt)
    image = load_reduced(open_image(data, max_pixels=40_000_000), (240, 240))
    # PNG and WEBP: reduced by the whole factor 6; JPEG: decoded by libjpeg at 1/4 scale (1/8 would be under 240 high).
    assert image.size == largest
    assert min(image.size) >= 240


# Each picture below is converted in many bands of rows, the last one short: the bands must add up
# to exactly what converting the whole picture gives.
@pytest.fixture
def small_bands(monkeypatch):
    monkeypatch.setattr(decode_module, "_BAND_BYTES", 4 * 450 * 7)  # 7 rows of a 450-wide picture a band


def test_an_embedded_icc_profile_is_converted_to_srgb_band_by_band_as_a_whole(photo, small_bands):
    icc = matrix_icc_profile()
    data = encode(Image.fromarray(photo), "PNG", icc_profile=icc)
    with Image.open(io.BytesIO(data)) as img:
        assert img.info["icc_profile"] == icc
        stored = np.asarray(img.convert("RGB"))
        whole = ImageCms.profileToProfile(
            img, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode="RGB"
        )
        expected = np.asarray(whole)
    d = decode_image(data)
    assert np.array_equal(d.pixels, expected)
    # Adobe RGB's wider gamut: the same numbers are more saturated colours in sRGB.
    assert np.abs(d.pixels.astype(int) - stored.astype(int)).mean() > 3


def test_a_broken_icc_profile_is_ignored(photo):
    d = decode_image(encode(Image.fromarray(photo), "PNG", icc_profile=b"not a profile" * 20))
    assert np.array_equal(d.pixels, photo)


def test_compositing_over_white_matches_the_floating_point_formula_for_every_colour_and_alpha():
    c, a = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8))
    rgba = np.dstack([c, c, c, a])
    alpha = a.astype(np.float64) / 255.0
    expected = np.floor(c * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    got = decode_module._over_white(rgba)
    assert got.dtype == np.uint8
    assert np.array_equal(got[:, :, 0], expected)
    assert np.all(got[a == 0] == 255)
    assert np.array_equal(got[a == 255][:, 0], c[a == 255])


def test_a_png_with_alpha_is_composited_band_by_band_as_a_whole(photo, small_bands):
    ramp = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
    d = decode_image(encode(Image.fromarray(np.dstack([photo, ramp])), "PNG"))
    alpha = ramp[:, :, None] / 255.0
    assert np.array_equal(d.pixels, np.floor(photo * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8))


@pytest.mark.parametrize("alpha", [False, True], ids=["opaque", "alpha"])
@pytest.mark.parametrize("options", [{"lossless": True}, {"quality": 80}], ids=["lossless", "lossy"])
def test_a_webp_decoded_by_opencv_has_exactly_pillows_pixels(photo, small_bands, options, alpha):
    picture = Image.fromarray(photo)
    if alpha:
        ramp = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
        picture = Image.fromarray(np.dstack([photo, ramp]))
    data = encode(picture, "WEBP", **options)
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == ("RGBA" if alpha else "RGB")
        direct = decode_module._webp_pixels(data, img)  # the OpenCV path really is taken
        pillow = decode_module._to_rgb_array(img)
    assert direct is not None
    assert np.array_equal(direct, pillow)
    assert np.array_equal(decode_image(data).pixels, pillow)


def test_a_webp_with_an_icc_profile_and_exif_rotation_decodes_as_pillow_would(photo, small_bands):
    stored = np.ascontiguousarray(_STORE[6](photo))
    exif = Image.Exif()
    exif[0x0112] = 6
    icc = matrix_icc_profile()
    data = encode(Image.fromarray(stored), "WEBP", lossless=True, exif=exif, icc_profile=icc)
    d = decode_image(data)
    assert (d.width, d.height) == (450, 300)
    srgb = ImageCms.profileToProfile(
        Image.fromarray(photo), ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB")
    )
    assert np.array_equal(d.pixels, np.asarray(srgb))


def test_an_animated_webp_gives_its_first_frame(photo):
    data = encode(
        Image.fromarray(photo), "WEBP", lossless=True, save_all=True, append_images=[Image.fromarray(255 - photo)]
    )
    with Image.open(io.BytesIO(data)) as img:
        assert img.n_frames == 2
    assert np.array_equal(decode_image(data).pixels, photo)


def test_a_truncated_webp_is_refused(photo):
    data = encode(Image.fromarray(photo), "WEBP", quality=90)
    with pytest.raises(ImageRejected, match="truncated or corrupt|not a readable image"):
        decode_image(data[: len(data) * 2 // 3])


def test_a_reduced_heic_reports_the_photos_own_size():
    big = cv2.resize(fixture_rgb("coffee"), (3000, 2250), interpolation=cv2.INTER_LINEAR)
    d = decode_image(encode(Image.fromarray(big), "HEIF", quality=60), aspect_ratio="1:1", resolution="720p")
    assert (d.width, d.height) == (3000, 2250)  # not the half-size picture it was box-reduced to
    _assert_same_picture(d, cv2.resize(big, (d.pixels.shape[1], d.pixels.shape[0]), interpolation=cv2.INTER_AREA), 8.0)


def test_a_large_webp_is_area_resized_once_from_its_whole_picture():
    # Bigger than twice the working size: decoded whole by OpenCV (no box-reduction first, as a PNG
    # gets), then one area resize; the pixels are those of Pillow's decode resized the same way.
    big = cv2.resize(fixture_rgb("coffee"), (4800, 3200), interpolation=cv2.INTER_CUBIC)
    data = encode(Image.fromarray(big), "WEBP", quality=85)
    d = decode_image(data, aspect_ratio="1:1", resolution="720p")
    assert (d.width, d.height) == (4800, 3200)
    with Image.open(io.BytesIO(data)) as img:
        whole = np.asarray(img.convert("RGB"))
    expected = cv2.resize(whole, (d.pixels.shape[1], d.pixels.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.array_equal(d.pixels, expected)
    assert d.pixels.shape[1] * 2 <= 4800  # really reduced by more than a whole factor of 2


def test_a_truncated_heic_is_refused_even_when_pillow_was_relaxed_globally(photo, monkeypatch):
    from PIL import ImageFile

    data = encode(Image.fromarray(photo), "HEIF", quality=70)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageRejected, match="truncated or corrupt|not a readable image"):
        decode_image(data[: len(data) * 7 // 10])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
