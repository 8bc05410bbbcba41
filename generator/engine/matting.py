"""Closed-form matting (Levin, Lischinski and Weiss, 2008) of a trimap's unknown band.

The matting Laplacian is built only from the 3x3 windows that touch an unknown pixel, vectorised
in numpy, and only its rows for unknown pixels are kept; the band is then solved by conjugate
gradients with a Jacobi preconditioner (docs/formats.md, "Cut-out edges": why not pymatting).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import scipy.sparse

# Regularisation of each window's colour covariance (pymatting's default, the same system).
EPSILON = 1e-7
# The solve stops when the residual is this share of the right-hand side's norm.
RTOL = 1e-7
MAX_ITERATIONS = 10000
_WINDOW = 9  # 3x3


def closed_form_alpha(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Alpha (float64, unclipped) for `image` (H x W x 3, 0..1) where `trimap` is 0 or 1 (known) or between.

    The known pixels keep their trimap value; the unknown ones solve L_U alpha_U = -R alpha_K,
    L being the matting Laplacian over the windows lying wholly inside the image.
    """
    import scipy.sparse  # here: scipy costs 30 MB of memory, which only a separation needs

    h, w = trimap.shape
    alpha = trimap.astype(np.float64).ravel()
    fg, bg = trimap >= 1.0, trimap <= 0.0
    unknown = ~(fg | bg)
    n_unknown = int(unknown.sum())
    if n_unknown == 0:
        return alpha.reshape(h, w)
    # Window centres (interior pixels) whose 3x3 window holds an unknown pixel.
    touched = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    touched[0, :] = touched[-1, :] = touched[:, 0] = touched[:, -1] = False
    cy, cx = np.nonzero(touched)
    dy, dx = np.divmod(np.arange(_WINDOW), 3)
    idx = (cy[:, None] + dy[None, :] - 1) * w + (cx[:, None] + dx[None, :] - 1)  # K x 9 pixel indices
    pixels = image.reshape(-1, 3).astype(np.float64)
    colours = pixels[idx]  # K x 9 x 3
    centred = colours - colours.mean(axis=1, keepdims=True)
    cov = (np.einsum("kni,knj->kij", centred, centred) + EPSILON * np.eye(3)) / _WINDOW
    inv = np.linalg.inv(cov)
    # L_ij over a window: delta_ij - (1 + c_i^T inv c_j) / 9, summed over the windows.
    values = -(1.0 + np.einsum("kni,kij,kmj->knm", centred, inv, centred)) / _WINDOW
    values[:, np.arange(_WINDOW), np.arange(_WINDOW)] += 1.0
    rows = np.broadcast_to(idx[:, :, None], values.shape).ravel()
    cols = np.broadcast_to(idx[:, None, :], values.shape).ravel()
    values = values.ravel()
    # Numbering of the unknown pixels; keep the Laplacian's rows for them.
    number = np.full(h * w, -1, np.int64)
    number[unknown.ravel()] = np.arange(n_unknown)
    ru = number[rows]
    keep = ru >= 0
    ru, cols, values = ru[keep], cols[keep], values[keep]
    cu = number[cols]
    inside = cu >= 0
    lu = scipy.sparse.csr_matrix((values[inside], (ru[inside], cu[inside])), shape=(n_unknown, n_unknown))
    # -R alpha_K: what the known neighbours pull towards, weighted by their alpha.
    outside = ~inside
    rhs = -np.bincount(ru[outside], weights=values[outside] * alpha[cols[outside]], minlength=n_unknown)
    alpha[unknown.ravel()] = _jacobi_cg(lu, rhs)
    return alpha.reshape(h, w)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # Not np.dot: a threaded BLAS on a busy machine spends a millisecond on each small dot product.
    return float(np.add.reduce(a * b))


def _jacobi_cg(a: scipy.sparse.csr_matrix, b: np.ndarray) -> np.ndarray:
    """Solve a x = b (a symmetric positive definite) by conjugate gradients, Jacobi-preconditioned."""
    inv_diag = 1.0 / a.diagonal()
    x = np.zeros_like(b)
    r = b.copy()
    stop = RTOL * np.sqrt(_dot(b, b))
    z = r * inv_diag
    p = z.copy()
    rz = _dot(r, z)
    for _ in range(MAX_ITERATIONS):
        if np.sqrt(_dot(r, r)) <= stop:
            break
        ap = a @ p
        step = rz / _dot(p, ap)
        x += step * p
        r -= step * ap
        z = r * inv_diag
        rz, rz_old = _dot(r, z), rz
        p = z + (rz / rz_old) * p
    return x
