"""Turn untrusted image bytes into an upright RGB array, refusing anything unsafe or unsupported."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageFile

from .sizing import SOURCE, working_size

pillow_heif.register_heif_opener()

# Pillow's own names for the four decoders we accept; nothing else is ever tried.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
_FORMAT_INFO = {
    "JPEG": ("jpeg", "image/jpeg", "jpg"),
    "PNG": ("png", "image/png", "png"),
    "WEBP": ("webp", "image/webp", "webp"),
    "HEIF": ("heif", "image/heif", "heic"),
}
# Pillow names a multi-picture JPEG (MPO: Fujifilm, Nintendo, stereo and some phone cameras,
# usually saved as .jpg) after its container. Its first picture is an ordinary JPEG photo, and
# that picture is what Pillow opens and decodes unless asked to seek: accept it as a JPEG.
_FORMAT_ALIASES = {"MPO": "JPEG"}
_ACCEPTED = "use JPEG, PNG, WEBP or HEIC"
# EXIF orientations that swap width and height.
_TRANSPOSED = {5, 6, 7, 8}
_SRGB = ImageCms.createProfile("sRGB")
# Modes Image.reduce() averages correctly (alpha ones premultiplied); the others are decoded whole.
_REDUCIBLE_MODES = ("RGB", "L", "RGBA", "LA")
# Pixels are converted in bands of about this many bytes (_band_rows).
_BAND_BYTES = 4 << 20


class ImageRejected(Exception):
    """An input image the service refuses; the message is safe to show to the user."""


@dataclass(frozen=True)
class DecodedImage:
    """An upright RGB image ready for the engine, with the facts the service reports."""

    pixels: np.ndarray
    format: str
    mime: str
    ext: str
    width: int
    height: int


def image_format(img: Image.Image) -> str:
    """Return Pillow's format name for an opened image, counting a multi-picture JPEG as JPEG."""
    fmt = img.format or ""
    return _FORMAT_ALIASES.get(fmt, fmt)


def _sniff(data: bytes) -> str | None:
    """Name a well-known unsupported format from its first bytes, for a helpful message."""
    head = data[:512]
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "TIFF"
    if head.startswith(b"\x00\x00\x01\x00"):
        return "ICO"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "AVIF"
    if b"<svg" in stripped:
        return "SVG"
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in stripped:
        return "HTML"
    if stripped.startswith(b"<?xml"):
        return "XML"
    return None


def _orientation(img: Image.Image) -> int:
    """Read the EXIF orientation tag (1 when absent or unreadable)."""
    try:
        value = int(img.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block must not make a good picture fail
        return 1
    return value if 1 <= value <= 8 else 1


def _upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright by their EXIF orientation (done on the small, reduced array)."""
    if orientation == 2:
        return cv2.flip(pixels, 1)
    if orientation == 3:
        return cv2.rotate(pixels, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(pixels, 0)
    if orientation == 5:
        return cv2.transpose(pixels)
    if orientation == 6:
        return cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(pixels), -1)
    if orientation == 8:
        return cv2.rotate(pixels, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return pixels


def _srgb_transform(img: Image.Image) -> ImageCms.ImageCmsTransform | None:
    """The embedded ICC profile's transform to sRGB (CMYK and wide-gamut photos); None without one.

    Built once and applied a band at a time: LittleCMS maps each pixel on its own, so the bands
    together are byte for byte what converting the whole picture gives, without its second copy.
    """
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "CMYK"):
        return None
    try:
        return ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB, img.mode, "RGB")
    except Exception:  # a broken profile falls back to Pillow's plain conversion
        return None


def _band_rows(width: int, height: int) -> range:
    """Where each band of rows that pixels are converted in starts: bands of about _BAND_BYTES of RGBA."""
    return range(0, height, max(1, _BAND_BYTES // (4 * width)))


def _over_white(rgba: np.ndarray) -> np.ndarray:
    """Composite H x W x 4 uint8 RGBA over white, rounded to nearest: c*a/255 + 255*(1 - a/255).

    In integers, exactly: the value times 255 is an integer that never lies halfway, so
    (2 * that + 255) // 510 rounds it as the floating-point formula does.
    """
    alpha = rgba[:, :, 3:4].astype(np.uint32)
    return ((2 * (rgba[:, :, :3] * alpha + 255 * (255 - alpha)) + 255) // 510).astype(np.uint8)


def _deep_grey(band: Image.Image) -> np.ndarray:
    """16-bit greyscale (I;16 or I) scaled 0..65535 to 0..255 instead of clipped, as RGB."""
    arr8 = np.clip((np.asarray(band).astype(np.float32) / 257.0) + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(arr8[:, :, None], 3, axis=2)


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Return H x W x 3 uint8 RGB, compositing alpha over white, scaling deep images and mapping ICC colours to sRGB.

    Every mode but F is converted a band of rows at a time into the one output array: a whole-picture
    conversion would hold the picture a second time (40 MP of RGBA is 160 MB), and np.asarray(img)
    goes through img.tobytes(), which holds it twice more (its chunks and their join).
    """
    mode = img.mode
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        top = float(arr.max()) if arr.size else 1.0
        scale = 255.0 if top <= 1.0 else (255.0 / 65535.0 if top > 255 else 1.0)
        arr8 = np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(arr8[:, :, None], 3, axis=2))
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return _converted_in_bands(img, _deep_grey)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB", "1") and "transparency" in img.info
    )
    if has_alpha:
        return _converted_in_bands(img, lambda band: _over_white(np.asarray(band.convert("RGBA"))))
    transform = _srgb_transform(img)

    def rgb(band: Image.Image) -> np.ndarray:
        if transform is not None:
            band = transform.apply(band)
        elif band.mode != "RGB":
            band = band.convert("RGB")
        return np.frombuffer(band.tobytes(), np.uint8).reshape(band.height, band.width, 3)

    return _converted_in_bands(img, rgb)


def _converted_in_bands(img: Image.Image, convert: Callable[[Image.Image], np.ndarray]) -> np.ndarray:
    """Fill an H x W x 3 uint8 array from `convert` applied to each band of rows of `img`."""
    w, h = img.size
    out = np.empty((h, w, 3), np.uint8)
    rows = _band_rows(w, h)
    for y0 in rows:
        y1 = min(h, y0 + rows.step)
        out[y0:y1] = convert(img.crop((0, y0, w, y1)))
    return out


def _webp_pixels(data: bytes, img: Image.Image) -> np.ndarray | None:
    """A still WebP's pixels as stored, decoded by OpenCV's libwebp; None leaves it to Pillow.

    Pillow's WebP decoder holds the decoded bytes beside its image and ours (631 MiB for 40 MP);
    OpenCV decodes straight into one array, the same pixels (tests/test_image_decode.py). An
    embedded ICC profile and alpha are handled band by band as for the other formats. The whole
    picture is then area-resized once to working size (docs/formats.md, "Memory"), where a PNG is
    first box-reduced by a whole factor; Pillow's WebP decoder cannot decode smaller either.
    """
    if getattr(img, "n_frames", 1) != 1 or img.mode not in ("RGB", "RGBA"):
        return None
    flags = (cv2.IMREAD_UNCHANGED if img.mode == "RGBA" else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
    stored = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    w, h = img.size
    if stored is None or stored.shape != (h, w, 4 if img.mode == "RGBA" else 3):
        return None
    bands = _band_rows(w, h)
    out: np.ndarray
    if img.mode == "RGBA":
        out = np.empty((h, w, 3), np.uint8)
        for y0 in bands:
            out[y0 : y0 + bands.step] = _over_white(stored[y0 : y0 + bands.step][:, :, [2, 1, 0, 3]])
        del stored
    else:
        out = cv2.cvtColor(stored, cv2.COLOR_BGR2RGB, dst=stored)
    transform = _srgb_transform(img) if img.mode == "RGB" else None
    if transform is not None:
        for y0 in bands:
            rows = out[y0 : y0 + bands.step]
            band = transform.apply(Image.frombytes("RGB", (w, len(rows)), rows.tobytes()))
            rows[:] = np.frombuffer(band.tobytes(), np.uint8).reshape(rows.shape)
    return out


class ImageTooLarge(ImageRejected):
    """An image whose header claims more pixels than accepted; nothing of it was decoded."""

    def __init__(self, *, max_pixels: int, size: tuple[int, int] | None = None) -> None:
        self.max_pixels, self.size = max_pixels, size
        claimed = f"{size[0]}x{size[1]} is {size[0] * size[1]:,} pixels, " if size else ""
        super().__init__(f"Image is too large: {claimed}at most {max_pixels:,} pixels are accepted")


def open_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Open untrusted image bytes reading only the header; ImageRejected unless it is an accepted format within the cap.

    The one door through which every image is opened (the worker, uploads, storage thumbnails): the
    pixel cap is checked on the header's size before a single pixel is decoded, so a small file that
    decodes to a huge picture (a decompression bomb) costs nothing. Pillow's own bomb limit, hit when
    the header claims still more, is the same refusal. The caller closes the image.
    """
    if not data:
        raise ImageRejected("The file is empty: use JPEG, PNG, WEBP or HEIC")
    try:
        img: Image.Image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(max_pixels=max_pixels) from exc
    except Exception as exc:
        named = _sniff(data)
        if named:
            raise ImageRejected(f"Unsupported image format '{named}': {_ACCEPTED}") from exc
        raise ImageRejected(f"The file is not a readable image: {_ACCEPTED}") from exc
    fmt = image_format(img)
    raw_w, raw_h = img.size
    problem = None
    if fmt not in _FORMAT_INFO:  # defensive: formats= already restricts this
        problem = ImageRejected(f"Unsupported image format '{fmt or 'unknown'}': {_ACCEPTED}")
    elif raw_w <= 0 or raw_h <= 0:
        problem = ImageRejected("The image has no pixels")
    elif raw_w * raw_h > max_pixels:
        problem = ImageTooLarge(max_pixels=max_pixels, size=(raw_w, raw_h))
    if problem is not None:
        img.close()
        raise problem
    return img


def _insist_on_whole_files() -> None:
    """Undo a global relaxation of Pillow (and pillow-heif, which follows it) before decoding."""
    if getattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False):
        # Another part of the process relaxed Pillow globally; we still insist on whole files.
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def load_reduced(img: Image.Image, need: tuple[int, int]) -> Image.Image:
    """Decode an opened image at the smallest size that still covers `need` (width, height as stored).

    JPEGs are decoded by libjpeg at 1/2, 1/4 or 1/8 scale (draft); other formats are box-reduced by
    a whole factor right after decoding, before any converted or rotated full-size copy is made. The
    result may be a new image (the opened one is then closed) and is at least `need` on each side
    when the picture was.
    """
    need_w, need_h = max(1, need[0]), max(1, need[1])
    if image_format(img) == "JPEG" and (need_w < img.size[0] or need_h < img.size[1]):
        with contextlib.suppress(Exception):
            img.draft(img.mode if img.mode in ("RGB", "L", "CMYK") else "RGB", (need_w, need_h))
    _insist_on_whole_files()
    img.load()
    factor = int(min(img.size[0] / need_w, img.size[1] / need_h))
    if factor >= 2 and img.mode in _REDUCIBLE_MODES:
        reduced = img.reduce(factor)
        img.close()
        return reduced
    return img


def _check_min_side(width: int, height: int, min_side: int) -> None:
    if min(width, height) < min_side:
        raise ImageRejected(f"Image is too small: {width}x{height}; each side must be at least {min_side} px")


def decode_image(
    data: bytes,
    *,
    max_pixels: int = 40_000_000,
    min_side: int = 300,
    aspect_ratio: str = SOURCE,
    resolution: str = "1080p",
) -> DecodedImage:
    """Decode JPEG/PNG/WEBP/HEIF bytes into an upright RGB image reduced to working size.

    The working size follows the video's shape and resolution (sizing.working_size).
    """
    img = open_image(data, max_pixels=max_pixels)
    fmt = image_format(img)
    raw_w, raw_h = img.size
    # pillow-heif applies the container's rotation itself; only other formats follow the EXIF tag.
    orientation = _orientation(img) if fmt != "HEIF" else 1
    width, height = (raw_h, raw_w) if orientation in _TRANSPOSED else (raw_w, raw_h)
    try:
        _check_min_side(width, height, min_side)
    except ImageRejected:
        img.close()
        raise

    try:
        if fmt == "HEIF":
            _insist_on_whole_files()
            # pillow-heif turns the picture as the container says while it decodes: the decoded size
            # is the upright one (decoded whole here; load_reduced then only box-reduces it).
            img.load()
            if img.size != (width, height):
                width, height = img.size
                _check_min_side(width, height, min_side)
        work_w, work_h = working_size(width, height, aspect_ratio, resolution)
        stored_work = (work_h, work_w) if orientation in _TRANSPOSED else (work_w, work_h)
        pixels = _webp_pixels(data, img) if fmt == "WEBP" else None
        if pixels is None:
            # Decoded reduced (this is what keeps a 40 MP photo under budget).
            img = load_reduced(img, stored_work)
            pixels = _to_rgb_array(img)
    except ImageRejected:
        raise
    except MemoryError as exc:
        raise ImageRejected("Image is too large to decode") from exc
    except Exception as exc:
        raise ImageRejected("The image file is truncated or corrupt") from exc
    finally:
        img.close()
    # Sized, then turned upright: the turn copies the small array, not the stored picture.
    if (pixels.shape[1], pixels.shape[0]) != stored_work:
        pixels = cv2.resize(pixels, stored_work, interpolation=cv2.INTER_AREA)
    pixels = _upright(pixels, orientation)
    info = _FORMAT_INFO[fmt]
    return DecodedImage(
        pixels=np.ascontiguousarray(pixels),
        format=info[0],
        mime=info[1],
        ext=info[2],
        width=int(width),
        height=int(height),
    )


__all__ = [
    "ALLOWED_FORMATS",
    "DecodedImage",
    "ImageRejected",
    "ImageTooLarge",
    "decode_image",
    "image_format",
    "load_reduced",
    "open_image",
]
