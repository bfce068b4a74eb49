"""Blender-concept conversions: read and write Blender data, no operators (as the glTF add-on's
``blender/`` package holds its conversions apart from its operators and format code).

``camera``, ``mesh``, ``material``, ``matrices``, ``keyframes`` and ``scene`` convert between the
engine's photo model and Blender objects; ``properties`` holds what .blend files store;
``frames`` reads a frame's edit, the photo the camera sees and a stop-motion plan from a scene;
``options`` the engine's options from the preferences and the scene; ``render`` Blender's render
output (checks, result image, movie); ``addon`` the add-on's preferences and user folders.
Registering this package registers the property groups and puts the installed Python packages on
``sys.path``.
"""
import importlib

import bpy


def _module(name):  # imported afresh after an unregister dropped the submodules (a re-enable)
    return importlib.import_module(f".{name}", __name__)


def register():
    properties = _module("properties")
    for cls in properties.CLASSES:
        bpy.utils.register_class(cls)
    properties.register()
    _module("mesh").register()  # lifted meshes saved empty, made again from the cache on load
    _module("addon").add_paths()


def unregister():
    properties = _module("properties")
    _module("mesh").unregister()
    properties.unregister()
    for cls in reversed(properties.CLASSES):
        bpy.utils.unregister_class(cls)
