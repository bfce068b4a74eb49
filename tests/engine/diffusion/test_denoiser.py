"""engine.diffusion.denoiser: the GPU path's pieces that a CPU can check (a half-precision UNet
with an fp32 energy and gradient, the fp16 loss scale) and the guided layers' activations
(tiny random-weight models)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edit_scene import scene, shift

from engine.diffusion.denoiser import FP16_LOSS_SCALE, Denoiser, EvalCounter
from engine.pipeline import Engine
from engine.settings import EditSettings, RuntimeOptions

SETTINGS = EditSettings(resolution=32, steps=4, guided_steps=3, inversion="negative-prompt",
                        guidance_step_size=0.002)


def test_bf16_unet_keeps_latents_energy_and_gradient_in_fp32(tiny_models_dir):
    import torch

    engine = Engine(models_dir=tiny_models_dir, settings=SETTINGS,
                    runtime=RuntimeOptions(device="cpu", dtype="bf16"))
    assert engine.models.dtype == torch.bfloat16
    image, depth, mask = scene()
    prepared = engine.prepare(image, "a red box", depth, mask)
    (result,) = engine.edit(prepared, [shift(0.2)])
    energies = [e["energy"] for e in result.stats.energy]
    assert len(energies) == 3 * 3 and np.isfinite(energies).all() and max(energies) > 0
    assert np.isfinite(result.image).all()
    # the noise prediction comes back in fp32 whatever the UNet's dtype
    den = engine.denoiser
    x = prepared.noise.float()
    eps = den.eps(x, 500, prepared.cond_embedding, torch.zeros(1, 1, *x.shape[-2:]))
    assert eps.dtype == torch.float32


def test_energy_grad_loss_scale_backs_off_on_overflow():
    import torch

    den = Denoiser.__new__(Denoiser)  # only the counter and the dtype matter here
    den.count, den.dtype = EvalCounter(), torch.float16
    x = torch.ones(1, 2, requires_grad=True)
    # an ordinary energy: the scaled gradient, unscaled, is the exact gradient
    grad = den.energy_grad((3.0 * x).sum(dim=1), x)
    assert grad.dtype == torch.float32 and torch.equal(grad, torch.full((1, 2), 3.0))
    assert den.count.backward == 1
    # an energy whose gradient times the loss scale overflows fp32: the scale backs off, no inf
    big = 1e36
    assert big * FP16_LOSS_SCALE > np.finfo(np.float32).max
    grad = den.energy_grad((big * x).sum(dim=1), x)
    assert torch.isfinite(grad).all() and torch.allclose(grad, torch.full((1, 2), big))
    assert den.count.backward > 2  # each try is a counted backward pass
    # fp32 / bf16 need no scale: a non-finite gradient is an error, never a silent NaN step
    den.dtype = torch.float32
    with pytest.raises(FloatingPointError, match="not finite"):
        den.energy_grad((torch.tensor(float("inf")) * x).sum(dim=1), x)


def test_hooks_capture_guided_layers(models):
    den = Denoiser(models.unet, (2, 3), "cpu", torch.float32)
    try:
        x = torch.randn(2, 4, 16, 12)
        cond = torch.randn(1, 77, 32)
        depth = torch.zeros(1, 1, 16, 12)
        acts = den.activations(x, 500, cond, depth, (2, 3), stop_early=False)
        assert acts[2].shape == (2, 24, 16, 12) and acts[3].shape == (2, 16, 16, 12)
        early = den.activations(x, 500, cond, depth, (2,), stop_early=True)
        assert set(early) == {2} and torch.equal(early[2], acts[2])
        assert den.count.forward == 4
        # no capture outside the context
        den.eps(x, 500, cond, depth)
        assert den.recorder.captured == {}
    finally:
        den.remove()
