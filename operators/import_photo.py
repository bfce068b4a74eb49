"""dh.import_photo: a photo (plus depth / mask files or an object query) -> camera + lifted meshes."""
import os
import time

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ..blender.addon import cache_root
from ..blender.mesh import DEFAULT_MAX_DEPTH_JUMP
from ..blender.properties import RELATIVE_OK, ENGINES
from ..session.errors import user_message
from ..session.photo import split_list
from .jobs import JobOperator

IMAGE_FILTER = "*.png;*.jpg;*.jpeg;*.webp;*.bmp;*.tif;*.tiff"


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
    cache_dir: StringProperty(name="Cache Folder", subtype="DIR_PATH", options=RELATIVE_OK,
                              description="Where the photo's cache goes (empty: the preferences' folder, else "
                                          "<blend name>_dh_cache beside the .blend)")
    engine: EnumProperty(name="Engine", items=ENGINES, default="PREVIEW")
    max_depth_jump: FloatProperty(name="Cut at Depth Jumps", default=DEFAULT_MAX_DEPTH_JUMP, min=0.001, max=10.0,
                                  description="Mesh faces whose relative depth range exceeds this are cut")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        for name in ("prompt", "object_query", "candidate", "mask_path", "depth_path", "engine",
                     "max_depth_jump", "cache_dir"):
            layout.prop(self, name)
        layout.prop(context.scene, "dh_mesh_vertices")  # the meshes' vertex budget (blender/mesh.py)

    def invoke(self, context, event):
        return ImportHelper.invoke(self, context, event)

    def start(self, context):
        from ..blender.options import engine_options
        from ..session import deps
        from ..session.photo import import_inputs, load_inputs, needed_modules

        image_path = bpy.path.abspath(self.filepath) if self.filepath else ""
        depth_path = bpy.path.abspath(self.depth_path) if self.depth_path else ""
        mask_path = ";".join(bpy.path.abspath(p) for p in split_list(self.mask_path))
        query, candidate = self.object_query, self.candidate
        try:  # the engine's input boundary reads and checks the files now: a bad one is reported at once
            photo = load_inputs(image_path, depth_path, mask_path, query, candidate)
            deps.require(needed_modules(depth_path, mask_path))
        except Exception as exc:  # noqa: BLE001 - reported, never a traceback in the UI
            self._report_error(exc)
            return None
        options = engine_options(context)
        stem = os.path.splitext(os.path.basename(image_path))[0] or "photo"
        root, self._cache_home = cache_root(context, self.cache_dir)
        self._stem = stem

        def work(progress, should_cancel):
            return import_inputs(root, stem, image_path, depth_path, mask_path, query, candidate, options, progress,
                                 photo)

        return work

    def _report_error(self, exc):
        """One ERROR line for a failure the user can act on; anything else is a bug (re-raised)."""
        message = user_message(exc)
        if message is None:
            raise exc
        self.report({"ERROR"}, f"Import Photo: {message}")

    def failed(self, context, exc):
        message = user_message(exc)
        return None if message is None else f"Import Photo: {message}"

    def finish(self, context, result):
        from ..blender.scene import build_photo_scene
        from ..session.photo import import_note

        inputs, directory, prep_seconds = result
        started = time.perf_counter()
        settings = {"image_path": bpy.path.abspath(self.filepath), "prompt": self.prompt,
                    "depth_path": bpy.path.abspath(self.depth_path) if self.depth_path else "",
                    "mask_path": ";".join(bpy.path.abspath(p) for p in split_list(self.mask_path)),
                    "object_query": self.object_query, "candidate": self.candidate, "engine": self.engine,
                    "cache_home": self._cache_home}
        try:
            obj = build_photo_scene(context, self._stem, inputs, directory, settings, self.max_depth_jump)
        except Exception as exc:  # noqa: BLE001 - reported, never a traceback in the UI
            self._report_error(exc)
            return {"CANCELLED"}
        build_seconds = time.perf_counter() - started
        height, width = inputs.shape
        note = import_note(inputs, self.object_query)
        self.report({"INFO"}, f"imported {width}x{height} photo as '{obj.name}' "
                              f"(inputs {prep_seconds:.2f} s, scene {build_seconds:.2f} s){note}")
        return {"FINISHED"}


class DH_OT_choose_candidate(JobOperator, bpy.types.Operator):
    """Use another candidate of the object query for this object: the object is replaced in place
    (its name, keyframes and materials kept), no new import"""

    bl_idname = "dh.choose_candidate"
    bl_label = "Choose Candidate"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Candidate", min=0, description="The query's candidate to use (0 = best)")
    max_depth_jump: FloatProperty(name="Cut at Depth Jumps", default=DEFAULT_MAX_DEPTH_JUMP, min=0.001, max=10.0)

    def start(self, context):
        from ..blender.frames import photo_sources
        from ..blender.options import engine_options
        from ..blender.scene import active_handle
        from ..session import deps
        from ..session.errors import AddonError

        try:
            handle = active_handle(context)
            if len(split_list(handle.dh.object_query)) != 1 or handle.dh.mask_path:
                raise AddonError("Choose Candidate: the photo's object comes from one object query (it has "
                                 f"'{handle.dh.object_query}'{' and mask files' if handle.dh.mask_path else ''})")
            if self.index == handle.dh.candidate:
                raise AddonError(f"Choose Candidate: candidate {self.index} is the one in use")
            sources = photo_sources(handle)
            deps.require(tuple(deps.MODULES))
        except Exception as exc:  # noqa: BLE001 - reported, never a traceback in the UI
            self.report({"ERROR"}, user_message(exc) or f"{type(exc).__name__}: {exc}")
            return None
        directory = os.path.normpath(bpy.path.abspath(handle.dh.cache_dir))
        options, index = engine_options(context, context.scene), self.index
        self._handle = handle.name

        def work(progress, should_cancel):
            from ..session.photo import build_cache

            # the cache as Import Photo makes it for that candidate (a rebuild gives the same)
            progress("finding the candidates", 0, 1)
            return build_cache(directory, sources["image"], sources["depth"], "", sources["object_query"], index,
                               options)

        return work

    def failed(self, context, exc):
        message = user_message(exc)
        return None if message is None else f"Choose Candidate: {message}"

    def finish(self, context, result):
        from ..blender.scene import replace_photo_object
        from ..session.frames import forget

        handle = bpy.data.objects.get(self._handle)
        if handle is None:
            self.report({"ERROR"}, f"Choose Candidate: '{self._handle}' was deleted meanwhile")
            return {"CANCELLED"}
        replace_photo_object(handle, result, 0, self.max_depth_jump)
        handle.dh.candidate = self.index
        forget()  # frames and renderers were made from the old candidate
        count = len(result.candidates[0]) if result.candidates else 0
        self.report({"INFO"}, f"'{handle.name}' is now candidate {self.index} of {count} for "
                              f"'{handle.dh.object_query}' (keyframes kept)")
        return {"FINISHED"}


def menu_import(self, context):
    self.layout.operator(DH_OT_import_photo.bl_idname, text="Photo for Diffusion Handles")


CLASSES = (DH_OT_import_photo, DH_OT_choose_candidate)


def register():
    bpy.types.TOPBAR_MT_file_import.append(menu_import)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
