"""Lifted photo meshes in Blender: one vertex per pixel centre, the engine's triangles.

The triangles come from `engine.geometry.grid_faces`, the rule the engine renders with (cut where
depth jumps by more than DEFAULT_MAX_DEPTH_JUMP, three-of-four corners kept along mask edges), so
what the artist sees in the viewport is what the engine draws. Built with numpy and
``foreach_set`` (no per-vertex Python): a 1024x1024 photo takes about a second. UVs map each
vertex to its pixel centre, so the photo texture lands exactly where it was seen.
"""
import bpy
import numpy as np

from ..engine.geometry import DEFAULT_MAX_DEPTH_JUMP, grid_faces  # noqa: F401  (the add-on's default too)


def build_grid_mesh(name, points, valid, depth, max_depth_jump=DEFAULT_MAX_DEPTH_JUMP):
    """A mesh from per-pixel points.

    points: (H, W, 3) vertex coordinates (the mesh's local frame); valid: (H, W) bool, e.g. one
    object's mask (one mesh per object) or all pixels for the background; depth: (H, W) z-depth
    used for the discontinuity cut. One vertex per valid pixel, in row-major pixel order; a UV
    layer "Photo" maps each corner to its pixel centre.
    """
    h, w = valid.shape
    triangles = grid_faces(depth, valid, max_depth_jump).astype(np.int32)
    n_vertices, n_faces = int(valid.sum()), len(triangles)

    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(n_vertices)
    mesh.loops.add(3 * n_faces)
    mesh.polygons.add(n_faces)
    # generic attributes take numpy buffers directly (several times faster than vertices/loops)
    _set(mesh, "position", "vector", mesh.vertices, "co",
         np.ascontiguousarray(points[valid], dtype=np.float32).ravel())
    _set(mesh, ".corner_vert", "value", mesh.loops, "vertex_index", triangles.ravel())
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * n_faces, 3, dtype=np.int32))

    # UV per loop: the pixel centre (j + 0.5, i + 0.5); UV v grows up, image rows grow down.
    rows, cols = np.nonzero(valid)  # row-major, the same order as the vertex indices
    uv = np.stack(((cols + 0.5) / w, 1.0 - (rows + 0.5) / h), axis=-1).astype(np.float32)
    uv_layer = mesh.uv_layers.new(name="Photo")
    _set(mesh, uv_layer.name, "vector", uv_layer.data, "uv", uv[triangles.ravel()].ravel())

    mesh.update(calc_edges=True)
    return mesh


def _set(mesh, attribute, field, fallback, fallback_field, values):
    """foreach_set on a generic attribute when this Blender has it, else on the classic API."""
    target = mesh.attributes.get(attribute)
    if target is not None:
        target.data.foreach_set(field, values)
    else:
        fallback.foreach_set(fallback_field, values)
