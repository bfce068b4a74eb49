"""Data the add-on stores in .blend files: per-photo settings on objects, job progress on the window
manager. A saved .blend therefore reopens and renders without importing the photo again.

Every object an import creates carries ``Object.dh`` (`DH_ObjectProperties`): its ``role`` and a
pointer to the photo's movable object (the "handle"), which holds the photo's settings.
"""
import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, FloatVectorProperty,
                       IntProperty, PointerProperty, StringProperty)

from ..engine.diffusion.backbones import BACKBONES
from ..engine.settings import INVERSION_LABELS, PRESET_LABELS, PRESETS, EditSettings
from .mesh import DEFAULT_VERTEX_BUDGET

ROLES = (
    ("NONE", "None", "Not part of an imported photo"),
    ("CAMERA", "Camera", "The camera matching the photo"),
    ("BACKGROUND", "Background", "The lifted background (object removed and filled)"),
    ("OBJECT", "Object", "A lifted object: move, rotate, scale and keyframe it (one per mask or query)"),
)
ENGINES = (
    ("PREVIEW", "Preview", "Geometric preview (no model weights): the lifted object warped into place"),
    ("DIFFUSION", "Diffusion", "Diffusion Handles: the depth-to-image model re-renders the photo; a node "
                               "without its weights fails the frame (a farm never mixes engines unasked)"),
    ("DIFFUSION_OR_PREVIEW", "Diffusion, else Preview", "Diffusion where its weights are found, else the "
                             "preview: each such frame warns, and every frame's metadata names its engine"),
)
# choices and defaults come from the engine's settings (one place for the CLI, batch and here)
QUALITIES = tuple((name, *PRESET_LABELS[name]) for name in PRESETS)
INVERSIONS = (("PRESET", "From quality", "The inversion of the chosen quality"),) + tuple(
    (name, *INVERSION_LABELS[name]) for name in INVERSION_LABELS)
# Paths saved relative to the .blend ("//...", see _paths_relative_on_save).
RELATIVE_OK = {"PATH_SUPPORTS_BLEND_RELATIVE"} if bpy.app.version >= (4, 5, 0) else set()
IDENTITY16 = (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


class DH_PartRef(bpy.types.PropertyGroup):
    """One of a photo's own objects (the camera lists them in mask order; anything else of the
    photo's objects, such as a Shift+D duplicate, is a copy)."""
    object: PointerProperty(name="Object", type=bpy.types.Object)


class DH_ObjectProperties(bpy.types.PropertyGroup):
    role: EnumProperty(name="Role", items=ROLES, default="NONE")
    handle: PointerProperty(name="Object", type=bpy.types.Object,
                            description="The photo's first movable object (holds the photo's settings)")
    object_index: IntProperty(name="Object number", min=0,
                              description="This object's place in the photo's mask order (0 = the first)")
    # --- the photo (set on the OBJECT role) -------------------------------------------------------
    camera: PointerProperty(name="Camera", type=bpy.types.Object)
    background: PointerProperty(name="Background", type=bpy.types.Object)
    image_path: StringProperty(name="Photo", subtype="FILE_PATH")
    depth_path: StringProperty(name="Depth", subtype="FILE_PATH", description="Empty: estimated")
    mask_path: StringProperty(name="Mask", description="Mask file(s), ';' between several; empty: from the query")
    object_query: StringProperty(name="Object query", description="Text naming the object(s), e.g. 'the car; the dog'")
    candidate: IntProperty(name="Candidate", min=0, description="Which of the query's candidates (0 = best)")
    cache_dir: StringProperty(name="Cache", subtype="DIR_PATH", options=RELATIVE_OK,
                              description="Per-photo folder: the inputs as imported and the prepared cache")
    cache_home: StringProperty(name="Cache home", options={"HIDDEN"},
                               description="A '//' cache folder chosen before the first save: the cache "
                                           "moves there at the first save (empty: beside the .blend)")
    prepared_dir: StringProperty(name="Prepared cache", subtype="DIR_PATH", options=RELATIVE_OK,
                                 description="The engine's prepared (inverted) photo, once made")
    width: IntProperty(name="Width", min=0)
    height: IntProperty(name="Height", min=0)
    centroid: FloatVectorProperty(name="Centroid", size=3, description="Object centroid, camera frame (m)")
    rest_matrix: FloatVectorProperty(name="Rest matrix", size=16, default=IDENTITY16,
                                     description="The object's rest pose relative to the photo frame, B^-1 M_rest (row-major)")
    # --- on the photo's camera: its own objects in mask order (a duplicate is not among them) ---
    parts: CollectionProperty(type=DH_PartRef, name="Objects",
                              description="The photo's imported objects in mask order")
    # --- edit settings (per photo) -------------------------------------------------------------
    prompt: StringProperty(name="Prompt", description="A caption of the photo")
    engine: EnumProperty(name="Engine", items=ENGINES, default="PREVIEW")
    quality: EnumProperty(name="Quality", items=QUALITIES, default="default",
                          description="Edit schedule: " + ", ".join(f"{label} ({name})" for name, label, _ in QUALITIES))
    steps: IntProperty(name="Steps", default=0, min=0, max=1000,
                       description="DDIM steps; 0 = the quality's (guided steps keep its share)")
    seed: IntProperty(name="Seed", default=EditSettings.seed, min=0)
    resolution: IntProperty(name="Resolution", default=0, min=0, max=4096,
                            description="Working resolution: the longer side in pixels; 0 = the "
                                        "model's native size (512 for SD2-depth)")
    fg_weight: FloatProperty(name="Foreground", default=EditSettings.fg_weight, min=0.0, soft_max=10.0,
                             description="Weight of the object's identity preservation")
    bg_weight: FloatProperty(name="Background", default=EditSettings.bg_weight, min=0.0, soft_max=10.0,
                             description="Weight of the background preservation")
    inversion: EnumProperty(name="Inversion", items=INVERSIONS, default="PRESET")


class DH_SceneProperties(bpy.types.PropertyGroup):
    """Render settings of the Diffusion Handles render engine, saved with the .blend (farms)."""
    models_dir: StringProperty(name="Models Folder", subtype="DIR_PATH", options=RELATIVE_OK,
                               description="Models for this .blend (one sub-folder per role; may be relative "
                                           "to the .blend, e.g. on shared storage); empty: the preferences'")
    backbone: EnumProperty(name="Model", default="PREFERENCES", description="The model family for this .blend",
                           items=[("PREFERENCES", "Preferences", "The add-on preferences' model")] + [
                               (b, b, BACKBONES[b].description) for b in BACKBONES])


def _passes_changed(self, context):
    """The compositor's Render Layers node shows the passes the engine registers now."""
    view_layer = getattr(context, "view_layer", None)
    if view_layer is not None:
        view_layer.update_render_passes()


class DH_ViewLayerProperties(bpy.types.PropertyGroup):
    """The render engine's own passes (``view_layer.diffusion_handles``); the Depth pass is
    Blender's own ``view_layer.use_pass_z``."""
    use_pass_target: BoolProperty(name="Target Mask", default=False, update=_passes_changed,
                                  description="Pass 'DH Target': 1 where the frame shows a (moved) object or copy")
    use_pass_objects: BoolProperty(name="Object Masks", default=False, update=_passes_changed,
                                   description="Passes 'DH Mask 1', 'DH Mask 2', ...: one per object in mask "
                                               "order, then one per copy (what it covers in the frame)")
    use_pass_valid: BoolProperty(name="Covered Pixels", default=False, update=_passes_changed,
                                 description="Pass 'DH Valid': 1 where the moved photo covers the pixel "
                                             "(0: a disocclusion the model invents)")
    use_pass_preview: BoolProperty(name="Preview", default=False, update=_passes_changed,
                                   description="Pass 'DH Preview': the weightless geometric preview of the frame")


class DH_JobProperties(bpy.types.PropertyGroup):
    """Progress of the running job (window manager: never saved)."""
    running: BoolProperty(default=False)
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    status: StringProperty(default="")
    error: StringProperty(default="", description="Why the last job failed (shown until the next job)")


# Import Photo's vertex budget for a photo's lifted meshes (blender/mesh.py: a 12 MP photo's
# meshes sample an evenly spaced grid of about this many pixels; the renders use the photo itself).
MESH_VERTICES = IntProperty(name="Mesh Vertices", default=DEFAULT_VERTEX_BUDGET, min=10_000, max=200_000_000,
                            description="Most vertices of an imported photo's lifted meshes (a larger photo is "
                                        "sampled on an evenly spaced grid; renders always use every pixel)")


CLASSES = (DH_PartRef, DH_ObjectProperties, DH_SceneProperties, DH_ViewLayerProperties, DH_JobProperties)


def _relative(path, blend_path):
    """``path`` relative to the .blend being saved (``//...``), as Blender stores its own file paths."""
    import os

    if not path or path.startswith("//") or not blend_path:
        return path
    absolute = bpy.path.abspath(path)  # relative to the file as it was
    try:
        return "//" + os.path.relpath(absolute, os.path.dirname(os.path.abspath(blend_path))).replace(os.sep, "/")
    except ValueError:  # another drive (Windows): keep it absolute
        return absolute


def _move_unsaved_caches(filepath):
    """At the first save: each photo cache waiting in the temporary folder (Import Photo before the
    .blend had a name: blender/addon.py cache_root) moves beside the .blend (or to the ``//``
    folder chosen for it), and the photo's paths follow."""
    import os
    import shutil

    from ..session.photo import unsaved_cache_root
    from .addon import BLEND_CACHE, blend_relative

    waiting = os.path.normpath(unsaved_cache_root())
    moved = False
    for obj in bpy.data.objects:
        props = obj.dh
        if props.role != "OBJECT" or not props.cache_dir:
            continue
        old = os.path.normpath(bpy.path.abspath(props.cache_dir))
        if os.path.dirname(old) != waiting:
            continue
        new = os.path.join(blend_relative(props.cache_home or BLEND_CACHE, filepath), os.path.basename(old))
        if os.path.isdir(old) and not os.path.isdir(new):
            os.makedirs(os.path.dirname(new), exist_ok=True)
            shutil.move(old, new)
        elif os.path.isdir(old):  # already there (the same content key): the waiting copy goes
            shutil.rmtree(old, ignore_errors=True)
        if props.prepared_dir:
            props.prepared_dir = os.path.join(new, os.path.basename(os.path.normpath(props.prepared_dir)))
        for image in bpy.data.images:  # the photo's textures are files of its cache
            path = os.path.normpath(bpy.path.abspath(image.filepath)) if image.filepath else ""
            if path.startswith(old + os.sep):
                image.filepath = os.path.join(new, os.path.relpath(path, old))
        props.cache_dir, props.cache_home = new, ""
        moved = True
    if moved:  # the session's renderers know the old folder
        from ..session.frames import forget

        forget()


@bpy.app.handlers.persistent
def _paths_relative_on_save(filepath, *_):
    """Photo caches waiting for the first save move beside the .blend; photo caches and models
    folders are saved relative to the .blend (when Blender's own Preferences > File Paths >
    Relative Paths is on, as for images), so a project folder on a farm's shared storage, or moved
    as a whole, still renders."""
    _move_unsaved_caches(filepath)
    _absolute_paths.clear()
    if not bpy.context.preferences.filepaths.use_relative_paths:
        return
    for props, names in [(o.dh, ("cache_dir", "prepared_dir")) for o in bpy.data.objects if o.dh.role == "OBJECT"] + \
            [(scene.dh, ("models_dir",)) for scene in bpy.data.scenes]:
        for name in names:
            _absolute_paths.append((props, name, bpy.path.abspath(getattr(props, name)) if getattr(props, name) else ""))
            setattr(props, name, _relative(getattr(props, name), filepath))


_absolute_paths = []  # (properties, name, absolute path) made relative by the save in progress


@bpy.app.handlers.persistent
def _paths_back_after_copy(filepath, *_):
    """After File > Save Copy the open file is not the one saved: its paths are absolute again
    (relative ones would be relative to the copy's folder)."""
    import os

    saved, _absolute_paths[:] = list(_absolute_paths), []
    if bpy.data.filepath and os.path.abspath(bpy.data.filepath) == os.path.abspath(filepath):
        return
    for props, name, absolute in saved:
        try:
            setattr(props, name, absolute)
        except ReferenceError:  # removed meanwhile
            pass


def register():
    bpy.app.handlers.save_pre.append(_paths_relative_on_save)
    bpy.app.handlers.save_post.append(_paths_back_after_copy)
    bpy.types.Object.dh = PointerProperty(type=DH_ObjectProperties)
    bpy.types.Scene.dh = PointerProperty(type=DH_SceneProperties)
    bpy.types.ViewLayer.diffusion_handles = PointerProperty(type=DH_ViewLayerProperties)
    bpy.types.WindowManager.dh_job = PointerProperty(type=DH_JobProperties)
    bpy.types.Scene.dh_mesh_vertices = MESH_VERTICES


def unregister():
    for handlers, name in ((bpy.app.handlers.save_pre, "_paths_relative_on_save"),
                           (bpy.app.handlers.save_post, "_paths_back_after_copy")):
        for handler in [h for h in handlers if getattr(h, "__name__", "") == name]:
            handlers.remove(handler)
    del bpy.types.Scene.dh_mesh_vertices
    del bpy.types.WindowManager.dh_job
    del bpy.types.ViewLayer.diffusion_handles
    del bpy.types.Scene.dh
    del bpy.types.Object.dh
