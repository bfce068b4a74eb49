"""Object removal: the photo with the object taken out, i.e. the background (docs/design.md section 4,
step 4). The object mask is dilated (its soft edge and contact shadow go too) and the hole is
filled by a selectable backend:

- ``"fill"`` (default, no download): harmonic (Laplace) fill of each colour channel from the
  hole's boundary, solved with the project's sparse solver on a coarse grid and upsampled
  (:func:`engine.completion.harmonic_fill`). Smooth,
  deterministic, seam-free; it carries no texture into the hole, which is what the background's
  depth estimate and the lifted background mesh need (no phantom object).
- ``"diffusers"``: Stable Diffusion inpainting (registry role ``inpaint``), composited back so that
  every pixel outside the dilated mask is the input's exact value.
"""
from __future__ import annotations

import logging

import numpy as np

from ..errors import InputError
from ..images import to_uint8
from .common import check_image, check_mask, dilate, role_override

log = logging.getLogger(__name__)

BACKENDS = ("fill", "diffusers")
INPAINT_PROMPT = "empty background, seamless continuation of the surroundings"
INPAINT_NEGATIVE = "object, person, animal, text, watermark, blurry, artifacts"


def default_dilate_px(height: int, width: int) -> int:
    """The same default dilation the background depth fill uses (engine.geometry)."""
    from ..completion import default_dilation

    return int(default_dilation(height, width))


def removal_region(mask: np.ndarray, dilate_px=None) -> np.ndarray:
    """The pixels that get replaced: ``mask`` dilated by ``dilate_px`` (default: geometry's)."""
    height, width = mask.shape
    if dilate_px is None:
        dilate_px = default_dilate_px(height, width)
    if not isinstance(dilate_px, (int, np.integer)) or dilate_px < 0:
        raise InputError(f"dilate_px: expected a non-negative whole number of pixels, got {dilate_px!r}")
    region = dilate(mask, int(dilate_px))
    if region.all():
        raise InputError("mask: the dilated object covers the whole image; nothing is left to fill from")
    return region


def remove_object(image, mask, backend: str = "fill", dilate_px=None, models_dir=None, overrides=None,
                  device="auto", seed: int = 0, steps: int = 30, prompt: str = INPAINT_PROMPT) -> np.ndarray:
    """The background: ``image`` with the object in ``mask`` removed.

    image: (H, W, 3) float in [0, 1] (or uint8); mask: bool (H, W).
    Returns float32 (H, W, 3) in [0, 1]; pixels outside the dilated mask equal the input's.
    """
    # 1. Check inputs
    image = check_image(image)
    mask = check_mask(mask, image.shape[:2])
    if backend not in BACKENDS:
        raise InputError(f"removal backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    region = removal_region(mask, dilate_px)
    # 2. Fill the hole
    if backend == "fill":
        filled = harmonic_fill(image, region)
    else:
        filled = diffusers_inpaint(image, region, models_dir, role_override(overrides, "inpaint"),
                                   device, seed, steps, prompt)
    # 3. Keep every pixel outside the hole exactly
    out = np.where(region[..., None], filled, image)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def harmonic_fill(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Laplace fill of each channel of ``image`` (H, W, C) inside ``region`` (solved on a coarse
    grid and upsampled: :func:`engine.completion.harmonic_fill`)."""
    from ..completion import harmonic_fill as fill

    return fill(np.asarray(image, dtype=np.float64), region)


def load_inpaint_pipeline(models_dir=None, override=None, device="auto"):
    from .common import load_role

    def build(path, dev):
        from diffusers import StableDiffusionInpaintPipeline

        from ..devices import resolve_dtype

        # fp16 weights where the download found them (else full precision); a folder may hold either.
        variant = "fp16" if any(path.glob("unet/*.fp16.safetensors")) else None
        pipe = StableDiffusionInpaintPipeline.from_pretrained(
            path, dtype=resolve_dtype("auto", dev), variant=variant, use_safetensors=True, local_files_only=True,
            safety_checker=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(dev)

    return load_role("inpaint", override, models_dir, device, "inpainting model", build)


def diffusers_inpaint(image, region, models_dir=None, override=None, device="auto", seed: int = 0,
                      steps: int = 30, prompt: str = INPAINT_PROMPT) -> np.ndarray:
    """Stable Diffusion inpainting of ``region``; returns (H, W, 3) float at the input's size."""
    import torch
    from PIL import Image

    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"inpainting steps: expected a positive integer, got {steps!r}")
    pipe, dev = load_inpaint_pipeline(models_dir, override, device)
    height, width = image.shape[:2]
    from ..diffusion.conditioning import working_size
    from ..images import resize_image, resize_nearest

    # Work at sides that are multiples of the VAE's scale factor (read from the loaded VAE), the
    # longer side at the model's native size; the pipeline takes PIL images, resized here.
    factor = int(getattr(pipe, "vae_scale_factor", 8))
    h, w = working_size(height, width, int(pipe.unet.config.sample_size) * factor, factor)
    pil_image = Image.fromarray(to_uint8(resize_image(image, (h, w))))
    pil_mask = Image.fromarray(to_uint8(resize_nearest(np.asarray(region, bool), (h, w))))
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    result = pipe(prompt=prompt, negative_prompt=INPAINT_NEGATIVE, image=pil_image, mask_image=pil_mask,
                  height=h, width=w, num_inference_steps=steps, generator=generator, output_type="np").images[0]
    result = np.asarray(result, dtype=np.float32)
    if result.shape[:2] != (height, width):
        result = resize_image(result, (height, width))
    return result


def fill_background(image: np.ndarray, depth: np.ndarray, mask: np.ndarray, dilate_px=None):
    """The background without a depth model: (image, depth) with the dilated object filled.

    Colour is the harmonic fill of the "fill" backend, solved on a coarse grid (it is smooth);
    depth is :func:`engine.completion.complete_background_depth` (the surrounding planes
    continued), the same as :func:`engine.geometry.fill_background_depth`.
    """
    from ..completion import complete_background_depth
    from ..io import validate_depth

    image = check_image(image)
    mask = check_mask(mask, image.shape[:2])
    depth = validate_depth(depth, "depth", image.shape[:2]).astype(np.float64)
    region = removal_region(mask, dilate_px)
    filled = harmonic_fill(image.astype(np.float64), region)
    background = np.where(region[..., None], np.clip(filled, 0.0, 1.0), image)
    bg_depth = complete_background_depth(depth, mask, dilate_px)
    return background.astype(np.float32), bg_depth.astype(np.float32)
