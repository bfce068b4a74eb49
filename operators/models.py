"""The engine and its models, loaded once per Blender session and freeable; model downloads.

Loading happens inside jobs (worker threads), so a lock guards the session. The per-photo prepared
cache (inversion + recorded activations) lives in the photo's cache folder, keyed by the prompt and
the settings that change what prepare computes.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict

import bpy

from .deps import OnlineOnly, preferences
from .errors import AddonError, user_message
from .jobs import JobOperator

ROLES = ("diffusion", "depth", "detector", "sam", "inpaint")  # engine.registry role names

_lock = threading.RLock()
# The session: the engine, prepared photos by folder, and what is built on them (frames.py's
# renderers and remembered frames), all dropped together by free_engine().
_session = {"key": None, "engine": None, "prepared": {}, "renderers": {}, "frames": OrderedDict()}
# Options set by code (batch.py, tests) that win over the preferences: models_dir, overrides, device,
# dtype, frame_batch_size.
SESSION_OPTIONS: dict = {}


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
            device=prefs.device.lower(), dtype=prefs.precision.lower())
    scene_props = getattr(scene, "dh", None)
    if scene_props is not None and scene_props.models_dir:
        options["models_dir"] = bpy.path.abspath(scene_props.models_dir)
    options.update({k: v for k, v in SESSION_OPTIONS.items() if v is not None})
    return options


_status_cache = {}


def weights_status(context=None):
    """(found, text) for the diffusion weights with the current options, for the interface
    (looked up at most every few seconds: panels redraw often)."""
    import time

    options = engine_options(context, getattr(context, "scene", None))
    key = (options["models_dir"], options["overrides"].get("diffusion"))
    cached = _status_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < 5.0:
        return cached[1]
    try:
        from ..engine import registry

        where = registry.resolve("diffusion", key[1], models_dir=key[0])
        status = (True, f"Diffusion weights: {where}")
    except ImportError as exc:
        status = (False, f"Diffusion weights: cannot look (missing {exc.name or exc})")
    except Exception as exc:  # noqa: BLE001 - not found, in any way: say so
        status = (False, f"Diffusion weights not found ({str(exc).split(';')[0]}): Download Models")
    _status_cache.clear()
    _status_cache[key] = (time.monotonic(), status)
    return status


def edit_settings(props, options=None):
    """The engine's EditSettings from a photo's properties (Object.dh): its quality preset with the
    photo's own choices on top (``options``, the runtime ones, do not enter the settings)."""
    from ..engine.settings import EditSettings

    s = EditSettings.preset(props.quality, resolution=props.resolution or None, seed=props.seed,
                            fg_weight=props.fg_weight, bg_weight=props.bg_weight)
    if props.inversion != "PRESET":
        s = s.replace(inversion=props.inversion)
    return s.with_steps(props.steps) if props.steps else s


def get_engine(options, settings):
    """The session's engine for these options (loaded on first use; models stay loaded)."""
    from ..engine.pipeline import Engine

    from ..engine.settings import RuntimeOptions

    runtime = RuntimeOptions(device=options["device"], dtype=options["dtype"],
                             frame_batch_size=options.get("frame_batch_size") or RuntimeOptions.frame_batch_size)
    key = (options["models_dir"], tuple(sorted(options["overrides"].items())), runtime)
    with _lock:
        if _session["engine"] is None or _session["key"] != key:
            free_engine()
            _session["engine"] = Engine(models_dir=options["models_dir"],
                                        model_overrides=options["overrides"] or None, settings=settings,
                                        runtime=runtime)
            _session["key"] = key
        return _session["engine"]  # each call passes its photo's settings; the engine never changes


def prepared_dir(cache_dir, prompt, settings):
    """Folder of the prepared cache for a photo, prompt and prepare-relevant settings."""
    key = json.dumps({"prompt": prompt, **settings.prepare_dict()}, sort_keys=True)
    return os.path.join(cache_dir, f"prepared-{hashlib.sha1(key.encode()).hexdigest()[:12]}")


def get_prepared(engine, inputs, prompt, settings, cache_dir, progress=None, should_cancel=None):
    """The photo's prepared state: from memory, else the engine loads its cache folder when it
    matches the inputs, or prepares (inverts) and saves it there."""
    directory = prepared_dir(cache_dir, prompt, settings)
    with _lock:
        if directory in _session["prepared"]:
            return _session["prepared"][directory], directory
    prepared = engine.prepare(inputs.image, prompt, inputs.depth, inputs.masks,
                              background_depth=inputs.background_depth, cache_dir=directory,
                              progress=progress, should_cancel=should_cancel, settings=settings)
    with _lock:
        _session["prepared"][directory] = prepared
    return prepared, directory


def session_store(name):
    """A dict of the session that free_engine() empties ("renderers", "frames"); guard with session_lock."""
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


class DH_OT_free_memory(bpy.types.Operator):
    """Unload the diffusion and perception models and prepared photos from memory"""

    bl_idname = "dh.free_memory"
    bl_label = "Free Memory"
    bl_options = {"REGISTER"}

    def execute(self, context):
        from .jobs import current_job

        if current_job() is not None:
            self.report({"ERROR"}, "a job is running: cancel it first")
            return {"CANCELLED"}
        free_engine()
        self.report({"INFO"}, "Diffusion Handles models unloaded")
        return {"FINISHED"}


def download_plan(overrides):
    """(role to fetch, Hugging Face id or None for the role's default) for each role of the default
    pipeline: a local-folder override needs nothing, an alias role (``sam-vit-h``) is fetched as itself."""
    from ..engine import registry

    plan = []
    for role, spec in registry.REGISTRY.items():
        if spec.use != "default":
            continue
        override = overrides.get(role)
        if override and os.path.isdir(override):
            continue
        if override in registry.REGISTRY:
            plan.append((override, None))
        else:
            plan.append((role, override or None))
    return plan


def progress_tqdm(progress, should_cancel, label):
    """A tqdm class for registry.download that reports bytes to a job's progress and stops the
    download when the job is cancelled (files already finished stay in the cache)."""
    from tqdm.auto import tqdm

    from ..engine.errors import CancelledError

    class JobTqdm(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = False
            kwargs.setdefault("file", _Null())
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if should_cancel():
                raise CancelledError("download cancelled; finished files stay in the cache, run it again for the rest")
            result = super().update(n)
            if self.unit == "B" and self.total:
                progress(f"{label}: {self.format_sizeof(self.n)}B of {self.format_sizeof(self.total)}B",
                         min(self.n, self.total), self.total)
            return result

    return JobTqdm


class _Null:
    def write(self, text):
        pass

    def flush(self):
        pass


class DH_OT_download_models(OnlineOnly, JobOperator, bpy.types.Operator):
    """Download the default pipeline's models into the Hugging Face cache (several GB; needs online access)"""

    bl_idname = "dh.download_models"
    bl_label = "Download Models"
    bl_options = {"REGISTER"}

    def start(self, context):
        from .deps import require

        try:
            require(("huggingface_hub",))
            plan = download_plan(engine_options(context)["overrides"])
        except (AddonError, ImportError) as exc:
            self.report({"ERROR"}, user_message(exc))
            return None

        def work(progress, should_cancel):
            from ..engine import registry
            from ..engine.errors import CancelledError

            done = []
            for index, (role, override) in enumerate(plan):
                if should_cancel():
                    raise CancelledError("download cancelled; finished files stay in the cache, run it again for the rest")
                label = f"{role} ({index + 1}/{len(plan)})"
                progress(label, 0, 1)
                try:
                    registry.download(role, override, tqdm_class=progress_tqdm(progress, should_cancel, label))
                except Exception as exc:
                    if isinstance(exc.__cause__, CancelledError):  # registry.download wraps every error
                        raise exc.__cause__ from None
                    raise
                done.append(role)
            return done

        return work

    def finish(self, context, roles):
        _status_cache.clear()
        self.report({"INFO"}, f"models downloaded: {', '.join(roles) or 'none needed (local folders)'}")
        return {"FINISHED"}


CLASSES = (DH_OT_free_memory, DH_OT_download_models)
