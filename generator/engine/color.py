"""BT.709 limited-range conversion between RGB and the planar YUV the encoder consumes."""

from __future__ import annotations

import cv2
import numpy as np

_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB
# Rows produce Y, Cb, Cr from R, G, B in 0..255, with the 16/128 offsets in the last column.
_RGB_TO_YUV = np.array(
    [
        [219 / 255 * _KR, 219 / 255 * _KG, 219 / 255 * _KB, 16.0],
        [224 / 255 * -_KR / (2 * (1 - _KB)), 224 / 255 * -_KG / (2 * (1 - _KB)), 224 / 255 * 0.5, 128.0],
        [224 / 255 * 0.5, 224 / 255 * -_KG / (2 * (1 - _KR)), 224 / 255 * -_KB / (2 * (1 - _KR)), 128.0],
    ],
    dtype=np.float64,
)
_FWD = _RGB_TO_YUV[:, :3]
_INV = np.linalg.inv(_FWD)
_YUV_TO_RGB = np.hstack([_INV, (-_INV @ _RGB_TO_YUV[:, 3]).reshape(3, 1)])


def rgb_to_yuv444(rgb: np.ndarray) -> np.ndarray:
    """Convert H x W x 3 uint8 RGB to H x W x 3 uint8 Y'CbCr (BT.709, limited range)."""
    return cv2.transform(rgb, _RGB_TO_YUV)


def rgb_to_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return full-resolution Y and half-resolution Cb, Cr planes of an RGB image."""
    h, w = rgb.shape[:2]
    yuv = rgb_to_yuv444(rgb)
    # One extractChannel a plane: the same bytes as cv2.split, which OpenCV 5 does 4x slower.
    y, u, v = (cv2.extractChannel(yuv, i) for i in range(3))
    half = ((w + 1) // 2, (h + 1) // 2)
    u = cv2.resize(u, half, interpolation=cv2.INTER_AREA)
    v = cv2.resize(v, half, interpolation=cv2.INTER_AREA)
    return y, u, v


def planes_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Convert Y plus half-resolution Cb, Cr planes back to H x W x 3 uint8 RGB."""
    h, w = y.shape
    uu = cv2.resize(u, (w, h), interpolation=cv2.INTER_LINEAR)
    vv = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.transform(cv2.merge([y, uu, vv]), _YUV_TO_RGB)


def i420_to_rgb(buf: np.ndarray, width: int, height: int) -> np.ndarray:
    """Convert a packed yuv420p buffer (BT.709 limited) to RGB."""
    flat = buf.reshape(-1)
    n = width * height
    q = n // 4
    y = flat[:n].reshape(height, width)
    u = flat[n : n + q].reshape(height // 2, width // 2)
    v = flat[n + q : n + 2 * q].reshape(height // 2, width // 2)
    return planes_to_rgb(y, u, v)
