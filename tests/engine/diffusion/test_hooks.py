"""engine.diffusion.hooks: the activations of the guided decoder blocks, captured by forward hooks."""
from __future__ import annotations

import torch

from engine.diffusion.hooks import ActivationRecorder


def test_hooks_on_real_sd2_depth_unet_config_meta_device():
    from diffusers import UNet2DConditionModel

    from engine.diffusion.sd2_config import SD2_DEPTH_UNET

    with torch.device("meta"):
        unet = UNet2DConditionModel(**SD2_DEPTH_UNET)
    rec = ActivationRecorder(unet, (2, 3))
    x = torch.empty(1, 5, 64, 64, device="meta")
    text = torch.empty(1, 77, 1024, device="meta")
    with rec.capture((2, 3)) as acts:
        out = unet(x, torch.tensor([500], device="meta"), encoder_hidden_states=text).sample
    assert out.shape == (1, 4, 64, 64)
    assert acts[2].shape == (1, 640, 64, 64)
    assert acts[3].shape == (1, 320, 64, 64)
    rec.remove()
