"""dh.render_edit and dh.render_stop_motion: object matrices -> edited photos on disk.

Conveniences next to the render engine (render_engine.py): the same frame code (frames.py), run
as a job in a worker thread. Frames go to ``scene.render.filepath`` with Blender's ``#`` numbering
(``scene.render.frame_path``), written atomically and resumable (see stopmotion.py). Every
object of the active object's photo moves, and the scene camera with them (frames.frame_edit).
"""
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


def _frame_job(context, obj, engine_name):
    """Main thread: the frame source and a worker-side ``make(progress, should_cancel)`` for its renderer."""
    from .frames import frame_source

    source = frame_source(obj, engine_name, scene=context.scene, context=context)
    return source, source.renderer


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


def write_movie(scene, movie_path, frames=()):
    """Render the scene's animation as an H.264 MP4 through the render engine and Blender's FFmpeg
    output. ``frames``: (key, path) of frames already on disk, remembered first so no edit runs
    again (frames rendered in this session are remembered anyway). Written under a temporary name,
    then renamed; the scene's output settings are restored."""
    from ..engine.io import load_image
    from . import frames as frame_code
    from .render_engine import IDNAME

    for key, path in frames:
        frame_code.remember(key, load_image(path))
    render, settings = scene.render, scene.render.image_settings
    saved = (render.engine, render.filepath, render.use_file_extension, settings.file_format,
             getattr(settings, "media_type", None))
    partial = os.path.join(os.path.dirname(os.path.abspath(movie_path)), ".partial-" + os.path.basename(movie_path))
    try:
        render.engine = IDNAME
        if saved[4] is not None:
            settings.media_type = "VIDEO"  # Blender 5: movies are a media type of their own
        settings.file_format = "FFMPEG"
        render.ffmpeg.format, render.ffmpeg.codec = "MPEG4", "H264"
        render.filepath, render.use_file_extension = partial, True
        bpy.ops.render.render(animation=True, scene=scene.name)
        written = render.frame_path(frame=scene.frame_start)
        if not os.path.isfile(written) or not os.path.getsize(written):
            raise AddonError(f"movie '{movie_path}': Blender's FFmpeg output wrote nothing")
        os.replace(written, movie_path)
    finally:
        render.engine, render.filepath, render.use_file_extension = saved[:3]
        if saved[4] is not None:
            settings.media_type = saved[4]
        settings.file_format = saved[3]
        if os.path.exists(partial):
            os.remove(partial)
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
            source, make = _frame_job(context, obj, engine_name)
            plan = plan_frames(scene, obj, source.context_key, self.frames(context))
        except Exception as exc:  # noqa: BLE001 - user errors become reports
            message = user_message(exc)
            if message is None:
                raise
            self.report({"ERROR"}, f"{self.bl_label}: {message}")
            return None
        if not plan:
            self.report({"ERROR"}, f"{self.bl_label}: the frame range is empty")
            return None
        self._obj_name, self._engine_name, self._plan = obj.name, engine_name, plan

        def work(progress, should_cancel):
            renderer = make(progress, should_cancel)
            summary = run_frames(plan, renderer, progress, should_cancel)
            return summary, renderer.prepared_dir

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
                obj = bpy.data.objects[self._obj_name]
                photo_engine, obj.dh.engine = obj.dh.engine, self._engine_name  # the render engine uses it
                try:
                    write_movie(context.scene, movie_path, [(item.key, item.path) for item in self._plan])
                finally:
                    obj.dh.engine = photo_engine
                message += f"; movie {movie_path}"
            except Exception as exc:  # noqa: BLE001 - the frames are done; report the movie problem
                self.report({"WARNING"}, f"frames done, movie failed: {user_message(exc) or exc}")
        self.report({"INFO"}, message)
        return {"FINISHED"}


CLASSES = (DH_OT_render_edit, DH_OT_render_stop_motion)
