"""Frames at the photo's own size: the edit's changes put back onto the original photo.

The model works at a few hundred pixels; photos have thousands. ``to_photo_size`` turns an
EditResult (working resolution) into the frame at the photo's size:

1. The changed region R, on the working grid (`changed_region`): the object's old region (one
   working pixel wider: the mask is only known to a working pixel), its new region, the holes,
   and what the edit really changed compared with the reconstruction (shadows, light): pixels
   where |edit - reconstruction| stands out from the differences of the rest of the frame,
   connected to the object's regions and within the margin where the edit may change the
   background (``EditSettings.background_margin``).
2. A feathered alpha on the photo grid: 1 on R, a smoothstep of the distance to R down to 0 over
   ``feather`` photo pixels, 0 beyond. Where alpha is 0 the frame is the photo's own pixels, bit
   for bit.
3. Inside, the edit upsampled plus the photo's detail, i.e. what the photo has beyond the
   working-resolution reconstruction (photo - up(reconstruction)), carried by the geometry: a
   pixel of the moved object takes the detail at its source point in the full-resolution photo,
   a pixel of the background its own, a hole none. Where the edit equals the reconstruction the
   photo comes back; a moved object keeps the photo's sharpness with the edit's shading.

Which side of a silhouette a photo pixel is on is decided at the photo's resolution: the object
where its motion brings an object pixel of the full-resolution mask there, else the background
where that is background in the photo, else a hole. Only a box around R is computed.
"""
from __future__ import annotations

import numpy as np

# Changes (max over RGB of |edit - reconstruction|) count as real when above this many times the
# frame's typical difference (its median outside the object regions) and above MIN_CHANGE.
CHANGE_OVER_TYPICAL = 4.0
MIN_CHANGE = 0.08
_SQUARE = np.ones((3, 3), bool)  # 8-connected neighbourhoods: a diagonal neighbour counts too


def changed_region(prepared, result) -> np.ndarray:
    """(h, w) bool on the working grid: where the frame may differ from the photo (see module doc)."""
    from scipy import ndimage

    old = np.asarray(prepared.object_mask, bool)
    target = np.asarray(result.target_mask, bool)
    holes = ~np.asarray(result.valid_mask, bool)
    seeds = ndimage.binary_dilation(old, _SQUARE) | target | holes | _moved(result)
    diff = np.abs(np.asarray(result.image, np.float32) - np.asarray(prepared.reconstruction, np.float32)).max(-1)
    rest = ~ndimage.binary_dilation(seeds, _SQUARE)
    typical = float(np.median(diff[rest])) if rest.any() else 0.0
    changed = diff > max(MIN_CHANGE, CHANGE_OVER_TYPICAL * typical)
    # keep the changes that touch the object's regions (a shadow is cast next to its object), as
    # far from them as the edit may change the background (EditSettings.background_margin)
    labels, _ = ndimage.label(changed, structure=_SQUARE)
    touching = np.unique(labels[ndimage.binary_dilation(seeds, _SQUARE) & changed])
    settings = getattr(prepared, "settings", None)
    reach = getattr(settings, "background_margin", 0.1) * max(seeds.shape)
    near = ndimage.distance_transform_edt(~seeds) <= reach
    return seeds | (np.isin(labels, touching[touching > 0]) & near)


def to_photo_size(prepared, result, feather: float | None = None) -> np.ndarray:
    """The frame (H, W, 3) float32 in [0, 1] at the photo's size for an EditResult of ``prepared``.

    ``feather``: width of the blend in photo pixels (default 1.5 working pixels, at least 2).
    Pixels outside the region and its feather equal ``prepared.photo / 255`` exactly (so they
    round back to the photo's bytes when written as 8-bit)."""
    photo = np.asarray(prepared.photo)
    H, W = photo.shape[:2]
    h, w = prepared.size
    out = photo.astype(np.float32) / 255.0
    region = changed_region(prepared, result)
    if not region.any():
        return out
    sy, sx = h / H, w / W  # working pixels per photo pixel
    if feather is None:
        feather = max(2.0, 1.5 / min(sy, sx))
    from .images import nearest_index

    rows, cols = nearest_index(H, h), nearest_index(W, w)  # working pixel of each photo row / column
    # box around R and its feather, on the photo grid
    rr, cc = _box_of(region, rows, cols)
    pad = int(np.ceil(feather)) + 1
    y0, y1 = max(0, rr.min() - pad), min(H, rr.max() + pad + 1)
    x0, x1 = max(0, cc.min() - pad), min(W, cc.max() + pad + 1)
    inside = region[rows[y0:y1]][:, cols[x0:x1]]
    alpha = _feather(inside, feather)
    edited = _edited_at_photo_size(prepared, result, (y0, y1, x0, x1), (sy, sx))
    box = out[y0:y1, x0:x1]
    a = alpha[..., None]
    out[y0:y1, x0:x1] = np.where(a > 0, np.clip(box + a * (edited - box), 0.0, 1.0), box)
    return out


# --- pieces --------------------------------------------------------------------------------------
def _moved(result) -> np.ndarray:
    """(h, w) bool: pixels showing a moved point whose source is elsewhere (over half a pixel away)."""
    src = getattr(result, "source_coords", None)
    if src is None:
        return np.zeros(np.asarray(result.target_mask).shape, bool)
    src = np.asarray(src, np.float32)
    h, w = src.shape[:2]
    gu, gv = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    with np.errstate(invalid="ignore"):
        return np.isfinite(src).all(-1) & (np.hypot(src[..., 0] - gu, src[..., 1] - gv) > 0.5)


def _box_of(region, rows, cols):
    """Photo-grid rows and columns spanned by the region (without building the full-size mask)."""
    ri, ci = np.nonzero(region)
    r = np.nonzero(np.isin(rows, np.unique(ri)))[0]
    c = np.nonzero(np.isin(cols, np.unique(ci)))[0]
    return r, c


def _feather(inside: np.ndarray, width: float) -> np.ndarray:
    """1 inside, smoothstep(1 - distance / width) outside, 0 from ``width`` on: continuous."""
    from scipy import ndimage

    d = ndimage.distance_transform_edt(~inside)
    t = np.clip(1.0 - d / width, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _sample(image, u, v):
    """Bilinear samples of ``image`` (n, m, C) or (n, m) at photo-box points (u, v) in its pixel units."""
    import torch

    from .warp import warp

    a = np.asarray(image, np.float32)
    flat = a.ndim == 2
    t = torch.from_numpy(np.ascontiguousarray(a[..., None] if flat else a)).permute(2, 0, 1)[None]
    coords = torch.from_numpy(np.stack([u, v], -1).astype(np.float32))
    s = warp(t, coords)[0].permute(1, 2, 0).numpy()
    return s[..., 0] if flat else s


def _extend(values: np.ndarray, known: np.ndarray, steps: int):
    """Grow a field (h, w, C) from ``known`` pixels by ``steps`` rings (mean of known 8-neighbours)."""
    from scipy import ndimage

    values = np.where(known[..., None], values, 0.0).astype(np.float64)
    known = known.copy()
    kernel = np.ones((3, 3))
    for _ in range(steps):
        n = ndimage.convolve(known.astype(np.float64), kernel, mode="constant")
        ring = ~known & (n > 0)
        if not ring.any():
            break
        for c in range(values.shape[-1]):
            s = ndimage.convolve(values[..., c], kernel, mode="constant")
            values[..., c] = np.where(ring, s / np.maximum(n, 1), values[..., c])
        known = known | ring
    return values, known


def _edited_at_photo_size(prepared, result, box, scale) -> np.ndarray:
    """The edit inside the photo-grid ``box``: up(edit) + the photo's detail moved by the geometry."""
    from scipy import ndimage

    y0, y1, x0, x1 = box
    sy, sx = scale
    h, w = prepared.size
    photo = np.asarray(prepared.photo)
    H, W = photo.shape[:2]
    target = np.asarray(result.target_mask, bool)
    src = getattr(result, "source_coords", None)
    src = np.full((h, w, 2), np.nan, np.float32) if src is None else np.asarray(src, np.float32)
    finite = np.isfinite(src).all(-1)
    gu, gv = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    identity = np.stack([gu, gv], -1).astype(np.float32)
    # the object's motion (identity where it stays), grown two working pixels beyond the target
    # so that silhouettes are decided by the full-resolution mask, not by the working grid
    # (grown as a displacement, which is smooth: a rigid move shifts every pixel alike)
    shift, obj_known = _extend(np.where(finite[..., None], src - identity, 0.0), target, 2)
    # the background's motion: the source where it moved (camera moves), else it stays
    bg_known = ~target & finite
    moved_bg = bool(bg_known.any())

    # every working-grid field at the box's photo-pixel centres, in one resampling
    fields = [np.asarray(result.image, np.float32), np.asarray(prepared.reconstruction, np.float32),
              np.where(obj_known[..., None], shift, 0.0), obj_known[..., None],
              ndimage.binary_dilation(target, _SQUARE)[..., None]]
    if moved_bg:
        fields += [np.where(bg_known[..., None], src - identity, 0.0),
                   ndimage.binary_dilation(np.asarray(result.valid_mask, bool), _SQUARE)[..., None]]
    U, V = np.meshgrid((np.arange(x0, x1) + 0.5) * sx, (np.arange(y0, y1) + 0.5) * sy)  # working units
    at_p = _sample(np.concatenate([np.asarray(f, np.float32) for f in fields], -1), U, V)
    up_edit, up_recon = at_p[..., 0:3], at_p[..., 3:6]
    here = np.stack([U, V], -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c_obj = np.where(at_p[..., 8:9] > 1e-6, at_p[..., 6:8] / at_p[..., 8:9], np.nan) + here
    near_target = np.minimum(at_p[..., 9], 1.0)

    # the photo and its object mask around every source point (a box, not the whole photo)
    pts = c_obj[np.isfinite(c_obj).all(-1)]
    c_bg = here + at_p[..., 10:12] if moved_bg else here
    pts = np.concatenate([pts, c_bg.reshape(-1, 2)])
    sy0, sy1 = max(0, int(np.floor(pts[:, 1].min() / sy)) - 2), min(H, int(np.ceil(pts[:, 1].max() / sy)) + 2)
    sx0, sx1 = max(0, int(np.floor(pts[:, 0].min() / sx)) - 2), min(W, int(np.ceil(pts[:, 0].max() / sx)) + 2)
    photo_box = np.concatenate([photo[sy0:sy1, sx0:sx1].astype(np.float32) / 255.0,
                                np.asarray(prepared.photo_mask, np.float32)[sy0:sy1, sx0:sx1, None]], -1)

    def at_source(c):
        """(detail = photo - up(reconstruction), object-mask coverage) at working-unit points c."""
        s = _sample(photo_box, c[..., 0] / sx - sx0, c[..., 1] / sy - sy0)
        detail = s[..., :3] - _sample(np.asarray(prepared.reconstruction, np.float32), c[..., 0], c[..., 1])
        return np.nan_to_num(detail), np.nan_to_num(s[..., 3])

    has_obj = np.isfinite(c_obj).all(-1)
    d_obj, m_obj = at_source(np.where(has_obj[..., None], c_obj, -1.0))  # outside the image: 0
    if moved_bg:
        d_bg, m_bg = at_source(c_bg)
        bg_visible = np.minimum(at_p[..., 12], 1.0)
    else:  # the background stays: its own pixels
        box_photo = photo_box[y0 - sy0:y1 - sy0, x0 - sx0:x1 - sx0]
        d_bg, m_bg, bg_visible = box_photo[..., :3] - up_recon, box_photo[..., 3], 1.0
    w_obj = np.where(has_obj, m_obj * near_target, 0.0)
    w_bg = (1.0 - w_obj) * (1.0 - m_bg) * bg_visible
    return up_edit + w_obj[..., None] * d_obj + w_bg[..., None] * d_bg
