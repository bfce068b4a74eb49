"""dh.render_edit and dh.render_stop_motion: object matrices -> edited photos on disk.

Conveniences next to the render engine (render_engine.py): the same frame code (blender/frames.py,
session/frames.py), run as a job in a worker thread. Frames go to ``scene.render.filepath`` with
Blender's ``#`` numbering (``scene.render.frame_path``), written atomically and resumable (see
session/stopmotion.py). Every object of the active object's photo moves, and the scene camera with
them (blender/frames.py ``frame_edit``).
"""
import os

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from ..blender.properties import ENGINES
from ..blender.render import check_output, show_result, write_photo_movie
from ..session.errors import user_message
from ..session.jobs import current_job
from ..session.stopmotion import default_movie_path
from .jobs import JobOperator

ENGINE_CHOICES = (("PHOTO", "Photo's Setting", "The engine chosen for this photo in the sidebar"),) + ENGINES


class _RenderBase(JobOperator):
    engine: EnumProperty(name="Engine", items=ENGINE_CHOICES, default="PHOTO")

    @classmethod
    def poll(cls, context):
        if not any(o.dh.role == "OBJECT" for o in context.scene.objects):
            cls.poll_message_set("Import a photo first (Diffusion Handles > Import Photo)")
            return False
        if current_job() is not None:
            cls.poll_message_set("A Diffusion Handles job is running")
            return False
        return True

    def frames(self, context):
        raise NotImplementedError

    def start(self, context):
        from ..blender.frames import engine_for, frame_source, plan_frames
        from ..blender.scene import active_handle
        from ..session.stopmotion import run_frames

        scene = context.scene
        try:
            obj = active_handle(context)
            chosen = obj.dh.engine if self.engine == "PHOTO" else self.engine
            check_output(scene)
            engine_name, _, fallback = engine_for(obj, scene, chosen)  # diffusion without weights fails here
            source = frame_source(obj, engine_name, scene=scene, context=context, chosen=chosen)
            make = source.renderer  # worker side: the session's renderer, built once
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
        if fallback:  # the artist's explicit choice, said for the whole run (each frame's file records it)
            self.report({"WARNING"}, f"{self.bl_label}: {fallback}")
        self._obj_name, self._engine_name, self._plan = obj.name, engine_name, plan

        def work(progress, should_cancel):
            from ..session.frames import write_frame

            renderer = make(progress, should_cancel)
            metadata = source.metadata(renderer)  # each frame file records what made it
            summary = run_frames(plan, renderer, progress, should_cancel,
                                 write=lambda path, rgb: write_frame(path, rgb, metadata))
            summary.note = renderer.take_note()  # a rebuilt photo cache
            return summary, renderer.prepared_dir

        return work

    def failed(self, context, exc):
        message = user_message(exc)
        return None if message is None else f"{self.bl_label}: {message}"

    def cancelled_note(self):
        return "finished frames are kept; run it again to resume"

    def store_prepared(self, context, prepared_dir, summary):
        if summary.note:
            self.report({"WARNING"}, f"{self.bl_label}: {summary.note}")
        self._store_prepared(prepared_dir)

    def _store_prepared(self, prepared_dir):
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
        self.store_prepared(context, prepared_dir, summary)
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
        self.store_prepared(context, prepared_dir, summary)
        show_result(context, summary.paths[-1])
        message = f"{summary.describe()} ({self._engine_name.lower()} engine) in {os.path.dirname(summary.paths[0])}"
        if self.movie:
            movie_path = bpy.path.abspath(self.movie_path) if self.movie_path else default_movie_path(summary.paths[0])
            try:
                write_photo_movie(bpy.data.objects[self._obj_name], self._engine_name, context.scene, movie_path,
                                  self._plan)
                message += f"; movie {movie_path}"
            except Exception as exc:  # noqa: BLE001 - the frames are done; report the movie problem
                self.report({"WARNING"}, f"frames done, movie failed: {user_message(exc) or exc}")
        self.report({"INFO"}, message)
        return {"FINISHED"}


CLASSES = (DH_OT_render_edit, DH_OT_render_stop_motion)
