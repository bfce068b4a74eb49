"""The add-on inside Blender: its preferences, its extension user folders (site-packages, photo
caches), and ``sys.path`` for the Python packages installed there or in the preferences' environment."""
from __future__ import annotations

import importlib
import os
import sys

import bpy

ADDON_PACKAGE = __package__.rpartition(".")[0]


def preferences(context=None):
    """The add-on preferences, or None (e.g. when batch.py registered the package by hand)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None


def user_site_packages(create=False):
    """The extension's own site-packages folder, or None outside an installed extension."""
    try:
        return bpy.utils.extension_path_user(ADDON_PACKAGE, path="site-packages", create=create)
    except (ValueError, RuntimeError, TypeError):
        return None


def add_paths(context=None):
    """Put the extension's site-packages and the preferences' environment on sys.path."""
    candidates = [user_site_packages()]
    prefs = preferences(context)
    if prefs is not None and prefs.python_path:
        candidates.append(bpy.path.abspath(prefs.python_path))
    for path in candidates:
        if path and os.path.isdir(path) and path not in sys.path:
            sys.path.append(path)
    importlib.invalidate_caches()


def wheels_dir(context=None):
    """The preferences' local wheels folder (offline installs), or None."""
    prefs = preferences(context)
    return bpy.path.abspath(prefs.wheels_dir) if prefs is not None and prefs.wheels_dir else None


def cache_root(context, explicit=""):
    """Where per-photo caches go: the operator's folder, the preferences', the extension's own."""
    from ..session.photo import default_cache_root

    if explicit:
        return bpy.path.abspath(explicit)
    prefs = preferences(context)
    if prefs is not None and prefs.cache_dir:
        return bpy.path.abspath(prefs.cache_dir)
    try:
        return bpy.utils.extension_path_user(ADDON_PACKAGE, path="photos", create=True)
    except (ValueError, RuntimeError, TypeError):
        return default_cache_root()
