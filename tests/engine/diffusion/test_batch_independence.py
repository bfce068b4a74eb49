"""A frame's result must not depend on the frames sampled with it (RuntimeOptions.frame_batch_size).

Batched kernels sum in another order than single ones, so the same latents give activations that
differ in the last bits; the L1 energy's gradient is sign(d) whatever |d| is, so before the noise
floor of engine.diffusion.guidance such differences became full-size guidance steps (an identity
frame sampled next to another one came out far from the reconstruction, max error 1.0)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edit_scene import scene, shift
from engine.diffusion.guidance import Guidance, LayerTargets, noise_floor
from engine.pipeline import Engine
from engine.settings import EditSettings, RuntimeOptions

SETTINGS = EditSettings(resolution=32, steps=6, guided_steps=4, inversion="negative-prompt")


def _engine(models, batch):
    return Engine(models_dir=models, settings=SETTINGS,
                  runtime=RuntimeOptions(device="cpu", dtype="fp32", frame_batch_size=batch))


@pytest.fixture(scope="module")
def prepared(tiny_models_dir):
    image, depth, mask = scene()
    return _engine(tiny_models_dir, 1).prepare(image, "a red box", depth, mask)


def test_identity_frame_in_a_batch_is_the_reconstruction(tiny_models_dir, prepared):
    # sampled (Engine.iter_edit does not sample identity frames: this is why it need not)
    engine = _engine(tiny_models_dir, 2)
    identity, moved = engine.sample(prepared, [np.eye(4), shift(0.2)])
    assert identity.stats.batch_frames == 2
    assert identity.stats.energy and all(e["energy"] == 0.0 for e in identity.stats.energy)
    np.testing.assert_allclose(identity.image, prepared.reconstruction, atol=1e-4)
    assert any(e["energy"] > 0 for e in moved.stats.energy)


def test_frame_does_not_depend_on_its_batch_mates(tiny_models_dir, prepared):
    alone = _engine(tiny_models_dir, 1).edit(prepared, [shift(0.2)])[0].image
    batched = _engine(tiny_models_dir, 3)
    with_identity = batched.edit(prepared, [shift(0.2), np.eye(4), shift(-0.15)])[0].image
    with_itself = batched.edit(prepared, [shift(0.2), shift(0.2)])[1].image
    np.testing.assert_allclose(with_identity, alone, atol=1e-4)
    np.testing.assert_allclose(with_itself, alone, atol=1e-4)


def _guidance(ref, cur_shape):
    h, w = ref.shape[-2:]
    grid = np.stack(np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5), -1).astype(np.float32)  # centres
    fg = torch.zeros(1, 1, h, w)
    fg[..., 2:6, 2:6] = 1.0
    targets = {(h, w): LayerTargets(torch.from_numpy(grid)[None], fg, torch.ones(1, 1, h, w),
                                    torch.ones(1, 1, h, w))}
    return Guidance({(0, 3): ref}, targets, SETTINGS, "cpu")


def test_noise_floor_ignores_rounding_but_keeps_real_differences():
    torch.manual_seed(0)
    ref = torch.randn(1, 4, 8, 8).half()
    g = _guidance(ref, ref.shape)
    warped = g.warped_references(0, [3])
    # one fp16 step away from the reference everywhere: rounding, not an edit
    nudged = torch.nextafter(ref, torch.full_like(ref, 100.0)).float().requires_grad_(True)
    energy, _, _ = g.energy(0, {3: nudged}, warped, 0)
    assert float(energy.detach()) == 0.0
    (grad,) = torch.autograd.grad(energy.sum(), nudged, allow_unused=True, materialize_grads=True)
    assert float(grad.abs().max()) == 0.0
    # a real difference (10 % of the values' scale) is an L1 energy with the sign gradient
    moved = (ref.float() + 0.1).requires_grad_(True)
    energy, _, _ = g.energy(0, {3: moved}, warped, 0)
    (grad,) = torch.autograd.grad(energy.sum(), moved)
    inside = grad[..., 2:6, 2:6]
    assert float(energy.detach()) > 0 and bool((inside > 0).all())
    assert noise_floor(torch.float32) < noise_floor(torch.float16) < noise_floor(torch.bfloat16) < 0.05
