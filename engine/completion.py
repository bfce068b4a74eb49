"""Background completion: the depth of the scene behind the objects, from the pixels around them.

(placeholder: harmonic fill of inverse depth; replaced below)
"""
from __future__ import annotations

import numpy as np

from .errors import InputError


def default_dilation(height, width) -> int:
    """Default dilation of the region to complete: 1% of the longer side, at least 1 pixel (the
    mask's edge pixels often mix object and background depth)."""
    return max(1, round(0.01 * max(height, width)))


def completion_region(mask, dilate_px=None) -> np.ndarray:
    """``mask`` dilated by ``dilate_px`` (default `default_dilation`) with a disc."""
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    H, W = mask.shape
    if dilate_px is None:
        dilate_px = default_dilation(H, W)
    region = mask
    if dilate_px > 0:
        r = int(dilate_px)
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        region = ndimage.binary_dilation(mask, structure=(xx * xx + yy * yy) <= r * r)
    if region.all():
        raise InputError("mask: the dilated object covers the whole image; no background depth "
                         "is left to fill from")
    return region


def complete_background_depth(depth, object_mask, dilate_px=None) -> np.ndarray:
    from .poisson import laplace_fill

    depth = np.asarray(depth, dtype=np.float64)
    region = completion_region(object_mask, dilate_px)
    return 1.0 / laplace_fill(1.0 / depth, region)
