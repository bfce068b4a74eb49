"""engine.inputs: the one input boundary (files -> checked PhotoInputs, no model)."""
from __future__ import annotations

import numpy as np
import pytest

from engine import io
from engine.errors import InputError
from engine.inputs import check_visible, load_photo


@pytest.fixture
def files(tmp_path):
    yy, xx = np.mgrid[0:30, 0:40] / 30.0
    image = np.stack([xx / 1.4, yy, 0.3 + 0 * xx], -1).astype(np.float32)
    depth = (3.0 - yy).astype(np.float32)
    a = np.zeros((30, 40), bool)
    a[5:12, 5:12] = True
    b = np.zeros((30, 40), bool)
    b[15:25, 20:32] = True
    depth[a | b] = 1.5
    io.save_image(tmp_path / "image.png", image)
    np.save(tmp_path / "depth.npy", depth)
    io.save_mask(tmp_path / "a.png", a)
    io.save_mask(tmp_path / "b.png", b)
    return tmp_path


def test_one_and_several_masks(files):
    one = load_photo(files / "image.png", "a box", depth=files / "depth.npy", mask=files / "a.png")
    assert one.mask.shape == (30, 40) and one.complete_without_models and one.paths["mask"].endswith("a.png")
    two = load_photo(files / "image.png", "boxes", depth=files / "depth.npy", mask=[files / "a.png", files / "b.png"])
    assert two.mask.shape == (2, 30, 40) and two.union_mask.sum() == one.mask.sum() + 120


@pytest.mark.parametrize("kwargs, fragment", [
    ({"mask": "a.png", "object_query": "the box"}, "not both"),
    ({}, "--mask or --object"),
    ({"mask": "a.png", "candidate": 1}, "only meaningful"),
    ({"object_query": "the box", "candidate": [0, 1]}, "given 2 times"),
    ({"object_query": "the box", "candidate": True}, "candidate number"),
    ({"mask": "a.png", "prompt": "caf\udce9"}, "UTF-8"),
])
def test_refusals(files, kwargs, fragment):
    kwargs = {k: files / v if k == "mask" else v for k, v in kwargs.items()}
    prompt = kwargs.pop("prompt", "a box")
    with pytest.raises(InputError, match=fragment):
        load_photo(files / "image.png", prompt, depth=files / "depth.npy", **kwargs)


def test_check_visible(files):
    photo = load_photo(files / "image.png", "a box", depth=files / "depth.npy", mask=files / "a.png")
    behind = np.eye(4)
    behind[2, 3] = 5.0
    assert check_visible(photo, [np.eye(4)]) == []
    assert check_visible(photo, [np.eye(4), behind]) == [2]  # that frame renders without the object
    with pytest.raises(InputError, match="every one"):
        check_visible(photo, [behind])
