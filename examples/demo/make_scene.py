"""Make the bundled demo scene with Blender (Cycles): photo, exact z-depth, object mask, prompt,
and an 8-frame keyframe file. Run from the repository root (takes about a minute on 2 cores):

    .venv/bin/python examples/demo/make_scene.py

Depth and mask are exact at pixel centres: rays through each pixel centre of the engine's camera
model (engine/camera.py) are cast into the scene, so they match the photo's camera by construction.
"""
import json
import math
import os
import sys

import bpy
import numpy as np
from mathutils import Matrix, Vector

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from engine.camera import Camera  # noqa: E402
from engine.io import save_image, save_mask  # noqa: E402

WIDTH, HEIGHT = 256, 192
PROMPT = "a red and white checkered box on a wooden floor in front of a blue wall"


def material(name, build):
    m = bpy.data.materials.new(name)
    tree = m.node_tree
    bsdf = tree.nodes["Principled BSDF"]
    build(tree, bsdf)
    return m


def solid(rgb, roughness=0.6):
    def build(tree, bsdf):
        bsdf.inputs["Base Color"].default_value = (*rgb, 1.0)
        bsdf.inputs["Roughness"].default_value = roughness
    return build


def checker(a, b, scale):
    def build(tree, bsdf):
        tex = tree.nodes.new("ShaderNodeTexChecker")
        coords = tree.nodes.new("ShaderNodeTexCoord")
        tex.inputs["Scale"].default_value = scale
        tex.inputs["Color1"].default_value = (*a, 1.0)
        tex.inputs["Color2"].default_value = (*b, 1.0)
        tree.links.new(coords.outputs["Object"], tex.inputs["Vector"])
        tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return build


def wood(tree, bsdf):
    wave = tree.nodes.new("ShaderNodeTexWave")
    wave.inputs["Scale"].default_value = 3.0
    wave.inputs["Distortion"].default_value = 6.0
    ramp = tree.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (0.30, 0.16, 0.07, 1)
    ramp.color_ramp.elements[1].color = (0.55, 0.33, 0.15, 1)
    tree.links.new(wave.outputs["Fac"], ramp.inputs["Fac"])
    tree.links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])


def build_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    bpy.ops.mesh.primitive_plane_add(size=20, location=(0, 5, 0))
    floor = bpy.context.active_object
    floor.data.materials.append(material("floor", wood))
    bpy.ops.mesh.primitive_plane_add(size=20, location=(0, 5.0, 0), rotation=(math.radians(90), 0, 0))
    wall = bpy.context.active_object
    wall.data.materials.append(material("wall", solid((0.18, 0.32, 0.6))))
    bpy.ops.mesh.primitive_cube_add(size=0.5, location=(-0.35, 2.6, 0.25), rotation=(0, 0, math.radians(25)))
    box = bpy.context.active_object
    box.data.materials.append(material("box", checker((0.75, 0.05, 0.04), (0.9, 0.88, 0.85), 4.0)))
    bpy.ops.object.light_add(type="SUN", rotation=(math.radians(50), math.radians(15), math.radians(-30)))
    bpy.context.active_object.data.energy = 3.0
    world = bpy.data.worlds.new("world")
    world.color = (0.25, 0.25, 0.28)
    scene.world = world
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.35, 0.35, 0.38, 1)
    cam_data = bpy.data.cameras.new("camera")
    cam_data.sensor_fit = "AUTO"
    cam_data.angle = math.radians(Camera(HEIGHT, WIDTH).fov_deg)
    cam = bpy.data.objects.new("camera", cam_data)
    scene.collection.objects.link(cam)
    # level camera 0.7 m above the floor looking along +Y, tilted 8 degrees down
    cam.matrix_world = Matrix.Translation((0, 0, 0.7)) @ Matrix.Rotation(math.radians(82), 4, "X")
    scene.camera = cam
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 48
    scene.cycles.use_denoising = False
    scene.render.resolution_x, scene.render.resolution_y = WIDTH, HEIGHT
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    return scene, cam, box


def exact_depth_and_mask(scene, cam, box):
    model = Camera(HEIGHT, WIDTH)
    rays = model.lift(np.ones((HEIGHT, WIDTH)))  # camera-frame points at depth 1
    c = np.array(cam.matrix_world)
    origin = Vector(c[:3, 3])
    depsgraph = bpy.context.evaluated_depsgraph_get()
    depth = np.zeros((HEIGHT, WIDTH), np.float32)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    for i in range(HEIGHT):
        for j in range(WIDTH):
            direction = Vector(c[:3, :3] @ rays[i, j]).normalized()
            hit, location, _, _, obj, _ = scene.ray_cast(depsgraph, origin, direction)
            assert hit, (i, j)
            local = np.linalg.inv(c) @ np.array([*location, 1.0])
            depth[i, j] = -local[2]
            mask[i, j] = obj.name == box.name
    centroid = model.lift(depth.astype(np.float64))[mask].mean(axis=0)
    return depth, mask, centroid


def keyframes(centroid):
    """8 frames: the box slides right and away while turning 60 degrees about the vertical.

    Rotation about the camera's up axis tilted like the camera, so the box stays on the floor:
    the floor normal in the camera frame is the world +Z seen from the tilted camera."""
    tilt = math.radians(82 - 90)  # camera pitch
    up = np.array([0.0, math.cos(tilt), math.sin(tilt)])  # world +Z in the camera frame
    right = np.array([1.0, 0.0, 0.0])
    away = np.cross(up, right)  # along the floor, away from the camera
    frames = []
    for k in range(8):
        t = k / 7
        frames.append({"frame": k + 1, "translation": list(map(float, 0.7 * t * right + 0.4 * t * away)),
                       "rotation_axis": list(map(float, up)), "rotation_angle": 60.0 * t})
    return {"frames": frames}


def main():
    scene, cam, box = build_scene()
    depth, mask, centroid = exact_depth_and_mask(scene, cam, box)
    scene.render.filepath = os.path.join(HERE, "render_tmp.png")
    bpy.ops.render.render(write_still=True)
    from engine.io import load_image

    image = load_image(scene.render.filepath)
    os.remove(scene.render.filepath)
    save_image(os.path.join(HERE, "image.png"), image)
    np.save(os.path.join(HERE, "depth.npy"), depth)
    save_mask(os.path.join(HERE, "mask.png"), mask)
    with open(os.path.join(HERE, "prompt.txt"), "w") as f:
        f.write(PROMPT + "\n")
    with open(os.path.join(HERE, "keyframes.json"), "w") as f:
        json.dump(keyframes(centroid), f, indent=1)
    print(f"demo scene: {WIDTH}x{HEIGHT}, object {int(mask.sum())} px, depth {depth.min():.2f}-{depth.max():.2f} m")


if __name__ == "__main__":
    main()
