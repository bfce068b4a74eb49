"""session/store.py: the session's engine is made once per set of options and kept; prepared
photos are remembered by folder; free_engine drops everything built on the engine."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from dh_synthetic import addon_module  # noqa: E402


@pytest.fixture
def store(addon):
    module = addon_module("session.store")
    module.free_engine()
    yield module
    module.free_engine()


def _options(**changes):
    return {"models_dir": None, "overrides": {}, "device": "cpu", "dtype": "auto", **changes}


def test_engine_is_kept_per_options_and_freed(store, tmp_path):
    settings = addon_module("engine.settings").EditSettings()
    engine = store.get_engine(_options(), settings)  # the engine loads its models lazily
    assert type(engine).__name__ == "Engine" and store.engine_loaded()
    assert store.get_engine(_options(), settings) is engine  # same options: the same engine
    assert engine.runtime.device == "cpu" and engine.models_dir is None
    with store.session_lock:
        store.session_store("renderers")["k"] = "a renderer"
        store.session_store("frames")["k"] = "a frame"
    other = store.get_engine(_options(models_dir=str(tmp_path), frame_batch_size=3), settings)
    assert other is not engine and other.models_dir == str(tmp_path) and other.runtime.frame_batch_size == 3
    # another engine: what was built on the first one is gone
    assert store.session_store("renderers") == {} and len(store.session_store("frames")) == 0
    store.free_engine()
    assert not store.engine_loaded()


def test_prepared_photos_are_remembered_by_folder(store, tmp_path):
    settings = addon_module("engine.settings").EditSettings
    default, fast = settings.preset("default"), settings.preset("fast")
    folder = store.prepared_dir(str(tmp_path), "a box", default)
    assert folder == store.prepared_dir(str(tmp_path), "a box", default)  # deterministic
    assert Path(folder).parent == tmp_path and Path(folder).name.startswith("prepared-")
    assert store.prepared_dir(str(tmp_path), "a red box", default) != folder  # the prompt counts
    assert store.prepared_dir(str(tmp_path), "a box", fast) != folder  # so does the schedule
    prepared = object()
    with store.session_lock:
        store._session["prepared"][folder] = prepared
    # in memory: no engine is asked (None would fail if it were)
    assert store.get_prepared(None, None, "a box", default, str(tmp_path)) == (prepared, folder)
    store.free_engine()
    with pytest.raises(AttributeError):
        store.get_prepared(None, None, "a box", default, str(tmp_path))  # forgotten: it would prepare


def test_a_photo_is_prepared_from_its_own_arrays_with_the_renders_prompt(store, tmp_path):
    """get_prepared hands the engine the photo's image, depth, every object's mask and its
    background depth as they are, with the prompt of the render (the photo's own is empty)."""
    PhotoInputs = addon_module("engine.inputs").PhotoInputs
    masks = np.zeros((2, 6, 8), bool)
    masks[0, 1:3, 1:3] = masks[1, 3:5, 4:7] = True
    photo = PhotoInputs(image=np.full((6, 8, 3), 0.5, np.float32), prompt="", depth=np.full((6, 8), 2.0, np.float32),
                        mask=masks, background_depth=np.full((6, 8), 3.0, np.float32))
    calls = []

    class Engine:
        def prepare(self, image, prompt, depth, object_mask, background_depth=None, **kwargs):
            calls.append((image, prompt, depth, object_mask, background_depth, kwargs["cache_dir"]))
            return "prepared"

    settings = addon_module("engine.settings").EditSettings()
    prepared, folder = store.get_prepared(Engine(), photo, "two boxes", settings, str(tmp_path))
    assert prepared == "prepared" and len(calls) == 1
    image, prompt, depth, mask, background_depth, cache_dir = calls[0]
    assert image is photo.image and depth is photo.depth and mask is photo.mask
    assert background_depth is photo.background_depth
    assert prompt == "two boxes" and cache_dir == folder == store.prepared_dir(str(tmp_path), "two boxes", settings)
    assert store.get_prepared(Engine(), photo, "two boxes", settings, str(tmp_path)) == ("prepared", folder)
    assert len(calls) == 1  # remembered
