"""T = C^-1 M_now M_rest^-1 C with a parented, rotated camera (docs/design.md section 3)."""
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module, import_photo, make_photo  # noqa: E402
from mathutils import Euler, Matrix, Vector  # noqa: E402


def _vertices_world(obj):
    m = np.array(obj.matrix_world)
    co = np.array([v.co[:] for v in obj.data.vertices], np.float64)
    return co @ m[:3, :3].T + m[:3, 3]


def _to_camera(camera, points_world):
    c_inv = np.linalg.inv(np.array(camera.matrix_world))
    return points_world @ c_inv[:3, :3].T + c_inv[:3, 3]


def _blender_pixels(scene, camera, points_world):
    """Blender's own projection (bpy_extras) -> engine pixel coordinates (u right, v down)."""
    from bpy_extras.object_utils import world_to_camera_view

    w, h = scene.render.resolution_x, scene.render.resolution_y
    out = []
    for p in points_world:
        ndc = world_to_camera_view(scene, camera, Vector(p))
        out.append((ndc.x * w, (1.0 - ndc.y) * h, ndc.z))
    return np.array(out)


def test_parented_rotated_camera_gives_the_engine_transform(addon, tmp_path):
    photo = make_photo(tmp_path / "photo")
    obj = import_photo(bpy, photo, tmp_path)
    scene = bpy.context.scene
    camera = obj.dh.camera
    matrices = addon_module("blender.matrices")
    from engine.camera import Camera
    from engine.transforms import validate_transform

    # The rest pose in camera coordinates, as imported
    rest_cam = _to_camera(camera, _vertices_world(obj))

    # Parent the whole photo (camera + object) to a rotated, moved rig: nothing moves relative
    # to the camera, so the edit stays the identity.
    rig = bpy.data.objects.new("rig", None)
    scene.collection.objects.link(rig)
    for child in (camera, obj, obj.dh.background):
        child.parent = rig
    rig.matrix_world = Matrix.Translation((1.0, -2.0, 0.5)) @ Euler((0.3, -0.7, 1.1)).to_matrix().to_4x4()
    bpy.context.view_layer.update()
    np.testing.assert_allclose(matrices.object_transform(obj), np.eye(4), atol=1e-6)

    # The camera turns under the rig and the object moves (rotate, scale, translate) under it too
    camera.rotation_euler.rotate(Euler((0.05, 0.1, -0.2)))
    obj.location += Vector((0.3, 0.2, -0.1))
    obj.rotation_euler = Euler((0.2, 0.4, -0.3))
    obj.scale = (1.2, 1.2, 1.2)
    bpy.context.view_layer.update()
    now_world = _vertices_world(obj)
    now_cam = _to_camera(camera, now_world)

    T = matrices.object_transform(obj)
    validate_transform(T)  # rigid + uniform scale: what the engine accepts
    moved = rest_cam @ T[:3, :3].T + T[:3, 3]
    np.testing.assert_allclose(moved, now_cam, atol=1e-5)  # p' = T p on camera-frame points

    # And the engine's camera model projects the moved points where Blender's camera sees them.
    height, width = photo["depth"].shape
    u, v, depth = Camera(height, width).project(now_cam)
    blender = _blender_pixels(scene, camera, now_world)
    np.testing.assert_allclose(np.stack([u, v], -1), blender[:, :2], atol=1e-3)
    np.testing.assert_allclose(depth, blender[:, 2], atol=1e-4)


def test_keyframed_transforms_round_trip(addon, tmp_path):
    photo = make_photo(tmp_path / "photo")
    obj = import_photo(bpy, photo, tmp_path)
    scene = bpy.context.scene
    keyframes = addon_module("blender.keyframes")
    matrices = addon_module("blender.matrices")
    from engine.transforms import frame_to_matrix

    centroid = np.array(obj.dh.centroid)
    wanted = [frame_to_matrix({"translation": [0.1 * k, 0.0, -0.05 * k], "rotation_axis": [0, 1, 0],
                               "rotation_angle": 20.0 * k}, centroid) for k in range(3)]
    frames = keyframes.key_transforms(obj, [(None, wanted[0]), (3, wanted[1]), (5, wanted[2])], scene)
    assert frames == [1, 3, 5] and (scene.frame_start, scene.frame_end) == (1, 5)
    for frame, T in zip(frames, wanted):
        scene.frame_set(frame)
        np.testing.assert_allclose(matrices.object_transform(obj), T, atol=1e-5)
    scene.frame_set(2)  # between keys: Blender interpolates, a valid rigid motion between the two
    T2 = matrices.object_transform(obj)
    assert 0.0 < T2[0, 3] < wanted[1][0, 3]
    assert math.isclose(np.linalg.det(T2[:3, :3]), 1.0, rel_tol=1e-4)
