"""Lifted photo meshes in Blender: one vertex per sampled pixel centre, the engine's triangles.

The triangles come from `engine.geometry.grid_faces`, the rule the engine renders with (cut where
depth jumps by more than DEFAULT_MAX_DEPTH_JUMP, three-of-four corners kept along mask edges), so
what the artist sees in the viewport is what the engine draws. Built with numpy and
``foreach_set`` (no per-vertex Python). UVs map each vertex to its pixel centre, so the photo
texture lands exactly where it was seen.

Large photos: a photo's meshes sample one grid of at most ``budget`` pixels (`DEFAULT_VERTEX_BUDGET`,
the scene's *Mesh Vertices*), every vertex the exact lifted point of a photo pixel, so a 12 MP
photo's meshes stay about a million vertices. The viewport meshes are a view of the photo's cache
(the render engine never reads them), so a .blend does not store their geometry: each mesh keeps
a small record of how it was made (`LIFTED`), the saved file holds it empty, and the geometry is
made again from the cache when the file is loaded (`register`'s handlers). A mesh the artist
edited (its geometry no longer the one built) is saved whole.
"""
import bpy
import numpy as np

from ..engine.geometry import DEFAULT_MAX_DEPTH_JUMP, grid_faces  # noqa: F401  (the add-on's default too)
from ..engine.images import nearest_index

DEFAULT_VERTEX_BUDGET = 1_000_000  # vertices of a photo's sampling grid (the background's mesh)
LIFTED = "dh_lifted"  # mesh custom property: how to make the mesh again from the photo's cache


def sample_grid(shape, budget=DEFAULT_VERTEX_BUDGET):
    """(rows, cols): the photo pixels a photo's meshes sample, every pixel while H * W is within
    ``budget``, else an evenly spaced grid of the photo's aspect ratio with at most ``budget``."""
    H, W = shape
    if H * W <= budget:
        return np.arange(H), np.arange(W)
    f = float(np.sqrt(H * W / budget))
    h, w = max(2, int(H / f)), max(2, int(W / f))
    return nearest_index(h, H), nearest_index(w, W)


def build_photo_mesh(name, camera, depth, valid, centroid=None, rotation=None,
                     max_depth_jump=DEFAULT_MAX_DEPTH_JUMP, budget=DEFAULT_VERTEX_BUDGET, part=-1):
    """A mesh of the ``valid`` pixels of a photo's ``depth`` (H, W), lifted by ``camera`` (the
    engine's camera model of the photo) at the pixels of `sample_grid`: vertex = (lifted point -
    ``centroid``) rotated by ``rotation`` (3x3; the mesh's local frame), one per valid sampled
    pixel in row-major order; a UV layer "Photo" maps each corner to its pixel centre. ``part``:
    -1 the background, n object n (0-based), recorded with the rest (`LIFTED`) for `rebuild`."""
    mesh = bpy.data.meshes.new(name)
    mesh[LIFTED] = {"part": int(part), "max_depth_jump": float(max_depth_jump), "budget": int(budget),
                    "centroid": [float(v) for v in (np.zeros(3) if centroid is None else centroid)],
                    "rotation": [float(v) for v in np.ravel(np.eye(3) if rotation is None else rotation)]}
    _fill(mesh, camera, depth, valid)
    return mesh


def _fill(mesh, camera, depth, valid):
    """Give the empty ``mesh`` its geometry, as its `LIFTED` record says."""
    record = mesh[LIFTED]
    H, W = depth.shape
    rows, cols = sample_grid((H, W), int(record["budget"]))
    grid = np.ix_(rows, cols)
    d = np.asarray(depth, np.float64)[grid]
    keep = np.asarray(valid, bool)[grid]
    triangles = grid_faces(d, keep, float(record["max_depth_jump"])).astype(np.int32)
    r, c = np.nonzero(keep)  # row-major, the same order as the vertex indices
    u, v = cols[c] + 0.5, rows[r] + 0.5  # photo pixel centres
    points = camera.lift(d[r, c], u, v) - np.asarray(record["centroid"], np.float64)
    points = points @ np.asarray(record["rotation"], np.float64).reshape(3, 3).T
    n_vertices, n_faces = len(r), len(triangles)

    mesh.vertices.add(n_vertices)
    mesh.loops.add(3 * n_faces)
    mesh.polygons.add(n_faces)
    # generic attributes take numpy buffers directly (several times faster than vertices/loops)
    _set(mesh, "position", "vector", mesh.vertices, "co", np.ascontiguousarray(points, dtype=np.float32).ravel())
    _set(mesh, ".corner_vert", "value", mesh.loops, "vertex_index", triangles.ravel())
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * n_faces, 3, dtype=np.int32))
    # UV per loop: the pixel centre; UV v grows up, image rows grow down.
    uv = np.stack((u / W, 1.0 - v / H), axis=-1).astype(np.float32)
    uv_layer = mesh.uv_layers.new(name="Photo")
    _set(mesh, uv_layer.name, "vector", uv_layer.data, "uv", uv[triangles.ravel()].ravel())
    mesh.update(calc_edges=True)
    mesh[LIFTED]["digest"] = _digest(mesh)


def _digest(mesh):
    """A fingerprint of the mesh's geometry: a mesh the artist edited differs from the one built
    (and is then saved whole: its geometry is no longer the cache's to make again)."""
    import hashlib

    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    return hashlib.sha1(co.tobytes() + np.int64([len(mesh.polygons), len(mesh.loops)]).tobytes()).hexdigest()


def rebuild(mesh, inputs):
    """Make a lifted ``mesh`` saved without its geometry whole again from its photo's cached
    ``inputs`` (an `engine.inputs.PhotoInputs`), exactly as it was built."""
    part = int(mesh[LIFTED]["part"])
    if part < 0:
        depth, valid = inputs.background_depth, np.ones(inputs.shape, bool)
    else:
        depth, valid = inputs.depth, inputs.masks[part]
    mesh.clear_geometry()
    _fill(mesh, inputs.camera, depth, valid)


def _set(mesh, attribute, field, fallback, fallback_field, values):
    """foreach_set on a generic attribute when this Blender has it, else on the classic API."""
    target = mesh.attributes.get(attribute)
    if target is not None:
        target.data.foreach_set(field, values)
    else:
        fallback.foreach_set(fallback_field, values)


# --- a .blend stores the lifted meshes empty -------------------------------------------------------
# On save each lifted mesh's objects show an empty stand-in (same name, materials and record) while
# the file is written, then the real mesh again; a mesh with no user is not written. On load the
# stand-ins get their geometry from the photo's cache.

_SAVED = []  # (object, real mesh, stand-in) while a save is being written


def _lifted_users():
    """{mesh: [objects]} for every lifted mesh with geometry as it was built (an edited one is
    saved as it is)."""
    users, unchanged = {}, {}
    for obj in bpy.data.objects:
        mesh = obj.data if obj.type == "MESH" else None
        if mesh is None or LIFTED not in mesh or not len(mesh.vertices):
            continue
        if mesh.name not in unchanged:
            unchanged[mesh.name] = mesh[LIFTED].get("digest") == _digest(mesh)
        if unchanged[mesh.name]:
            users.setdefault(mesh, []).append(obj)
    return users


@bpy.app.handlers.persistent
def _empty_on_save(*_):
    for mesh, objects in _lifted_users().items():
        name = mesh.name
        mesh.name = name + " (lifted)"  # frees the name for the stand-in
        stand_in = bpy.data.meshes.new(name)
        stand_in[LIFTED] = dict(mesh[LIFTED])
        for material in mesh.materials:
            stand_in.materials.append(material)
        for obj in objects:
            obj.data = stand_in
            _SAVED.append((obj, mesh, stand_in, name))


@bpy.app.handlers.persistent
def _restore_after_save(*_):
    names = {}
    while _SAVED:
        obj, mesh, stand_in, name = _SAVED.pop()
        obj.data = mesh
        names[mesh] = (stand_in, name)
    for mesh, (stand_in, name) in names.items():
        bpy.data.meshes.remove(stand_in)
        mesh.name = name


@bpy.app.handlers.persistent
def _rebuild_on_load(*_):
    """Every lifted mesh a .blend stored empty, made from its photo's cache. A photo whose cache
    cannot be read keeps empty meshes (its frames still render from the cache once it is back) and
    says so in one line."""
    import os
    import sys

    from ..session.photo import load_cache

    todo = {}
    for obj in bpy.data.objects:
        mesh = obj.data if obj.type == "MESH" else None
        if mesh is None or LIFTED not in mesh or len(mesh.vertices):
            continue
        handle = obj.dh.handle or obj
        if handle.dh.cache_dir:
            todo.setdefault(os.path.normpath(bpy.path.abspath(handle.dh.cache_dir)), set()).add(mesh)
    for cache_dir, meshes in todo.items():
        try:
            inputs = load_cache(cache_dir)
            for mesh in meshes:
                rebuild(mesh, inputs)
        except Exception as exc:  # noqa: BLE001 - a damaged cache must not stop the file loading
            print(f"Diffusion Handles: the lifted meshes of the photo cached in '{cache_dir}' are not shown "
                  f"({exc})", file=sys.stderr)


HANDLERS = (("save_pre", _empty_on_save), ("save_post", _restore_after_save),
            ("save_post_fail", _restore_after_save), ("load_post", _rebuild_on_load))


def register():
    for name, handler in HANDLERS:
        handlers = getattr(bpy.app.handlers, name, None)
        if handlers is not None and handler not in handlers:
            handlers.append(handler)


def unregister():
    for name, handler in HANDLERS:
        handlers = getattr(bpy.app.handlers, name, None)
        if handlers is not None:
            for h in [h for h in handlers if getattr(h, "__name__", "") == handler.__name__]:
                handlers.remove(h)
