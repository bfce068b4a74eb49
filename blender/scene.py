"""One imported photo -> one collection: camera, lifted background, one lifted object per mask
(docs/design.md section 1).

Vertex positions come from the engine's camera model (camera-frame points), mapped to the world
by the camera object's matrix_world. Each object's origin is its 3D centroid, so Blender's rotate
and scale gizmos pivot where the engine's axis/angle transforms do. The first object is the
photo's handle (it holds the photo's settings); every object is moved and keyed on its own.
"""
import os

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..session.errors import AddonError
from . import camera as camera_conv
from . import material as material_conv
from .matrices import is_copy, moving_objects, photo_copies, photo_handle, rest_relative_to_camera, to_numpy
from .mesh import DEFAULT_MAX_DEPTH_JUMP, DEFAULT_VERTEX_BUDGET, LIFTED, build_photo_mesh

RENDER_ENGINE_IDNAME = "DIFFUSION_HANDLES"  # the add-on's render engine (operators/render_engine.py)


def build_photo_scene(context, name, inputs, cache_dir, settings, max_depth_jump=DEFAULT_MAX_DEPTH_JUMP,
                      budget=None):
    """Create the collection for ``inputs`` (an `engine.inputs.PhotoInputs` with its background, as
    imported into ``cache_dir``); returns the object (the handle).

    settings: dict of DH_ObjectProperties values to store on the object (paths, prompt, ...).
    budget: the meshes' vertex budget (`blender.mesh.sample_grid`; None: the scene's Mesh Vertices).
    """
    from ..engine.inputs import PHOTO_FILES
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
    scene.render.engine = RENDER_ENGINE_IDNAME  # F12 / Ctrl+F12 render the edit
    camera_world = to_numpy(camera.matrix_world)
    budget = mesh_budget(scene) if budget is None else budget

    # 2. background: the photo with the object removed, lifted with the filled depth
    background_mesh = build_photo_mesh(f"{name} Background", model, inputs.background_depth,
                                       np.ones((height, width), bool), max_depth_jump=max_depth_jump, budget=budget)
    background = bpy.data.objects.new(f"{name} Background", background_mesh)
    background.matrix_world = camera.matrix_world  # vertices are camera-frame points
    collection.objects.link(background)

    # 3. objects: each one's pixels lifted, origin at its 3D centroid, world-aligned axes
    masks = inputs.masks
    centroids = object_centroid(inputs.depth, masks, model)
    objects = []
    for n, (mask, centroid) in enumerate(zip(masks, centroids)):
        label = f"{name} Object" if len(masks) == 1 else f"{name} Object {n + 1}"
        objects.append(_lifted_object(label, inputs, n, centroid, camera_world, collection, max_depth_jump,
                                      budget))
    obj = objects[0]

    # 4. unlit photo materials
    photo_image = material_conv.load_image(os.path.join(cache_dir, PHOTO_FILES["image"]), f"{name} Photo")
    background_image = material_conv.load_image(os.path.join(cache_dir, PHOTO_FILES["background_image"]),
                                                f"{name} Background")
    photo_material = material_conv.photo_material(f"{name} Photo", photo_image)
    for item in objects:
        material_conv.assign(item, photo_material)
    material_conv.assign(background, material_conv.photo_material(f"{name} Background", background_image))

    # 5. what a saved .blend needs to render again
    for item, role in ((camera, "CAMERA"), (background, "BACKGROUND"), *((o, "OBJECT") for o in objects)):
        item.dh.role = role
        item.dh.handle = obj
    props = obj.dh
    props.camera, props.background = camera, background
    props.cache_dir = str(cache_dir)
    props.width, props.height = width, height
    for n, (item, centroid) in enumerate(zip(objects, centroids)):
        item.dh.object_index = n
        item.dh.camera, item.dh.background = camera, background
        item.dh.centroid = tuple(float(v) for v in centroid)
        item.dh.rest_matrix = rest_relative_to_camera(camera.matrix_world, item.matrix_world)
    camera.dh.parts.clear()
    for item in objects:  # the photo's own objects: any other object of the photo is a copy
        camera.dh.parts.add().object = item
    for key, value in settings.items():
        setattr(props, key, value)

    for other in context.view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    return obj


def mesh_budget(scene):
    """The vertex budget of a photo's meshes: the scene's Mesh Vertices, else the default."""
    return int(getattr(scene, "dh_mesh_vertices", 0) or DEFAULT_VERTEX_BUDGET)


def photo_budget(handle):
    """The vertex budget the photo's meshes were built with (its background records it), else the
    scene's: a mesh made again or added later joins the others' grid."""
    background = handle.dh.background
    budget = int((background.data.get(LIFTED) or {}).get("budget", 0) or 0) if background is not None else 0
    return budget or mesh_budget(bpy.context.scene)


def _lifted_object(label, inputs, n, centroid, camera_world, collection, max_depth_jump, budget):
    """Object n's pixels lifted, origin at its 3D centroid, axes the world's (``camera_world``: the
    photo's rest camera)."""
    object_mesh = build_photo_mesh(label, inputs.camera, inputs.depth, inputs.masks[n], centroid=centroid,
                                   rotation=camera_world[:3, :3], max_depth_jump=max_depth_jump, budget=budget,
                                   part=n)
    item = bpy.data.objects.new(label, object_mesh)
    item.matrix_world = Matrix.Translation(Vector(camera_conv.camera_to_world(camera_world, centroid)))
    collection.objects.link(item)
    return item


def add_photo_object(handle, inputs, max_depth_jump=DEFAULT_MAX_DEPTH_JUMP):
    """The photo whose handle is ``handle`` gains its last object of ``inputs`` (the photo's
    `engine.inputs.PhotoInputs` after a pick): a lifted object like an imported one, placed at the
    photo's rest pose (so the photo's later moves apply to it too), and the background mesh and
    image made again without it. Returns the new object."""
    from ..engine.transforms import object_centroid
    from .matrices import photo_frame

    props = handle.dh
    camera, background = props.camera, props.background
    n = len(inputs.masks) - 1
    photo_world = photo_frame(handle)
    rest_world = to_numpy(photo_world)  # B: the camera's pose at import
    model = inputs.camera
    mask = inputs.masks[n]
    centroid = object_centroid(inputs.depth, mask, model)
    name = handle.name.removesuffix(" Object").removesuffix(" Object 1")
    collection = handle.users_collection[0]
    budget = photo_budget(handle)
    item = _lifted_object(f"{name} Object {n + 1}", inputs, n, centroid, rest_world, collection, max_depth_jump,
                          budget)
    for material in handle.data.materials:
        item.data.materials.append(material)
    item.dh.role, item.dh.handle, item.dh.object_index = "OBJECT", handle, n
    item.dh.camera, item.dh.background = camera, background
    item.dh.centroid = tuple(float(v) for v in centroid)
    item.dh.rest_matrix = rest_relative_to_camera(photo_world, item.matrix_world)
    camera.dh.parts.add().object = item
    _refill_background(background, inputs, max_depth_jump, budget)  # without the new object too
    return item


def _refill_background(background, inputs, max_depth_jump, budget):
    """The photo's background object made again from ``inputs`` (its objects changed): its mesh,
    and its image read again from the cache."""
    if background is None:
        return
    old_mesh = background.data
    background.data = build_photo_mesh(old_mesh.name, inputs.camera, inputs.background_depth,
                                       np.ones(inputs.shape, bool), max_depth_jump=max_depth_jump, budget=budget)
    for material in old_mesh.materials:
        background.data.materials.append(material)
        for node in getattr(material.node_tree, "nodes", ()):
            if node.type == "TEX_IMAGE" and node.image is not None:
                node.image.reload()
    if old_mesh.users == 0:
        bpy.data.meshes.remove(old_mesh)


def replace_photo_object(handle, inputs, n=0, max_depth_jump=DEFAULT_MAX_DEPTH_JUMP):
    """Object ``n`` of the photo whose handle is ``handle`` takes mask ``n`` of ``inputs`` (another
    candidate of its query), in place: the same Blender object (name, keyframes, modifiers,
    materials, selection), its mesh lifted from the new mask, its origin at the new mask's 3D
    centroid, and every location key moved by the centroids' offset, so each key moves the new
    object as far, and turns and scales it about its own centre, as it did the old one. The
    background is made again without it. Returns the object."""
    from ..engine.transforms import object_centroid
    from .matrices import photo_frame, rest_world_matrix

    obj = next(o for o in moving_objects(handle) if o.dh.object_index == n)
    photo_world = photo_frame(handle)
    model, mask = inputs.camera, inputs.masks[n]
    centroid = object_centroid(inputs.depth, mask, model)
    old_rest = rest_world_matrix(obj, photo_world)
    new_rest = old_rest.copy()
    new_rest.translation = Vector(camera_conv.camera_to_world(to_numpy(photo_world), centroid))
    # the mesh: lifted as Import Photo lifts an object, relative to the new origin
    budget = photo_budget(handle)
    lifted = _lifted_object(f"{obj.name} candidate", inputs, n, centroid, to_numpy(photo_world),
                            obj.users_collection[0], max_depth_jump, budget)
    old_mesh, new_mesh = obj.data, lifted.data
    bpy.data.objects.remove(lifted)
    for material in old_mesh.materials:
        new_mesh.materials.append(material)
    obj.data = new_mesh
    name = old_mesh.name
    if old_mesh.users == 0:
        bpy.data.meshes.remove(old_mesh)
    new_mesh.name = name
    # the origin follows the centroid; the keys follow the origin (in the object's parent space)
    shift = new_rest.translation - old_rest.translation
    if obj.parent is not None:
        shift = (obj.parent.matrix_world @ obj.matrix_parent_inverse).to_3x3().inverted() @ shift
    obj.location = obj.location + shift
    for curve in _location_curves(obj):
        for key in curve.keyframe_points:
            delta = shift[curve.array_index]
            key.co.y += delta
            key.handle_left.y += delta
            key.handle_right.y += delta
        curve.update()
    obj.dh.centroid = tuple(float(v) for v in centroid)
    obj.dh.rest_matrix = rest_relative_to_camera(photo_world, new_rest)
    _refill_background(handle.dh.background, inputs, max_depth_jump, budget)
    return obj


def _location_curves(obj):
    """The object's keyed location channels (Blender 4.4+ layered actions, or the older fcurves)."""
    action = obj.animation_data.action if obj.animation_data is not None else None
    if action is None:
        return []
    curves = getattr(action, "fcurves", None)
    if curves is None:  # layered actions: the object's slot's channel bag
        from bpy_extras import anim_utils

        bag = anim_utils.action_get_channelbag_for_slot(action, obj.animation_data.action_slot)
        curves = bag.fcurves if bag is not None else []
    return [c for c in curves if c.data_path == "location"]


def photo_rect(context, handle):
    """(x0, y0, x1, y1): where the photo lies in ``context.region``, in region pixels (y up): the
    Image Editor showing the photo, or the 3D Viewport looking through the photo's camera. The
    region shows anything else: AddonError saying what to do."""
    area = context.area
    kind = getattr(area, "type", None)
    if kind == "IMAGE_EDITOR":
        image = getattr(context.space_data, "image", None)
        if image is None or tuple(image.size) != (handle.dh.width, handle.dh.height):
            raise AddonError("Pick Object: show the photo in the Image Editor (its image, "
                             f"{handle.dh.width}x{handle.dh.height}) first")
        view2d = context.region.view2d
        x0, y0 = view2d.view_to_region(0.0, 0.0, clip=False)
        x1, y1 = view2d.view_to_region(1.0, 1.0, clip=False)
        return float(x0), float(y0), float(x1), float(y1)
    if kind == "VIEW_3D":
        rv3d, scene = context.region_data, context.scene
        if rv3d is None or rv3d.view_perspective != "CAMERA" or scene.camera != handle.dh.camera:
            raise AddonError("Pick Object: look through the photo's camera (Numpad 0 with it as the scene "
                             "camera) or use the Image Editor showing the photo")
        from bpy_extras.view3d_utils import location_3d_to_region_2d

        from .matrices import camera_move

        if camera_move(handle) is not None:
            raise AddonError("Pick Object: the camera has moved from where the photo was taken; go to a frame "
                             "where it has not, or use the Image Editor showing the photo")
        camera = handle.dh.camera
        corners = [camera.matrix_world @ v for v in camera.data.view_frame(scene=scene)]
        points = [location_3d_to_region_2d(context.region, rv3d, c) for c in corners]
        if any(p is None for p in points):
            raise AddonError("Pick Object: the photo's camera frame is not in view")
        xs, ys = [p.x for p in points], [p.y for p in points]
        return min(xs), min(ys), max(xs), max(ys)
    raise AddonError("Pick Object: run it in the 3D Viewport (through the photo's camera) or the Image Editor")


def region_to_photo(rect, x, y, handle):
    """Region pixel (x, y up) -> photo pixel (x the column, y the row from the top), or None
    outside the photo."""
    x0, y0, x1, y1 = rect
    if x1 <= x0 or y1 <= y0:
        return None
    u = (x - x0) / (x1 - x0) * handle.dh.width
    v = (y1 - y) / (y1 - y0) * handle.dh.height
    if not (0 <= u < handle.dh.width and 0 <= v < handle.dh.height):
        return None
    return u, v


def photo_objects(context):
    """The imported photos in the scene: each photo's handle (its first object)."""
    return [o for o in context.scene.objects if o.dh.role == "OBJECT" and o.dh.handle in (None, o)
            and not is_copy(o)]


def photo_parts(handle):
    """(label, object, keyed) for each part of ``handle``'s photo, as the sidebar lists them: the
    camera, the background, then the objects in mask order; keyed: it has an animation."""

    def keyed(o):
        return o is not None and o.animation_data is not None and o.animation_data.action is not None

    parts = [("Camera", handle.dh.camera), ("Background", handle.dh.background)]
    objects = moving_objects(handle)
    parts += [(f"Object {o.dh.object_index + 1}" if len(objects) > 1 else "Object", o) for o in objects]
    parts += [(f"Copy of {'Object ' + str(o.dh.object_index + 1) if len(objects) > 1 else 'Object'}", o)
              for o in photo_copies(handle)]
    return [(label, o, keyed(o)) for label, o in parts if o is not None]


def active_handle(context):
    """The photo the artist means: the active object's photo, else the only one."""
    active = context.active_object
    if active is not None and active.dh.role != "NONE" and photo_handle(active) is not None:
        return photo_handle(active)
    handles = photo_objects(context)
    if len(handles) == 1:
        return handles[0]
    if not handles:
        raise AddonError("no imported photo in this scene: use Import Photo first")
    raise AddonError(f"{len(handles)} imported photos: select an object of the photo to render")
