"""dh.render_edit and dh.render_stop_motion: object matrices -> edited photos on disk.

Frames go to ``scene.render.filepath`` with Blender's ``#`` numbering (``scene.render.frame_path``),
written atomically and resumable (see stopmotion.py). One moving object per photo: the engine edits
one object, so several moving objects of one photo are not supported yet (render them as separate
photos).
"""
import json
import os

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from .errors import AddonError, user_message
from .jobs import JobOperator
from .properties import ENGINES

FRAME_FORMATS = {"PNG", "JPEG", "BMP", "TIFF", "WEBP"}
RESULT_IMAGE = "DH Result"
ENGINE_CHOICES = (("PHOTO", "Photo's Setting", "The engine chosen for this photo in the sidebar"),) + ENGINES


def _check_output(scene):
    if not scene.render.filepath:
        raise AddonError("set the output path (Output Properties > Output) for the frames")
    settings = scene.render.image_settings
    if settings.file_format not in FRAME_FORMATS:
        raise AddonError(f"output file format {settings.file_format} cannot hold single frames: choose PNG "
                         "(enable Movie in the render operator to also get a movie)")


def _renderer_factory(context, obj, engine_name):
    """Main thread: what the worker needs to build the frame renderer, and the frames' context key."""
    from . import deps
    from .models import edit_settings, engine_options

    props = obj.dh
    if props.camera is None:
        raise AddonError(f"'{obj.name}' lost its camera: import the photo again")
    if not props.cache_dir:
        raise AddonError(f"'{obj.name}' has no photo cache: import the photo again")
    deps.require(deps.PREVIEW_MODULES if engine_name == "PREVIEW" else tuple(deps.MODULES))
    cache_dir = bpy.path.abspath(props.cache_dir)
    prompt = props.prompt
    key = {"engine": engine_name, "cache": os.path.basename(os.path.normpath(cache_dir)),
           "size": [props.width, props.height]}
    options = settings = None
    if engine_name == "DIFFUSION":
        if not prompt.strip():
            raise AddonError("the diffusion engine needs a prompt: describe the photo in the sidebar")
        options = engine_options(context)
        settings = edit_settings(props, options)
        key.update(prompt=prompt, settings=settings.to_dict())

    def make(progress, should_cancel):
        from .photo import load_cache
        from .renderers import DiffusionRenderer, PreviewRenderer

        inputs = load_cache(cache_dir)
        if engine_name == "PREVIEW":
            return PreviewRenderer(inputs), None
        from .models import get_engine, get_prepared

        progress("loading models", 0, 1)
        engine = get_engine(options, settings)
        prepared, prepared_dir = get_prepared(engine, inputs, prompt, settings, cache_dir,
                                              progress=progress, should_cancel=should_cancel)
        return DiffusionRenderer(inputs, engine, prepared, engine.runtime.frame_batch_size, settings), prepared_dir

    return make, json.dumps(key, sort_keys=True)


def show_result(context, path):
    """Load ``path`` into the 'DH Result' image and show it in any open Image Editor."""
    image = bpy.data.images.get(RESULT_IMAGE)
    if image is None:
        image = bpy.data.images.load(path, check_existing=False)
        image.name = RESULT_IMAGE
    else:
        image.filepath = path
        image.reload()
    for window in getattr(context.window_manager, "windows", ()):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image
    return image


def write_movie(scene, paths, movie_path):
    """Encode frames into a movie with Blender's own FFmpeg output (a temporary sequencer scene)."""
    from ..engine.io import atomic_output

    directory = os.path.dirname(paths[0])
    if any(os.path.dirname(p) != directory for p in paths):
        raise AddonError("movie: the frames must be in one folder")
    movie_scene = bpy.data.scenes.new("DH Movie")
    try:
        render = movie_scene.render
        render.resolution_x = scene.render.resolution_x
        render.resolution_y = scene.render.resolution_y
        render.resolution_percentage = 100
        render.fps, render.fps_base = scene.render.fps, scene.render.fps_base
        editor = movie_scene.sequence_editor_create()
        strips = getattr(editor, "strips", None) or editor.sequences
        strip = strips.new_image(name="frames", filepath=paths[0], channel=1, frame_start=1)
        for path in paths[1:]:
            strip.elements.append(os.path.basename(path))
        movie_scene.frame_start, movie_scene.frame_end = 1, len(paths)
        settings = render.image_settings
        if hasattr(settings, "media_type"):
            settings.media_type = "VIDEO"
        settings.file_format = "FFMPEG"
        render.ffmpeg.format = "MPEG4"
        render.ffmpeg.codec = "H264"
        render.use_file_extension = False
        render.use_sequencer = True
        os.makedirs(os.path.dirname(movie_path) or ".", exist_ok=True)
        with atomic_output(movie_path) as tmp:
            render.filepath = str(tmp)
            bpy.ops.render.render(animation=True, scene=movie_scene.name)
            if not os.path.getsize(tmp):
                raise AddonError(f"movie '{movie_path}': FFmpeg wrote nothing")
    finally:
        bpy.data.scenes.remove(movie_scene)
    return movie_path


def default_movie_path(first_frame):
    directory = os.path.dirname(first_frame)
    return os.path.join(directory, "stop_motion.mp4")


class _RenderBase(JobOperator):
    engine: EnumProperty(name="Engine", items=ENGINE_CHOICES, default="PHOTO")

    @classmethod
    def poll(cls, context):
        if not any(o.dh.role == "OBJECT" for o in context.scene.objects):
            cls.poll_message_set("Import a photo first (Diffusion Handles > Import Photo)")
            return False
        from .jobs import current_job

        if current_job() is not None:
            cls.poll_message_set("A Diffusion Handles job is running")
            return False
        return True

    def frames(self, context):
        raise NotImplementedError

    def start(self, context):
        from .scene import active_handle
        from .stopmotion import plan_frames, run_frames

        scene = context.scene
        try:
            obj = active_handle(context)
            engine_name = obj.dh.engine if self.engine == "PHOTO" else self.engine
            _check_output(scene)
            make, context_key = _renderer_factory(context, obj, engine_name)
            plan = plan_frames(scene, obj, context_key, self.frames(context))
        except Exception as exc:  # noqa: BLE001 - user errors become reports
            message = user_message(exc)
            if message is None:
                raise
            self.report({"ERROR"}, f"{self.bl_label}: {message}")
            return None
        if not plan:
            self.report({"ERROR"}, f"{self.bl_label}: the frame range is empty")
            return None
        self._obj_name, self._engine_name = obj.name, engine_name

        def work(progress, should_cancel):
            renderer, prepared_dir = make(progress, should_cancel)
            summary = run_frames(plan, renderer, progress, should_cancel)
            return summary, prepared_dir

        return work

    def failed(self, context, exc):
        message = user_message(exc)
        return None if message is None else f"{self.bl_label}: {message}"

    def cancelled_note(self):
        return "finished frames are kept; run it again to resume"

    def store_prepared(self, context, prepared_dir):
        obj = bpy.data.objects.get(self._obj_name)
        if obj is not None and prepared_dir:
            obj.dh.prepared_dir = prepared_dir


class DH_OT_render_edit(_RenderBase, bpy.types.Operator):
    """Render the current frame: the object's move since import becomes an edited photo"""

    bl_idname = "dh.render_edit"
    bl_label = "Render Edit"
    bl_options = {"REGISTER"}

    def frames(self, context):
        return [context.scene.frame_current]

    def finish(self, context, result):
        summary, prepared_dir = result
        self.store_prepared(context, prepared_dir)
        show_result(context, summary.paths[0])
        self.report({"INFO"}, f"edited photo ({self._engine_name.lower()} engine) saved to {summary.paths[0]}")
        return {"FINISHED"}


class DH_OT_render_stop_motion(_RenderBase, bpy.types.Operator):
    """Render every frame of the scene's range (frame step included) as an edited photo"""

    bl_idname = "dh.render_stop_motion"
    bl_label = "Render Stop-Motion"
    bl_options = {"REGISTER"}

    movie: BoolProperty(name="Movie", default=False,
                        description="Also encode the frames into a movie with Blender's FFmpeg output")
    movie_path: StringProperty(name="Movie File", subtype="FILE_PATH",
                               description="Empty: stop_motion.mp4 next to the frames")

    def frames(self, context):
        return None  # the scene's range and step

    def finish(self, context, result):
        summary, prepared_dir = result
        self.store_prepared(context, prepared_dir)
        show_result(context, summary.paths[-1])
        message = f"{summary.describe()} ({self._engine_name.lower()} engine) in {os.path.dirname(summary.paths[0])}"
        if self.movie:
            movie_path = bpy.path.abspath(self.movie_path) if self.movie_path else default_movie_path(summary.paths[0])
            try:
                write_movie(context.scene, summary.paths, movie_path)
                message += f"; movie {movie_path}"
            except Exception as exc:  # noqa: BLE001 - the frames are done; report the movie problem
                self.report({"WARNING"}, f"frames done, movie failed: {user_message(exc) or exc}")
        self.report({"INFO"}, message)
        return {"FINISHED"}


CLASSES = (DH_OT_render_edit, DH_OT_render_stop_motion)
