"""Object and camera matrices <-> the engine's camera-frame edits (docs/design.md section 3).

A photo's frame B is its background's world matrix: at import the camera's, and it moves with
the whole photo (camera, background and objects parented to one rig keep every edit as it was).
With M the world matrix of an object (parenting included) and C the camera's, a frame's edit is

    T = B^-1 M_now M_rest^-1 B   per object (p' = T p in the photo's camera frame)
    K = C_now^-1 B               the camera's move (p_new = K p_old; None when C_now = B)

and an object's point is seen by the camera at K T p. The other way round, the world matrix that
realises T is M = B T B^-1 M_rest, and the camera for K is C = B K^-1.

The rest pose is stored relative to the photo frame (``Object.dh.rest_matrix`` = B^-1 M_rest at
import, when B = C), so M_rest = B rest. Photos imported before the background defined B have the
same stored values; a photo without a background falls back to B = C (no camera moves).
"""
import numpy as np
from mathutils import Matrix


def to_numpy(matrix):
    return np.array([list(row) for row in matrix], dtype=np.float64)


def to_matrix(array):
    return Matrix([list(map(float, row)) for row in np.asarray(array, dtype=np.float64)])


def flat(matrix):
    """Row-major 16 floats (how the rest matrix is stored on objects)."""
    return tuple(float(v) for row in matrix for v in row)


def unflat(values):
    v = list(values)
    return Matrix([v[0:4], v[4:8], v[8:12], v[12:16]])


def camera_frame_transform(camera_world, object_world_now, object_world_rest):
    """T = C^-1 M_now M_rest^-1 C as a (4, 4) float64 numpy array."""
    c = to_numpy(camera_world)
    return np.linalg.inv(c) @ to_numpy(object_world_now) @ np.linalg.inv(to_numpy(object_world_rest)) @ c


def world_matrix_for(transform, camera_world, object_world_rest):
    """M = C T C^-1 M_rest: the world matrix giving the camera-frame edit ``transform``."""
    c = to_numpy(camera_world)
    return to_matrix(c @ np.asarray(transform, dtype=np.float64) @ np.linalg.inv(c) @ to_numpy(object_world_rest))


def rest_world_matrix(obj, photo_world=None):
    """M_rest = B rest (the rest pose follows the photo; see the module docstring)."""
    photo_world = photo_frame(obj) if photo_world is None else photo_world
    return photo_world @ unflat(obj.dh.rest_matrix)


def rest_relative_to_camera(camera_world, object_world):
    """What ``Object.dh.rest_matrix`` stores: B^-1 M_rest (B = the camera at import), row-major."""
    return flat(camera_world.inverted() @ object_world)


def moving_objects(handle, scene=None):
    """A photo's objects in mask order (the handle, its first, holds the photo's settings)."""
    import bpy

    pool = scene.objects if scene is not None else bpy.data.objects
    found = [o for o in pool if o.dh.role == "OBJECT" and (o == handle or o.dh.handle == handle)
             and not is_copy(o)]
    return sorted(found, key=lambda o: (o != handle, o.dh.object_index, o.name))


def is_copy(obj):
    """A duplicate (Shift+D, Alt+D) of one of a photo's objects rather than the object itself: not
    among the objects its photo's camera lists (``camera.dh.parts``; a photo imported before that
    list existed: the camera's handle is object 1, the first by name of each other number)."""
    camera = obj.dh.camera
    if obj.dh.role != "OBJECT" or camera is None:
        return False
    listed = [ref.object for ref in camera.dh.parts]
    if listed:
        return obj not in listed
    if obj.dh.object_index == 0:
        return camera.dh.handle is not None and obj != camera.dh.handle
    import bpy

    same = sorted((o for o in bpy.data.objects if o.dh.role == "OBJECT" and o.dh.camera == camera
                   and o.dh.object_index == obj.dh.object_index), key=lambda o: o.name)
    return bool(same) and same[0] != obj


def photo_handle(obj):
    """The photo's handle (its object 1, holding the settings) of any part of a photo: a copy's
    own pointer is its own (Blender remaps it when duplicating), its camera's is the photo's."""
    if is_copy(obj):
        return obj.dh.camera.dh.handle
    return obj.dh.handle


def photo_copies(handle, scene=None):
    """The copies of the photo whose handle is ``handle``, in the order of their names (the order
    of the engine's ``copies``: per-part results count objects, then these)."""
    import bpy

    pool = scene.objects if scene is not None else bpy.data.objects
    camera = handle.dh.camera
    return sorted((o for o in pool if o.dh.role == "OBJECT" and camera is not None and o.dh.camera == camera
                   and is_copy(o)), key=lambda o: o.name)


def _evaluated(obj, depsgraph):
    return obj if depsgraph is None else obj.evaluated_get(depsgraph)


def photo_frame(handle, depsgraph=None):
    """B: the world matrix of the photo's rest camera (its background's; the camera's without one)."""
    props = handle.dh
    anchor = props.background if props.background is not None else props.camera
    return _evaluated(anchor, depsgraph).matrix_world.copy()


def camera_move(handle, depsgraph=None):
    """K = C_now^-1 B, or None when the camera sits where the photo was taken."""
    photo_world = photo_frame(handle, depsgraph)
    camera_world = _evaluated(handle.dh.camera, depsgraph).matrix_world
    move = np.linalg.inv(to_numpy(camera_world)) @ to_numpy(photo_world)
    return None if np.allclose(move, np.eye(4), atol=1e-6) else move


def object_edit(obj, photo_world, depsgraph=None):
    """T = B^-1 M_now M_rest^-1 B of one imported object (its move within the photo)."""
    now = _evaluated(obj, depsgraph).matrix_world
    return camera_frame_transform(photo_world, now, rest_world_matrix(obj, photo_world))


def object_transform(obj, depsgraph=None):
    """What the camera sees of an imported object's edit: K T (T alone while the camera stays).

    With a depsgraph (a render engine's), the evaluated matrices of that depsgraph's frame are used:
    a render never depends on which frame the interface last showed.
    """
    handle = obj.dh.handle or obj
    photo_world = photo_frame(handle, depsgraph)
    T = object_edit(obj, photo_world, depsgraph)
    K = camera_move(handle, depsgraph)
    return T if K is None else K @ T
