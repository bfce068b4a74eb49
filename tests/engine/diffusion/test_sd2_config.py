"""engine.diffusion.sd2_config: SD2-depth's architecture as config dicts, built by diffusers and
transformers on the meta device (no weights allocated, nothing downloaded).

The UNet's forward with the guided layers' hooks is tested in test_hooks.py; here: what the
configs build, that every key is one the libraries know, the VAE and text encoder, and the
figures the engine and docs/method.md rely on."""
from __future__ import annotations

import pytest
import torch

from engine.diffusion.sd2_config import SD2_DEPTH_UNET, SD2_DEPTH_VAE, SD2_TEXT_ENCODER
from engine.settings import EditSettings


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def unet():
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        return UNet2DConditionModel.from_config(SD2_DEPTH_UNET)


@pytest.fixture(scope="module")
def vae():
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        return AutoencoderKL.from_config(SD2_DEPTH_VAE)


@pytest.fixture(scope="module")
def text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        return CLIPTextModel(CLIPTextConfig(**SD2_TEXT_ENCODER))


def test_built_on_the_meta_device_without_weights(unet, vae, text_encoder):
    for model in (unet, vae, text_encoder):
        assert {p.device.type for p in model.parameters()} == {"meta"}


@pytest.mark.parametrize("config, cls", [(SD2_DEPTH_UNET, "UNet2DConditionModel"), (SD2_DEPTH_VAE, "AutoencoderKL")])
def test_every_key_is_a_config_field_the_library_keeps(config, cls, unet, vae):
    """from_config ignores unknown keys with a warning: a misspelt key would silently fall back to a default."""
    model = unet if cls == "UNet2DConditionModel" else vae
    for key, value in config.items():
        assert key in model.config, key
        got = model.config[key]
        assert (list(got) if isinstance(got, (tuple, list)) else got) == \
               (list(value) if isinstance(value, (tuple, list)) else value), key


def test_text_encoder_config_is_kept(text_encoder):
    for key, value in SD2_TEXT_ENCODER.items():
        assert getattr(text_encoder.config, key) == value, key


def test_unet_takes_latents_plus_depth(unet, vae):
    """5 input channels = the VAE's 4 latent channels + 1 depth (the check load_diffusion makes)."""
    assert unet.conv_in.in_channels == 5 == vae.config.latent_channels + 1
    assert unet.conv_in.weight.shape == (320, 5, 3, 3)
    assert unet.conv_out.out_channels == vae.config.latent_channels == 4


def test_the_released_parameter_counts(unet, vae):
    """SD2's UNet has 865,910,724 parameters; the depth model's conv_in has one input channel more
    (320 x 3 x 3 weights); the VAE is Stable Diffusion's 83,653,863-parameter KL autoencoder."""
    assert _count(unet) == 865_910_724 + 320 * 3 * 3
    assert _count(vae) == 83_653_863


def test_guided_layers_channels_and_grid(unet):
    """up_blocks[2] outputs 640 channels and up_blocks[3] 320 (docs/method.md: x640 / x320 on SD2),
    both on the latent grid: up_blocks[2] is the last block that upsamples."""
    out_channels = [block.resnets[-1].out_channels for block in unet.up_blocks]
    assert out_channels[2:] == [640, 320]
    upsamples = [block.upsamplers is not None for block in unet.up_blocks]
    assert upsamples == [True, True, True, False]
    # the down path halves the grid 3 times, the up path doubles it 3 times, the last in up_blocks[2]
    assert sum(block.downsamplers is not None for block in unet.down_blocks) == 3
    # cross-attention in the guided blocks, over the text encoder's width
    for i in (2, 3):
        attn = unet.up_blocks[i].attentions[0].transformer_blocks[0].attn2
        assert attn.to_k.in_features == SD2_DEPTH_UNET["cross_attention_dim"]


def test_vae_scale_factor_maps_512_pixels_onto_the_unets_64_latents(vae):
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    assert scale == 8
    assert SD2_DEPTH_VAE["sample_size"] // scale == SD2_DEPTH_UNET["sample_size"] == 64
    latent = vae.encode(torch.empty(1, 3, 512, 512, device="meta")).latent_dist.mean
    assert latent.shape == (1, 4, 64, 64)
    assert vae.decode(torch.empty(1, 4, 64, 64, device="meta")).sample.shape == (1, 3, 512, 512)
    assert vae.config.scaling_factor == 0.18215


def test_text_encoder_feeds_the_unets_cross_attention(text_encoder):
    """OpenCLIP ViT-H/14's text tower without its last layer (SD2 takes the penultimate layer)."""
    assert SD2_TEXT_ENCODER["hidden_size"] == SD2_DEPTH_UNET["cross_attention_dim"] == 1024
    layers = [m for m in text_encoder.modules() if type(m).__name__ == "CLIPEncoderLayer"]
    assert len(layers) == 23
    tokens = torch.zeros(1, SD2_TEXT_ENCODER["max_position_embeddings"], dtype=torch.long, device="meta")
    assert text_encoder(tokens).last_hidden_state.shape == (1, 77, 1024)


def test_reference_cache_size_stated_in_method_md(unet):
    """docs/method.md: the default settings' guided (step, layer) pairs in fp16 at 512x512 take
    about 200 MB (13 x 320 + 13 x 640 + 12 x (640 + 320) channels of 64x64)."""
    s = EditSettings()
    channels = {2: unet.up_blocks[2].resnets[-1].out_channels, 3: unet.up_blocks[3].resnets[-1].out_channels}
    grid = SD2_DEPTH_UNET["sample_size"]
    total = sum(channels[layer] for i in range(s.steps) for layer in s.layers_at(i))
    assert total == 13 * 320 + 13 * 640 + 12 * (640 + 320)
    nbytes = total * grid * grid * 2
    assert 190e6 < nbytes < 210e6
