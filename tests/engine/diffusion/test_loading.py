"""engine.diffusion.loading: the tiny random-weight model through the real diffusers classes, clear
errors, the native size, accelerate's offload hooks and SDPA attention."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edit_scene import scene, shift
from engine.diffusion.ddim import DDIM
from engine.diffusion.loading import load_diffusion
from engine.errors import ModelNotFoundError
from engine.pipeline import Engine
from engine.settings import EditSettings, RuntimeOptions

SETTINGS = EditSettings(resolution=32, steps=4, guided_steps=3, inversion="negative-prompt",
                        guidance_step_size=0.002)
CPU32 = RuntimeOptions(device="cpu", dtype="fp32")


def test_tiny_model_loads_through_real_classes(models):
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    assert isinstance(models.unet, UNet2DConditionModel) and isinstance(models.vae, AutoencoderKL)
    assert isinstance(models.text_encoder, CLIPTextModel) and isinstance(models.scheduler, DDIMScheduler)
    assert models.unet.config.in_channels == 5 and len(models.unet.up_blocks) == 4
    assert [type(b).__name__ for b in models.unet.up_blocks] == \
        ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    assert models.vae_scale_factor == 2  # read from the VAE config
    assert DDIM(models.scheduler, 50).timesteps[:3] == [980, 960, 940]
    assert DDIM(models.scheduler, 50).timesteps[-1] == 0


def test_missing_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_diffusion(tmp_path / "nowhere", runtime=CPU32)
    (tmp_path / "empty" / "diffusion" / "unet").mkdir(parents=True)
    with pytest.raises(ModelNotFoundError, match="missing vae/"):
        load_diffusion(tmp_path / "empty", runtime=CPU32)


def test_corrupt_weights_are_one_clear_error(tiny_models_dir, tmp_path):
    """A truncated safetensors file (an interrupted copy) is a ModelNotFoundError naming the folder,
    one line, not safetensors' own exception with a traceback."""
    import shutil

    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir / "diffusion", models / "diffusion")
    (weights,) = (models / "diffusion" / "text_encoder").glob("*.safetensors")  # transformers reads it
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(ModelNotFoundError) as info:
        load_diffusion(models, runtime=CPU32)
    message = str(info.value)
    assert "could not load the diffusion model" in message and str(models / "diffusion") in message
    assert "\n" not in message


def test_native_resolution_follows_the_loaded_model(tiny_models_dir):
    """The default working size is the model's own: 512 for SD2-depth (the release's size)."""
    from types import SimpleNamespace

    from diffusers import AutoencoderKL, UNet2DConditionModel

    from engine.diffusion.loading import DiffusionModels
    from engine.diffusion.sd2_config import SD2_DEPTH_UNET, SD2_DEPTH_VAE

    def native(unet, vae):
        models = SimpleNamespace(unet=unet, vae=vae)
        models.vae_scale_factor = DiffusionModels.vae_scale_factor.fget(models)
        return DiffusionModels.native_resolution.fget(models), models.vae_scale_factor

    with torch.device("meta"):
        assert native(UNet2DConditionModel(**SD2_DEPTH_UNET), AutoencoderKL(**SD2_DEPTH_VAE)) == (512, 8)
    unet = UNet2DConditionModel.from_pretrained(tiny_models_dir / "diffusion", subfolder="unet")
    vae = AutoencoderKL.from_pretrained(tiny_models_dir / "diffusion", subfolder="vae")
    size, factor = native(unet, vae)
    assert size == unet.config.sample_size * factor


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
