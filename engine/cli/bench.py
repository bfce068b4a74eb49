"""``python -m engine bench``: time prepare and an N-frame trajectory on the SD2-depth architecture.

The UNet and VAE are built from SD2-depth's configs (engine.diffusion.sd2_config) with random
weights: nothing is downloaded, and speed and memory depend only on the architecture. The text
encoder is a 2-layer CLIP of SD2's width (its cost is two calls per photo). The release and every
preset run side by side in one process, so the ratios are measured:

- ``release``: the authors' release costs: the paper's schedule, null-text inversion, fp32,
  fp32 references, frames one by one;
- ``default``: this engine at the default preset (the paper's schedule): the device's auto
  dtype, frames batched, half-precision references of the guided layers only;
- ``fast``, ``quick``: the same at the other presets (every entry of engine.settings.PRESETS;
  docs/method.md).

``--steps N`` is the release's step count; each preset keeps its own proportion (the fast preset's
25 of 50 becomes N/2). Per frame, the UNet-forward equivalents (forward = 1, backward = 2) are
printed as counted in this run and as they count at the release's 50 steps.

Memory options (--memory-options) rerun ``default`` and ``fast`` with each of cpu_offload,
vae_tiling, vae_slicing and gradient_checkpointing and report seconds and peak memory per stage.
"""
from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path

HELP = "benchmark prepare + an N-frame trajectory on the SD2-depth architecture (random weights)"


def _configs() -> tuple:
    """"release" and every preset (engine.settings.PRESETS), in that order."""
    from ..settings import PRESETS

    return ("release",) + tuple(PRESETS)


CONFIGS = _configs()


def add_arguments(p) -> None:
    from ..settings import DEVICE_CHOICES, DTYPE_CHOICES, RuntimeOptions

    p.add_argument("--resolution", type=int, default=512, help="image side (square), default 512")
    p.add_argument("--steps", type=int, default=50,
                   help="the release's DDIM steps (default 50); the presets scale with it")
    p.add_argument("--frames", type=int, default=4, help="frames in the trajectory")
    p.add_argument("--device", choices=DEVICE_CHOICES, default=RuntimeOptions.device)
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default=RuntimeOptions.dtype,
                   help="dtype of the default and fast configurations (release: fp32)")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    from ..diffusion.backbones import add_argument as add_backbone_argument

    add_backbone_argument(p)  # the architecture benchmarked (engine.diffusion.architectures)
    p.add_argument("--memory-options", action="store_true",
                   help="also run default and fast with each memory option")
    p.add_argument("--out", metavar="JSON", help="write the results here")
    p.add_argument("--geometry", action="store_true",
                   help="only the geometry, no model: the photo's one-off lifted scene and per-frame costs")


def build_sd2_depth_models(device, dtype, runtime=None):
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from ..diffusion.loading import DiffusionModels, place_models
    from ..diffusion.sd2_config import SD2_DEPTH_UNET, SD2_DEPTH_VAE
    from ..diffusion.tiny import SCHEDULER_CONFIG, _byte_vocab

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD2_DEPTH_UNET)
    vae = AutoencoderKL(**SD2_DEPTH_VAE)
    vocab = _byte_vocab()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=1024, intermediate_size=4096, num_hidden_layers=2,
        num_attention_heads=16, max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"], pad_token_id=0))
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "vocab.json").write_text(json.dumps(vocab))
        (Path(d) / "merges.txt").write_text("#version: 0.2\n")
        tokenizer = CLIPTokenizer(str(Path(d) / "vocab.json"), str(Path(d) / "merges.txt"), pad_token="!", model_max_length=77)
    cfg = {k: v for k, v in SCHEDULER_CONFIG.items() if not k.startswith("_")}
    scheduler = DDIMScheduler(**dict(cfg, steps_offset=0))
    hooks = place_models(unet, vae, text_encoder, device, dtype, runtime)
    return DiffusionModels(unet, vae, text_encoder, tokenizer, scheduler, Path("<sd2-depth config>"),
                           "sd2-depth-architecture", "random", device, dtype, hooks)


def synthetic_photo(size):
    import numpy as np

    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.3 + 0.4 * xx, 0.4 + 0.2 * yy, 0.5 + 0.2 * np.sin(8 * xx)], -1).astype(np.float32)
    mask = (np.abs(xx - 0.4) < 0.15) & (np.abs(yy - 0.55) < 0.2)
    image[mask] = [0.9, 0.2, 0.1]
    depth = np.where(mask, 1.5, 3.0 - 0.5 * yy).astype(np.float32)
    return image, depth, mask


def trajectory(frames):
    import numpy as np

    out = []
    for k in range(frames):
        T = np.eye(4)
        T[0, 3] = 0.05 * (k + 1)
        out.append(T)
    return out


def run_config(name, settings, runtime, device, dtype, frames, resolution, backbone="sd2-depth"):
    import torch

    from ..pipeline import Engine

    t0 = time.perf_counter()
    if backbone == "sd2-depth":
        models = build_sd2_depth_models(device, dtype, runtime)
    else:
        from ..diffusion.architectures import build_models

        models = build_models(backbone, device, dtype, runtime)
    build_s = time.perf_counter() - t0
    engine = Engine.from_models(models, settings, runtime)
    image, depth, mask = synthetic_photo(resolution)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    prepared = engine.prepare(image, "a red box in front of a wall", depth, mask)
    prepare_s = time.perf_counter() - t0
    c_prep = dict(engine.counts)
    t0 = time.perf_counter()
    results = engine.edit(prepared, trajectory(frames))
    if device.type == "cuda":
        torch.cuda.synchronize()
    edit_s = time.perf_counter() - t0
    counts = engine.counts
    edit_counts = {k: counts[k] - c_prep[k] for k in counts}
    # a backward pass costs about two forwards: "UNet-forward equivalents" = fwd + 2 * bwd
    equiv_prep = c_prep["unet_forward"] + 2 * c_prep["unet_backward"]
    equiv_edit = edit_counts["unet_forward"] + 2 * edit_counts["unet_backward"]
    row = {
        "config": name, "options": {k: v for k, v in runtime.to_dict().items() if v is True},
        "dtype": str(dtype), "inversion": settings.inversion, "steps": settings.steps,
        "guided_steps": settings.guided_steps, "opt_iterations": settings.opt_iterations,
        "frame_batch_size": runtime.frame_batch_size, "build_seconds": build_s,
        "prepare_seconds": prepare_s, "prepare_stages": prepared.report["seconds"],
        "prepare_unet_forward": c_prep["unet_forward"], "prepare_unet_backward": c_prep["unet_backward"],
        "edit_seconds": edit_s, "edit_seconds_per_frame": edit_s / frames,
        "edit_unet_forward": edit_counts["unet_forward"], "edit_unet_backward": edit_counts["unet_backward"],
        "edit_unet_equivalents_per_frame": equiv_edit / frames,
        "edit_unet_equivalents_per_frame_at_50_steps": cost_at_50(name, settings),
        "seconds_per_unet_equivalent": (prepare_s + edit_s) / max(1, equiv_prep + equiv_edit),
        "prepare_peak_memory_bytes": prepared.report["peak_memory_bytes"],
        "edit_peak_memory_bytes": max(r.stats.peak_memory_bytes for r in results),
        "activation_cache_bytes": sum(a.numel() * a.element_size() for a in prepared.references.values()),
    }
    engine.free()
    del models, engine
    return row


def cost_at_50(name, settings) -> int:
    """Per-frame UNet-forward equivalents of configuration ``name`` (a CONFIGS entry) at the
    release's 50 steps, whatever steps ``settings`` (the run's) have: the bench's
    "edit_unet_equivalents_per_frame_at_50_steps", comparable across runs."""
    from ..settings import EditSettings

    s = (EditSettings() if name.startswith("release") else
         EditSettings.preset(name.split("+")[0])).replace(inversion=settings.inversion)
    return s.unet_cost(cfg_pair=settings.inversion != "negative-prompt")["unet_equivalents"]


def bench_settings(args) -> dict:
    """{config: (EditSettings, RuntimeOptions, dtype)} at the run's resolution and step count."""
    import torch

    from ..devices import resolve_device, resolve_dtype
    from ..settings import EditSettings, RuntimeOptions

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)

    def scaled(s):
        return s.with_steps(max(1, round(s.steps * args.steps / 50))).replace(resolution=args.resolution)

    batched = RuntimeOptions(device=str(device), frame_batch_size=args.frames)
    return {
        "release": (scaled(EditSettings(inversion="null-text", cache_activations_fp16=False)),
                    RuntimeOptions(device=str(device), dtype="fp32", frame_batch_size=1), torch.float32),
        **{name: (scaled(EditSettings.preset(name)), batched, dtype) for name in CONFIGS[1:]},
    }, device


def bench_geometry(size, frames=4) -> dict:
    """Seconds of the lifted scene at size x size: the one-off build (completion, meshes) and,
    per frame, an object move and a camera move at full resolution (with the edited depth) and
    the guidance's 64x64 grid; plus the import's background fills (colour and depth)."""
    import numpy as np

    from ..camera import Camera
    from ..lifted import LiftedScene
    from ..perception.removal import fill_background
    from ..transforms import FrameEdit

    cam = Camera(size, size)
    u, v = cam.pixel_centres()
    floor = 1.2 * cam.focal / np.maximum(v - size / 2, 1e-9)
    depth = np.where((v > size / 2) & (floor < 6.0), floor, 6.0)
    mask = (np.abs(u - 0.5 * size) < 0.15 * size) & (v > 0.45 * size) & (v < 0.85 * size)
    depth[mask] = 2.5
    image = np.clip(np.stack([u, v, u + v], -1) / (2 * size), 0, 1).astype(np.float32)

    def timed(fn):
        t0 = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t0

    _, fills = timed(lambda: fill_background(image, depth, mask))
    scene, build = timed(lambda: LiftedScene.build(depth, mask))
    move = np.eye(4)
    orbit = np.eye(4)
    a = np.radians(3.0)
    orbit[:3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
    per = {"object_move": [], "object_move_64": [], "camera_move": []}
    for k in range(frames):
        move[0, 3] = 0.05 * (k + 1)
        per["object_move"].append(timed(lambda: scene.frame(move))[1])
        per["object_move_64"].append(timed(lambda: scene.frame(move, (64, 64), edited_depth=False))[1])
        per["camera_move"].append(timed(lambda: scene.frame(FrameEdit((np.eye(4),), orbit)))[1])
    return {"size": size, "import_fills_s": fills, "lifted_scene_build_s": build,
            "build_parts_s": dict(scene.timings),
            "per_frame_s": {k: float(np.median(x)) for k, x in per.items()}}


def run(args) -> int:
    if getattr(args, "geometry", False):
        result = bench_geometry(args.resolution, args.frames)
        print(json.dumps(result, indent=1))
        if args.out:
            from ..io import atomic_output

            with atomic_output(args.out) as tmp:
                tmp.write_text(json.dumps(result, indent=1))
        return 0
    import torch

    configs, device = bench_settings(args)
    rows = []
    for name in args.configs:
        s, rt, dt = configs[name]
        rows.append(run_config(name, s, rt, device, dt, args.frames, args.resolution, args.backbone))
        _print_row(rows[-1])
    if args.memory_options:
        for name in ("default", "fast"):
            s, rt, dt = configs[name]
            for opt in rt.MEMORY_OPTIONS:
                rows.append(run_config(f"{name}+{opt}", s, rt.replace(**{opt: True}), device, dt,
                                       args.frames, args.resolution, args.backbone))
                _print_row(rows[-1])
    by = {r["config"]: r for r in rows}
    summary = {}
    if "release" in by:
        r = by["release"]
        for name in CONFIGS[1:]:
            if name in by:
                f = by[name]
                summary[name] = {
                    "prepare_speedup": r["prepare_seconds"] / f["prepare_seconds"],
                    "edit_speedup_per_frame": r["edit_seconds_per_frame"] / f["edit_seconds_per_frame"],
                    "unet_equivalents_ratio_per_frame": f["edit_unet_equivalents_per_frame"] /
                                                        r["edit_unet_equivalents_per_frame"],
                    "unet_equivalents_ratio_per_frame_at_50_steps":
                        f["edit_unet_equivalents_per_frame_at_50_steps"] /
                        r["edit_unet_equivalents_per_frame_at_50_steps"]}
                v = summary[name]
                print(f"{name} / release per frame: UNet-eq {v['unet_equivalents_ratio_per_frame']:.2f} "
                      f"(at 512x512 / 50 steps: {f['edit_unet_equivalents_per_frame_at_50_steps']} / "
                      f"{r['edit_unet_equivalents_per_frame_at_50_steps']} = "
                      f"{v['unet_equivalents_ratio_per_frame_at_50_steps']:.2f}), seconds "
                      f"{1 / v['edit_speedup_per_frame']:.2f}; prepare {v['prepare_speedup']:.2f}x faster", flush=True)
    result = {"machine": {"device": str(device), "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
                          "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                          "torch": torch.__version__, "python": platform.python_version()},
              "backbone": args.backbone,
              "resolution": args.resolution, "release_steps": args.steps, "frames": args.frames,
              "rows": rows, "summary": summary}
    if args.out:
        from ..io import atomic_output

        with atomic_output(args.out) as tmp:
            Path(tmp).write_text(json.dumps(result, indent=1))
    return 0


def _print_row(r):
    print(f"{r['config']:<30} prepare {r['prepare_seconds']:8.1f} s ({r['prepare_unet_forward']} fwd, "
          f"{r['prepare_unet_backward']} bwd)  edit/frame {r['edit_seconds_per_frame']:8.2f} s "
          f"{r['edit_unet_equivalents_per_frame']:6.1f} UNet-eq ({r['edit_unet_equivalents_per_frame_at_50_steps']} "
          f"at 50 steps)  {r['seconds_per_unet_equivalent']:.3f} s/UNet-eq  peak prepare "
          f"{r['prepare_peak_memory_bytes'] / 2**30:.2f} GiB edit {r['edit_peak_memory_bytes'] / 2**30:.2f} GiB  "
          f"refs {r['activation_cache_bytes'] / 2**20:.1f} MiB", flush=True)
