"""Pixel arrays: the one float -> uint8 conversion and the one set of resizes.

- `to_uint8`: float in [0, 1] (clipped) -> uint8 rounded to nearest; bool -> 0 / 255; uint8 passes
  through. Every image the engine writes, shows or hands to a model as bytes goes through it.
- `resize_image`: the smooth resize (area averaging when shrinking, bicubic when enlarging) for
  images and continuous maps; `resize_nearest` / `nearest_index`: the nearest pixel centre, for
  depths and masks that must not mix values.
- `depth_to_photo`: a depth map at another size than its photo brought to the photo's size
  (smaller: joint bilateral upsampling guided by the photo's edges; larger: nearest).
"""
from __future__ import annotations

import numpy as np


def to_uint8(image) -> np.ndarray:
    """(H, W[, C]) float in [0, 1] (clipped), bool or uint8 -> uint8. NaN is the caller's to refuse
    (`engine.io.save_image` names the file)."""
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    # a band of rows at a time, so a 12-megapixel photo never has a second full-size float copy
    out = np.empty(a.shape, np.uint8)
    for i in range(0, max(1, a.shape[0]), 256):
        band = np.clip(a[i:i + 256].astype(np.float32), 0.0, 1.0)
        band *= 255.0
        band += 0.5
        out[i:i + 256] = band
    return out


def resize_image(image, hw, clip: bool = True):
    """Float image (H, W, C) or (H, W) -> (h, w[, C]): area averaging when shrinking, bicubic when
    enlarging; clipped to [0, 1] unless ``clip`` is False. The project's one smooth resize."""
    import torch
    import torch.nn.functional as F

    a = np.asarray(image, dtype=np.float32)
    if a.shape[:2] == tuple(hw):
        return a.copy()
    flat = a.ndim == 2
    x = torch.from_numpy(np.ascontiguousarray(a[..., None] if flat else a)).permute(2, 0, 1)[None]
    shrink = hw[0] <= x.shape[-2] and hw[1] <= x.shape[-1]
    y = F.interpolate(x, size=tuple(hw), mode="area") if shrink else \
        F.interpolate(x, size=tuple(hw), mode="bicubic", align_corners=False)
    y = y[0].permute(1, 2, 0)
    y = (y.clamp(0, 1) if clip else y).numpy().astype(np.float32)
    return y[..., 0] if flat else y


def resize_nearest(array, hw):
    """Depth (float) or mask (bool) (H, W) -> (h, w), nearest pixel centre (no mixed depths)."""
    a = np.asarray(array)
    H, W = a.shape[:2]
    if (H, W) == tuple(hw):
        return a.copy()
    return a[nearest_index(hw[0], H)][:, nearest_index(hw[1], W)].copy()


def nearest_index(n_to: int, n_from: int) -> np.ndarray:
    """For each of ``n_to`` pixels along an axis, the index of the ``n_from``-grid pixel holding its centre."""
    return np.minimum(((np.arange(n_to) + 0.5) * n_from / n_to).astype(np.int64), n_from - 1)


# Joint bilateral upsampling (Kopf et al. 2007): each photo pixel averages the 3x3 nearest depth
# samples, weighted by distance (in depth-map pixels) and by how far the photo's colour there is
# from the colour the depth sample covers, so a depth edge follows the photo's edge instead of
# being smeared across it as bicubic would.
GUIDED_SIGMA_SPACE = 1.0  # depth-map pixels
GUIDED_SIGMA_COLOUR = 0.1  # RGB distance in [0, 1] units
_GUIDED_BAND = 128  # photo rows per step: memory stays a few bands of the photo, whatever its size


def depth_to_photo(depth, image) -> np.ndarray:
    """Depth (h, w) -> float32 (H, W), the size of ``image`` (H, W, 3) float in [0, 1]: upsampled
    guided by the photo's edges when smaller (joint bilateral, interpolating 1/depth, so the
    values stay within the given ones), the nearest sample when larger (no mixed depths)."""
    d = np.asarray(depth, dtype=np.float32)
    h, w = d.shape
    H, W = image.shape[:2]
    if (h, w) == (H, W):
        return d.copy()
    if h >= H and w >= W:
        return resize_nearest(d, (H, W))
    guide = resize_image(image, (h, w))  # the colour each depth sample covers
    inverse = 1.0 / d
    y, x = (np.arange(H) + 0.5) * h / H - 0.5, (np.arange(W) + 0.5) * w / W - 0.5
    y0, x0 = np.rint(y).astype(np.int64), np.rint(x).astype(np.int64)
    out = np.empty((H, W), np.float32)
    taps = range(-1, 2)
    cols = [np.clip(x0 + dj, 0, w - 1) for dj in taps]
    wx = [np.exp(-((x - c) ** 2) / (2 * GUIDED_SIGMA_SPACE ** 2)).astype(np.float32) for c in cols]
    for r0 in range(0, H, _GUIDED_BAND):
        band = slice(r0, min(H, r0 + _GUIDED_BAND))
        colour = np.asarray(image[band], np.float32)
        total = np.zeros(colour.shape[:2], np.float32)
        weight = np.zeros(colour.shape[:2], np.float32)
        for di in taps:
            rows = np.clip(y0[band] + di, 0, h - 1)
            wy = np.exp(-((y[band] - rows) ** 2) / (2 * GUIDED_SIGMA_SPACE ** 2)).astype(np.float32)
            guide_rows, inverse_rows = guide[rows], inverse[rows]
            for c, wxc in zip(cols, wx):
                diff = ((colour - guide_rows[:, c]) ** 2).sum(-1)
                diff *= -1.0 / (2 * GUIDED_SIGMA_COLOUR ** 2)
                # floored, so a pixel unlike every sample still averages them by distance
                k = np.exp(np.maximum(diff, -60.0, out=diff), out=diff)
                k *= wy[:, None]
                k *= wxc[None]
                total += k * inverse_rows[:, c]
                weight += k
        out[band] = weight / total
    return out
