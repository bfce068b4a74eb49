"""dh.install_dependencies: pip the engine's requirements into the extension's user folder, or into
the preferences' Python Packages folder when one is set (session/deps.py; the folders and sys.path
from blender/addon.py)."""
import os

import bpy

from ..blender.addon import add_paths, install_disabled_reason, install_target, wheels_dir
from ..session import deps
from .jobs import JobOperator
from .online import OnlineOnly


class DH_OT_install_dependencies(OnlineOnly, JobOperator, bpy.types.Operator):
    """Install torch, diffusers and the other engine packages (binary wheels, pip) into the extension's
    user folder or the Python Packages folder; Blender's own numpy is kept"""

    bl_idname = "dh.install_dependencies"
    bl_label = "Install Dependencies"
    bl_options = {"REGISTER"}  # not INTERNAL: every dh.* operator is findable in F3 search

    @classmethod
    def disabled_reason(cls, context):
        return install_disabled_reason(context)

    def start(self, context):
        target = install_target(context, create=True)
        if not target:
            self.report({"ERROR"}, "the add-on is not installed as an extension: set 'Python Packages' in the "
                                   "preferences to a folder to install into")
            return None
        wheels = wheels_dir(context)
        if wheels and not os.path.isdir(wheels):
            self.report({"ERROR"}, f"Install Dependencies: wheels folder '{wheels}' not found")
            return None
        reason = self.disabled_reason(context)
        if reason:
            self.report({"ERROR"}, f"Install Dependencies: {reason}")
            return None

        def work(progress, should_cancel):
            return target, deps.install(target, wheels, progress)

        return work

    def finish(self, context, result):
        target, installed = result
        add_paths(context)
        missing = deps.missing_modules()
        done = f"{len(installed)} packages installed into {target}" if installed else \
            "nothing to install: this Python has every requirement"
        if missing:
            self.report({"WARNING"}, f"{done}, but still missing: {', '.join(missing)}")
        else:
            self.report({"INFO"}, done)
        return {"FINISHED"}


CLASSES = (DH_OT_install_dependencies,)
