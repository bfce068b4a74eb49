"""Blender as a Python module, isolated: import this (never bpy directly) first in add-on tests.

The extension is linked into a temporary user-extensions directory, set through Blender's
environment variables BEFORE bpy is imported, so tests never touch a real user's Blender.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ADDON_MODULE = "bl_ext.user_default.diffusion_handles"

_USER_DIR = Path(tempfile.mkdtemp(prefix="dh-blender-user-"))
os.environ["BLENDER_USER_EXTENSIONS"] = str(_USER_DIR / "extensions")
os.environ["BLENDER_USER_CONFIG"] = str(_USER_DIR / "config")
os.environ["BLENDER_USER_SCRIPTS"] = str(_USER_DIR / "scripts")
(_USER_DIR / "extensions" / "user_default").mkdir(parents=True)
(_USER_DIR / "extensions" / "user_default" / "diffusion_handles").symlink_to(REPO_ROOT)

import bpy  # noqa: E402  (must come after the environment above)
import addon_utils  # noqa: E402


atexit.register(shutil.rmtree, _USER_DIR, True)


def enable_addon():
    module = addon_utils.enable(ADDON_MODULE, default_set=True, handle_error=None)
    assert module is not None, "the add-on failed to register"
    return module


def disable_addon():
    addon_utils.disable(ADDON_MODULE, default_set=True, handle_error=None)


