"""The lifted scene: a photo's depth turned into 3D surfaces ONCE, then any number of frame edits.

Built once per photo (`LiftedScene.build`): every pixel lifted to a camera-frame point
(`engine.camera` conventions), one triangle mesh per object (its mask's pixels, cut at depth
jumps: `engine.geometry.grid_faces`), the static scene (every pixel outside all masks), the seam
triangles joining parts that touch without a depth jump (an object standing on the floor), and the
completed background depth behind the objects (`engine.completion`). Inputs are validated here,
once.

Per frame (`LiftedScene.frame`) only: transform, project, z-buffer and, at the working grid, the
edited depth. A frame is a `FrameEdit`: object n moves by T_n, the camera by M (p_new = M p_old),
so object n's points move by M T_n and the static scene's by M. A copy of object n is one more
instance of object n's surface (its own faces, no seams) moved by M T_copy; its pixels' sources
are object n's, so the guidance compares it with the original's activations. An object (or copy)
the frame removes is not drawn: its place is a hole over the completed background, exactly as
when it moves away. Any grid covering the same image
can be asked for (the activation grids of the guidance): the meshes are projected straight onto it.

Occlusion: objects hide each other and are hidden by the static scene through the z-buffer. The
static scene has HOLES where the objects were: the completed background is a guess, and a guess
must not hide a moved object (the scene's own evidence, the visible pixels, does). The completed
background only gives the edited depth where nothing is drawn.

Valid mask (coverage): the pixels the moved lifted photo covers. Without a camera move the static
pixels stay where they are, so valid = ~(union of masks) | target; with one, valid = the
rasterised static scene (with its seams) | target; the rest is disoccluded, for the model to invent.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import checks
from .camera import Camera
from .errors import InputError
from .geometry import (DEFAULT_MAX_DEPTH_JUMP, DEFAULT_OCCLUSION_TOLERANCE, DEFAULT_SEAM_THRESHOLD,
                       EditGeometry, Raster, composite_edited_depth, grid_faces, rasterize)
from .images import resize_image, resize_nearest
from .transforms import FrameEdit, same_matrix

# A moved part covering this share of the frame (and less at rest) "fills the frame".
FILLS_FRAME = 0.9


@dataclass
class _Part:
    """Faces of one part of the scene in global vertex numbering (pixel i * W + j)."""

    faces: np.ndarray  # (F, 3) int32 (int64 past 2**31 pixels)
    points: np.ndarray  # (P,) vertices drawn as points (in no face of this part), the same type


@dataclass
class LiftedScene:
    """See the module docstring. Build with `LiftedScene.build`."""

    camera: Camera
    depth: np.ndarray  # (H, W) float64 metres
    object_masks: np.ndarray  # (N, H, W) bool, disjoint (a pixel in two masks goes to the first)
    background_depth: np.ndarray  # (H, W) float64: depth outside the masks, completed inside
    vertices: np.ndarray  # (H * W, 3) float64: every pixel lifted
    objects: list  # [_Part] one per object
    static: _Part  # pixels outside every mask
    seams: np.ndarray  # (S, 3) int32 (int64 past 2**31 pixels) triangles joining different parts (no depth jump)
    seam_labels: np.ndarray  # (S, 3) int part of each seam vertex (0 static, n object n)
    max_depth_jump: float = DEFAULT_MAX_DEPTH_JUMP
    occlusion_tolerance: float = DEFAULT_OCCLUSION_TOLERANCE
    timings: dict = field(default_factory=dict, repr=False, compare=False)

    # --- build (once per photo) --------------------------------------------------------------
    @classmethod
    def build(cls, depth, object_masks, background_depth=None, camera=None, *,
              max_depth_jump=DEFAULT_MAX_DEPTH_JUMP,
              occlusion_tolerance=DEFAULT_OCCLUSION_TOLERANCE) -> "LiftedScene":
        """depth (H, W) z-depth in metres; object_masks (H, W) or (N, H, W) bool; background_depth
        (H, W) depth behind the objects (default: `engine.completion.complete_background_depth`);
        camera default Camera(H, W)."""
        from .completion import complete_background_depth
        from .io import validate_depth, validate_mask

        t_start = time.perf_counter()
        depth = validate_depth(depth, "depth").astype(np.float64)
        H, W = depth.shape
        masks = np.asarray(object_masks)
        if masks.ndim == 2:
            masks = masks[None]
        if masks.ndim != 3 or masks.shape[0] == 0:
            raise InputError(f"masks: expected (H, W) or (N, H, W), got shape {masks.shape}")
        masks = np.stack([validate_mask(m, f"mask {n + 1}" if len(masks) > 1 else "mask", (H, W))
                          for n, m in enumerate(masks)])
        masks = checks.disjoint_masks(masks)  # a pixel in two masks goes to the first
        taken = masks.any(0)
        if taken.all():
            raise InputError("masks: the objects cover the whole image (no static scene left)")
        camera = camera or Camera(H, W)
        if (camera.height, camera.width) != (H, W):
            raise InputError(f"camera: is {camera.width}x{camera.height}, depth is {W}x{H} (WxH)")
        timings = {}
        t0 = time.perf_counter()
        if background_depth is None:
            background = complete_background_depth(depth, taken)
        else:
            background = validate_depth(background_depth, "background depth", (H, W)).astype(np.float64)
        # Behind an object the background can never be nearer than the object was there.
        # Kept at float32 precision: a scene rebuilt from a saved (float32) background is identical.
        background = np.where(taken, np.maximum(background, depth), depth).astype(np.float32).astype(np.float64)
        timings["background_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        vertices = camera.lift(depth).reshape(-1, 3)
        # vertex numbers at 4 bytes below 2**31 pixels: a photo-size mesh has two faces per pixel
        index = np.arange(H * W, dtype=np.int32 if H * W < 2 ** 31 else np.int64).reshape(H, W)
        labels = np.zeros((H, W), dtype=np.int32)
        for n, m in enumerate(masks, start=1):
            labels[m] = n

        def part(valid):
            faces = grid_faces(depth, valid, max_depth_jump, index)
            in_face = np.zeros(H * W, dtype=bool)
            in_face[faces.ravel()] = True
            mine = index[valid]
            return _Part(faces, mine[~in_face[mine]])

        objects = [part(m) for m in masks]
        static = part(~taken)
        # Seams: the full grid's triangles whose corners lie in different parts (cut at depth
        # jumps like every other triangle). A seam is drawn when all its parts move alike. Every
        # corner of a quad with two parts has another part among its 8 neighbours, so the grid of
        # those pixels alone has the same mixed triangles (and photo-size scenes stay small).
        from scipy import ndimage

        edge = ndimage.maximum_filter(labels, size=3) != ndimage.minimum_filter(labels, size=3)
        every = grid_faces(depth, edge, max_depth_jump, index)
        lab = labels.ravel()[every]
        mixed = (lab != lab[:, :1]).any(1)
        timings["mesh_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_start
        return cls(camera, depth, masks, background, vertices, objects, static, every[mixed],
                   lab[mixed], max_depth_jump, occlusion_tolerance, timings)

    @property
    def shape(self) -> tuple:
        return self.depth.shape

    @property
    def n_objects(self) -> int:
        return len(self.object_masks)

    @property
    def object_mask(self) -> np.ndarray:
        """(H, W) bool: the union of the object masks."""
        return self.object_masks.any(0)

    def centroids(self) -> np.ndarray:
        """(N, 3) camera-frame centroid of each object's lifted pixels (the default pivots)."""
        v = self.vertices.reshape(*self.shape, 3)
        return np.stack([v[m].mean(0) for m in self.object_masks])

    def hidden_frames(self, edits, what: str = "transforms") -> list:
        """The one visibility rule: the 1-based numbers of the frames of ``edits`` (FrameEdits or
        4x4 matrices) that edit nothing: no object is seen (each out of view, hidden behind
        something nearer or too small to cover a pixel: `EditGeometry.notes`) and none is removed;
        such a frame renders without them. When that is every frame, the trajectory is refused in
        one line naming ``what`` and frame 1's reasons: nothing of the objects would be edited.
        Geometry is made one frame at a time and dropped."""
        hidden, notes = [], []
        for k, e in enumerate(edits, start=1):
            geo = self.frame(e, edited_depth=False)
            if not geo.edits_anything:
                hidden.append(k)
                notes.append(geo.notes)
        if edits and len(hidden) == len(edits):
            if all(note.startswith("object ") and " out of view" in note for frame in notes for note in frame):
                raise InputError(f"{what}: every object is out of view in every frame (behind the camera or "
                                 f"outside the picture)")
            raise InputError(f"{what}: no object is seen in any frame (frame 1: {'; '.join(notes[0])})")
        return hidden

    # --- one frame ------------------------------------------------------------------------------
    def frame(self, edit, grid=None, *, edited_depth=True, seam_threshold=DEFAULT_SEAM_THRESHOLD) -> EditGeometry:
        """The geometry of one frame on an h x w ``grid`` covering the image (default: the photo's
        own grid). ``edit``: a FrameEdit or a bare 4x4 matrix (object 1 moves). edited_depth is
        computed on request (at the photo's grid; area-resampled to another grid)."""
        t_start = time.perf_counter()
        edit = FrameEdit.of(edit, self.n_objects)
        H, W = self.shape
        h, w = (H, W) if grid is None else (int(grid[0]), int(grid[1]))
        if h < 1 or w < 1:
            raise ValueError(f"grid must be at least 1x1, got {w}x{h}")
        sx, sy = w / W, h / H
        same_grid = (h, w) == (H, W)
        cam = self.camera
        moves = edit.object_transforms()
        moves_camera = edit.moves_camera
        shown = edit.shown()

        def project(M):
            u, v, z = cam.project(_apply(M, self.vertices))
            return u * sx, v * sy, z

        projections = {}

        def projected(key, M):
            if key not in projections:
                projections[key] = project(M)
            return projections[key]

        def raster(faces, points, key, M):
            u, v, z = projected(key, M)
            iso = np.zeros(len(self.vertices), dtype=bool)
            iso[points] = True
            return rasterize(u, v, z, faces, iso, h, w)

        # Parts that move alike share a transform class; seams join parts of the same class.
        keys = [0] + [_class_of(T, moves, n, edit.camera) for n, T in enumerate(moves)]
        # a removed object shares no seam (the static scene's edge along it is not drawn)
        keys = [k if n == 0 or shown[n - 1] else -n for n, k in enumerate(keys)]
        static_M = edit.camera if moves_camera else np.eye(4)

        # 1. Static scene: in place, or rasterised from the moved camera.
        if moves_camera:
            faces = [self.static.faces] + [self._seams_between(keys, 0)]
            static_r = raster(np.concatenate(faces), self.static.points, "static", static_M)
            static_depth = static_r.depth
            static_cov = static_r.covered
        else:
            static_r = None
            static_cov, static_depth = self._static_on_grid(h, w)

        # 2. Objects: each z-buffered against the others and the static scene.
        obj_rasters = []
        for n, (part, T) in enumerate(zip(self.objects, moves), start=1):
            if not shown[n - 1]:
                obj_rasters.append(_empty_raster(h, w))
                continue
            faces = part.faces
            seams = self._seams_between(keys, n)
            if seams.size:
                faces = np.concatenate([faces, seams])
            obj_rasters.append(raster(faces, part.points, keys[n], T))
        # Copies: object n's own surface once more (no seams: nothing around it is copied).
        for j, c in enumerate(edit.copies):
            if not c.visible:
                obj_rasters.append(_empty_raster(h, w))
                continue
            part = self.objects[c.of]
            T = c.matrix if edit.camera is None else edit.camera @ c.matrix
            obj_rasters.append(raster(part.faces, part.points, ("copy", j), T))
        n_parts = len(obj_rasters)
        nearest = np.full((h, w), np.inf)
        for r in obj_rasters:
            nearest = np.minimum(nearest, r.depth)
        front = nearest <= static_depth * (1.0 + self.occlusion_tolerance)
        target_masks = np.zeros((n_parts, h, w), dtype=bool)
        taken = np.zeros((h, w), dtype=bool)
        for n, r in enumerate(obj_rasters):
            target_masks[n] = r.covered & (r.depth <= nearest) & front & ~taken  # ties: first object
            taken |= target_masks[n]
        target = taken

        # 3. Source of every drawn pixel: the same surface point in the photo (float32, the
        # geometry's type, from the start: a photo-size grid holds h * w * 2 of them).
        coords = np.empty((h, w, 2), np.float32)
        coords[..., 0] = np.arange(w, dtype=np.float32) + 0.5
        coords[..., 1] = (np.arange(h, dtype=np.float32) + 0.5)[:, None]
        object_depth = np.full((h, w), np.nan)
        drawn = [(target_masks[n], r) for n, r in enumerate(obj_rasters)]
        if static_r is not None:
            drawn.append((static_cov & ~target, static_r))
        for sel, r in drawn:
            if sel.any():
                src = np.einsum("pk,pkc->pc", r.weight[sel], self.vertices[r.vertex[sel]])
                su, sv, _ = cam.project(src)
                coords[sel] = np.stack([su * sx, sv * sy], -1)
        for n, r in enumerate(obj_rasters):
            object_depth[target_masks[n]] = r.depth[target_masks[n]]
        union_rest = self._union_on_grid(h, w)
        valid = (static_cov | target) if moves_camera else (~union_rest | target)
        coords[~valid] = np.nan
        timings = {"raster_s": time.perf_counter() - t_start}

        # 4. Edited depth: the drawn surfaces over the completed background.
        edited = None
        if edited_depth:
            t0 = time.perf_counter()
            edited = self._edited_depth(edit, moves_camera, target, valid, coords, object_depth,
                                        static_r, seam_threshold, (h, w), same_grid, sx, sy)
            timings["composite_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_start
        visible = tuple(bool(m.any()) for m in target_masks)
        parts = [(self.objects[n], keys[n + 1], T) for n, T in enumerate(moves)]
        parts += [(self.objects[c.of], ("copy", j), c.matrix) for j, c in enumerate(edit.copies)]
        notes = self._visibility_notes(parts, shown, obj_rasters, target_masks, target, projections,
                                       edit.part_sources(), (h, w))
        return EditGeometry(target, valid, coords, object_depth.astype(np.float32),
                            None if edited is None else edited.astype(np.float32), union_rest,
                            timings, target_masks=target_masks, visible=visible,
                            camera_moved=moves_camera, shown=shown, part_of=edit.part_sources(), notes=notes)

    def _visibility_notes(self, parts, shown, rasters, target_masks, target, projections, part_of, hw) -> tuple:
        """The one wording of what a frame does to its parts' visibility (`EditGeometry.notes`):
        a shown part seen nowhere is "hidden behind object M" (or the background) when it lands
        on pixels others cover, "too small to see" when it projects under a pixel, else "out of
        view" (it left the frame, or lies behind the camera); a part covering most of the frame
        that did not at rest "fills the frame". A scale other than 1 is named (1e-6 or 1e6 is a
        typo more often than an intent)."""
        h, w = hw
        notes = []
        for n, ((part, key, T), r) in enumerate(zip(parts, rasters)):
            if not shown[n]:
                continue
            scale = abs(float(np.linalg.det(np.asarray(T, np.float64)[:3, :3]))) ** (1.0 / 3.0)
            scaled = f", scaled by {scale:.3g}" if abs(scale - 1.0) > 1e-6 else ""
            label = f"object {n + 1}"
            if target_masks[n].any():
                if target_masks[n].mean() >= FILLS_FRAME and \
                        resize_nearest(self.object_masks[part_of[n]], (h, w)).mean() < FILLS_FRAME:
                    notes.append(f"{label} fills the frame{scaled}")
                continue
            covered = r.covered
            if covered.any():  # drawn, but something nearer wins every pixel it lands on
                counts = [int((m & covered).sum()) if m_n != n else -1 for m_n, m in enumerate(target_masks)]
                behind = int((covered & ~target).sum())
                best = int(np.argmax(counts)) if counts else 0
                notes.append(f"{label} hidden behind " + (f"object {best + 1}" if counts and counts[best] > behind
                                                           else "the background") + scaled)
                continue
            u, v, z = projections.get(key) or (None, None, None)
            ids = np.union1d(part.faces.ravel(), part.points)
            front = np.zeros(0, bool) if u is None else np.isfinite(z[ids]) & (z[ids] > 0)
            if u is not None and front.any():
                uf, vf = u[ids][front], v[ids][front]
                small = uf.max() - uf.min() < 1.0 and vf.max() - vf.min() < 1.0
                inside = ((uf >= 0) & (uf <= w) & (vf >= 0) & (vf <= h)).any()
                if small and inside:
                    notes.append(f"{label} too small to see (under a pixel){scaled}")
                    continue
            notes.append(f"{label} out of view{scaled}")
        return tuple(notes)

    # --- helpers -------------------------------------------------------------------------------
    def _seams_between(self, keys, n) -> np.ndarray:
        """Seam triangles drawn with part n: all their parts move alike and n is the lowest part."""
        if not self.seams.size:
            return self.seams
        k = np.asarray(keys, dtype=object)[self.seam_labels]
        alike = (k == keys[n]).all(1)
        return self.seams[alike & (self.seam_labels.min(1) == n)]

    def _union_on_grid(self, h, w) -> np.ndarray:
        """The objects' rest silhouette on an h x w grid (the masks themselves at the photo's
        grid); computed once per grid."""
        cache = self.__dict__.setdefault("_grid_cache", {})
        if (h, w) not in cache:
            cache[(h, w)] = self._rest_silhouette(h, w)
        return cache[(h, w)]

    def _rest_silhouette(self, h, w) -> np.ndarray:
        if (h, w) == self.shape:
            return self.object_mask
        out = np.zeros((h, w), dtype=bool)
        H, W = self.shape
        u, v, z = self.camera.project(self.vertices)
        u, v = u * (w / W), v * (h / H)
        for part in self.objects:
            iso = np.zeros(len(self.vertices), dtype=bool)
            iso[part.points] = True
            out |= rasterize(u, v, z, part.faces, iso, h, w).covered
        return out

    def _static_on_grid(self, h, w):
        """(covered, depth) of the unmoved static scene on an h x w grid: the photo's depth at the
        nearest pixel, a hole (inf) where the objects were."""
        H, W = self.shape
        union = self._union_on_grid(h, w)
        if (h, w) == (H, W):
            depth = self.depth
        else:
            depth = resize_nearest(self.depth, (h, w))
        return ~union, np.where(union, np.inf, depth)

    def _edited_depth(self, edit, moves_camera, target, valid, coords, object_depth, static_r,
                      seam_threshold, hw, same_grid, sx, sy) -> np.ndarray:
        if not same_grid:
            full = self.frame(edit, None, edited_depth=True, seam_threshold=seam_threshold)
            return resize_image(full.edited_depth, hw, clip=False)
        if not moves_camera:
            geo = {"target": target, "object_depth": object_depth, "coords": coords}
            return composite_edited_depth(self.depth, self.object_mask, self.background_depth, geo,
                                          seam_threshold)
        # Camera move: the drawn depth; disocclusions take the farther neighbouring surface (what
        # a foreground edge uncovers is behind it), grown in from the covered pixels.
        out = np.where(target, object_depth, np.where(static_r.covered, static_r.depth, np.nan))
        return _fill_far(out)


def compute_edit_geometry(depth, object_mask, transform, background_depth=None, camera=None, *,
                          max_depth_jump=DEFAULT_MAX_DEPTH_JUMP,
                          occlusion_tolerance=DEFAULT_OCCLUSION_TOLERANCE,
                          seam_threshold=DEFAULT_SEAM_THRESHOLD) -> EditGeometry:
    """One frame's geometry without keeping the lifted scene (tests, one-off use): builds
    `LiftedScene` from depth (H, W) and object mask(s) (H, W) or (N, H, W), then
    its frame for ``transform`` (a 4x4 matrix or a FrameEdit). Several frames of one photo: build
    the scene once and call its ``frame``."""
    t0 = time.perf_counter()
    scene = LiftedScene.build(depth, object_mask, background_depth, camera, max_depth_jump=max_depth_jump,
                              occlusion_tolerance=occlusion_tolerance)
    geo = scene.frame(transform, seam_threshold=seam_threshold)
    geo.timings.update(scene=scene.timings["total_s"], total_s=time.perf_counter() - t0)
    return geo


def _empty_raster(h, w):
    """What a part the frame removes draws: nothing."""
    return Raster(np.full((h, w), np.inf), np.full((h, w, 3), -1, dtype=np.int64), np.zeros((h, w, 3)))


def _apply(M, points) -> np.ndarray:
    """M (4, 4) applied to points (N, 3), elementwise (a thin matrix product goes through BLAS
    threads, which are slow on a busy machine)."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    return np.stack([M[r, 0] * x + M[r, 1] * y + M[r, 2] * z + M[r, 3] for r in range(3)], -1)


def _class_of(T, moves, n, camera) -> int:
    """Transform class of object n+1: 0 when it moves with the static scene, else the lowest
    object number with the same transform (objects moved alike share seams)."""
    static = camera if camera is not None else np.eye(4)
    if same_matrix(T, static):
        return 0
    for m in range(n):
        if same_matrix(moves[m], T):
            return m + 1
    return n + 1


def _fill_far(depth, grow=2) -> np.ndarray:
    """NaN pixels filled from the known ones: ``grow`` rings take the largest depth among their
    known 8-neighbours (a sliver uncovered beside a foreground edge shows what is behind it), the
    rest the depth of the nearest known pixel (one distance transform)."""
    from scipy import ndimage

    out = np.array(depth, dtype=np.float64)
    missing = np.isnan(out)
    if missing.all():
        raise InputError("camera move: no pixel of the photo is in view")
    for _ in range(grow):
        if not missing.any():
            return out
        grown = ndimage.maximum_filter(np.where(missing, -np.inf, out), size=3)
        new = missing & np.isfinite(grown)
        out[new] = grown[new]
        missing &= ~new
    if missing.any():
        _, (ri, ci) = ndimage.distance_transform_edt(missing, return_indices=True)
        out[missing] = out[ri[missing], ci[missing]]
    return out

