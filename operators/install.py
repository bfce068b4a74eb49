"""dh.install_dependencies: pip the engine's requirements into the extension's user folder
(session/deps.py; the folder and sys.path from blender/addon.py)."""
import os

import bpy

from ..blender.addon import add_paths, user_site_packages, wheels_dir
from ..session import deps
from .jobs import JobOperator
from .online import OnlineOnly


class DH_OT_install_dependencies(OnlineOnly, JobOperator, bpy.types.Operator):
    """Install torch, diffusers and the other engine packages into the extension's user folder (pip)"""

    bl_idname = "dh.install_dependencies"
    bl_label = "Install Dependencies"
    bl_options = {"REGISTER"}  # not INTERNAL: every dh.* operator is findable in F3 search

    @classmethod
    def poll(cls, context):
        return bool(wheels_dir(context)) or super().poll(context)  # local wheels need no network

    def start(self, context):
        target = user_site_packages(create=True)
        if not target:
            self.report({"ERROR"}, "the add-on is not installed as an extension: install the packages "
                                   "yourself and set 'Python Packages' in the preferences")
            return None
        wheels = wheels_dir(context)
        if wheels and not os.path.isdir(wheels):
            self.report({"ERROR"}, f"Install Dependencies: wheels folder '{wheels}' not found")
            return None
        if not wheels and not bpy.app.online_access:
            self.report({"ERROR"}, "Install Dependencies: online access is disabled (Preferences > System > "
                                   "Network); allow it, or set a local Wheels Folder")
            return None

        def work(progress, should_cancel):
            return deps.install(target, wheels, progress)

        return work

    def finish(self, context, target):
        add_paths(context)
        missing = deps.missing_modules()
        if missing:
            self.report({"WARNING"}, f"installed into {target}, but still missing: {', '.join(missing)}")
        else:
            self.report({"INFO"}, f"dependencies installed into {target}")
        return {"FINISHED"}


CLASSES = (DH_OT_install_dependencies,)
