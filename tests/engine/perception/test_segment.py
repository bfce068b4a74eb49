"""SAM through segment-anything: masks from points and boxes; only plain state dicts are loaded."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.perception.segment import UnsafeCheckpointError, load_sam, mask_from_prompt, masks_from_boxes


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from engine.tiny_models import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("perception-sam"), roles=["sam"])


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((48, 80, 3)).astype(np.float32)


def test_mask_from_point_and_box(models, image):
    for kwargs in ({"point": (40, 20)}, {"point": [(40, 20), (10, 5)]}, {"box": (10, 8, 60, 40)},
                   {"point": (30, 30), "box": (10, 8, 60, 40)}):
        mask = mask_from_prompt(image, models_dir=models, **kwargs)
        assert mask.shape == (48, 80) and mask.dtype == bool and mask.any()


def test_masks_from_boxes(models, image):
    out = masks_from_boxes(image, [(0, 0, 40, 30), (30, 10, 79, 47)], models_dir=models)
    assert len(out) == 2
    for mask, score in out:
        assert mask.shape == (48, 80) and mask.dtype == bool and isinstance(score, float)


@pytest.mark.parametrize("kwargs, match", [
    ({}, "point or a box"),
    ({"point": (80, 10)}, "outside"),
    ({"point": (1, 2, 3)}, "point"),
    ({"box": (10, 10, 5, 20)}, "empty"),
    ({"box": (100, 100, 120, 130)}, "outside"),
    ({"point": (5, 5), "point_labels": [2]}, "point_labels"),
])
def test_bad_prompts_refused(models, image, kwargs, match):
    with pytest.raises(InputError, match=match):
        mask_from_prompt(image, models_dir=models, **kwargs)


def _copy_with_checkpoint(models, tmp_path, obj):
    target = tmp_path / "sam"
    shutil.copytree(models / "sam", target)
    name = json.loads((target / "sam_config.json").read_text())["checkpoint"]
    torch.save(obj, target / name)
    return target


def test_pickled_module_refused(models, tmp_path):
    sam = load_sam(models_dir=models)
    target = _copy_with_checkpoint(models, tmp_path, sam)  # a whole pickled nn.Module
    with pytest.raises(UnsafeCheckpointError, match="not a plain state dict"):
        load_sam(overrides={"sam": str(target)})


def test_dict_with_non_tensors_refused(models, tmp_path):
    state = dict(load_sam(models_dir=models).state_dict())
    state["note"] = "hello"
    state["epoch"] = 3
    target = _copy_with_checkpoint(models, tmp_path, state)
    with pytest.raises(UnsafeCheckpointError, match="not tensors"):
        load_sam(overrides={"sam": str(target)})


def test_checkpoint_file_override_and_safetensors(models, tmp_path):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in load_sam(models_dir=models).state_dict().items()}
    target = tmp_path / "st"
    target.mkdir()
    save_file(state, str(target / "sam_tiny.safetensors"))
    config = json.loads((models / "sam" / "sam_config.json").read_text())
    config["checkpoint"] = "sam_tiny.safetensors"
    (target / "sam_config.json").write_text(json.dumps(config))
    sam = load_sam(overrides={"sam": str(target)})
    for key, value in sam.state_dict().items():
        assert torch.equal(value, state[key])
    # a bare checkpoint file without a config is not a ViT-B/L/H: clear message
    with pytest.raises(Exception, match="ViT-B/L/H"):
        load_sam(overrides={"sam": str(models / "sam" / "sam_tiny.pth")})
