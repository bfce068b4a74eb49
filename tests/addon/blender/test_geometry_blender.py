"""The engine's target mask agrees with Blender's render of the same lifted mesh (bpy module).

The lifted object mesh (engine.geometry.object_mesh, camera-frame vertices) is built in an empty
scene whose camera sits at the origin with the identity world matrix, so Blender's world frame is
the engine's camera frame (+X right, +Y up, looking down -Z). T goes onto the object's
matrix_world. Cycles renders the silhouette (transparent film, alpha). The engine samples coverage
at pixel centres; Cycles integrates over a pixel-wide filter whatever the width setting, so we
render at an odd multiple K of the size and read the sub-pixel whose centre IS the pixel centre
(sub-pixel (K i + K // 2, K j + K // 2)): the blur shrinks to +-1/(2K) pixel. The static scene
(each pixel a little square at its static depth, as the engine's per-pixel z-test sees it) is a
holdout, so occlusion is compared too.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from blender_session import bpy

from engine.camera import Camera
from engine.geometry import object_mesh
from engine.lifted import compute_edit_geometry
from engine.transforms import frame_to_matrix, object_centroid

H, W = 72, 96
K = 5  # supersampling factor (odd, see the module docstring)


def synthetic_scene():
    """A dome with a ridge in front of a tilted wall, plus a near static pillar on the left."""
    cam = Camera(H, W)
    gu, gv = cam.pixel_centres()
    depth = 1.0 / (0.1 + 0.0008 * gv)  # tilted wall, 6.7..10 m
    depth[:, 4:12] = 2.5  # static pillar
    r2 = ((gu - 50) / 16) ** 2 + ((gv - 38) / 14) ** 2
    mask = r2 < 1
    depth[mask] = 4.0 - 0.8 * (1 - r2[mask]) + 0.3 * (gu[mask] > 58)  # a step: cut by the mesh
    return depth.astype(np.float32), mask


def pixel_squares(depth, camera):
    """Every pixel as a square covering its footprint at its own depth: the static scene as the
    engine's per-pixel z-test sees it."""
    from engine.geometry import GridMesh

    h, w = depth.shape
    i, j = np.mgrid[0:h, 0:w]
    i, j, z = i.ravel(), j.ravel(), depth.ravel().astype(np.float64)
    corners = [(0, 0), (0, 1), (1, 1), (1, 0)]  # (du, dv): counter-clockwise as seen by the camera
    verts = np.concatenate([camera.lift(z, j + du, i + dv) for du, dv in corners])
    n = z.size
    quad = np.stack([np.arange(n) + k * n for k in range(4)], -1)
    faces = np.concatenate([quad[:, [0, 1, 2]], quad[:, [0, 2, 3]]])
    return GridMesh(verts, None, faces, np.zeros(len(verts), bool))


def add_mesh(name, mesh):
    me = bpy.data.meshes.new(name)
    me.from_pydata(mesh.vertices.tolist(), [], mesh.faces.tolist())
    me.update()
    ob = bpy.data.objects.new(name, me)
    bpy.context.scene.collection.objects.link(ob)
    return ob


def render_alpha(path):
    bpy.context.scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    from PIL import Image

    rgba = np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32) / 255.0
    alpha = rgba[..., 3]  # PNG rows are top-first, like the engine's
    return alpha[K // 2::K, K // 2::K]


@pytest.fixture(scope="module")
def blender_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 4
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 0
    scene.cycles.pixel_filter_type = "BOX"
    scene.render.film_transparent = True
    scene.render.resolution_x, scene.render.resolution_y = W * K, H * K
    scene.render.resolution_percentage = 100
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 2
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    cam_data = bpy.data.cameras.new("cam")
    cam_data.sensor_fit = "AUTO"
    cam_data.angle = math.radians(55.0)
    cam = bpy.data.objects.new("cam", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.matrix_world.identity()

    depth, mask = synthetic_scene()
    camera = Camera(H, W)
    obj = add_mesh("object", object_mesh(depth, mask, camera))
    # Static scene for occlusion: the input depth outside the object, the engine's background
    # depth inside it (exactly what the engine z-buffers against), as a holdout.
    from engine.geometry import fill_background_depth

    bg = fill_background_depth(depth, mask)
    static = np.where(mask, bg, depth)
    holdout = add_mesh("static", pixel_squares(static, camera))
    holdout.is_holdout = True
    return depth, mask, bg, obj


CASES = [
    {"translation": [0.4, 0.1, 0.0]},
    {"translation": [-0.3, -0.2, 1.2]},          # closer: bigger
    {"translation": [0.2, 0.0, -2.0]},           # farther: smaller (still in front of the wall)
    {"rotation_axis": [0, 1, 0], "rotation_angle": 35},
    {"rotation_axis": [1, 0.3, 0], "rotation_angle": -25, "translation": [0.1, 0, 0.3]},
    {"rotation_axis": [0, 0, 1], "rotation_angle": 60},
    {"scale": 1.6},
    {"scale": 0.6, "translation": [0.2, 0.1, 0]},
    {"translation": [-1.45, 0.0, 0.0]},          # slides behind the near pillar: occlusion
]


def test_target_mask_matches_blender_silhouette(blender_scene, tmp_path):
    from mathutils import Matrix

    depth, mask, bg, obj = blender_scene
    c = object_centroid(depth, mask)
    ious = []
    for k, frame in enumerate(CASES):
        T = frame_to_matrix(frame, c)
        obj.matrix_world = Matrix(T.tolist())
        alpha = render_alpha(tmp_path / f"s{k}.png")
        blender = alpha > 0.5
        ours = compute_edit_geometry(depth, mask, T, background_depth=bg).target_mask
        iou = (blender & ours).sum() / max((blender | ours).sum(), 1)
        ious.append(round(float(iou), 4))
        assert blender.sum() > 50, frame
    print("IoU per case:", ious)
    assert min(ious) >= 0.98, ious
