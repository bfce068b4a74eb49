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


# --- two boxes in front of a wall: the lifted-scene tests (several objects, copies, removals) ---
def translation(x=0.0, y=0.0, z=0.0):
    T = np.eye(4)
    T[:3, 3] = [x, y, z]
    return T


def two_boxes(h=40, w=60, wall=10.0):
    """Box 1 (depth 3) at rows 10-19, cols 5-14; box 2 (depth 5) at rows 10-19, cols 35-44."""
    d = np.full((h, w), wall, dtype=np.float32)
    m = np.zeros((2, h, w), dtype=bool)
    m[0, 10:20, 5:15] = True
    m[1, 10:20, 35:45] = True
    d[m[0]], d[m[1]] = 3.0, 5.0
    return d, m


def px(n, z, h=40, w=60):
    """The camera-frame x shift that moves a fronto-parallel surface at depth z by n pixels."""
    from engine.camera import Camera

    return n * z / Camera(h, w).focal
