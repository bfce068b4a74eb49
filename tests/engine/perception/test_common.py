"""engine.perception.common: the process cache, model overrides, loading a role once, dilation, checks."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import InputError, ModelNotFoundError, model_load_errors
from engine.perception import common
from engine.perception.common import (cached, check_depth, check_image, check_mask, clear_cache, dilate,
                                      load_role, role_override)


@pytest.fixture(autouse=True)
def _empty_cache():
    clear_cache()
    yield
    clear_cache()


# --- the process cache --------------------------------------------------------------------------


def test_cached_builds_once_per_key_and_clear_cache_forgets():
    calls = []

    def build():
        calls.append(1)
        return object()

    a = cached(("k", 1), build)
    assert cached(("k", 1), build) is a
    assert len(calls) == 1
    b = cached(("k", 2), build)
    assert b is not a and len(calls) == 2
    clear_cache()
    c = cached(("k", 1), build)
    assert c is not a and len(calls) == 3


def test_a_failed_build_is_not_cached():
    def fail():
        raise OSError("broken")

    with pytest.raises(OSError):
        cached(("bad",), fail)
    assert cached(("bad",), lambda: "ok") == "ok"


# --- model overrides ----------------------------------------------------------------------------


def test_role_override(tmp_path):
    assert role_override(None, "depth") is None
    assert role_override({}, "depth") is None
    assert role_override({"sam": "x"}, "depth") is None
    assert role_override({"depth": None}, "depth") is None
    assert role_override({"depth": ""}, "depth") is None
    assert role_override({"depth": tmp_path}, "depth") == str(tmp_path)
    assert role_override({"depth": "org/name@rev"}, "depth") == "org/name@rev"
    from types import MappingProxyType

    assert role_override(MappingProxyType({"depth": "a/b"}), "depth") == "a/b"  # any mapping


@pytest.mark.parametrize("bad", [["depth", "x"], ("depth",), "depth=x", 3])
def test_role_override_refuses_a_non_mapping(bad):
    with pytest.raises(InputError, match="mapping"):
        role_override(bad, "depth")


# --- load_role on the tiny depth model ------------------------------------------------------------


def _build_depth(calls):
    """What engine.perception.depth gives load_role: the libraries' own from_pretrained."""

    def build(path, dev):
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        calls.append((Path(path), dev))
        processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        model = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True, use_safetensors=True)
        return model.to(dev).eval(), processor

    return build


def _copy_depth(tiny_models_dir, tmp_path, name="depth-copy") -> Path:
    dst = tmp_path / name
    shutil.copytree(tiny_models_dir / "depth", dst)
    return dst


def test_load_role_loads_once_per_role_path_and_device(tiny_models_dir, tmp_path):
    calls = []
    build = _build_depth(calls)
    (model, processor), dev = load_role("depth", None, tiny_models_dir, "cpu", "depth model", build)
    assert dev == torch.device("cpu")
    assert type(model).__name__ == "ZoeDepthForDepthEstimation" and not model.training
    assert calls == [(tiny_models_dir / "depth", torch.device("cpu"))]
    # the same role, folder and device (given as a string or a torch.device): the same objects
    again, _ = load_role("depth", None, tiny_models_dir, torch.device("cpu"), "depth model", build)
    assert again[0] is model and again[1] is processor
    via_override, _ = load_role("depth", str(tiny_models_dir / "depth"), None, "cpu", "depth model", build)
    assert via_override[0] is model and len(calls) == 1
    # another folder holding the same model: loaded again
    other, _ = load_role("depth", _copy_depth(tiny_models_dir, tmp_path), None, "cpu", "depth model", build)
    assert other[0] is not model and len(calls) == 2
    # another role reading the same folder: its own entry
    load_role("depth-anything", str(tiny_models_dir / "depth"), None, "cpu", "depth model", build)
    assert len(calls) == 3
    clear_cache()
    fresh, _ = load_role("depth", None, tiny_models_dir, "cpu", "depth model", build)
    assert fresh[0] is not model and len(calls) == 4


def _no_config(p):
    (p / "config.json").unlink()


def _bad_json(p):
    (p / "config.json").write_text("{not json", encoding="utf-8")


def _unknown_model_type(p):
    config = json.loads((p / "config.json").read_text(encoding="utf-8"))
    (p / "config.json").write_text(json.dumps(dict(config, model_type="no-such-model")), encoding="utf-8")


def _no_weights(p):
    (p / "model.safetensors").unlink()


def _truncated_weights(p):
    data = (p / "model.safetensors").read_bytes()
    (p / "model.safetensors").write_bytes(data[:1000])


@pytest.mark.parametrize("breakage", [
    _no_config, _bad_json, _unknown_model_type, _no_weights,
    _truncated_weights,  # safetensors' own SafetensorError (it escaped load_role before)
])
def test_a_folder_from_pretrained_cannot_load_is_one_model_not_found_error(tiny_models_dir, tmp_path, breakage):
    broken = _copy_depth(tiny_models_dir, tmp_path, "broken-depth")
    breakage(broken)
    calls = []
    with pytest.raises(ModelNotFoundError) as info:
        load_role("depth", str(broken), None, "cpu", "depth model", _build_depth(calls))
    message = str(info.value)
    assert message.startswith(f"depth model in {broken} could not be loaded")
    assert "\n" not in message
    assert isinstance(info.value.__cause__, model_load_errors())
    assert len(calls) == 1
    # nothing broken was cached: the next call tries again
    with pytest.raises(ModelNotFoundError):
        load_role("depth", str(broken), None, "cpu", "depth model", _build_depth(calls))
    assert len(calls) == 2


def test_a_pickle_folder_is_refused_before_build(tiny_models_dir, tmp_path):
    pickled = _copy_depth(tiny_models_dir, tmp_path, "pickled-depth")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    calls = []
    with pytest.raises(ModelNotFoundError, match="pickle"):
        load_role("depth", str(pickled), None, "cpu", "depth model", _build_depth(calls))
    assert calls == []


def test_a_missing_model_is_refused_before_build(tmp_path):
    calls = []
    with pytest.raises(ModelNotFoundError):
        load_role("depth", str(tmp_path / "nowhere"), None, "cpu", "depth model", _build_depth(calls))
    assert calls == []


def test_a_build_error_that_is_not_about_the_folder_is_not_disguised(tiny_models_dir):
    bug = RuntimeError("a bug in the caller")

    def build(path, dev):
        raise bug

    with pytest.raises(RuntimeError) as info:
        load_role("depth", None, tiny_models_dir, "cpu", "depth model", build)
    assert info.value is bug  # the caller's own exception, not a ModelNotFoundError or a rewording


# --- dilate ---------------------------------------------------------------------------------------


def test_dilate_is_the_euclidean_disc():
    mask = np.zeros((21, 21), bool)
    mask[10, 10] = True
    yy, xx = np.mgrid[0:21, 0:21]
    for r in (1, 2, 5):
        out = dilate(mask, r)
        assert out.dtype == bool
        assert np.array_equal(out, (yy - 10) ** 2 + (xx - 10) ** 2 <= r * r)


def test_dilate_by_zero_is_a_copy_and_keeps_the_mask():
    mask = np.zeros((5, 6), bool)
    mask[1:3, 2:4] = True
    out = dilate(mask, 0)
    assert np.array_equal(out, mask) and out is not mask
    out[0, 0] = True
    assert not mask[0, 0]
    assert np.array_equal(dilate(mask, -3), mask)


def test_dilate_covers_the_mask_and_reaches_the_border():
    mask = np.zeros((8, 10), bool)
    mask[0, 0] = True
    mask[5:7, 6:9] = True
    out = dilate(mask, 2)
    assert (out >= mask).all()
    assert out[2, 0] and out[0, 2] and not out[2, 2]  # sqrt(8) > 2
    assert out[7, 9] and not out[2, 7]


def test_dilate_of_an_empty_mask_is_empty():
    # distance_transform_edt of an all-ones array has no background to measure to (it returned
    # a corner of True pixels before the empty case was handled)
    assert not dilate(np.zeros((4, 4), bool), 3).any()


# --- input checks and conversions -------------------------------------------------------------------


def test_check_image_converts_uint8_and_refuses_bad_shapes():
    img = np.full((4, 5, 3), 255, np.uint8)
    out = check_image(img)
    assert out.dtype == np.float32 and out.shape == (4, 5, 3) and np.allclose(out, 1.0)
    with pytest.raises(InputError, match="photo"):
        check_image(np.zeros((4, 5)), "photo")


def test_check_mask_and_depth_refuse_another_size():
    mask = check_mask(np.eye(4, 5), (4, 5))
    assert mask.dtype == bool and np.array_equal(mask, np.eye(4, 5, dtype=bool))
    with pytest.raises(InputError, match="object mask"):
        check_mask(np.ones((4, 6), bool), (4, 5), "object mask")
    depth = check_depth(np.full((4, 5), 2.0, np.float64), (4, 5))
    assert depth.dtype == np.float32
    with pytest.raises(InputError):
        check_depth(np.full((3, 5), 2.0), (4, 5))
    with pytest.raises(InputError):
        check_depth(np.full((4, 5), np.nan), (4, 5))


def test_module_cache_is_the_one_load_role_uses(tiny_models_dir):
    calls = []
    load_role("depth", None, tiny_models_dir, "cpu", "depth model", _build_depth(calls))
    assert ("depth", str(tiny_models_dir / "depth"), "cpu") in common._LOADED
