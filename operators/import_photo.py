"""dh.import_photo: a photo (plus depth / mask files or an object query) -> camera + lifted meshes."""
import os
import time

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from .errors import AddonError, user_message
from .jobs import JobOperator
from .mesh import DEFAULT_MAX_DEPTH_JUMP
from .properties import ENGINES

IMAGE_FILTER = "*.png;*.jpg;*.jpeg;*.webp;*.bmp;*.tif;*.tiff"


def cache_root(context, explicit=""):
    """Where per-photo caches go: the operator's folder, the preferences', the extension's own."""
    from .deps import ADDON_PACKAGE, preferences
    from .photo import default_cache_root

    if explicit:
        return bpy.path.abspath(explicit)
    prefs = preferences(context)
    if prefs is not None and prefs.cache_dir:
        return bpy.path.abspath(prefs.cache_dir)
    try:
        return bpy.utils.extension_path_user(ADDON_PACKAGE, path="photos", create=True)
    except (ValueError, RuntimeError, TypeError):
        return default_cache_root()


class DH_OT_import_photo(JobOperator, bpy.types.Operator, ImportHelper):
    """Import a photo as a camera, a lifted background and lifted objects (one per mask or query)
    you can move and keyframe each on its own"""

    bl_idname = "dh.import_photo"
    bl_label = "Import Photo"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default=IMAGE_FILTER, options={"HIDDEN"})
    prompt: StringProperty(name="Prompt", description="A caption of the photo (the diffusion model's prompt)")
    object_query: StringProperty(name="Object", description="Text naming the object to move, e.g. 'the car'; "
                                 "several objects: ';' between them, e.g. 'the car; the dog' "
                                 "(needs the perception models; or give mask files)")
    candidate: IntProperty(name="Candidate", default=0, min=0,
                           description="Which of the query's candidates to use (0 = best)")
    mask_path: StringProperty(name="Mask File", subtype="FILE_PATH",
                              description="Object mask image (white = object); several objects: ';' between "
                              "the files, one object each; empty: from the object query")
    depth_path: StringProperty(name="Depth File", subtype="FILE_PATH",
                               description="Z-depth in metres (.exr, .npy, 16-bit .png in mm); empty: estimated")
    cache_dir: StringProperty(name="Cache Folder", subtype="DIR_PATH",
                              description="Where the photo's cache goes (empty: the preferences' folder)")
    engine: EnumProperty(name="Engine", items=ENGINES, default="PREVIEW")
    max_depth_jump: FloatProperty(name="Cut at Depth Jumps", default=DEFAULT_MAX_DEPTH_JUMP, min=0.001, max=10.0,
                                  description="Mesh faces whose relative depth range exceeds this are cut")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        for name in ("prompt", "object_query", "candidate", "mask_path", "depth_path", "engine",
                     "max_depth_jump", "cache_dir"):
            layout.prop(self, name)

    def invoke(self, context, event):
        return ImportHelper.invoke(self, context, event)

    def start(self, context):
        from . import deps

        image_path = bpy.path.abspath(self.filepath)
        depth_path = bpy.path.abspath(self.depth_path) if self.depth_path else ""
        from .photo import split_list

        mask_paths = [bpy.path.abspath(p) for p in split_list(self.mask_path)]
        mask_path = ";".join(mask_paths)
        for what, path in (("photo", image_path), ("depth file", depth_path),
                           *(("mask file", p) for p in mask_paths)):
            if path and not os.path.isfile(path):
                self.report({"ERROR"}, f"{what} '{path}': file not found")
                return None
        needs = ("numpy", "PIL", "scipy") if (depth_path and mask_path) else tuple(deps.MODULES)
        try:
            deps.require(needs)
        except AddonError as exc:
            self.report({"ERROR"}, str(exc))
            return None
        from .models import engine_options
        from .photo import cache_key, resolve_inputs, write_cache

        options = engine_options(context)
        query, candidate = self.object_query, self.candidate
        stem = os.path.splitext(os.path.basename(image_path))[0] or "photo"
        root = cache_root(context, self.cache_dir)
        self._stem = stem

        def work(progress, should_cancel):
            started = time.perf_counter()
            progress("reading inputs", 0, 3)
            directory = os.path.join(root, f"{stem}-{cache_key(image_path, depth_path, mask_path, query, candidate)}")
            inputs = resolve_inputs(image_path, depth_path, mask_path, query, candidate,
                                    models_dir=options["models_dir"], overrides=options["overrides"],
                                    device=options["device"])
            progress("writing the photo cache", 1, 3)
            write_cache(directory, inputs, {"image": image_path, "depth": depth_path, "mask": mask_path,
                                            "object_query": query, "candidate": candidate})
            return inputs, directory, time.perf_counter() - started

        return work

    def failed(self, context, exc):
        message = user_message(exc)
        return None if message is None else f"Import Photo: {message}"

    def finish(self, context, result):
        from .scene import build_photo_scene

        inputs, directory, prep_seconds = result
        started = time.perf_counter()
        from .photo import split_list

        settings = {"image_path": bpy.path.abspath(self.filepath), "prompt": self.prompt,
                    "depth_path": bpy.path.abspath(self.depth_path) if self.depth_path else "",
                    "mask_path": ";".join(bpy.path.abspath(p) for p in split_list(self.mask_path)),
                    "object_query": self.object_query, "engine": self.engine}
        try:
            obj = build_photo_scene(context, self._stem, inputs, directory, settings, self.max_depth_jump)
        except Exception as exc:  # noqa: BLE001 - reported, never a traceback in the UI
            message = user_message(exc)
            if message is None:
                raise
            self.report({"ERROR"}, f"Import Photo: {message}")
            return {"CANCELLED"}
        build_seconds = time.perf_counter() - started
        height, width = inputs.shape
        note = ""
        if len(inputs.candidates) > 1:
            note = f"; {len(inputs.candidates)} candidates for '{self.object_query}' (Candidate picks another)"
        count = len(inputs.masks)
        if count > 1:
            note = f"; {count} objects, each moved and keyed on its own" + note
        self.report({"INFO"}, f"imported {width}x{height} photo as '{obj.name}' "
                              f"(inputs {prep_seconds:.2f} s, scene {build_seconds:.2f} s){note}")
        return {"FINISHED"}


def menu_import(self, context):
    self.layout.operator(DH_OT_import_photo.bl_idname, text="Photo for Diffusion Handles")


CLASSES = (DH_OT_import_photo,)


def register():
    bpy.types.TOPBAR_MT_file_import.append(menu_import)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
