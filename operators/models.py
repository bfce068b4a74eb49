"""dh.free_memory and dh.download_models: the session's models (session/store.py) unloaded, and
downloaded through the model registry (session/download.py, the one download path)."""
import bpy

from ..blender.options import engine_options, forget_weights_status
from ..session.deps import require
from ..session.download import download_models, download_plan
from ..session.errors import AddonError, user_message
from ..session.jobs import current_job
from ..session.store import free_engine
from .jobs import JobOperator
from .online import OnlineOnly


class DH_OT_free_memory(bpy.types.Operator):
    """Unload the diffusion and perception models and prepared photos from memory"""

    bl_idname = "dh.free_memory"
    bl_label = "Free Memory"
    bl_options = {"REGISTER"}

    def execute(self, context):
        if current_job() is not None:
            self.report({"ERROR"}, "a job is running: cancel it first")
            return {"CANCELLED"}
        free_engine()
        self.report({"INFO"}, "Diffusion Handles models unloaded")
        return {"FINISHED"}


class DH_OT_download_models(OnlineOnly, JobOperator, bpy.types.Operator):
    """Download the default pipeline's models into the Hugging Face cache (several GB; needs online access)"""

    bl_idname = "dh.download_models"
    bl_label = "Download Models"
    bl_options = {"REGISTER"}

    def start(self, context):
        try:
            require(("huggingface_hub",))
            plan = download_plan(engine_options(context)["overrides"])
        except (AddonError, ImportError) as exc:
            self.report({"ERROR"}, user_message(exc))
            return None

        notes = self.notes = []  # a withdrawn source passed over, a file fetched again: one line each

        def work(progress, should_cancel):
            def notify(line):
                notes.append(line)
                progress(line, 0, 1)

            return download_models(plan, progress, should_cancel, notify)

        return work

    def finish(self, context, roles):
        forget_weights_status()
        for line in getattr(self, "notes", ()):
            self.report({"INFO"}, line)
        self.report({"INFO"}, f"models downloaded: {', '.join(roles) or 'none needed (local folders or files)'}")
        return {"FINISHED"}


CLASSES = (DH_OT_free_memory, DH_OT_download_models)
