"""Blender operators (``dh.*``), the render engine, and the modules they use, in three layers
(as Blender's glTF add-on separates its Blender conversions from its format code):

- Blender-concept conversions (read and write Blender data, no operators): ``camera``, ``mesh``,
  ``material``, ``matrices``, ``keyframes``, ``scene``, ``properties`` (what .blend files store);
- thin operator classes and the render engine: ``import_photo``, ``render``, ``render_engine``,
  ``models``, ``install``, ``jobs`` (the worker-thread job machinery), with ``deps`` (Python
  packages) and ``errors`` (one-line reports; imports nothing of the add-on);
- session code without bpy, run in worker and render threads: ``photo`` (a photo's inputs and
  cache), ``renderers`` (frame renderers behind ``renderer(edits, progress, should_cancel)``),
  ``stopmotion`` (the resumable frame loop), and ``frames`` (the one code path for a frame: its
  Blender half reads the scene, its session half renders).

No module imports one that imports it back (tests/addon/test_layout.py). Each submodule with
classes lists them in ``CLASSES``; a submodule may also define ``register()`` / ``unregister()``
hooks (run after its classes are registered / before they are unregistered). Nothing here
imports torch: the engine's heavy parts load inside operators when they run.
"""
import importlib

import bpy

# Submodules with operator classes, in registration order (property groups first).
_SUBMODULES = ("properties", "deps", "jobs", "install", "models", "import_photo", "render", "render_engine")


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
