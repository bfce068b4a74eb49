"""Distil the shared toy-depth model into a toy depth ControlNet (tests/data/toy-controlnet/).

The base UNet is toy-depth's with its depth input channel dropped (conv_in keeps the weights of the
four latent channels); the ControlNet is ``ControlNetModel.from_unet(base)`` (its encoder is the
base UNet's, its zero convolutions start at zero) and is the only thing trained: base + ControlNet
(depth) should predict the noise toy-depth predicts, on noised latents of toy renders, and give
the decoder activations (``up_blocks[2]``, ``up_blocks[3]``) the method guides. A quarter of the
pairs give the latents another render's depth, as an edit does. The ``toy/`` scenes, on which
the evaluation judges the model, are held out.

    nice .venv/bin/python tools/train_toy_controlnet.py --teacher ../shared/models/toy-depth \
        --scenes ../shared/scenes --out tests/data/toy-controlnet --minutes 50

Writes OUT/sd15/ (unet, vae, text_encoder, tokenizer, scheduler: the base model) and
OUT/sd15-controlnet/ (the ControlNet), the project's models-folder layout for ``--backbone
sd15-depth``, checkpointed every ``--save-every`` steps, and OUT/train_info.json (the record).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HELD_OUT = ("toy",)  # the evaluation's scenes
GUIDED = (2, 3)  # the up_blocks the method guides on this architecture


def load_renders(scenes_root: Path, size: int = 64):
    """[(image (size, size, 3) float in [0, 1], depth (size, size) in metres, prompt)] with flips;
    the 256x192 scenes give three square crops each."""
    from PIL import Image

    out = []
    for kind in sorted(p for p in scenes_root.iterdir() if p.is_dir()):
        if kind.name in HELD_OUT:
            continue
        for scene in sorted(kind.glob("scene_*")):
            img = np.asarray(Image.open(scene / "image.png").convert("RGB"), dtype=np.float32) / 255.0
            depth = np.load(scene / "depth.npy").astype(np.float32)
            prompt = (scene / "prompt.txt").read_text().strip()
            h, w = depth.shape
            s = min(h, w)
            offsets = sorted({0, (w - s) // 2, w - s})
            for x0 in offsets:
                im = img[:, x0:x0 + s]
                dp = depth[:, x0:x0 + s]
                if s != size:
                    im = np.asarray(Image.fromarray((im * 255).round().astype(np.uint8)).resize(
                        (size, size), Image.BICUBIC), dtype=np.float32) / 255.0
                    dp = np.asarray(Image.fromarray(dp).resize((size, size), Image.BILINEAR), dtype=np.float32)
                for flip in (False, True):
                    out.append((im[:, ::-1].copy() if flip else im, dp[:, ::-1].copy() if flip else dp, prompt))
    return out


def base_unet_from(teacher):
    """toy-depth's UNet with 4 input channels: the depth channel's conv_in weights dropped."""
    from diffusers import UNet2DConditionModel

    config = dict(teacher.config)
    config["in_channels"] = teacher.config.in_channels - 1
    base = UNet2DConditionModel.from_config(config)
    state = teacher.state_dict()
    state["conv_in.weight"] = state["conv_in.weight"][:, :config["in_channels"]].clone()
    base.load_state_dict(state)
    return base


def save(out: Path, teacher_dir: Path, base, controlnet, record: dict) -> None:
    """Write the models folder atomically enough for a checkpoint: each part to a temp dir, then renamed."""
    sd15 = out / "sd15"
    if not (sd15 / "unet").is_dir():
        tmp = out / "sd15.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for sub in ("vae", "text_encoder", "tokenizer", "scheduler"):
            shutil.copytree(teacher_dir / "diffusion" / sub, tmp / sub)
        base.save_pretrained(tmp / "unet", safe_serialization=True)
        (tmp / "model_index.json").write_text(json.dumps({
            "_class_name": "StableDiffusionControlNetPipeline",
            "note": "toy base model: toy-depth's UNet without its depth channel (tools/train_toy_controlnet.py)",
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
            "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
            "scheduler": ["diffusers", "DDIMScheduler"]}, indent=1))
        shutil.rmtree(sd15, ignore_errors=True)
        tmp.rename(sd15)
    tmp = out / "sd15-controlnet.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    controlnet.save_pretrained(tmp, safe_serialization=True)
    shutil.rmtree(out / "sd15-controlnet", ignore_errors=True)
    tmp.rename(out / "sd15-controlnet")
    (out / "train_info.json").write_text(json.dumps(record, indent=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", type=Path, required=True)
    ap.add_argument("--scenes", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=50.0)
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--feature-weight", type=float, default=0.1)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from engine.diffusion.conditioning import control_image, depth_condition

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    src = args.teacher / "diffusion"
    teacher = UNet2DConditionModel.from_pretrained(src, subfolder="unet").eval().requires_grad_(False)
    vae = AutoencoderKL.from_pretrained(src, subfolder="vae").eval().requires_grad_(False)
    text_encoder = CLIPTextModel.from_pretrained(src, subfolder="text_encoder").eval().requires_grad_(False)
    tokenizer = CLIPTokenizer.from_pretrained(src, subfolder="tokenizer")
    base = base_unet_from(teacher).eval().requires_grad_(False)
    # The toy VAE keeps the image grid (scale factor 1): the ControlNet's conditioning embedding
    # must not downsample, so one level of channels (a real ControlNet's has four, for 8x).
    controlnet = ControlNetModel.from_unet(base, conditioning_embedding_out_channels=(16,))
    controlnet.train()

    renders = load_renders(args.scenes)
    prompts = sorted({p for _, _, p in renders} | {""})
    with torch.no_grad():
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids
        emb = dict(zip(prompts, text_encoder(ids)[0]))
        images = torch.tensor(np.stack([r[0] for r in renders])).permute(0, 3, 1, 2) * 2 - 1
        latents = vae.encode(images).latent_dist.mean * vae.config.scaling_factor
    depths = [r[1] for r in renders]
    texts = torch.stack([emb[r[2]] for r in renders])
    null = emb[""]
    hw = latents.shape[-2:]
    cond_sd2 = torch.cat([depth_condition(d, hw) for d in depths])
    cond_cn = torch.cat([control_image(d, hw) for d in depths])
    sched_alphas = _alphas_cumprod()

    acts = {}

    def hook(name):
        def fn(_m, _i, out):
            acts[name] = out[0] if isinstance(out, tuple) else out
        return fn

    for i in GUIDED:
        teacher.up_blocks[i].register_forward_hook(hook(("t", i)))
        base.up_blocks[i].register_forward_hook(hook(("s", i)))

    opt = torch.optim.AdamW(controlnet.parameters(), lr=args.lr, weight_decay=0.0)
    n = len(renders)
    t0 = time.time()
    history = []
    record = {}
    step = 0
    ema = None
    while step < args.max_steps and time.time() - t0 < args.minutes * 60:
        idx = torch.as_tensor(rng.integers(0, n, args.batch))
        didx = idx.clone()
        swap = torch.as_tensor(rng.random(args.batch) < 0.25)
        didx[swap] = torch.as_tensor(rng.integers(0, n, int(swap.sum())))
        t = torch.as_tensor(rng.integers(0, 1000, args.batch))
        a = sched_alphas[t].view(-1, 1, 1, 1)
        noise = torch.randn_like(latents[idx])
        x = a.sqrt() * latents[idx] + (1 - a).sqrt() * noise
        text = texts[idx].clone()
        drop = torch.as_tensor(rng.random(args.batch) < 0.2)
        text[drop] = null
        with torch.no_grad():
            target = teacher(torch.cat([x, cond_sd2[didx]], 1), t, encoder_hidden_states=text).sample
        down, mid = controlnet(x, t, encoder_hidden_states=text, controlnet_cond=cond_cn[didx],
                               return_dict=False)
        pred = base(x, t, encoder_hidden_states=text, down_block_additional_residuals=down,
                    mid_block_additional_residual=mid).sample
        loss_eps = F.mse_loss(pred, target)
        loss_feat = sum(F.mse_loss(acts[("s", i)], acts[("t", i)]) / acts[("t", i)].pow(2).mean()
                        for i in GUIDED) / len(GUIDED)
        loss = loss_eps + args.feature_weight * loss_feat
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(controlnet.parameters(), 1.0)
        opt.step()
        step += 1
        ema = loss_eps.item() if ema is None else 0.98 * ema + 0.02 * loss_eps.item()
        if step % 10 == 0:
            history.append({"step": step, "seconds": round(time.time() - t0), "eps_mse_ema": round(ema, 5),
                            "feature_rel_mse": round(loss_feat.item(), 5)})
            print(json.dumps(history[-1]), flush=True)
        if step % args.save_every == 0:
            record = _record(args, step, ema, history, n, time.time() - t0)
            save(args.out, args.teacher, base, controlnet, record)
    record = _record(args, step, ema, history, n, time.time() - t0)
    save(args.out, args.teacher, base, controlnet, record)
    print("done", json.dumps({k: v for k, v in record.items() if k != "history"}), flush=True)
    return 0


def _alphas_cumprod():
    """SD's scaled-linear schedule (toy-depth's scheduler config)."""
    import torch

    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


def _record(args, step, ema, history, n, seconds):
    return {
        "note": "toy depth ControlNet distilled from toy-depth; not a real model",
        "teacher": "toy-depth (../shared/models/toy-depth)",
        "controlnet_steps": step, "batch": args.batch, "lr": args.lr,
        "feature_weight": args.feature_weight, "training_pairs": n,
        "held_out_scene_sets": list(HELD_OUT), "seconds": round(seconds), "threads": args.threads,
        "final_eps_mse_ema": ema, "history": history,
    }


if __name__ == "__main__":
    raise SystemExit(main())
