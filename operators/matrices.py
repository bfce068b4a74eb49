"""Object matrices <-> the engine's camera-frame transforms (docs/design.md section 3).

With C the camera's world matrix and M the object's world matrix (parenting included),
the camera-frame edit of the object between its rest pose and now is

    T = C^-1 M_now M_rest^-1 C        (p'_camera = T p_camera)

and, the other way round, the world matrix that realises a camera-frame edit T is
M = C T C^-1 M_rest.

The rest pose is stored relative to the camera (``Object.dh.rest_matrix`` = C^-1 M_rest at import),
so M_rest = C rest: moving or parenting the whole photo (camera and object together) keeps every
edit as it was, while moving the object, or the camera alone, is an edit.
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


def rest_world_matrix(obj, camera_world=None):
    """M_rest = C rest (the rest pose follows the camera; see the module docstring)."""
    camera_world = obj.dh.camera.matrix_world if camera_world is None else camera_world
    return camera_world @ unflat(obj.dh.rest_matrix)


def rest_relative_to_camera(camera_world, object_world):
    """What ``Object.dh.rest_matrix`` stores: C^-1 M_rest, row-major."""
    return flat(camera_world.inverted() @ object_world)


def object_transform(obj, depsgraph=None):
    """The current camera-frame edit of an imported object (``obj.dh`` names camera and rest pose).

    With a depsgraph (a render engine's), the evaluated matrices of that depsgraph's frame are used:
    a render never depends on which frame the interface last showed.
    """
    camera, moved = obj.dh.camera, obj
    if depsgraph is not None:
        camera, moved = camera.evaluated_get(depsgraph), obj.evaluated_get(depsgraph)
    camera_world = camera.matrix_world
    return camera_frame_transform(camera_world, moved.matrix_world, rest_world_matrix(obj, camera_world))
