"""Test-only: a diffusers-format SD2-like model written back as ONE original (LDM / CompVis)
checkpoint, the layout of ``512-depth-ema.safetensors``: ``model.diffusion_model.*`` (the UNet's
input_blocks / middle_block / output_blocks), ``first_stage_model.*`` (the VAE's encoder.down /
mid.block_1 / decoder.up, attention as 1x1 convolutions) and ``cond_stage_model.model.*`` (the
OpenCLIP text tower: resblocks with fused in_proj, one more layer than SD2 uses, a text
projection). This is the inverse of diffusers' single-file conversion, written independently so
the product's conversion (engine.diffusion.single_file) is checked against it."""
from __future__ import annotations

import json
from pathlib import Path

RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
          "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def _unet_key(key: str, layers: int, up_attention: list[bool]) -> str:
    top = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
           "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    for new, old in top.items():
        if key.startswith(new + "."):
            return old + key[len(new):]
    parts = key.split(".")

    def resnet_tail(rest):
        name, tail = rest[0], rest[1:]
        return ".".join([RESNET[name], *tail])

    if parts[0] == "down_blocks":
        i, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":  # down_blocks.i.downsamplers.0.conv.* -> input_blocks.K.0.op.*
            return f"input_blocks.{(i + 1) * (layers + 1)}.0.op." + ".".join(parts[5:])
        j = int(parts[3])
        block = 1 + i * (layers + 1) + j
        if kind == "resnets":
            return f"input_blocks.{block}.0." + resnet_tail(parts[4:])
        return f"input_blocks.{block}.1." + ".".join(parts[4:])
    if parts[0] == "mid_block":
        kind, j = parts[1], int(parts[2])
        if kind == "resnets":
            return f"middle_block.{2 * j}." + resnet_tail(parts[3:])
        return "middle_block.1." + ".".join(parts[3:])
    if parts[0] == "up_blocks":
        i, kind = int(parts[1]), parts[2]
        if kind == "upsamplers":
            return f"output_blocks.{i * (layers + 1) + layers}.{2 if up_attention[i] else 1}.conv." + ".".join(parts[5:])
        j = int(parts[3])
        block = i * (layers + 1) + j
        if kind == "resnets":
            return f"output_blocks.{block}.0." + resnet_tail(parts[4:])
        return f"output_blocks.{block}.1." + ".".join(parts[4:])
    raise KeyError(key)


def _vae_key(key: str, value, n_up: int):
    for new, old in (("conv_norm_out", "norm_out"),):
        key = key.replace(f"coder.{new}.", f"coder.{old}.")
    parts = key.split(".")
    if parts[0] in ("quant_conv", "post_quant_conv") or parts[1] in ("conv_in", "conv_out", "norm_out"):
        return key, value
    side = parts[0]
    if parts[1] == "down_blocks":
        i = parts[2]
        if parts[3] == "downsamplers":
            return f"{side}.down.{i}.downsample.conv." + ".".join(parts[6:]), value
        return f"{side}.down.{i}.block.{parts[4]}." + ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut"), value
    if parts[1] == "up_blocks":
        i = n_up - 1 - int(parts[2])
        if parts[3] == "upsamplers":
            return f"{side}.up.{i}.upsample.conv." + ".".join(parts[6:]), value
        return f"{side}.up.{i}.block.{parts[4]}." + ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut"), value
    if parts[1] == "mid_block":
        if parts[2] == "resnets":
            return f"{side}.mid.block_{int(parts[3]) + 1}." + ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut"), value
        name = ".".join(parts[4:])  # attentions.0.<name>
        name = {"group_norm.weight": "norm.weight", "group_norm.bias": "norm.bias",
                "to_q.weight": "q.weight", "to_q.bias": "q.bias", "to_k.weight": "k.weight", "to_k.bias": "k.bias",
                "to_v.weight": "v.weight", "to_v.bias": "v.bias",
                "to_out.0.weight": "proj_out.weight", "to_out.0.bias": "proj_out.bias"}[name]
        if value.ndim == 2:  # LDM's attention is 1x1 convolutions
            value = value[:, :, None, None]
        return f"{side}.mid.attn_1.{name}", value
    raise KeyError(key)


def _text_keys(state: dict, layers: int) -> dict:
    import torch

    state = {k[len("text_model."):] if k.startswith("text_model.") else k: v for k, v in state.items()}
    state = {"text_model." + k: v for k, v in state.items()}
    p = "cond_stage_model.model."
    out = {p + "token_embedding.weight": state["text_model.embeddings.token_embedding.weight"],
           p + "positional_embedding": state["text_model.embeddings.position_embedding.weight"],
           p + "ln_final.weight": state["text_model.final_layer_norm.weight"],
           p + "ln_final.bias": state["text_model.final_layer_norm.bias"]}
    width = out[p + "ln_final.weight"].shape[0]
    for i in range(layers):
        d = f"text_model.encoder.layers.{i}."
        o = f"{p}transformer.resblocks.{i}."
        out[o + "attn.in_proj_weight"] = torch.cat([state[d + f"self_attn.{x}_proj.weight"] for x in "qkv"])
        out[o + "attn.in_proj_bias"] = torch.cat([state[d + f"self_attn.{x}_proj.bias"] for x in "qkv"])
        for new, old in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"),
                         ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
            for t in ("weight", "bias"):
                out[o + f"{old}.{t}"] = state[d + f"{new}.{t}"]
    # OpenCLIP's last layer (SD2 uses the penultimate one: never loaded) and its text projection
    last = f"{p}transformer.resblocks.{layers}."
    for name, value in list(out.items()):
        if name.startswith(f"{p}transformer.resblocks.0."):
            out[last + name[len(f"{p}transformer.resblocks.0."):]] = torch.randn_like(value)
    out[p + "text_projection"] = torch.randn(width, width)
    out[p + "logit_scale"] = torch.tensor(4.6)
    return out


def write_ldm_checkpoint(model_dir, file, with_config=True) -> Path:
    """The diffusers folder ``model_dir`` (unet/, vae/, text_encoder/, tokenizer/, scheduler/) as one
    LDM-layout checkpoint ``file`` (.safetensors, or .ckpt through torch.save); with
    ``with_config`` its configuration beside it as ``<stem>.config/`` (the tiny model is not SD2's
    architecture, so the bundled SD2 configuration does not fit it)."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    model_dir, file = Path(model_dir), Path(file)
    unet_cfg = json.loads((model_dir / "unet" / "config.json").read_text())
    vae_cfg = json.loads((model_dir / "vae" / "config.json").read_text())
    text_cfg = json.loads((model_dir / "text_encoder" / "config.json").read_text())
    up_attention = ["CrossAttn" in t for t in unet_cfg["up_block_types"]]
    out = {}
    for key, value in load_file(str(model_dir / "unet" / "diffusion_pytorch_model.safetensors")).items():
        out["model.diffusion_model." + _unet_key(key, unet_cfg["layers_per_block"], up_attention)] = value
    for key, value in load_file(str(model_dir / "vae" / "diffusion_pytorch_model.safetensors")).items():
        name, value = _vae_key(key, value, len(vae_cfg["up_block_types"]))
        out["first_stage_model." + name] = value
    out.update(_text_keys(load_file(str(model_dir / "text_encoder" / "model.safetensors")),
                          text_cfg["num_hidden_layers"]))
    out = {k: v.contiguous() for k, v in out.items()}
    file.parent.mkdir(parents=True, exist_ok=True)
    if file.suffix == ".safetensors":
        save_file(out, str(file))
    else:
        torch.save({"state_dict": out, "global_step": 1}, str(file))
    if with_config:
        config = file.with_name(file.stem + ".config")
        for sub in ("unet", "vae", "text_encoder"):
            (config / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(model_dir / sub / "config.json", config / sub / "config.json")
        for sub in ("tokenizer", "scheduler"):
            shutil.copytree(model_dir / sub, config / sub, dirs_exist_ok=True)
    return file
