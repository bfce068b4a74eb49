"""Each backbone's cost per UNet forward relative to SD2-depth, and its GPU memory at fp16, from the
released architectures (engine.diffusion.architectures) with random weights: nothing downloaded.

- parameters and fp16 weight memory: counted on the meta device (no memory used);
- FLOPs of one forward (UNet + ControlNet, batch 1, 77 text tokens) at each backbone's native
  size, counted by torch's FlopCounterMode on the meta device;
- ``--time SIDE_FRACTION``: seconds of one forward on the CPU at native size x SIDE_FRACTION
  (real weights in memory, random; bf16 so SDXL's fits), the median of ``--repeats``.

    OMP_NUM_THREADS=1 nice .venv/bin/python tools/backbone_cost.py [--time 0.25] [--out cost.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(backbone, device, dtype=None):
    """The backbone's UNet, ControlNet (or None), VAE and text encoders, random weights, built
    directly in ``dtype`` (SDXL's would not fit the CPU's memory in fp32 and bf16 side by side)."""
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from engine.diffusion.architectures import ARCHITECTURES
    from engine.diffusion.sd2_config import SD2_DEPTH_VAE, SD2_TEXT_ENCODER

    unet_cfg, cn_cfg, texts = ARCHITECTURES[backbone]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype or torch.float32)
    try:
        return _build(unet_cfg, cn_cfg, texts, device, AutoencoderKL, ControlNetModel, UNet2DConditionModel,
                      CLIPTextConfig, CLIPTextModel, SD2_DEPTH_VAE, SD2_TEXT_ENCODER, device != "meta")
    finally:
        torch.set_default_dtype(previous)


def _build(unet_cfg, cn_cfg, texts, device, AutoencoderKL, ControlNetModel, UNet2DConditionModel,
           CLIPTextConfig, CLIPTextModel, SD2_DEPTH_VAE, SD2_TEXT_ENCODER, only_denoiser):
    import torch

    with torch.device(device):
        unet = UNet2DConditionModel(**unet_cfg)
        cn = ControlNetModel(**cn_cfg) if cn_cfg else None
        if only_denoiser:  # timing: the UNet and ControlNet only
            return unet, cn, None, []
        vae = AutoencoderKL(**SD2_DEPTH_VAE)
        encoders = []
        for t in texts:
            cfg = SD2_TEXT_ENCODER if t == "sd2" else dict(t, vocab_size=49408, max_position_embeddings=77)
            encoders.append(CLIPTextModel(CLIPTextConfig(**cfg)))
    return unet, cn, vae, encoders


def params(m) -> int:
    return sum(p.numel() for p in m.parameters()) if m is not None else 0


def inputs(unet, side, device, dtype):
    import torch

    h = side // 8
    x = torch.randn(1, 4, h, h, device=device, dtype=dtype)
    text = torch.randn(1, 77, unet.config.cross_attention_dim, device=device, dtype=dtype)
    added = None
    if unet.config.addition_embed_type == "text_time":
        added = {"text_embeds": torch.randn(1, 1280, device=device, dtype=dtype),
                 "time_ids": torch.tensor([[side, side, 0, 0, side, side]], device=device, dtype=dtype)}
    depth_in = unet.config.in_channels - 4
    return x, text, added, depth_in


def forward(unet, cn, side, device, dtype):
    import torch

    x, text, added, depth_in = inputs(unet, side, device, dtype)
    t = torch.tensor(500, device=device)
    kw = {"added_cond_kwargs": added} if added else {}
    with torch.no_grad():
        if cn is None:
            d = torch.randn(1, depth_in, *x.shape[-2:], device=device, dtype=dtype)
            return unet(torch.cat([x, d], 1), t, encoder_hidden_states=text, **kw)
        cond = torch.rand(1, 3, side, side, device=device, dtype=dtype)
        down, mid = cn(x, t, encoder_hidden_states=text, controlnet_cond=cond, return_dict=False, **kw)
        return unet(x, t, encoder_hidden_states=text, down_block_additional_residuals=down,
                    mid_block_additional_residual=mid, **kw)


def flops(unet, cn, side) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        forward(unet, cn, side, "meta", torch.float32)
    return counter.get_total_flops()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", type=float, default=None, metavar="SIDE_FRACTION")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    import torch

    from engine.diffusion.backbones import BACKBONES

    rows = {}
    for name, spec in BACKBONES.items():
        unet, cn, vae, encoders = build(name, "meta")
        side = spec.native_size
        n_unet, n_cn = params(unet), params(cn)
        n_all = n_unet + n_cn + params(vae) + sum(params(e) for e in encoders)
        row = {"native_size": side, "unet_params": n_unet, "controlnet_params": n_cn, "all_params": n_all,
               "fp16_weights_gib": round(n_all * 2 / 2 ** 30, 2),
               "fp16_unet_controlnet_gib": round((n_unet + n_cn) * 2 / 2 ** 30, 2),
               "gflops_per_forward_native": round(flops(unet, cn, side) / 1e9, 1)}
        del unet, cn, vae, encoders
        if args.time:
            side_t = int(round(side * args.time / 64)) * 64
            unet, cn, _, _ = build(name, "cpu", torch.bfloat16)
            unet, cn = unet.eval(), cn.eval() if cn is not None else None
            times = []
            for _ in range(args.repeats + 1):
                t0 = time.perf_counter()
                forward(unet, cn, side_t, "cpu", torch.bfloat16)
                times.append(time.perf_counter() - t0)
            row.update(timed_size=side_t, cpu_bf16_seconds=round(sorted(times[1:])[len(times[1:]) // 2], 3))
            del unet, cn
        rows[name] = row
        print(name, json.dumps(row), flush=True)
    base = rows["sd2-depth"]
    for row in rows.values():
        row["flops_vs_sd2"] = round(row["gflops_per_forward_native"] / base["gflops_per_forward_native"], 2)
        if "cpu_bf16_seconds" in row:
            row["cpu_seconds_vs_sd2"] = round(row["cpu_bf16_seconds"] / base["cpu_bf16_seconds"], 2)
    print(json.dumps(rows, indent=1))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
