"""Render scenes whose object is cut by the bottom frame edge, with ground truth, using bpy.

    python tools/make_border_scenes.py OUT_DIR [--size 128x96]

Each scene: a floor, a back wall, a box standing close to the camera whose lower part is below
the frame. Rendered by casting one ray per pixel centre (the project's camera conventions:
engine.camera) into the Blender scene, so depth and silhouettes are exact:

- image.png (flat-shaded colours), depth.exr, mask.png, prompt.txt;
- background_depth.exr: the TRUE depth without the object (what completion should find);
- transforms.json: three camera-frame edits of the object (moved back, sideways, forward);
- gt_true_K.png: the true moved box's silhouette, hidden by the true static scene.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# name: (box centre x, y (distance), box size, camera height, camera pitch down in degrees)
SCENES = {
    "scene_000": (0.0, 1.3, 0.9, 1.0, 12.0),
    "scene_001": (0.35, 1.6, 1.1, 1.3, 18.0),
}
EDITS = [  # camera-frame translations: back, sideways, forward
    [0.0, 0.0, -1.2],
    [0.6, 0.0, -0.3],
    [-0.2, 0.0, 0.25],
]


def build(bpy, box_x, box_y, size, cam_h, pitch):
    from mathutils import Euler, Vector

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    bpy.ops.mesh.primitive_plane_add(size=40, location=(0, 10, 0))
    floor = bpy.context.active_object
    bpy.ops.mesh.primitive_plane_add(size=40, location=(0, 7.0, 0), rotation=(math.pi / 2, 0, 0))
    wall = bpy.context.active_object
    bpy.ops.mesh.primitive_cube_add(size=size, location=(box_x, box_y, size / 2))
    box = bpy.context.active_object
    box.rotation_euler = Euler((0, 0, math.radians(20)))
    cam_data = bpy.data.cameras.new("cam")
    cam = bpy.data.objects.new("cam", cam_data)
    scene.collection.objects.link(cam)
    cam.location = Vector((0, 0, cam_h))
    cam.rotation_euler = Euler((math.radians(90 - pitch), 0, 0))
    bpy.context.view_layer.update()
    return scene, floor, wall, box, cam


def cast(bpy, scene, cam_world, h, w, hide=()):
    """Per pixel: (depth (h, w) float32, hit object name or '') through the pixel centres."""
    from mathutils import Vector

    from engine.camera import Camera

    for o in hide:
        o.hide_set(True)
    bpy.context.view_layer.update()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    camera = Camera(h, w)
    rays = camera.lift(np.ones((h, w)))  # camera-frame points at depth 1
    R, t = cam_world[:3, :3], cam_world[:3, 3]
    depth = np.zeros((h, w), np.float32)
    names = np.empty((h, w), dtype=object)
    origin = Vector(t.tolist())
    for i in range(h):
        for j in range(w):
            d = R @ rays[i, j]
            ok, loc, _n, _f, obj, _m = scene.ray_cast(depsgraph, origin, Vector((d / np.linalg.norm(d)).tolist()))
            if not ok:
                raise RuntimeError("a ray missed the scene")
            p = np.linalg.inv(cam_world) @ np.append(np.array(loc), 1.0)
            depth[i, j] = -p[2]
            names[i, j] = obj.name
    for o in hide:
        o.hide_set(False)
    bpy.context.view_layer.update()
    return depth, names


def main():
    import bpy

    from engine.io import save_depth_exr, save_image, save_mask

    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", default="128x96")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    colours = {"Plane": (0.55, 0.6, 0.5), "Plane.001": (0.6, 0.55, 0.7), "Cube": (0.9, 0.5, 0.2)}
    for name, params in SCENES.items():
        scene, floor, wall, box, cam = build(bpy, *params)
        C = np.array(cam.matrix_world)
        depth, hit = cast(bpy, scene, C, h, w)
        mask = hit == box.name
        bg_depth, _ = cast(bpy, scene, C, h, w, hide=[box])
        shade = np.clip(1.2 - 0.06 * depth, 0.3, 1.0)[..., None]
        image = np.stack([[colours.get(n, (0.5, 0.5, 0.5)) for n in row] for row in hit]) * shade
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        save_image(folder / "image.png", image.astype(np.float32))
        save_depth_exr(folder / "depth.exr", depth)
        save_depth_exr(folder / "background_depth.exr", bg_depth)
        save_mask(folder / "mask.png", mask)
        (folder / "prompt.txt").write_text("an orange box on a floor\n")
        rest = np.array(box.matrix_world)
        frames = []
        for k, t in enumerate(EDITS, start=1):
            T = np.eye(4)
            T[:3, 3] = t
            frames.append({"matrix": T.tolist()})
            box.matrix_world = _matrix(C @ T @ np.linalg.inv(C) @ rest)
            bpy.context.view_layer.update()
            _, hit_k = cast(bpy, scene, C, h, w)
            save_mask(folder / f"gt_true_{k:04d}.png", hit_k == box.name)
            box.matrix_world = _matrix(rest)
        (folder / "transforms.json").write_text(json.dumps({"frames": frames}, indent=1))
        print(f"{folder}: object {mask.sum()} px, touches the bottom edge: {bool(mask[-1].any())}")


def _matrix(a):
    from mathutils import Matrix

    return Matrix([list(r) for r in a])


if __name__ == "__main__":
    main()
