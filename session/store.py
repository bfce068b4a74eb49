"""The session store: the engine (and its models), prepared photos and what is built on them,
kept once per Blender session and freed together (no bpy).

Loading happens inside jobs (worker threads), so a lock guards the session. The per-photo prepared
cache (inversion + recorded activations) lives in the photo's cache folder, keyed by the prompt and
the settings that change what prepare computes. The options come from the add-on preferences and
the scene (blender/options.py); ``SESSION_OPTIONS`` set by code win over them.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict

_lock = threading.RLock()
# The session: the engine, prepared photos by folder, and what is built on them (session/frames.py's
# renderers and remembered frames), all dropped together by free_engine().
_session = {"key": None, "engine": None, "prepared": {}, "renderers": {}, "frames": OrderedDict()}
# Options set by code (batch.py, tests) that win over the preferences: models_dir, overrides, device,
# dtype, frame_batch_size, backbone.
SESSION_OPTIONS: dict = {}


def get_engine(options, settings):
    """The session's engine for these options (loaded on first use; models stay loaded)."""
    from ..engine.pipeline import Engine

    from ..engine.settings import RuntimeOptions

    runtime = RuntimeOptions(device=options["device"], dtype=options["dtype"],
                             frame_batch_size=options.get("frame_batch_size") or RuntimeOptions.frame_batch_size)
    backbone = options.get("backbone")
    key = (options["models_dir"], tuple(sorted(options["overrides"].items())), runtime, backbone)
    with _lock:
        if _session["engine"] is None or _session["key"] != key:
            free_engine()
            _session["engine"] = Engine(models_dir=options["models_dir"],
                                        model_overrides=options["overrides"] or None, settings=settings,
                                        runtime=runtime, backbone=backbone)
            _session["key"] = key
        return _session["engine"]  # each call passes its photo's settings; the engine never changes


def prepared_dir(cache_dir, prompt, settings):
    """Folder of the prepared cache for a photo, prompt and prepare-relevant settings."""
    key = json.dumps({"prompt": prompt, **settings.prepare_dict()}, sort_keys=True)
    return os.path.join(cache_dir, f"prepared-{hashlib.sha1(key.encode()).hexdigest()[:12]}")


def get_prepared(engine, photo, prompt, settings, cache_dir, progress=None, should_cancel=None):
    """The prepared state of ``photo`` (`engine.inputs.PhotoInputs`) with ``prompt``: from memory,
    else the engine loads its cache folder when it matches the inputs, or prepares (inverts)
    and saves it there."""
    directory = prepared_dir(cache_dir, prompt, settings)
    with _lock:
        if directory in _session["prepared"]:
            return _session["prepared"][directory], directory
    prepared = engine.prepare(**photo.prepare_arguments(prompt), cache_dir=directory,
                              progress=progress, should_cancel=should_cancel, settings=settings)
    with _lock:
        _session["prepared"][directory] = prepared
    return prepared, directory


def session_store(name):
    """A dict of the session that free_engine() empties ("prepared", "renderers", "frames"); guard with
    session_lock."""
    return _session[name]


session_lock = _lock


def free_engine():
    with _lock:
        engine, _session["engine"], _session["key"] = _session["engine"], None, None
        for name in ("prepared", "renderers", "frames"):
            _session[name].clear()
    if engine is not None and hasattr(engine, "free"):
        engine.free()
    try:
        from ..engine.perception.common import clear_cache

        clear_cache()
    except ImportError:
        pass
    import gc

    gc.collect()


def engine_loaded():
    return _session["engine"] is not None
