"""The released architectures of every backbone's UNet and ControlNet as config dicts (facts of the
models' config.json files), for the cost figures of docs/benchmark.md (`tools/backbone_cost.py`):
built with random weights or on the meta device, nothing downloaded. SD2-depth's own are in
``sd2_config``."""
from __future__ import annotations

from .sd2_config import SD2_DEPTH_UNET

# stable-diffusion-v1-5/stable-diffusion-v1-5 unet/config.json: SD2's blocks, 4 input channels,
# 768-wide cross-attention (CLIP ViT-L), 8 heads, no linear projections
SD15_UNET = dict(SD2_DEPTH_UNET, in_channels=4, cross_attention_dim=768, attention_head_dim=8,
                 use_linear_projection=False)
# lllyasviel/control_v11f1p_sd15_depth config.json: the encoder of SD 1.5's UNet
SD15_CONTROLNET = dict(
    attention_head_dim=8, block_out_channels=(320, 640, 1280, 1280), conditioning_embedding_out_channels=(16, 32, 96, 256),
    cross_attention_dim=768, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",), in_channels=4,
    layers_per_block=2, norm_num_groups=32, use_linear_projection=False,
)
# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json
SDXL_UNET = dict(
    addition_embed_type="text_time", addition_time_embed_dim=256, attention_head_dim=(5, 10, 20),
    block_out_channels=(320, 640, 1280), cross_attention_dim=2048,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"), in_channels=4,
    layers_per_block=2, norm_num_groups=32, out_channels=4, projection_class_embeddings_input_dim=2816,
    sample_size=128, transformer_layers_per_block=(1, 2, 10),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), use_linear_projection=True,
)
# diffusers/controlnet-depth-sdxl-1.0 config.json: the full-size encoder of SDXL's UNet
SDXL_CONTROLNET = dict(
    addition_embed_type="text_time", addition_time_embed_dim=256, attention_head_dim=(5, 10, 20),
    block_out_channels=(320, 640, 1280), conditioning_embedding_out_channels=(16, 32, 96, 256),
    cross_attention_dim=2048, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    in_channels=4, layers_per_block=2, norm_num_groups=32, projection_class_embeddings_input_dim=2816,
    transformer_layers_per_block=(1, 2, 10), use_linear_projection=True,
)
# text encoders (transformers CLIPTextConfig fields): SD 1.5 and SDXL's first = CLIP ViT-L/14;
# SDXL's second = OpenCLIP ViT-bigG/14 (with projection); SD2's = OpenCLIP ViT-H (sd2_config)
CLIP_VIT_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  projection_dim=768, hidden_act="quick_gelu")
CLIP_VIT_BIGG = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
                     projection_dim=1280, hidden_act="gelu")

# backbone -> (UNet config, ControlNet config or None, text encoder configs, VAE parameters = SD2's)
ARCHITECTURES = {
    "sd2-depth": (SD2_DEPTH_UNET, None, ("sd2",)),
    "sd15-depth": (SD15_UNET, SD15_CONTROLNET, (CLIP_VIT_L,)),
    "sdxl-depth": (SDXL_UNET, SDXL_CONTROLNET, (CLIP_VIT_L, CLIP_VIT_BIGG)),
}


def build_models(backbone: str, device, dtype, runtime=None):
    """DiffusionModels of ``backbone``'s released UNet, ControlNet and VAE with random weights, and
    2-layer text encoders of its widths (their cost is two calls per photo): the benchmark's
    models for a ControlNet backbone (SD2-depth's: engine.cli.bench.build_sd2_depth_models)."""
    import tempfile
    from pathlib import Path

    import torch
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from .loading import DiffusionModels, place_models
    from .sd2_config import SD2_DEPTH_VAE
    from .tiny import SCHEDULER_CONFIG, _byte_vocab, _write_tokenizer

    unet_cfg, cn_cfg, texts = ARCHITECTURES[backbone]
    torch.manual_seed(0)
    unet, controlnet = UNet2DConditionModel(**unet_cfg), ControlNetModel(**cn_cfg)
    vae = AutoencoderKL(**SD2_DEPTH_VAE)
    vocab = _byte_vocab()
    encoders = []
    for k, t in enumerate(texts):
        cfg = CLIPTextConfig(**dict(t, num_hidden_layers=2), vocab_size=len(vocab), max_position_embeddings=77,
                             bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"], pad_token_id=0)
        encoders.append((CLIPTextModel if k == 0 else CLIPTextModelWithProjection)(cfg))
    with tempfile.TemporaryDirectory() as d:
        _write_tokenizer(Path(d))
        tokenizer = CLIPTokenizer.from_pretrained(d)
    scheduler = DDIMScheduler(**dict({k: v for k, v in SCHEDULER_CONFIG.items() if not k.startswith("_")},
                                     steps_offset=0))
    second = encoders[1] if len(encoders) > 1 else None
    hooks = place_models(unet, vae, encoders[0], device, dtype, runtime,
                         extra=[m for m in (controlnet, second) if m is not None])
    return DiffusionModels(unet, vae, encoders[0], tokenizer, scheduler, Path(f"<{backbone} config>"),
                           f"{backbone}-architecture", "random", device, dtype, hooks, backbone=backbone,
                           controlnet=controlnet, text_encoder_2=second, tokenizer_2=tokenizer if second else None)
