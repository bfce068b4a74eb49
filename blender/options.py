"""The engine's options from Blender: the add-on preferences and the scene (models folder,
per-role overrides, device, precision), a photo's EditSettings from its properties (Object.dh), and
the diffusion weights' status for the interface."""
from __future__ import annotations

import bpy

from ..session.store import SESSION_OPTIONS
from .addon import preferences

ROLES = ("diffusion", "depth", "detector", "sam", "inpaint")  # engine.registry role names


def engine_options(context=None, scene=None):
    """Models folder, per-role overrides, device and precision from the add-on preferences; a
    scene's own models folder (saved in the .blend, e.g. for a farm) wins over the preferences'."""
    prefs = preferences(context)
    options = {"models_dir": None, "overrides": {}, "device": "auto", "dtype": "auto"}
    if prefs is not None:
        options.update(
            models_dir=bpy.path.abspath(prefs.models_dir) if prefs.models_dir else None,
            overrides={role: getattr(prefs, f"{role}_model").strip() for role in ROLES
                       if getattr(prefs, f"{role}_model", "").strip()},
            device=prefs.device.lower(), dtype=prefs.precision.lower(),
            backbone=getattr(prefs, "backbone", "sd2-depth"))
        if getattr(prefs, "model_file", "").strip():  # the diffusion role's checkpoint file wins over its id
            options["overrides"]["diffusion"] = bpy.path.abspath(prefs.model_file.strip())
    scene_props = getattr(scene, "dh", None)
    if scene_props is not None and scene_props.models_dir:
        options["models_dir"] = bpy.path.abspath(scene_props.models_dir)
    if scene_props is not None and getattr(scene_props, "backbone", "PREFERENCES") != "PREFERENCES":
        options["backbone"] = scene_props.backbone  # the .blend's own model family wins (farms)
    options.update({k: v for k, v in SESSION_OPTIONS.items() if v is not None})
    return options


_status_cache = {}


def weights_status(context=None):
    """(found, text) for the diffusion weights with the current options, for the interface
    (looked up at most every few seconds: panels redraw often)."""
    import time

    options = engine_options(context, getattr(context, "scene", None))
    key = (options["models_dir"], options["overrides"].get("diffusion"), options.get("backbone"))
    cached = _status_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < 5.0:
        return cached[1]
    try:
        from ..engine import registry

        from ..engine.diffusion.backbones import get as backbone

        roles = backbone(key[2]).roles  # SD2-depth's diffusion role, or a base and its ControlNet
        file = registry.single_file_source("diffusion", key[1], key[0]) if roles == ("diffusion",) else None
        where = file or ", ".join(str(registry.resolve(r, key[1] if r == "diffusion" else None, models_dir=key[0]))
                                  for r in roles)
        status = (True, f"Diffusion weights: {where}")
    except ImportError as exc:
        status = (False, f"Diffusion weights: cannot look (missing {exc.name or exc})")
    except Exception as exc:  # noqa: BLE001 - not found, in any way: say so
        status = (False, f"Diffusion weights not found ({str(exc).split(';')[0]}): Download Models")
    _status_cache.clear()
    _status_cache[key] = (time.monotonic(), status)
    return status


def model_sources(context=None):
    """(text, in use) per source of the diffusion role for the preferences, looked up with the
    weights' status (at most every few seconds)."""
    import time

    options = engine_options(context, getattr(context, "scene", None))
    key = ("sources", options["models_dir"], options["overrides"].get("diffusion"))
    cached = _sources_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < 5.0:
        return cached[1]
    try:
        from ..engine.registry import single_file_source, source_status

        file = single_file_source("diffusion", options["overrides"].get("diffusion"), options["models_dir"])
        # a checkpoint file is converted on first use, not while drawing: only the Hub sources here
        used, rows = source_status("diffusion", options["models_dir"]) if not file else (None, source_status("diffusion")[1])
        lines = [(f"Source {n}: {r['id']} ({'in the cache, ' + r['cached'][:10] if r['cached'] else 'not in the cache'})"
                  + ("  in use" if r["in_use"] else ""), r["in_use"]) for n, r in enumerate(rows, 1)]
        if file:
            lines.append((f"In use: {file}", True))
        elif used is not None and used.kind != "hub":
            lines.append((f"In use: {used.source}", True))
    except ImportError:
        lines = []
    _sources_cache.clear()
    _sources_cache[key] = (time.monotonic(), lines)
    return lines


_sources_cache = {}


def forget_weights_status():
    """Look again on the next redraw (e.g. after a download)."""
    _status_cache.clear()
    _sources_cache.clear()


def edit_settings(props, options=None):
    """The engine's EditSettings from a photo's properties (Object.dh): its quality preset with the
    photo's own choices on top (``options``, the runtime ones, do not enter the settings)."""
    from ..engine.checks import settings_from

    changes = {"resolution": props.resolution or None, "seed": props.seed, "fg_weight": props.fg_weight,
               "bg_weight": props.bg_weight}
    if props.inversion != "PRESET":
        changes["inversion"] = props.inversion
    if props.steps:
        changes["steps"] = props.steps
    return settings_from(props.quality, changes)  # the rule of the command line and batch.py
