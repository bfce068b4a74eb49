"""A small synthetic edit the diffusion tests run on the tiny models: a red box standing in front of
a sloped backdrop (size x size pixels), and a translation along +X."""
from __future__ import annotations

import numpy as np


def scene(size=32):
    """(image, depth, mask) of the red box scene."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.3 + 0.4 * xx, 0.4 + 0.2 * yy, 0.5 + 0.1 * xx], -1).astype(np.float32)
    mask = np.zeros((size, size), bool)
    mask[10:20, 8:16] = True
    image[mask] = [0.9, 0.2, 0.1]
    depth = np.where(mask, 1.5, 3.0 - 0.5 * yy).astype(np.float32)
    return image, depth, mask


def shift(x):
    """A 4x4 transform moving the object by ``x`` metres along the camera's +X."""
    T = np.eye(4)
    T[0, 3] = x
    return T
