"""Closed-form matting (generator/engine/matting.py) recovers a known alpha from the photo alone."""

from __future__ import annotations

import numpy as np

from generator.engine.matting import closed_form_alpha


def test_a_blend_of_two_colours_gives_back_its_alpha():
    # Two flat colours mixed by a soft, wavy edge: the colour-line model holds exactly, so the
    # matte of the unknown band is the alpha the picture was made with.
    h, w = 60, 80
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    edge = 40 + 4 * np.sin(yy / 7)
    alpha = np.clip((xx - edge) / 6 + 0.5, 0, 1)
    fg, bg = np.array([0.8, 0.2, 0.1]), np.array([0.2, 0.5, 0.9])
    image = alpha[:, :, None] * fg + (1 - alpha[:, :, None]) * bg
    trimap = np.where(xx < 28, 0.0, np.where(xx > 52, 1.0, 0.5))
    solved = closed_form_alpha(image, trimap)
    band = trimap == 0.5
    assert band.sum() > 1000
    assert np.abs(solved - alpha)[band].max() < 0.01
    # Known pixels keep their trimap value.
    assert np.array_equal(solved[~band], trimap[~band])


def test_no_unknown_pixels_returns_the_trimap():
    trimap = np.zeros((10, 12))
    trimap[:, 6:] = 1.0
    assert np.array_equal(closed_form_alpha(np.zeros((10, 12, 3)), trimap), trimap)
