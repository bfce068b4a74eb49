"""Sidebar panels and add-on preferences. Each submodule lists its classes in ``CLASSES``."""
import importlib

import bpy

# Submodules with panel classes; add new ones here.
_SUBMODULES = ("preferences", "sidebar", "render")


def _classes():
    for name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        yield from module.CLASSES


def register():
    for cls in _classes():
        bpy.utils.register_class(cls)
    from ..blender.addon import add_paths

    add_paths()  # the preferences (with their environment path) exist only now


def unregister():
    from .sidebar import free_previews

    free_previews()  # the candidates' overlay icons
    for cls in reversed(list(_classes())):
        bpy.utils.unregister_class(cls)
