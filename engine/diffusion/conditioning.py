"""What the UNet is conditioned on: the prompt embedding, the depth channel, and the VAE latents.

Depth conditioning follows SD2-depth: disparity 1/d, resized (bicubic) to the latent grid,
min-max normalised to [-1, 1], concatenated to the latents as a fifth input channel. A depth
ControlNet (SD 1.5, SDXL) takes instead what its pipelines' depth estimators give: disparity
min-max normalised to [0, 1] as a 3-channel image at the ControlNet's input size (`control_image`).
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError

# ``models`` below: engine.diffusion.loading.DiffusionModels (not imported: loading imports the
# backbones, which call this module)


def check_prompt(tokenizer, prompt: str) -> None:
    """Refuse an empty prompt, or one longer than the text encoder reads, in one line."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("prompt: must be a non-empty text describing the image")
    n = len(tokenizer(prompt, truncation=False).input_ids)
    if n > tokenizer.model_max_length:
        raise InputError(f"prompt: {n} tokens, longer than the text encoder's limit of "
                         f"{tokenizer.model_max_length} (start and end tokens included); shorten it")


def encode_prompt(models, prompt: str):
    """The prompt's condition tensor (checked: non-empty and within the tokenizer limit): (1, L, D),
    or (1, L + 1, D) for a backbone with two text encoders (SDXL: both penultimate hidden states
    side by side, the last row holding the second's pooled projection, so inversion, the cache and
    the presets carry one tensor for every backbone; engine/diffusion/backbones.py unpacks it)."""
    import torch

    if prompt != "":
        check_prompt(models.tokenizer, prompt)
    encoders = [(models.tokenizer, models.text_encoder)]
    two = getattr(models, "text_encoder_2", None) is not None
    if two:
        encoders.append((models.tokenizer_2, models.text_encoder_2))
    states, pooled = [], None
    for tok, enc in encoders:
        ids = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        with torch.no_grad(), models.on_device(enc) as te:
            out = te(ids.to(models.device), output_hidden_states=two)
        if not two:
            states.append(out[0])
        else:  # SDXL: the penultimate hidden states of both; the second's projected pooled output
            states.append(out.hidden_states[-2])
            pooled = out[0]
    emb = torch.cat(states, dim=-1)
    if two:
        if prompt == "":  # SDXL base's force_zeros_for_empty_prompt, as its diffusers pipelines
            emb, pooled = torch.zeros_like(emb), torch.zeros_like(pooled)
        row = torch.zeros(1, 1, emb.shape[-1], dtype=emb.dtype, device=emb.device)
        row[..., :pooled.shape[-1]] = pooled[:, None]
        emb = torch.cat([emb, row], dim=1)
    return emb.to(models.device, models.dtype)


def depth_condition(depth, latent_hw, device=None, dtype=None):
    """Z-depth (H, W) or (B, H, W) in metres -> depth channel (B, 1, h, w) in [-1, 1].

    Disparity 1/d, bicubic resize to the latent grid, min-max normalised per image.
    """
    import torch

    cond = 2.0 * _unit_disparity(depth, latent_hw) - 1.0
    return cond.to(device=device, dtype=dtype or torch.float32)


def control_image(depth, size_hw, device=None, dtype=None):
    """Z-depth (H, W) or (B, H, W) in metres -> a depth ControlNet's input (B, 3, H', W') in [0, 1]
    at ``size_hw``: near is bright, as the depth maps (MiDaS, DPT) these ControlNets learnt from."""
    import torch

    cond = _unit_disparity(depth, size_hw).expand(-1, 3, -1, -1)
    return cond.to(device=device, dtype=dtype or torch.float32)


def _unit_disparity(depth, size_hw):
    """Disparity 1/d (B, 1, h, w) resized (bicubic) to ``size_hw``, min-max normalised per image to
    [0, 1], in float64."""
    import torch
    import torch.nn.functional as F

    d = torch.as_tensor(np.asarray(depth, dtype=np.float32))
    if d.ndim == 2:
        d = d[None]
    if not torch.isfinite(d).all() or (d <= 0).any():
        raise InputError("depth: contains NaN, inf or values <= 0")
    disparity = (1.0 / d)[:, None].double()
    disparity = F.interpolate(disparity, size=tuple(size_hw), mode="bicubic", align_corners=False)
    lo = disparity.amin(dim=(1, 2, 3), keepdim=True)
    hi = disparity.amax(dim=(1, 2, 3), keepdim=True)
    return (disparity - lo) / (hi - lo).clamp_min(1e-12)


def encode_image(models, image):
    """RGB float (H, W, 3) in [0, 1] -> latents (1, C, H/f, W/f) (the posterior mean, scaled)."""
    import torch

    x = torch.as_tensor(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    x = (x * 2.0 - 1.0).to(models.device, models.vae.dtype)  # the VAE's dtype: SDXL's stays fp32
    with torch.no_grad(), models.on_device(models.vae) as vae:
        latents = vae.encode(x).latent_dist.mean
    return (latents * vae.config.scaling_factor).to(models.dtype)


def decode_latents(models, latents) -> np.ndarray:
    """Latents (B, C, h, w) -> RGB float32 numpy (B, H, W, 3) in [0, 1]."""
    import torch

    with torch.no_grad(), models.on_device(models.vae) as vae:
        x = vae.decode(latents.to(models.device, vae.dtype) / vae.config.scaling_factor).sample
    x = (x.float() / 2.0 + 0.5).clamp(0.0, 1.0)
    return x.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)


def working_size(height: int, width: int, resolution: int, multiple: int) -> tuple[int, int]:
    """(h, w) with the longer side = resolution (rounded to ``multiple``) and the aspect kept."""
    scale = resolution / max(height, width)

    def snap(x):
        return max(multiple, int(round(x * scale / multiple)) * multiple)

    return snap(height), snap(width)

