"""Depth estimation with tiny random-weight models loaded from disk through the registry."""
from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError, ModelNotFoundError
from engine.perception.depth import estimate_depth


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from engine.tiny_models import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("perception-depth"), roles=["depth", "depth-anything"])


@pytest.mark.parametrize("role", ["depth", "depth-anything"])
@pytest.mark.parametrize("shape", [(48, 80), (70, 36), (33, 57)])
def test_metric_depth_at_input_size(models, role, shape):
    image = np.random.default_rng(0).random((*shape, 3)).astype(np.float32)
    depth = estimate_depth(image, models_dir=models, role=role, device="cpu")
    assert depth.shape == shape and depth.dtype == np.float32
    assert np.isfinite(depth).all() and (depth > 0).all()


def test_uint8_image_and_role_override(models):
    image = (np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8)
    a = estimate_depth(image, model_dir="depth-anything", models_dir=models)
    b = estimate_depth(image.astype(np.float32) / 255, models_dir=models, role="depth-anything")
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_relative_depth_model_refused(tmp_path):
    from transformers import DepthAnythingConfig

    from engine.perception.tiny import write_tiny_depth_anything

    write_tiny_depth_anything(tmp_path / "rel")
    config = DepthAnythingConfig.from_pretrained(tmp_path / "rel")
    config.depth_estimation_type = "relative"
    config.save_pretrained(tmp_path / "rel")
    with pytest.raises(ModelNotFoundError, match="relative depth"):
        estimate_depth(np.zeros((20, 20, 3), np.float32), model_dir=str(tmp_path / "rel"))


@pytest.mark.parametrize("bad, match", [
    (np.zeros((10, 10)), "shape"),
    (np.full((10, 10, 3), 2.0), r"\[0, 1\]"),
    (np.full((10, 10, 3), np.nan), "NaN"),
    (np.zeros((8, 40, 3)), "too small"),
])
def test_bad_image_refused(models, bad, match):
    with pytest.raises(InputError, match=match):
        estimate_depth(bad, models_dir=models)
