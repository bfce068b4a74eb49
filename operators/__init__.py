"""Blender operators (``dh.*``) and the render engine: thin classes that read their properties,
convert through blender/, hand work to the bpy-free session/ code and report (one line, never a
traceback). ``jobs`` runs their work off the main thread; ``online`` is the download mix-in.

Each submodule with classes lists them in ``CLASSES``; a submodule may also define ``register()`` /
``unregister()`` hooks (run after its classes are registered / before they are unregistered).
Nothing here imports torch: the engine's heavy parts load inside operators when they run.
"""
import importlib

import bpy

# Submodules with operator classes, in registration order.
_SUBMODULES = ("jobs", "install", "models", "import_photo", "select", "pick", "render", "render_engine")


def _modules():
    for name in _SUBMODULES:
        yield importlib.import_module(f".{name}", __name__)


def register():
    for module in _modules():
        for cls in getattr(module, "CLASSES", ()):
            bpy.utils.register_class(cls)
        if hasattr(module, "register"):
            module.register()


def unregister():
    for module in reversed(list(_modules())):
        if hasattr(module, "unregister"):
            module.unregister()
        for cls in reversed(getattr(module, "CLASSES", ())):
            bpy.utils.unregister_class(cls)
