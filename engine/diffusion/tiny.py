"""A tiny random-weight SD2-depth-like model, written in the real on-disk formats.

Same classes and the same block structure as ``stabilityai/stable-diffusion-2-depth`` (four up
blocks, the last three with cross-attention, 5 input channels = 4 latent + 1 depth, linear
projections in the transformers), only with a few channels: the loading code, the hooks on
``up_blocks[2]`` / ``up_blocks[3]`` and the layer schedule run exactly as with the real model.
The tokenizer is a byte-level CLIP BPE vocabulary with no merges, written here.
"""
from __future__ import annotations

import json
from pathlib import Path

# SD2-depth's scheduler configuration (a fact of the released model).
SCHEDULER_CONFIG = {
    "_class_name": "DDIMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "trained_betas": None,
}

TINY_UNET = dict(
    sample_size=16,
    in_channels=5,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(16, 24, 32, 32),
    layers_per_block=1,
    attention_head_dim=(2, 3, 4, 4),
    cross_attention_dim=32,
    norm_num_groups=8,
    use_linear_projection=True,
)

TINY_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    block_out_channels=(8, 16),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=4,
    sample_size=32,
    scaling_factor=0.18215,
)


def _byte_characters() -> list:
    """The 256 printable characters CLIP's byte-level BPE uses for the bytes 0..255 (GPT-2's map)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1))
                 + list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return [chars[b] for b in printable] + [c for b, c in enumerate(chars) if b not in printable]


def _byte_vocab() -> dict:
    chars = _byte_characters()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab


def write_tiny_diffusion(out_dir, seed: int = 0) -> Path:
    """Write unet/, vae/, text_encoder/, tokenizer/, scheduler/ and model_index.json under out_dir."""
    import torch
    from diffusers import UNet2DConditionModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    UNet2DConditionModel(**TINY_UNET).save_pretrained(out / "unet", safe_serialization=True)
    _write_common(out, "StableDiffusionDepth2ImgPipeline", "SD2-depth")
    return out


def _write_common(out: Path, pipeline: str, what: str, text_encoders: int = 1) -> None:
    """vae/, text_encoder/ (and text_encoder_2/), tokenizer/ (and tokenizer_2/), scheduler/,
    model_index.json: the parts every tiny backbone has (the VAE first: the same random draws as
    before the other backbones existed)."""
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    AutoencoderKL(**TINY_VAE).save_pretrained(out / "vae", safe_serialization=True)
    index = {"_class_name": pipeline, "note": f"tiny random-weight {what}-like model for tests (engine.diffusion.tiny)",
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "scheduler": ["diffusers", "DDIMScheduler"]}
    for k in range(text_encoders):
        suffix = "" if k == 0 else f"_{k + 1}"
        config = _write_tokenizer(out / f"tokenizer{suffix}")
        cls = CLIPTextModel if k == 0 else CLIPTextModelWithProjection
        cls(config).save_pretrained(out / f"text_encoder{suffix}", safe_serialization=True)
        index[f"text_encoder{suffix}"] = ["transformers", cls.__name__]
        index[f"tokenizer{suffix}"] = ["transformers", "CLIPTokenizer"]
    DDIMScheduler(**{k: v for k, v in SCHEDULER_CONFIG.items() if not k.startswith("_")}) \
        .save_pretrained(out / "scheduler")
    (out / "model_index.json").write_text(json.dumps(index, indent=1))


def _write_tokenizer(tok_dir: Path):
    """A byte-level CLIP tokenizer in ``tok_dir``; returns the tiny text encoder config that fits it."""
    from transformers import CLIPTextConfig, CLIPTokenizer

    tok_dir.mkdir(parents=True, exist_ok=True)
    vocab = _byte_vocab()
    (tok_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (tok_dir / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"),
                              model_max_length=77, pad_token="!")
    tokenizer.save_pretrained(tok_dir)
    return CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                          num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                          projection_dim=32, bos_token_id=vocab["<|startoftext|>"],
                          eos_token_id=vocab["<|endoftext|>"], pad_token_id=0, hidden_act="gelu")


# SD 1.5's UNet is SD2's without the depth channel (and with attention heads of fixed size, which
# does not change the blocks); SDXL's has three levels, no attention at the first, and the
# "text_time" added embedding (pooled text + 6 size ids).
TINY_SD15_UNET = dict(TINY_UNET, in_channels=4, use_linear_projection=False)
TINY_SDXL_UNET = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(16, 24, 32),
    layers_per_block=1,
    transformer_layers_per_block=(1, 1, 2),
    attention_head_dim=(2, 3, 4),
    cross_attention_dim=64,  # the two text encoders' hidden states side by side (32 + 32)
    norm_num_groups=8,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=8,
    projection_class_embeddings_input_dim=32 + 6 * 8,  # pooled (projection_dim) + 6 time ids
)
# a real depth ControlNet's conditioning embedding downsamples by the VAE's factor (8); the tiny
# VAE's is 2
TINY_CONTROLNET = dict(conditioning_embedding_out_channels=(8, 16))


def write_tiny_sd15(out_dir, seed: int = 0) -> Path:
    """A tiny SD 1.5-like base model (the ``sd15`` role's layout)."""
    return _write_base(out_dir, seed, TINY_SD15_UNET, "StableDiffusionControlNetPipeline", "SD 1.5", 1)


def write_tiny_sdxl(out_dir, seed: int = 0) -> Path:
    """A tiny SDXL-like base model (the ``sdxl`` role's layout: two text encoders and tokenizers)."""
    return _write_base(out_dir, seed, TINY_SDXL_UNET, "StableDiffusionXLControlNetPipeline", "SDXL", 2)


def write_tiny_sd15_controlnet(out_dir, seed: int = 0) -> Path:
    return _write_controlnet(out_dir, seed, TINY_SD15_UNET)


def write_tiny_sdxl_controlnet(out_dir, seed: int = 0) -> Path:
    return _write_controlnet(out_dir, seed, TINY_SDXL_UNET)


def _write_base(out_dir, seed, unet_config, pipeline, what, text_encoders) -> Path:
    import torch
    from diffusers import UNet2DConditionModel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    UNet2DConditionModel(**unet_config).save_pretrained(out / "unet", safe_serialization=True)
    _write_common(out, pipeline, what, text_encoders)
    return out


def _write_controlnet(out_dir, seed, unet_config) -> Path:
    """A ControlNet made as diffusers makes one from its UNet (``from_unet``), then its zero
    convolutions given small random weights, so the depth moves the tiny model's output."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(seed)
    cn = ControlNetModel.from_unet(UNet2DConditionModel(**unet_config), **TINY_CONTROLNET)
    with torch.no_grad():
        for name, p in cn.named_parameters():
            if name.startswith(("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding.conv_out")):
                p.normal_(0.0, 0.05)
    cn.save_pretrained(Path(out_dir), safe_serialization=True)
    return Path(out_dir)
