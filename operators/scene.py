"""One imported photo -> one collection: camera, lifted background, lifted object (docs/design.md section 1).

Vertex positions come from the engine's camera model (camera-frame points), mapped to the world
by the camera object's matrix_world. The object's origin is its 3D centroid, so Blender's rotate
and scale gizmos pivot where the engine's axis/angle transforms do.
"""
import os

import bpy
import numpy as np
from mathutils import Matrix, Vector

from . import camera as camera_conv
from . import material as material_conv
from .matrices import rest_relative_to_camera, to_numpy
from .mesh import DEFAULT_MAX_DEPTH_JUMP, build_grid_mesh
from .photo import FILES


def build_photo_scene(context, name, inputs, cache_dir, settings, max_depth_jump=DEFAULT_MAX_DEPTH_JUMP):
    """Create the collection for ``inputs`` (photo.PhotoInputs); returns the object (the handle).

    settings: dict of DH_ObjectProperties values to store on the object (paths, prompt, ...).
    """
    from ..engine.transforms import object_centroid

    scene = context.scene
    height, width = inputs.shape
    model = inputs.camera
    collection = bpy.data.collections.new(f"DH {name}")
    scene.collection.children.link(collection)

    # 1. camera matching the photo; render resolution = photo size
    camera = camera_conv.create_camera(f"{name} Camera", height, width, collection)
    scene.camera = camera
    camera_conv.configure_render(scene, height, width)
    from .render_engine import IDNAME

    scene.render.engine = IDNAME  # F12 / Ctrl+F12 render the edit
    camera_world = to_numpy(camera.matrix_world)
    rotation = camera_world[:3, :3]

    # 2. background: the photo with the object removed, lifted with the filled depth
    background_points = model.lift(inputs.background_depth.astype(np.float64))
    background_mesh = build_grid_mesh(f"{name} Background", background_points,
                                      np.ones((height, width), bool), inputs.background_depth, max_depth_jump)
    background = bpy.data.objects.new(f"{name} Background", background_mesh)
    background.matrix_world = camera.matrix_world  # vertices are camera-frame points
    collection.objects.link(background)

    # 3. object: its pixels lifted, origin at the 3D centroid, world-aligned axes
    centroid = object_centroid(inputs.depth, inputs.mask, model)
    object_points = (model.lift(inputs.depth.astype(np.float64)) - centroid) @ rotation.T
    object_mesh = build_grid_mesh(f"{name} Object", object_points, inputs.mask, inputs.depth, max_depth_jump)
    obj = bpy.data.objects.new(f"{name} Object", object_mesh)
    obj.matrix_world = Matrix.Translation(Vector(camera_conv.camera_to_world(camera_world, centroid)))
    collection.objects.link(obj)

    # 4. unlit photo materials
    photo_image = material_conv.load_image(os.path.join(cache_dir, FILES["image"]), f"{name} Photo")
    background_image = material_conv.load_image(os.path.join(cache_dir, FILES["background_image"]),
                                                f"{name} Background")
    material_conv.assign(obj, material_conv.photo_material(f"{name} Photo", photo_image))
    material_conv.assign(background, material_conv.photo_material(f"{name} Background", background_image))

    # 5. what a saved .blend needs to render again
    for item, role in ((camera, "CAMERA"), (background, "BACKGROUND"), (obj, "OBJECT")):
        item.dh.role = role
        item.dh.handle = obj
    props = obj.dh
    props.camera, props.background = camera, background
    props.cache_dir = str(cache_dir)
    props.width, props.height = width, height
    props.centroid = tuple(float(v) for v in centroid)
    props.rest_matrix = rest_relative_to_camera(camera.matrix_world, obj.matrix_world)
    for key, value in settings.items():
        setattr(props, key, value)

    for other in context.view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    return obj


def photo_objects(context):
    """All imported objects (role OBJECT) in the scene."""
    return [o for o in context.scene.objects if o.dh.role == "OBJECT"]


def active_handle(context):
    """The imported object the artist means: the active one (or its photo's), else the only one."""
    from .errors import AddonError

    active = context.active_object
    if active is not None and active.dh.role != "NONE" and active.dh.handle is not None:
        return active.dh.handle
    handles = photo_objects(context)
    if len(handles) == 1:
        return handles[0]
    if not handles:
        raise AddonError("no imported photo in this scene: use Import Photo first")
    raise AddonError(f"{len(handles)} imported photos: select the object to render "
                     "(one moving object per photo; several are not supported yet)")
