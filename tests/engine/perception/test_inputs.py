"""resolve_inputs: depth, mask (or text query), background image and aligned background depth."""
from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.perception.inputs import align_background_depth, resolve_inputs


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from engine.tiny_models import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("perception-inputs"), roles=["depth", "detector", "sam"])


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((40, 56, 3)).astype(np.float32)


def _mask(shape=(40, 56)):
    mask = np.zeros(shape, bool)
    mask[10:25, 15:35] = True
    return mask


def test_from_a_bare_photo_and_a_query(models, image):
    p = resolve_inputs(image, object_query="the cat", candidate=1, models_dir=models, device="cpu")
    assert p.depth.shape == (40, 56) and p.depth.dtype == np.float32 and (p.depth > 0).all()
    assert p.mask.dtype == bool and p.mask.any() and p.chosen == 1
    np.testing.assert_array_equal(p.mask, p.candidates[1].mask)
    assert p.background_image.shape == image.shape and p.background_image.dtype == np.float32
    assert p.background_depth.shape == (40, 56) and p.background_depth.dtype == np.float32
    assert np.isfinite(p.background_depth).all() and (p.background_depth > 0).all()
    assert p.notes["depth"] == "estimated" and "aligned" in p.notes["background_depth"]


def test_given_depth_and_mask_need_no_models(image, tmp_path, monkeypatch):
    from engine.perception.removal import removal_region

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))  # no depth model anywhere
    depth = np.linspace(1, 3, 40 * 56, dtype=np.float32).reshape(40, 56)
    p = resolve_inputs(image, depth=depth, mask=_mask(), models_dir=tmp_path / "none")
    assert p.candidates == [] and p.chosen is None
    np.testing.assert_array_equal(p.depth, depth)
    assert "Laplace" in p.notes["background_depth"]
    far = ~removal_region(_mask())
    assert np.allclose(p.background_depth[far], depth[far])


def test_alignment_is_exact_up_to_global_scale():
    yy, xx = np.mgrid[0:30, 0:40]
    depth = (2.0 + 0.05 * xx + 0.02 * yy).astype(np.float32)
    region = np.zeros((30, 40), bool)
    region[8:20, 10:30] = True
    aligned = align_background_depth(depth, 3.7 * depth, region)  # right shape, wrong scale
    np.testing.assert_allclose(aligned, depth, rtol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({}, "no object"),
    ({"mask": _mask(), "object_query": "a cat"}, "not both"),
    ({"mask": _mask(), "candidate": 1}, "candidate"),
    ({"object_query": "a cat", "candidate": -1}, "candidate"),
    ({"mask": _mask(), "depth": np.zeros((40, 56))}, "zero or negative"),
    ({"mask": _mask(), "depth": np.ones((4, 4))}, "(shape|size)"),
    ({"mask": _mask(), "background_depth": "guess"}, "background depth mode"),
])
def test_bad_inputs_refused(image, kwargs, match):
    with pytest.raises(InputError, match=match):
        resolve_inputs(image, **kwargs)


def test_candidate_out_of_range(models, image):
    with pytest.raises(InputError, match="candidate 7: only"):
        resolve_inputs(image, object_query="a dog", candidate=7, models_dir=models, max_candidates=2)


def test_write_candidates(models, image, tmp_path):
    import json

    from PIL import Image

    from engine.perception.inputs import write_candidates

    p = resolve_inputs(image, object_query="a red box", models_dir=models, max_candidates=2)
    paths = write_candidates(p.candidates, tmp_path / "out", chosen=p.chosen)
    assert [x.name for x in paths] == [f"candidate_{i}.png" for i in range(len(p.candidates))] + ["candidates.json"]
    for i, c in enumerate(p.candidates):
        np.testing.assert_array_equal(np.asarray(Image.open(paths[i])) > 127, c.mask)
    rows = json.loads(paths[-1].read_text())["candidates"]
    assert rows[0]["chosen"] and rows[0]["area"] == int(p.mask.sum())
    assert not list((tmp_path / "out").glob(".*.tmp"))
