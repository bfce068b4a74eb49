"""Blender camera <-> the engine's camera model (engine/camera.py owns the conventions).

The imported camera looks along world +Y with world +Z up (rotation X = 90 degrees), so the lifted
photo stands upright in the viewport; the camera frame itself is Blender's (docs/design.md section 3).
"""
import math

import bpy
import numpy as np
from mathutils import Matrix

from ..engine.camera import Camera

# Camera world matrix at import: at the origin, looking along +Y, +Z up.
CAMERA_REST = Matrix.Rotation(math.radians(90.0), 4, "X")


def engine_camera(height, width):
    return Camera(int(height), int(width))


def create_camera(name, height, width, collection):
    """A camera object matching a ``height`` x ``width`` photo (55 degrees on the larger side)."""
    model = engine_camera(height, width)
    data = bpy.data.cameras.new(name)
    data.type = "PERSP"
    data.sensor_fit = "AUTO"  # the angle applies to the larger image side, as in the engine
    data.angle = math.radians(model.fov_deg)
    data.shift_x = data.shift_y = 0.0  # principal point at the image centre
    data.clip_start = 0.01
    data.clip_end = 10000.0
    obj = bpy.data.objects.new(name, data)
    obj.matrix_world = CAMERA_REST
    collection.objects.link(obj)
    return obj


def configure_render(scene, height, width):
    """Render resolution = photo size, square pixels; colours pass through unchanged."""
    render = scene.render
    render.resolution_x = int(width)
    render.resolution_y = int(height)
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    render.dither_intensity = 0.0  # 8-bit frames hold the edit's exact values
    # Standard view transform: the unlit photo renders back to its own sRGB values.
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0


def camera_to_world(camera_matrix, points):
    """Camera-frame points (..., 3) -> world points (..., 3) with a camera world matrix."""
    m = np.asarray(camera_matrix, dtype=np.float64)
    return points @ m[:3, :3].T + m[:3, 3]
