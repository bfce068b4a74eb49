"""Object matrices <-> the engine's camera-frame transforms (DESIGN.md section 3).

With C the camera's world matrix and M the object's world matrix (parenting included),
the camera-frame edit of the object between its rest pose and now is

    T = C^-1 M_now M_rest^-1 C        (p'_camera = T p_camera)

and, the other way round, the world matrix that realises a camera-frame edit T is
M = C T C^-1 M_rest.
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


def object_transform(obj):
    """The current camera-frame edit of an imported object (``obj.dh`` names camera and rest pose)."""
    return camera_frame_transform(obj.dh.camera.matrix_world, obj.matrix_world, unflat(obj.dh.rest_matrix))
