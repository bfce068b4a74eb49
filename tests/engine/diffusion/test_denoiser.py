"""The GPU path's pieces that a CPU can check: half-precision UNet with an fp32 energy and gradient,
the fp16 loss scale, accelerate's offload hooks, SDPA attention (tiny random-weight models)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.diffusion.denoiser import FP16_LOSS_SCALE, Denoiser, EvalCounter
from engine.diffusion.loading import load_diffusion
from engine.pipeline import Engine
from engine.settings import EditSettings, RuntimeOptions

SETTINGS = EditSettings(resolution=32, steps=4, guided_steps=3, inversion="negative-prompt",
                        guidance_step_size=0.002)


def scene(size=32):
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.3 + 0.4 * xx, 0.4 + 0.2 * yy, 0.5 + 0.1 * xx], -1).astype(np.float32)
    mask = np.zeros((size, size), bool)
    mask[10:20, 8:16] = True
    image[mask] = [0.9, 0.2, 0.1]
    depth = np.where(mask, 1.5, 3.0 - 0.5 * yy).astype(np.float32)
    return image, depth, mask


def shift(x):
    T = np.eye(4)
    T[0, 3] = x
    return T


def test_bf16_unet_keeps_latents_energy_and_gradient_in_fp32(tiny_models_dir):
    import torch

    engine = Engine(models_dir=tiny_models_dir, settings=SETTINGS,
                    runtime=RuntimeOptions(device="cpu", dtype="bf16"))
    assert engine.models.dtype == torch.bfloat16
    image, depth, mask = scene()
    prepared = engine.prepare(image, "a red box", depth, mask)
    (result,) = engine.edit(prepared, [shift(0.2)])
    energies = [e["energy"] for e in result.stats["energy"]]
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


def test_cpu_offload_uses_accelerate_hooks_and_gives_the_same_edit(tiny_models_dir):
    base = RuntimeOptions(device="cpu", dtype="fp32")
    models = load_diffusion(tiny_models_dir, runtime=base.replace(cpu_offload=True))
    assert set(models.offload_hooks) == {id(models.unet), id(models.vae), id(models.text_encoder)}
    assert all(hasattr(m, "_hf_hook") for m in (models.unet, models.vae, models.text_encoder))
    image, depth, mask = scene()
    out = []
    for runtime in (base, base.replace(cpu_offload=True)):
        engine = Engine(models_dir=tiny_models_dir, settings=SETTINGS, runtime=runtime)
        prepared = engine.prepare(image, "a red box", depth, mask)
        out.append(engine.edit(prepared, [shift(0.2)])[0].image)
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)


def test_attention_runs_through_pytorch_sdpa(tiny_models_dir):
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    models = load_diffusion(tiny_models_dir, runtime=RuntimeOptions(device="cpu", dtype="fp32"))
    layers = [m for m in models.unet.modules() if isinstance(m, Attention)]
    assert layers and all(isinstance(m.processor, AttnProcessor2_0) for m in layers)
