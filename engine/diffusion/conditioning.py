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


def resize_image(image, hw, clip: bool = True):
    """Float image (H, W, C) or (H, W) -> (h, w[, C]): area averaging when shrinking, bicubic when
    enlarging; clipped to [0, 1] unless ``clip`` is False. The project's one smooth resize."""
    import torch
    import torch.nn.functional as F

    a = np.asarray(image, dtype=np.float32)
    if a.shape[:2] == tuple(hw):
        return a.copy()
    flat = a.ndim == 2
    x = torch.from_numpy(np.ascontiguousarray(a[..., None] if flat else a)).permute(2, 0, 1)[None]
    shrink = hw[0] <= x.shape[-2] and hw[1] <= x.shape[-1]
    y = F.interpolate(x, size=tuple(hw), mode="area") if shrink else \
        F.interpolate(x, size=tuple(hw), mode="bicubic", align_corners=False)
    y = y[0].permute(1, 2, 0)
    y = (y.clamp(0, 1) if clip else y).numpy().astype(np.float32)
    return y[..., 0] if flat else y


def resize_nearest(array, hw):
    """Depth (float) or mask (bool) (H, W) -> (h, w), nearest pixel centre (no mixed depths)."""
    a = np.asarray(array)
    H, W = a.shape[:2]
    if (H, W) == tuple(hw):
        return a.copy()
    return a[nearest_index(hw[0], H)][:, nearest_index(hw[1], W)].copy()


def nearest_index(n_to: int, n_from: int) -> np.ndarray:
    """For each of ``n_to`` pixels along an axis, the index of the ``n_from``-grid pixel holding its centre."""
    return np.minimum(((np.arange(n_to) + 0.5) * n_from / n_to).astype(np.int64), n_from - 1)
