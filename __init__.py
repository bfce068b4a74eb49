# SPDX-License-Identifier: GPL-3.0-or-later
"""Diffusion Handles for Blender: 3D-aware edits of objects in photos.

Registration is cheap and works without torch: operators import the engine (and torch) lazily
when they run, and say how to install missing dependencies.
"""
from . import operators, panels

_modules = (operators, panels)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
