"""session/models.py: the session's engine is made once per set of options and kept; prepared
photos are remembered by folder; free_engine drops everything built on the engine."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from dh_synthetic import addon_module  # noqa: E402


@pytest.fixture
def models(addon):
    module = addon_module("session.models")
    module.free_engine()
    yield module
    module.free_engine()


def _options(**changes):
    return {"models_dir": None, "overrides": {}, "device": "cpu", "dtype": "auto", **changes}


def test_engine_is_kept_per_options_and_freed(models, tmp_path):
    settings = addon_module("engine.settings").EditSettings()
    engine = models.get_engine(_options(), settings)  # the engine loads its models lazily
    assert type(engine).__name__ == "Engine" and models.engine_loaded()
    assert models.get_engine(_options(), settings) is engine  # same options: the same engine
    assert engine.runtime.device == "cpu" and engine.models_dir is None
    with models.session_lock:
        models.session_store("renderers")["k"] = "a renderer"
        models.session_store("frames")["k"] = "a frame"
    other = models.get_engine(_options(models_dir=str(tmp_path), frame_batch_size=3), settings)
    assert other is not engine and other.models_dir == str(tmp_path) and other.runtime.frame_batch_size == 3
    # another engine: what was built on the first one is gone
    assert models.session_store("renderers") == {} and len(models.session_store("frames")) == 0
    models.free_engine()
    assert not models.engine_loaded()


def test_prepared_photos_are_remembered_by_folder(models, tmp_path):
    settings = addon_module("engine.settings").EditSettings
    default, fast = settings.preset("default"), settings.preset("fast")
    folder = models.prepared_dir(str(tmp_path), "a box", default)
    assert folder == models.prepared_dir(str(tmp_path), "a box", default)  # deterministic
    assert Path(folder).parent == tmp_path and Path(folder).name.startswith("prepared-")
    assert models.prepared_dir(str(tmp_path), "a red box", default) != folder  # the prompt counts
    assert models.prepared_dir(str(tmp_path), "a box", fast) != folder  # so does the schedule
    prepared = object()
    with models.session_lock:
        models._session["prepared"][folder] = prepared
    # in memory: no engine is asked (None would fail if it were)
    assert models.get_prepared(None, None, "a box", default, str(tmp_path)) == (prepared, folder)
    models.free_engine()
    with pytest.raises(AttributeError):
        models.get_prepared(None, None, "a box", default, str(tmp_path))  # forgotten: it would prepare
