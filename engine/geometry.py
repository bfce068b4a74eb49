"""Edit geometry (paper section 5.1): lift the object, transform it in 3D, project it back.

Frames and units: camera-frame points follow `engine.camera` (Blender camera frame, z < 0 in
front); image coordinates (u, v) are continuous pixel units with pixel (i, j) centred at
(j + 0.5, i + 0.5), row 0 at the top; depths are z-depth in metres.

How the moved object is drawn: the object pixels are lifted to 3D points and joined into a
triangle mesh (two triangles per 2x2 quad of object pixels, one where only three of the four
are object), with triangles across depth discontinuities cut (relative depth jump above
``max_depth_jump``) so no rubber sheet joins a near part to a far part. The mesh is moved by T
and rasterised at pixel centres with a z-buffer (perspective-correct interpolation), so scaling
up or moving closer leaves no pinholes and needs no morphological clean-up. Object pixels that
belong to no triangle (isolated pixels, one-pixel lines) are splatted as points to the pixel
they fall in. Triangles with a vertex at or behind the camera are dropped; parts outside the
frame are simply not drawn (never clamped to the border).

Occlusion: the moved object is hidden where the static scene is nearer. The static scene is the
input depth outside the object mask and, inside it, the background depth (what is behind the
object) but never nearer than the object itself was there. The object also occludes itself through the z-buffer.

Valid mask M_v (range of P.T.L over the whole image): static pixels map to themselves, the moved
object covers the target mask, and the old object region that the moved object does not cover is
a hole:  valid = ~object_mask | target_mask.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .camera import Camera
from .errors import InputError
from .io import validate_depth, validate_mask
from .poisson import laplace_fill
from .transforms import validate_transform

# A triangle is cut when (max depth / min depth - 1) over its vertices exceeds this. 0.05 cuts
# only surfaces steeper than about 85 degrees to the view ray at 256 px across (tan = 0.05 f),
# while real object/part boundaries jump much more.
DEFAULT_MAX_DEPTH_JUMP = 0.05
# The moved object wins against a static surface that is less than this much (relative) nearer:
# a contact (object standing on the floor) must not flicker on rounding.
DEFAULT_OCCLUSION_TOLERANCE = 1e-3
# Inside-triangle test slack in barycentric units: pixel centres exactly on an edge or vertex
# (the identity edit puts every vertex on a centre) belong to the triangle.
_EDGE_EPS = 1e-7
# Work in chunks of this many (triangle, pixel) candidates: bounds peak memory to ~150 MB.
_CHUNK = 1 << 20


@dataclass
class ObjectMesh:
    """The lifted object surface. vertices (N, 3) camera-frame float64; pixels (N, 2) (row, col)
    of each vertex; faces (F, 3) int64 vertex indices (counter-clockwise as seen by the camera);
    isolated (N,) bool: vertex in no face (drawn as a point)."""

    vertices: np.ndarray
    pixels: np.ndarray
    faces: np.ndarray
    isolated: np.ndarray


def object_mesh(depth, object_mask, camera=None, max_depth_jump=DEFAULT_MAX_DEPTH_JUMP) -> ObjectMesh:
    """Triangulate the object pixels of a depth map (see module docstring)."""
    depth = np.asarray(depth, dtype=np.float64)
    mask = np.asarray(object_mask, dtype=bool)
    H, W = depth.shape
    camera = camera or Camera(H, W)
    index = np.full((H, W), -1, dtype=np.int64)
    rows, cols = np.nonzero(mask)
    index[rows, cols] = np.arange(rows.size)
    vertices = camera.lift(depth[rows, cols], cols + 0.5, rows + 0.5)

    # Quad corners: a = (i, j), b = (i, j+1), c = (i+1, j), d = (i+1, j+1).
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    ha, hb, hc, hd = a >= 0, b >= 0, c >= 0, d >= 0
    # Full quad: split along the diagonal with the smaller depth difference (follows creases).
    full = ha & hb & hc & hd
    za, zb, zc, zd = depth[:-1, :-1], depth[:-1, 1:], depth[1:, :-1], depth[1:, 1:]
    diag_ad = np.abs(za - zd) <= np.abs(zb - zc)
    tris = [
        np.stack([a, c, d], -1)[full & diag_ad], np.stack([a, d, b], -1)[full & diag_ad],
        np.stack([a, c, b], -1)[full & ~diag_ad], np.stack([b, c, d], -1)[full & ~diag_ad],
        # Three of four: the one triangle they span (keeps diagonal mask edges smooth).
        np.stack([a, c, b], -1)[ha & hb & hc & ~hd], np.stack([a, d, b], -1)[ha & hb & ~hc & hd],
        np.stack([a, c, d], -1)[ha & ~hb & hc & hd], np.stack([b, c, d], -1)[~ha & hb & hc & hd],
    ]
    faces = np.concatenate(tris, axis=0).astype(np.int64)
    if faces.size:
        zf = depth[rows, cols][faces]
        keep = zf.max(1) <= zf.min(1) * (1.0 + max_depth_jump)
        faces = faces[keep]
    isolated = np.ones(rows.size, dtype=bool)
    isolated[faces.ravel()] = False
    return ObjectMesh(vertices, np.stack([rows, cols], -1), faces, isolated)


@dataclass
class Raster:
    """Result of `rasterize`: depth (h, w) float64 (inf where empty), and for covered pixels the
    perspective-correct weights (h, w, 3) of the three vertices (h, w, 3) int64 (-1 where empty)."""

    depth: np.ndarray
    vertex: np.ndarray
    weight: np.ndarray

    @property
    def covered(self):
        return np.isfinite(self.depth)


def rasterize(u, v, z, faces, isolated, height, width) -> Raster:
    """Z-buffer a triangle mesh (plus isolated points) at the pixel centres of an h x w grid.

    u, v: (N,) vertex image coordinates in THIS grid's pixel units; z: (N,) vertex z-depth (> 0 in
    front; NaN for dropped vertices). faces (F, 3); isolated (N,) bool vertices drawn as points.
    A pixel is covered when its centre lies inside (or on the edge of) a projected triangle.
    """
    h, w = height, width
    best = np.full(h * w, np.inf)
    best_vert = np.full((h * w, 3), -1, dtype=np.int64)
    best_wt = np.zeros((h * w, 3))

    def merge(pix, dep, verts, wts):
        if pix.size == 0:
            return
        order = np.lexsort((dep, pix))
        pix, dep, verts, wts = pix[order], dep[order], verts[order], wts[order]
        first = np.ones(pix.size, dtype=bool)
        first[1:] = pix[1:] != pix[:-1]
        pix, dep, verts, wts = pix[first], dep[first], verts[first], wts[first]
        win = dep < best[pix]
        pix = pix[win]
        best[pix] = dep[win]
        best_vert[pix] = verts[win]
        best_wt[pix] = wts[win]

    ok = np.isfinite(u) & np.isfinite(v) & np.isfinite(z) & (z > 0)
    # Isolated points: the pixel whose square contains the projected point.
    iso = np.nonzero(isolated & ok)[0]
    if iso.size:
        pj = np.floor(u[iso]).astype(np.int64)
        pi = np.floor(v[iso]).astype(np.int64)
        inside = (pj >= 0) & (pj < w) & (pi >= 0) & (pi < h)
        iso, pj, pi = iso[inside], pj[inside], pi[inside]
        verts = np.stack([iso, iso, iso], -1)
        wts = np.zeros((iso.size, 3))
        wts[:, 0] = 1.0
        merge(pi * w + pj, z[iso], verts, wts)

    if faces.size == 0:
        return _raster_out(best, best_vert, best_wt, h, w)
    faces = faces[ok[faces].all(1)]
    u0, u1, u2 = (u[faces[:, k]] for k in range(3))
    v0, v1, v2 = (v[faces[:, k]] for k in range(3))
    denom = (v1 - v2) * (u0 - u2) + (u2 - u1) * (v0 - v2)
    umin = np.minimum(np.minimum(u0, u1), u2)
    umax = np.maximum(np.maximum(u0, u1), u2)
    vmin = np.minimum(np.minimum(v0, v1), v2)
    vmax = np.maximum(np.maximum(v0, v1), v2)
    # Pixel j is a candidate when its centre j + 0.5 is within [umin, umax] (with slack).
    slack = 1e-6
    j0 = np.maximum(np.ceil(umin - 0.5 - slack), 0)
    j1 = np.minimum(np.floor(umax - 0.5 + slack), w - 1)
    i0 = np.maximum(np.ceil(vmin - 0.5 - slack), 0)
    i1 = np.minimum(np.floor(vmax - 0.5 + slack), h - 1)
    # Degenerate triangles (seen edge-on) cover no area: drop them.
    area_ok = np.abs(denom) > 1e-12 * np.maximum(1.0, (umax - umin) * (vmax - vmin))
    keep = (j1 >= j0) & (i1 >= i0) & area_ok
    if not keep.any():
        return _raster_out(best, best_vert, best_wt, h, w)
    faces, denom = faces[keep], denom[keep]
    j0, j1, i0, i1 = (x[keep].astype(np.int64) for x in (j0, j1, i0, i1))
    u0, u1, u2, v0, v1, v2 = (x[keep] for x in (u0, u1, u2, v0, v1, v2))
    inv_z = 1.0 / z[faces]  # (F, 3)
    nx = j1 - j0 + 1
    counts = nx * (i1 - i0 + 1)

    # Chunks of whole triangles with at most _CHUNK candidate pixels each (a huge triangle that
    # alone exceeds it forms its own chunk).
    ends = np.cumsum(counts)
    start = 0
    while start < faces.shape[0]:
        base = ends[start - 1] if start else 0
        stop = int(np.searchsorted(ends, base + _CHUNK, side="right"))
        stop = max(stop, start + 1)
        sl = slice(start, stop)
        cnt = counts[sl]
        tri = np.repeat(np.arange(start, stop), cnt)
        offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        px = j0[tri] + offs % nx[tri]
        py = i0[tri] + offs // nx[tri]
        cu = px + 0.5
        cv = py + 0.5
        b0 = ((v1[tri] - v2[tri]) * (cu - u2[tri]) + (u2[tri] - u1[tri]) * (cv - v2[tri])) / denom[tri]
        b1 = ((v2[tri] - v0[tri]) * (cu - u2[tri]) + (u0[tri] - u2[tri]) * (cv - v2[tri])) / denom[tri]
        b2 = 1.0 - b0 - b1
        inside = (b0 >= -_EDGE_EPS) & (b1 >= -_EDGE_EPS) & (b2 >= -_EDGE_EPS)
        tri, px, py = tri[inside], px[inside], py[inside]
        bary = np.clip(np.stack([b0[inside], b1[inside], b2[inside]], -1), 0.0, None)
        # Perspective-correct: 1/z is affine in screen space, attribute weights are b_k / z_k.
        wz = bary * inv_z[tri]
        s = wz.sum(1)
        merge(py * w + px, 1.0 / s, faces[tri], wz / s[:, None])
        start = stop
    return _raster_out(best, best_vert, best_wt, h, w)


def _raster_out(best, best_vert, best_wt, h, w):
    return Raster(best.reshape(h, w), best_vert.reshape(h, w, 3), best_wt.reshape(h, w, 3))


def fill_background_depth(depth, object_mask, dilate_px=None) -> np.ndarray:
    """Depth of the scene behind the object: a Laplace fill of inverse depth (float32 (H, W))
    inside the object mask dilated by ``dilate_px`` (default about 1% of the longer side), with
    the input depth outside it as the boundary. Dilation drops the mask's edge pixels, whose depth often mixes
    object and background."""
    from scipy import ndimage

    depth = np.asarray(depth, dtype=np.float64)
    mask = np.asarray(object_mask, dtype=bool)
    H, W = depth.shape
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
    # Fill in inverse depth: a plane's inverse depth is affine in (u, v), hence harmonic, so
    # walls and floors behind the object come back exactly; and by the maximum principle the
    # filled inverse depth stays within the boundary's (positive) range.
    return (1.0 / laplace_fill(1.0 / depth, region)).astype(np.float32)


def default_dilation(height, width) -> int:
    """Default background-fill dilation: 1% of the longer side, at least 1 pixel."""
    return max(1, round(0.01 * max(height, width)))


@dataclass
class EditGeometry:
    """Per-pixel geometry of one edit on an (H, W) grid.

    target_mask (H, W) bool: the moved object is visible here (z-buffered against the static
        scene and itself).
    valid_mask (H, W) bool: M_v = ~object_mask | target_mask (holes: old object region left bare).
    source_coords (H, W, 2) float32: (u, v) continuous pixel coordinates, in this grid's pixel
        units, of the point each pixel shows in the INPUT image; identity for static pixels,
        NaN in holes.
    object_depth (H, W) float32: z-depth of the moved object, NaN outside target_mask.
    edited_depth (H, W) float32: the moved object composited over the background depth in the
        gradient domain.
    """

    target_mask: np.ndarray
    valid_mask: np.ndarray
    source_coords: np.ndarray
    object_depth: np.ndarray
    edited_depth: np.ndarray
    object_mask: np.ndarray = field(default=None, repr=False)  # input object mask on this grid
    timings: dict = field(default_factory=dict, repr=False, compare=False)
    _context: dict = field(default=None, repr=False, compare=False)

    @property
    def shape(self):
        return self.target_mask.shape

    @property
    def hole_mask(self):
        """(H, W) bool: disoccluded pixels with no source (the complement of valid_mask)."""
        return ~self.valid_mask

    def at_resolution(self, h, w) -> "EditGeometry":
        """The same edit on an h x w grid covering the same image (e.g. the 64x64 activation grid).

        The moved mesh is re-rasterised at the new grid's pixel centres (exact point sampling, no
        mask resampling); coordinates are in the new grid's pixel units; the static depth used for
        occlusion is sampled at the nearest fine pixel; edited_depth is area-resampled.
        """
        h, w = int(h), int(w)
        if h < 1 or w < 1:
            raise ValueError(f"at_resolution: grid must be at least 1x1, got {h}x{w}")
        if (h, w) == self.shape:
            return self
        ctx = self._context
        H, W = self.shape
        geo = _geometry_on_grid(ctx, h, w, H, W)
        geo_edited = _area_resample(self.edited_depth, h, w)
        return EditGeometry(geo["target"], geo["valid"], geo["coords"], geo["object_depth"],
                            geo_edited, geo["object_mask"], {}, ctx)


def _area_resample(img, h, w) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
    if h <= img.shape[0] and w <= img.shape[1]:
        out = F.adaptive_avg_pool2d(t, (h, w))
    else:
        out = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


def _geometry_on_grid(ctx, h, w, H, W) -> dict:
    """Rasterise the moved and unmoved mesh on an h x w grid (full resolution is H x W)."""
    sx, sy = w / W, h / H
    mesh, camera = ctx["mesh"], ctx["camera"]
    moved = ctx["moved_vertices"]
    u, v, z = camera.project(moved)
    r = rasterize(u * sx, v * sy, z, mesh.faces, mesh.isolated, h, w)
    static = ctx["static_depth"]
    if (h, w) == (H, W):
        mask = ctx["object_mask"]
    else:
        u0, v0, z0 = camera.project(mesh.vertices)
        rest = rasterize(u0 * sx, v0 * sy, z0, mesh.faces, mesh.isolated, h, w)
        mask = rest.covered
        # Nearest fine pixel to each coarse pixel centre; behind the unmoved object never nearer
        # than the object as sampled on this grid (as at full resolution).
        ri = np.minimum(((np.arange(h) + 0.5) / sy).astype(np.int64), H - 1)
        ci = np.minimum(((np.arange(w) + 0.5) / sx).astype(np.int64), W - 1)
        static = static[np.ix_(ri, ci)]
        static = np.where(mask, np.maximum(static, np.where(mask, rest.depth, 0.0)), static)
    obj_depth = r.depth
    target = r.covered & (obj_depth <= static * (1.0 + ctx["occlusion_tolerance"]))
    valid = ~mask | target

    # Source point of each target pixel: the same surface point before the move, projected.
    src_points = np.einsum("hwk,hwkc->hwc", r.weight, mesh.vertices[np.maximum(r.vertex, 0)])
    su, sv, _ = camera.project(src_points)
    gu, gv = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    coords = np.stack([gu, gv], -1)
    coords[target] = np.stack([su[target] * sx, sv[target] * sy], -1)
    coords[~valid] = np.nan
    obj = np.where(target, obj_depth, np.nan)
    return {"target": target, "valid": valid, "coords": coords.astype(np.float32),
            "object_depth": obj.astype(np.float32), "object_mask": mask}


def composite_edited_depth(depth, object_mask, static, geo, seam_threshold=0.05) -> np.ndarray:
    """Edited depth (H, W) float64: the moved object's depth over the static depth, composited
    in the gradient domain (Poisson image editing, paper section 5.1).

    Unknowns: the target pixels. Guidance inside: the moved object's depth differences. On an
    edge from a target pixel p to a static pixel q the naive jump d_o(p) - static(q) is kept when
    it is a real discontinuity (relative jump > ``seam_threshold``: an object in front of a wall
    stays in front). A small jump is a contact seam (object standing on the floor): there the
    guidance is the jump the object had at the same boundary in the INPUT (at p's source pixel,
    same direction, scaled by the depth ratio), or 0 where the input had no boundary there. So
    contacts carry over seamlessly, and the identity edit returns the input depth exactly.
    """
    target = geo["target"]
    if not target.any():
        return static.copy()
    H, W = target.shape
    comp = np.where(target, geo["object_depth"], static).astype(np.float64)
    src = geo["coords"]
    sj = np.clip(np.floor(np.nan_to_num(src[..., 0])).astype(np.int64), 0, W - 1)
    si = np.clip(np.floor(np.nan_to_num(src[..., 1])).astype(np.int64), 0, H - 1)
    depth = np.asarray(depth, dtype=np.float64)
    ratio = comp / depth[si, sj]
    g = {1: np.diff(comp, axis=1), 0: np.diff(comp, axis=0)}
    for axis in (0, 1):
        n = (H, W)[axis]
        lo = [slice(None), slice(None)]
        hi = [slice(None), slice(None)]
        lo[axis] = slice(0, n - 1)
        hi[axis] = slice(1, n)
        lo, hi = tuple(lo), tuple(hi)
        jump = g[axis]
        crossing = target[lo] != target[hi]
        rel = np.abs(jump) / np.minimum(comp[lo], comp[hi])
        seam = crossing & (rel <= seam_threshold)
        if not seam.any():
            continue
        # p: the target end of each seam edge; step: +1 if q lies after p along the axis.
        p_is_lo = target[lo] & seam
        idx = np.nonzero(seam)
        pi = idx[0] + (0 if axis == 1 else ~p_is_lo[idx] * 1)
        pj = idx[1] + (0 if axis == 0 else ~p_is_lo[idx] * 1)
        step = np.where(p_is_lo[idx], 1, -1)
        a, b = si[pi, pj], sj[pi, pj]
        qa, qb = (a + step, b) if axis == 0 else (a, b + step)
        inside = (qa >= 0) & (qa < H) & (qb >= 0) & (qb < W)
        qa_c, qb_c = np.clip(qa, 0, H - 1), np.clip(qb, 0, W - 1)
        was_boundary = inside & ~np.asarray(object_mask)[qa_c, qb_c]
        j_in = np.where(was_boundary, depth[qa_c, qb_c] - depth[a, b], 0.0) * ratio[pi, pj]
        # Guidance is oriented lo -> hi: desired f[hi] - f[lo] = +J if p is lo, else -J.
        jump[idx] = step * j_in
    # Where every boundary guidance equals the naive jump the field is integrable and the solve
    # would return the naive composite: solve only the 4-connected target parts that touch a
    # changed seam (most edits have none, and a large close-up target makes the solve costly).
    changed = np.zeros((H, W), dtype=bool)
    for axis, naive in ((1, np.diff(comp, axis=1)), (0, np.diff(comp, axis=0))):
        diff = g[axis] != naive
        if axis == 1:
            changed[:, :-1] |= diff
            changed[:, 1:] |= diff
        else:
            changed[:-1, :] |= diff
            changed[1:, :] |= diff
    changed &= target
    if not changed.any():
        return comp
    from scipy import ndimage

    from .poisson import solve_poisson

    labels, _ = ndimage.label(target)
    region = np.isin(labels, np.unique(labels[changed]))
    return solve_poisson(comp, region, g[1], g[0])


def compute_edit_geometry(depth, object_mask, transform, background_depth=None, camera=None, *,
                          max_depth_jump=DEFAULT_MAX_DEPTH_JUMP,
                          occlusion_tolerance=DEFAULT_OCCLUSION_TOLERANCE,
                          seam_threshold=0.05) -> EditGeometry:
    """Geometry of moving the masked object by the 4x4 camera-frame transform T (p' = T p).

    depth: (H, W) z-depth in metres; object_mask: (H, W) bool; background_depth: (H, W) depth of
    the scene behind the object (default: `fill_background_depth`); camera: default Camera(H, W).
    """
    t_start = time.perf_counter()
    depth = validate_depth(depth, "depth")
    H, W = depth.shape
    mask = validate_mask(object_mask, "object mask", (H, W))
    T = validate_transform(transform, "transform")
    camera = camera or Camera(H, W)
    if (camera.height, camera.width) != (H, W):
        raise InputError(f"camera: is {camera.width}x{camera.height}, depth is {W}x{H} (WxH)")
    timings = {}
    t0 = time.perf_counter()
    if background_depth is None:
        background = fill_background_depth(depth, mask).astype(np.float64)
    else:
        background = validate_depth(background_depth, "background depth", (H, W)).astype(np.float64)
    timings["background_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    mesh = object_mesh(depth, mask, camera, max_depth_jump)
    moved = mesh.vertices @ T[:3, :3].T + T[:3, 3]
    # Behind the object, the static scene can never be nearer than the object was: a smooth fill
    # that bulges in front of a concave or far-leaning object must not hide it in place.
    static = np.where(mask, np.maximum(background, depth), depth).astype(np.float64)
    ctx = {"mesh": mesh, "camera": camera, "moved_vertices": moved, "static_depth": static,
           "object_mask": mask, "occlusion_tolerance": occlusion_tolerance, "transform": T}
    geo = _geometry_on_grid(ctx, H, W, H, W)
    timings["raster_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    edited = composite_edited_depth(depth, mask, static, geo, seam_threshold)
    timings["composite_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    return EditGeometry(geo["target"], geo["valid"], geo["coords"], geo["object_depth"],
                        edited.astype(np.float32), mask, timings, ctx)
