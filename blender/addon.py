"""The add-on inside Blender: its preferences, its extension user folder (site-packages), where
photo caches go, and ``sys.path`` for the Python packages installed there or in the preferences'
environment."""
from __future__ import annotations

import importlib
import logging
import os
import sys

import bpy

ADDON_PACKAGE = __package__.rpartition(".")[0]
log = logging.getLogger(__name__)
OFFLINE = "Online access is disabled (Preferences > System > Network)"


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


def python_packages(context=None):
    """The preferences' Python Packages folder (absolute), or None when none is set."""
    prefs = preferences(context)
    return bpy.path.abspath(prefs.python_path) if prefs is not None and prefs.python_path else None


def install_target(context=None, create=False):
    """Where Install Dependencies installs: the Python Packages folder when one is set (a short
    folder where the extension's own is too deep for Windows' path limit), else the extension's own."""
    return python_packages(context) or user_site_packages(create=create)


def add_paths(context=None):
    """Put the extension's site-packages and the preferences' Python Packages folder on sys.path;
    a Python Packages folder that does not exist is said in the console (and in the preferences)."""
    from ..session.deps import foreign_python

    candidates = [user_site_packages()]
    packages = python_packages(context)
    if packages and not os.path.isdir(packages):
        log.warning("Diffusion Handles: the Python Packages folder %s does not exist (Preferences > Add-ons > "
                    "Diffusion Handles)", packages)
    elif packages and foreign_python(packages):  # its compiled modules would fail to load here
        log.warning("Diffusion Handles: the Python Packages folder %s holds packages built for Python %s, not "
                    "this Blender's %d.%d: left off sys.path (install them again for this Python)",
                    packages, foreign_python(packages), *sys.version_info[:2])
        packages = None
    candidates.append(packages)
    for path in candidates:
        if path and os.path.isdir(path) and path not in sys.path:
            sys.path.append(path)
    importlib.invalidate_caches()


def wheels_dir(context=None):
    """The preferences' local wheels folder (offline installs), or None."""
    prefs = preferences(context)
    return bpy.path.abspath(prefs.wheels_dir) if prefs is not None and prefs.wheels_dir else None


def install_disabled_reason(context=None):
    """Why Install Dependencies cannot run now (its poll message and the preferences' box), or None."""
    if wheels_dir(context) or bpy.app.online_access:  # local wheels need no network
        return None
    return f"{OFFLINE}: allow it, or set a local Wheels Folder"


# A photo's cache by default: beside the saved .blend (relative, so the project folder moves and
# farms share it), never in the extension's own folder (an uninstall deletes that).
BLEND_CACHE = "//{blend}_dh_cache/"


def cache_root(context, explicit=""):
    """(folder for a new photo's cache, where it moves at the first save or ''): the operator's
    folder, else the preferences', else ``BLEND_CACHE`` beside the .blend. Before the first save
    a relative (``//``) folder has nothing to be relative to: the cache waits in a temporary
    folder (session/photo.py unsaved_cache_root) and moves at the first save (blender/properties.py)."""
    from ..session.photo import unsaved_cache_root

    prefs = preferences(context)
    chosen = explicit or (prefs.cache_dir if prefs is not None and prefs.cache_dir else "")
    if chosen and not chosen.startswith("//"):
        return os.path.abspath(os.path.expanduser(chosen)), ""
    home = chosen or BLEND_CACHE
    if bpy.data.filepath:
        return blend_relative(home, bpy.data.filepath), ""
    return unsaved_cache_root(), home


def blend_relative(path, blend_path):
    """A ``//`` folder (``{blend}``: the .blend's name) made absolute against the .blend ``blend_path``."""
    name = os.path.splitext(os.path.basename(blend_path))[0]
    return os.path.normpath(bpy.path.abspath(path.replace("{blend}", name),
                                             start=os.path.dirname(os.path.abspath(blend_path))))
