# SPDX-License-Identifier: GPL-3.0-or-later
"""Diffusion Handles for Blender: 3D-aware edits of objects in photos.

Registration is cheap and works without torch: operators import the engine (and torch) lazily
when they run, and say how to install missing dependencies.

Layout (docs/design.md): ``blender/`` converts Blender data (camera, mesh, material, keyframes,
matrices, scene, stored properties), ``operators/`` holds thin operator classes and the render
engine, ``panels/`` the interface, ``session/`` the bpy-free session code (photo inputs, frame
renderers, the frame loop, the model cache, jobs), ``engine/`` the standalone engine.
"""
from . import blender, operators, panels, session

_modules = (blender, operators, panels)  # registered in this order (property groups first)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
    # the session's models and jobs go with the classes
    _forget_submodules([module.__name__ for module in (*reversed(_modules), session)])


def _forget_submodules(package_names):
    """Drop the packages' submodules so nothing of the unregistered classes stays alive (a
    re-enable imports them afresh, as Blender does for a reinstalled extension)."""
    import gc
    import sys

    for package_name in package_names:
        package = sys.modules.get(package_name)
        for name in [n for n in sys.modules if n.startswith(package_name + ".")]:
            del sys.modules[name]
            if package is not None and hasattr(package, name.rsplit(".", 1)[1]):
                delattr(package, name.rsplit(".", 1)[1])
    gc.collect()
