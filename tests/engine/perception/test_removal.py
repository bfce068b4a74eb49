"""Object removal: the default harmonic fill (no download) and the diffusers inpainting option."""
from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.perception.removal import remove_object, removal_region


def _mask(h=40, w=60):
    mask = np.zeros((h, w), bool)
    mask[10:25, 20:40] = True
    return mask


def test_fill_keeps_outside_and_reproduces_a_linear_ramp():
    h, w = 40, 60
    ramp = np.linspace(0.1, 0.9, w, dtype=np.float32)
    image = np.stack([np.tile(ramp, (h, 1)), np.full((h, w), 0.3, np.float32),
                      np.tile(ramp[::-1], (h, 1))], axis=-1)
    noisy = image.copy()
    mask = _mask()
    noisy[mask] = np.random.default_rng(0).random((mask.sum(), 3))  # the "object"
    out = remove_object(noisy, mask, dilate_px=2)
    region = removal_region(mask, 2)
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[~region], noisy[~region])
    np.testing.assert_allclose(out[region], image[region], atol=1e-5)  # harmonic fill is exact on ramps


def test_fill_obeys_the_maximum_principle():
    image = np.random.default_rng(1).random((40, 60, 3)).astype(np.float32)
    mask = _mask()
    out = remove_object(image, mask)
    region = removal_region(mask)
    assert out[region].min() >= image[~region].min() - 1e-6 and out[region].max() <= image[~region].max() + 1e-6


@pytest.mark.parametrize("kwargs, match", [
    ({"backend": "magic"}, "removal backend"),
    ({"dilate_px": -1}, "dilate_px"),
    ({"dilate_px": 1.5}, "dilate_px"),
    ({"dilate_px": 100}, "whole image"),
])
def test_bad_settings_refused(kwargs, match):
    with pytest.raises(InputError, match=match):
        remove_object(np.zeros((40, 60, 3), np.float32), _mask(), **kwargs)


@pytest.mark.parametrize("mask, match", [(np.zeros((40, 60), bool), "empty"), (np.ones((40, 60), bool), "whole"),
                                         (np.ones((10, 10), bool), "(shape|size)")])
def test_bad_masks_refused(mask, match):
    with pytest.raises(InputError, match=match):
        remove_object(np.zeros((40, 60, 3), np.float32), mask)


def test_diffusers_backend_with_tiny_inpainting_model(tmp_path):
    from engine.tiny_models import write_tiny_models

    models = write_tiny_models(tmp_path / "models", roles=["inpaint"])
    image = np.random.default_rng(2).random((36, 52, 3)).astype(np.float32)
    mask = np.zeros((36, 52), bool)
    mask[8:20, 10:30] = True
    out = remove_object(image, mask, backend="diffusers", models_dir=models, steps=2, device="cpu")
    region = removal_region(mask)
    assert out.shape == image.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out[~region], image[~region])


def test_fill_background_equals_separate_colour_and_depth_fills():
    from engine.geometry import fill_background_depth
    from engine.perception.removal import fill_background, remove_object

    rng = np.random.default_rng(5)
    image = rng.random((30, 40, 3)).astype(np.float32)
    yy = np.mgrid[0:30, 0:40][0]
    plane = 1.0 / (0.25 + 0.004 * yy)  # a plane: inverse depth affine in the pixel coordinates
    depth = plane.astype(np.float32)
    mask = np.zeros((30, 40), bool)
    mask[8:20, 10:26] = True
    depth[mask] = 1.5
    background, background_depth = fill_background(image, depth, mask)
    np.testing.assert_allclose(background, remove_object(image, mask, backend="fill"), atol=1e-6)
    np.testing.assert_allclose(background_depth, fill_background_depth(depth, mask), rtol=1e-5)
    # The plane behind the object comes back (inverse depth is harmonic there).
    np.testing.assert_allclose(background_depth[mask], plane[mask], rtol=1e-4)
