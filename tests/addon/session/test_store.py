"""session/store.py: the session's engine is made once per set of options and kept; prepared
photos are remembered by folder; free_engine drops everything built on the engine."""
import sys
from pathlib import Path

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
