"""Background completion: the depth of the scene behind the objects, from the surfaces around them.

A floor or a wall seen through a pinhole has a disparity (1 / z-depth) that is AFFINE in pixel
coordinates (u, v). So the surfaces around the hole are fitted as planes in disparity, and the hole
is filled by continuing them:

1. The ring: the pixels outside the (dilated) hole within a few pixels of it.
2. Planes: up to `MAX_PLANES` affine disparity planes found in the ring by sequential RANSAC (each
   must explain enough of the ring to within `PLANE_TOLERANCE`, relative), refitted by least squares.
3. Which plane where: every outside pixel is labelled with its closest plane; the labels' harmonic
   interpolation into the hole gives each hole pixel one weight per plane. A plane is present
   where its weight is at least `PRESENT_WEIGHT` of the largest, and the fill is the NEAREST present
   plane (largest disparity): a floor and a wall meet in their true crease (a room's corners are
   concave as seen from inside), and a floor continues as a plane up to the frame edge (a
   harmonic fill of disparity flattens there instead, and sags between floor and wall).
4. The ring's departure from its planes (texture, small bumps) is filled harmonically and added,
   so the fill meets the ring continuously.

Without any plane (a ring of rubble) this is the harmonic fill of disparity. Disparity stays
within [the ring's smallest, twice its largest]. The harmonic solves (weights and residual, one
factorisation) run on a grid of at most `SOLVE_SIZE` pixels along the longer side and are upsampled:
they are smooth, and the planes carry the detail at full resolution.

What completion is NOT used for: hiding a moved object. The lifted scene (engine.lifted) leaves a
hole where the objects were when it z-buffers; the completed depth gives the edited depth there
and the viewport background mesh.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError

MAX_PLANES = 3
PLANE_TOLERANCE = 0.01  # a ring pixel is on a plane when |q - plane| <= this * q (q: disparity)
MIN_PLANE_SHARE = 0.1  # a plane must explain at least this share of the ring
PRESENT_WEIGHT = 0.1  # a plane is present at a hole pixel with at least this share of the top weight
SOLVE_SIZE = 192
_RANSAC_TRIALS = 64


def default_dilation(height, width) -> int:
    """Default dilation of the region to complete: 1% of the longer side, at least 1 pixel (the
    mask's edge pixels often mix object and background depth)."""
    return max(1, round(0.01 * max(height, width)))


def completion_region(mask, dilate_px=None) -> np.ndarray:
    """``mask`` (H, W) bool dilated by ``dilate_px`` (default `default_dilation`) with a disc."""
    from .perception.common import dilate

    mask = np.asarray(mask, dtype=bool)
    H, W = mask.shape
    if dilate_px is None:
        dilate_px = default_dilation(H, W)
    region = dilate(mask, int(dilate_px))
    if region.all():
        raise InputError("mask: the dilated object covers the whole image; no background depth "
                         "is left to fill from")
    return region


def complete_background_depth(depth, object_mask, dilate_px=None, *, planes=True) -> np.ndarray:
    """Depth (H, W) float64 with the dilated ``object_mask`` region completed (module docstring);
    outside it the input depth. ``planes=False``: the plain harmonic fill of disparity."""
    from scipy import ndimage

    depth = np.asarray(depth, dtype=np.float64)
    H, W = depth.shape
    full_region = completion_region(object_mask, dilate_px)
    out = depth.copy()
    if not full_region.any():
        return out
    width = max(3, round(0.03 * max(H, W)))
    box = _box(full_region, width + 1)  # everything below happens around the hole
    region, q = full_region[box], 1.0 / depth[box]
    ring = ~region & (ndimage.distance_transform_edt(~region) <= width)
    v, u = np.mgrid[box] + 0.5
    found = fit_planes(u[ring], v[ring], q[ring]) if planes else []
    if not found:
        out[box] = 1.0 / harmonic_fill(q[..., None], region, scale=max(H, W))[..., 0]
        return out
    P = np.stack([a * u + b * v + c for a, b, c in found], -1)  # (H, W, K) plane disparities
    label = np.argmin(np.abs(P - q[..., None]), axis=-1)
    onehot = (label[..., None] == np.arange(len(found))).astype(np.float64)
    residual = q - np.take_along_axis(P, label[..., None], -1)[..., 0]
    solved = harmonic_fill(np.concatenate([onehot, residual[..., None]], -1), region, scale=max(H, W))
    weights = solved[..., :-1]
    # Where several planes meet (a floor running into a wall) the visible one is the nearest:
    # the largest disparity among the planes present there.
    present = weights >= PRESENT_WEIGHT * weights.max(-1, keepdims=True)
    nearest = np.where(present, P, -np.inf).max(-1)
    fill = np.clip(nearest + solved[..., -1], q[ring].min(), 2.0 * q[ring].max())
    out[box] = np.where(region, 1.0 / fill, out[box])
    return out


def _box(region, margin) -> tuple:
    """Slices of the bounding box of ``region`` grown by ``margin`` pixels (within the image)."""
    rows, cols = np.nonzero(region.any(1))[0], np.nonzero(region.any(0))[0]
    H, W = region.shape
    return (slice(max(0, rows[0] - margin), min(H, rows[-1] + 1 + margin)),
            slice(max(0, cols[0] - margin), min(W, cols[-1] + 1 + margin)))


def fit_planes(u, v, q, max_planes=MAX_PLANES, tolerance=PLANE_TOLERANCE, min_share=MIN_PLANE_SHARE,
               seed=0) -> list:
    """Affine disparity planes (a, b, c): q ~ a u + b v + c, found by sequential RANSAC among the
    samples (u, v, q) (1-D arrays); each explains at least ``min_share`` of them."""
    rng = np.random.default_rng(seed)
    u, v, q = (np.asarray(x, dtype=np.float64) for x in (u, v, q))
    tol = tolerance * q
    left = np.ones(len(q), dtype=bool)
    need = max(8, int(min_share * len(q)))

    def on_plane(p):
        # elementwise, not a matrix product: small BLAS calls are slow on a busy machine
        return np.abs(p[0] * u + p[1] * v + p[2] - q) <= tol

    def refit(sel):
        A = np.stack([u[sel], v[sel], np.ones(int(sel.sum()))], -1)
        return np.linalg.lstsq(A, q[sel], rcond=None)[0]

    planes = []
    while len(planes) < max_planes and left.sum() >= need:
        idx = np.nonzero(left)[0]
        best, best_in = None, None
        for _ in range(_RANSAC_TRIALS):
            pick = rng.choice(idx, 3, replace=False)
            A3 = np.stack([u[pick], v[pick], np.ones(3)], -1)
            try:
                p = np.linalg.solve(A3, q[pick])
            except np.linalg.LinAlgError:
                continue
            inl = left & on_plane(p)
            if best_in is None or inl.sum() > best_in.sum():
                best, best_in = p, inl
        if best_in is None or best_in.sum() < need:
            break
        for _ in range(2):  # least squares on the inliers, then the inliers of that plane
            best = refit(best_in)
            best_in = left & on_plane(best)
        if best_in.sum() < need:
            break
        planes.append(best)
        left &= ~best_in
    if len(planes) > 1:
        # Refit each plane on the samples that are on it and on no other (near a crease a sample
        # can be within tolerance of two planes: it would bias both).
        on = np.stack([on_plane(p) for p in planes])
        only = on & (on.sum(0) == 1)
        planes = [refit(o) if o.sum() >= 3 else p for p, o in zip(planes, only)]
    return [tuple(float(x) for x in p) for p in planes]


def harmonic_fill(values, region, max_size=SOLVE_SIZE, scale=None) -> np.ndarray:
    """Harmonic fill of ``values`` (H, W, C) into ``region`` (H, W) bool, solved on a grid
    ``ceil(scale / max_size)`` times coarser (``scale`` default: the longer side) and upsampled
    (bilinear) inside the region: for smooth fills (colour, plane weights) at a fraction of the
    cost of the exact solve. Only the region's neighbourhood is touched."""
    from scipy import ndimage

    from .poisson import laplace_fill

    values = np.asarray(values, dtype=np.float64)
    f = int(np.ceil((scale or max(region.shape)) / max_size))
    out = values.copy()
    if not region.any():
        return out
    box = _box(region, 2 * f)
    region, values = region[box], values[box]
    if f <= 1:
        out[box] = laplace_fill(values, region)
        return out
    H, W = region.shape
    h, w = -(-H // f), -(-W // f)
    pad = ((0, h * f - H), (0, w * f - W))
    reg = np.pad(region, pad, mode="edge").reshape(h, f, w, f)
    vals = np.pad(values, pad + ((0, 0),), mode="edge").reshape(h, f, w, f, -1)
    outside = ~reg
    # A coarse cell is known when any of its pixels is outside the region (their mean).
    n_out = outside.sum((1, 3))
    coarse_region = n_out == 0
    coarse = (vals * outside[..., None]).sum((1, 3)) / np.maximum(n_out, 1)[..., None]
    if coarse_region.all():
        out[box] = laplace_fill(values, region)
        return out
    coarse = laplace_fill(coarse, coarse_region)
    # Bilinear at the region's pixels; fine pixel i sits at coarse coordinate (i + 0.5) / f - 0.5.
    ri, ci = np.nonzero(region)
    at = np.stack([(ri + 0.5) / f - 0.5, (ci + 0.5) / f - 0.5])
    inner = out[box]
    inner[ri, ci] = np.stack([ndimage.map_coordinates(coarse[..., c], at, order=1, mode="nearest")
                              for c in range(coarse.shape[-1])], -1)
    out[box] = inner
    return out
