"""The backbones (engine.diffusion.backbones) through the real loading code of each: tiny SD 1.5 and
SDXL models with their ControlNets (engine tiny-models), depth fed through the ControlNet's residuals,
SDXL's two text encoders and its decoder blocks mapped to the paper's layers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.diffusion import backbones
from engine.diffusion.conditioning import encode_prompt
from engine.diffusion.denoiser import Denoiser
from engine.diffusion.loading import load_diffusion
from engine.errors import InputError
from engine.settings import RuntimeOptions

CPU = RuntimeOptions(device="cpu", dtype="fp32")


def _depths(hw):
    yy = np.mgrid[0:hw[0], 0:hw[1]][0] / hw[0]
    near = np.full(hw, 3.0, np.float32)
    near[hw[0] // 4:hw[0] // 2, hw[1] // 4:hw[1] // 2] = 1.0
    return np.stack([(3.0 - yy).astype(np.float32), near])


@pytest.mark.parametrize("name", ["sd15-depth", "sdxl-depth"])
def test_controlnet_backbones_load_and_depth_moves_the_prediction(tiny_models_dir, name):
    m = load_diffusion(tiny_models_dir, runtime=CPU, backbone=name)
    spec = backbones.get(name)
    assert m.backbone == name and m.controlnet is not None and m.unet.config.in_channels == 4
    assert (m.text_encoder_2 is not None) == (spec.text_encoders == 2)
    assert "+" in m.model_id and "+" in m.revision  # base and ControlNet both identify the model
    cond = m.depth_condition(_depths((16, 16)), (16, 16))
    f = backbones.controlnet_downsampling(m.controlnet)
    assert f == 2 and cond.shape == (2, 3, 32, 32)  # a 3-channel image at the ControlNet's input size
    assert float(cond.min()) == 0.0 and float(cond.max()) == 1.0
    text = encode_prompt(m, "a blue box")
    den = Denoiser(m.unet, (2, 3), m.device, m.dtype, feed=m.feed)
    x = torch.randn(2, 4, 16, 16)
    t = torch.tensor(500)
    with torch.no_grad():
        eps = den.eps(x, t, text, cond)
        same = den.eps(x, t, text, cond[:1].expand(2, -1, -1, -1))
    assert eps.shape == (2, 4, 16, 16) and torch.isfinite(eps).all()
    assert not torch.allclose(eps[1], same[1])  # the second depth changed the second image's noise
    assert torch.equal(eps[0], same[0])


def test_sdxl_text_condition_packs_pooled_and_guides_its_own_blocks(tiny_models_dir):
    m = load_diffusion(tiny_models_dir, runtime=CPU, backbone="sdxl-depth")
    text = encode_prompt(m, "a blue box")
    L = m.tokenizer.model_max_length
    width = m.text_encoder.config.hidden_size + m.text_encoder_2.config.hidden_size
    assert text.shape == (1, L + 1, width) == (1, L + 1, m.unet.config.cross_attention_dim)
    pooled = m.text_encoder_2.config.projection_dim
    assert torch.count_nonzero(text[0, -1, :pooled]) > 0 and torch.count_nonzero(text[0, -1, pooled:]) == 0
    assert torch.count_nonzero(encode_prompt(m, "")) == 0  # SDXL's zero embedding for no prompt
    den = Denoiser(m.unet, (2, 3), m.device, m.dtype, feed=m.feed)
    acts, _ = den.activations_and_eps(torch.randn(1, 4, 16, 16), torch.tensor(300), text,
                                      m.depth_condition(_depths((16, 16))[:1], (16, 16)), (2, 3))
    # the paper's layers 2 and 3 are SDXL's up_blocks 1 and 2: 24 and 16 channels on the latent grid
    assert acts[2].shape == (1, m.unet.config.block_out_channels[1], 16, 16)
    assert acts[3].shape == (1, m.unet.config.block_out_channels[0], 16, 16)


def test_sd2_denoiser_unchanged_by_the_feed(tiny_models_dir):
    """The default feed is SD2-depth's concatenated channel: the same noise as calling the UNet."""
    m = load_diffusion(tiny_models_dir, runtime=CPU)
    assert m.backbone == "sd2-depth" and m.controlnet is None
    den = Denoiser(m.unet, (2, 3), m.device, m.dtype, feed=m.feed)
    x, depth = torch.randn(1, 4, 16, 16), m.depth_condition(_depths((16, 16))[:1], (16, 16))
    text = torch.randn(1, 77, 32)
    with torch.no_grad():
        direct = m.unet(torch.cat([x, depth], 1), torch.tensor(200), encoder_hidden_states=text).sample
        assert torch.equal(den.eps(x, torch.tensor(200), text, depth), direct)


def test_unknown_backbone_and_layers_refused():
    with pytest.raises(InputError, match="backbone 'sd3': unknown"):
        backbones.get("sd3")
    with pytest.raises(InputError, match="guided layers \\[1\\]"):
        backbones.get("sdxl-depth").up_blocks((1, 2))
    with pytest.raises(InputError, match="made with backbone sd15-depth; this edit uses sd2-depth"):
        backbones.check_prepared("sd15-depth", "sd2-depth")


def test_missing_controlnet_role_named(tiny_models_dir, tmp_path):
    import shutil

    from engine.errors import ModelNotFoundError

    shutil.copytree(tiny_models_dir / "sd15", tmp_path / "sd15")
    with pytest.raises(ModelNotFoundError) as info:
        load_diffusion(tmp_path, runtime=CPU, backbone="sd15-depth")
    assert "sd15-controlnet" in str(info.value)
