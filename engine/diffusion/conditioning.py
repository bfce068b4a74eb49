"""What the UNet is conditioned on: the prompt embedding, the depth channel, and the VAE latents.

Depth conditioning follows SD2-depth: disparity 1/d, resized (bicubic) to the latent grid,
min-max normalised to [-1, 1], concatenated to the latents as a fifth input channel.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .loading import DiffusionModels, check_prompt


def encode_prompt(models: DiffusionModels, prompt: str):
    """Text embedding (1, L, D) of ``prompt`` (checked: non-empty and within the tokenizer limit)."""
    import torch

    if prompt != "":
        check_prompt(models.tokenizer, prompt)
    tok = models.tokenizer
    ids = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids
    with torch.no_grad(), models.on_device(models.text_encoder) as te:
        emb = te(ids.to(models.device))[0]
    return emb.to(models.device, models.dtype)


def depth_condition(depth, latent_hw, device=None, dtype=None):
    """Z-depth (H, W) or (B, H, W) in metres -> depth channel (B, 1, h, w) in [-1, 1].

    Disparity 1/d, bicubic resize to the latent grid, min-max normalised per image.
    """
    import torch
    import torch.nn.functional as F

    d = torch.as_tensor(np.asarray(depth, dtype=np.float32))
    if d.ndim == 2:
        d = d[None]
    if not torch.isfinite(d).all() or (d <= 0).any():
        raise InputError("depth: contains NaN, inf or values <= 0")
    disparity = (1.0 / d)[:, None].double()
    disparity = F.interpolate(disparity, size=tuple(latent_hw), mode="bicubic", align_corners=False)
    lo = disparity.amin(dim=(1, 2, 3), keepdim=True)
    hi = disparity.amax(dim=(1, 2, 3), keepdim=True)
    cond = 2.0 * (disparity - lo) / (hi - lo).clamp_min(1e-12) - 1.0
    return cond.to(device=device, dtype=dtype or torch.float32)


def encode_image(models: DiffusionModels, image):
    """RGB float (H, W, 3) in [0, 1] -> latents (1, C, H/f, W/f) (the posterior mean, scaled)."""
    import torch

    x = torch.as_tensor(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    x = (x * 2.0 - 1.0).to(models.device, models.dtype)
    with torch.no_grad(), models.on_device(models.vae) as vae:
        latents = vae.encode(x).latent_dist.mean
    return latents * vae.config.scaling_factor


def decode_latents(models: DiffusionModels, latents) -> np.ndarray:
    """Latents (B, C, h, w) -> RGB float32 numpy (B, H, W, 3) in [0, 1]."""
    import torch

    with torch.no_grad(), models.on_device(models.vae) as vae:
        x = vae.decode(latents.to(models.device, models.dtype) / vae.config.scaling_factor).sample
    x = (x.float() / 2.0 + 0.5).clamp(0.0, 1.0)
    return x.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)


def working_size(height: int, width: int, resolution: int, multiple: int) -> tuple[int, int]:
    """(h, w) with the longer side = resolution (rounded to ``multiple``) and the aspect kept."""
    scale = resolution / max(height, width)

    def snap(x):
        return max(multiple, int(round(x * scale / multiple)) * multiple)

    return snap(height), snap(width)

