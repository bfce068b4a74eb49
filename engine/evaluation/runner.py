"""The evaluation loop: for every scene, prepare + edit every frame, the two baselines, the cycle.

Per scene (all in one process, same settings, same inverted noise):

1. ``prepare`` the photo (inversion + reference activations);
2. the reconstruction: an identity edit (what the inversion gives back; also checks that an
   identity transform reproduces it);
3. ``edit`` every frame with guidance (the method) and without guidance (the same prepared photo,
   the same noise and edited depth, zero guidance iterations): the "no guidance" baseline;
4. the paper's cycle consistency (supplement S2, Eq. 10) for both: prepare the edited frame with
   its edited depth and target mask, edit it back with T^-1 (same method), L1 to the input;
5. metrics against the ground truth: adherence IoU(segmenter(frame), gt_true_K) and the
   segmenter's ceiling (segmenter(gt_image_K) vs gt_true_K), L1/PSNR to gt_image_K over the image
   and inside gt_true_K; the same for "nothing moved" (the input itself, whose cycle is exact).

Costs (seconds, UNet forward/backward evaluations) are recorded per stage.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import metrics
from .report import METHODS, SHEET_COLUMNS, contact_sheet, summarise, write_json, write_markdown
from .scenes import Scene, find_scenes, load_scene
from .segmenters import make_segmenter

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    scenes: Path
    out: Path
    models_dir: str | None = None
    model_overrides: dict = field(default_factory=dict)
    steps: int | None = None
    inversion: str | None = None
    resolution: int | None = None
    guided_steps: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    seed: int | None = None
    limit: int | None = None
    frames: int | None = None
    segmenter: str = "auto"
    cycle: bool = True
    save_images: bool = True


# ---------------------------------------------------------------------------------------------
# engine access (the only place that knows the pipeline's API)

def _settings(cfg: EvalConfig, scene: Scene | None = None):
    from ..settings import EditSettings

    changes = {}
    for name in ("steps", "inversion", "guided_steps", "seed", "resolution"):
        value = getattr(cfg, name)
        if value is not None:
            changes[name] = value
    if cfg.guided_steps is None and cfg.steps is not None:
        # keep the release's proportion of guided steps (38 of 50) at other step counts
        base = EditSettings()
        changes["guided_steps"] = min(cfg.steps, round(base.guided_steps * cfg.steps / base.steps))
    if cfg.resolution is None and scene is not None:
        changes["resolution"] = max(scene.shape)  # evaluate at the scenes' own resolution
    changes["device"], changes["dtype"] = cfg.device, cfg.dtype
    return EditSettings().replace(**changes)


def no_guidance_settings(settings):
    """The same settings with guidance switched off: no optimisation iterations on the latents,
    everything else (noise, null embeddings, edited depth, CFG) unchanged."""
    return settings.replace(opt_iterations=0)


def _stat_counts(stats: dict | None) -> dict:
    """UNet forward/backward counts from a stats dict, whatever the exact key names."""
    out = {"unet_forward": None, "unet_backward": None}
    for k, v in (stats or {}).items():
        if not isinstance(v, (int, float)):
            continue
        kl = k.lower()
        if "unet" in kl and "forward" in kl:
            out["unet_forward"] = (out["unet_forward"] or 0) + v
        elif "unet" in kl and "backward" in kl:
            out["unet_backward"] = (out["unet_backward"] or 0) + v
    return out


def _image01(x) -> np.ndarray:
    a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    a = np.asarray(a, np.float32)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype == np.uint8 or a.max() > 1.5:
        a = a / 255.0
    return np.clip(a, 0.0, 1.0)


def _as_np(x):
    if x is None:
        return None
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _resize_to(a: np.ndarray, shape, kind: str) -> np.ndarray:
    if a is None or a.shape[:2] == tuple(shape):
        return a
    from PIL import Image

    h, w = shape
    if kind == "image":
        im = Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)).resize((w, h), Image.BICUBIC)
        return np.asarray(im, np.float32) / 255.0
    if kind == "mask":
        return np.asarray(Image.fromarray(a.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) >= 128
    return np.asarray(Image.fromarray(a.astype(np.float32)).resize((w, h), Image.BILINEAR))


class _Stage:
    """Accumulates seconds and UNet counts for one named stage."""

    def __init__(self, costs: dict, name: str):
        self.costs, self.name = costs, name

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def add(self, stats_list):
        self._stats = stats_list
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            return False
        c = self.costs.setdefault(self.name, {"calls": 0, "seconds": 0.0, "unet_forward": None, "unet_backward": None})
        c["calls"] += 1
        c["seconds"] += time.perf_counter() - self.t0
        for st in getattr(self, "_stats", []) or []:
            for k, v in _stat_counts(st).items():
                if v is not None:
                    c[k] = (c[k] or 0) + v
        return False


def _per_call(costs: dict) -> dict:
    out = {}
    for stage, c in costs.items():
        n = max(1, c["calls"])
        out[stage] = {"calls": c["calls"], "seconds": c["seconds"] / n,
                      "unet_forward": None if c["unet_forward"] is None else c["unet_forward"] / n,
                      "unet_backward": None if c["unet_backward"] is None else c["unet_backward"] / n}
    return out


class EngineRunner:
    """Thin adapter around ``engine.pipeline.Engine`` for the evaluation."""

    def __init__(self, cfg: EvalConfig, settings):
        from ..pipeline import Engine

        self.settings = settings
        self.ng_settings = no_guidance_settings(settings)
        self.engine = Engine(models_dir=cfg.models_dir, model_overrides=cfg.model_overrides or None,
                             device=cfg.device, dtype=cfg.dtype, settings=settings)
        self.ng_engine = self._with_settings(self.ng_settings)

    def _with_settings(self, settings):
        eng = self.engine
        for name in ("with_settings", "replace_settings"):
            fn = getattr(eng, name, None)
            if callable(fn):
                return fn(settings)
        from ..pipeline import Engine
        import copy

        other = copy.copy(eng)  # shares the loaded models; only the settings differ
        other.settings = settings
        return other

    def prepare(self, image, prompt, depth, mask, background_depth=None):
        return self.engine.prepare(image, prompt, depth, mask, background_depth=background_depth)

    def edit(self, prepared, transforms, guided: bool = True):
        eng = self.engine if guided else self.ng_engine
        return eng.edit(prepared, [np.asarray(t, np.float64) for t in transforms])


# ---------------------------------------------------------------------------------------------

def _save_png(path: Path, a: np.ndarray) -> None:
    from PIL import Image

    if a.dtype == bool:
        im = Image.fromarray(a.astype(np.uint8) * 255)
    else:
        im = Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8))
    im.save(path)


def _gt_metrics(image: np.ndarray, frame) -> dict:
    out = {"gt_l1": None, "gt_psnr": None, "gt_l1_object": None, "gt_psnr_object": None}
    if frame.gt_image is None:
        return out
    out["gt_l1"] = metrics.l1(image, frame.gt_image)
    out["gt_psnr"] = metrics.psnr(image, frame.gt_image)
    if frame.gt_true is not None and frame.gt_true.any():
        out["gt_l1_object"] = metrics.l1(image, frame.gt_image, frame.gt_true)
        out["gt_psnr_object"] = metrics.psnr(image, frame.gt_image, frame.gt_true)
    return out


def _adherence(segmenter, image, prompt, frame) -> tuple[dict, np.ndarray]:
    mask = segmenter.segment(image, prompt)
    out = {"adherence_iou": None, "centroid_error_px": None}
    if frame.gt_true is not None:
        out["adherence_iou"] = metrics.iou(mask, frame.gt_true)
        out["centroid_error_px"] = metrics.centroid_distance(mask, frame.gt_true)
    return out, mask


def evaluate_scene(scene: Scene, runner: EngineRunner, cfg: EvalConfig, out_dir: Path,
                   lpips_ok: bool) -> tuple[dict, list]:
    h, w = scene.shape
    costs: dict = {}
    frames = scene.frames[: cfg.frames] if cfg.frames else scene.frames
    mats = [f.transform for f in frames]
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    segmenter, seg_note = make_segmenter(cfg.segmenter, scene.image, scene.mask, models_dir=cfg.models_dir,
                                         model_overrides=cfg.model_overrides, device=cfg.device)

    with _Stage(costs, "prepare") as st:
        prepared = runner.prepare(scene.image, scene.prompt, scene.depth, scene.mask)
        st.add([getattr(prepared, "stats", None)])
    with _Stage(costs, "reconstruction (identity edit)") as st:
        rec = runner.edit(prepared, [np.eye(4)], guided=True)[0]
        st.add([rec.stats])
    recon = _resize_to(_image01(rec.image), (h, w), "image")
    scene_row = {"name": scene.name, "prompt": scene.prompt, "segmenter": seg_note,
                 "reconstruction": {"l1": metrics.l1(recon, scene.image), "psnr": metrics.psnr(recon, scene.image)},
                 "frames": []}
    with _Stage(costs, "edit (guided)") as st:
        edits = runner.edit(prepared, mats, guided=True)
        st.add([r.stats for r in edits])
    with _Stage(costs, "edit (no guidance)") as st:
        plain = runner.edit(prepared, mats, guided=False)
        st.add([r.stats for r in plain])
    bg_depth = getattr(prepared, "background_depth", None)
    bg_depth = _as_np(bg_depth) if bg_depth is not None else None

    sheet_rows = []
    for frame, res_g, res_n in zip(frames, edits, plain):
        tag = frame.tag
        row: dict = {"frame": tag, "methods": {}}
        target = _resize_to(np.asarray(_as_np(res_g.target_mask), bool), (h, w), "mask")
        if frame.gt_lifted is not None:
            row["target_mask_iou_lifted"] = metrics.iou(target, frame.gt_lifted)
        if frame.gt_true is not None:
            row["target_mask_iou_true"] = metrics.iou(target, frame.gt_true)
        if frame.gt_image is not None and frame.gt_true is not None:
            ceiling_mask = segmenter.segment(frame.gt_image, scene.prompt)
            row["segmenter_ceiling_iou"] = metrics.iou(ceiling_mask, frame.gt_true)
        images = {}
        for method, res in (("edit", res_g), ("no_guidance", res_n)):
            img = _resize_to(_image01(res.image), (h, w), "image")
            images[method] = img
            m, seg = _adherence(segmenter, img, scene.prompt, frame)
            m.update(_gt_metrics(img, frame))
            m["energy"] = {k: v for k, v in (res.stats or {}).items() if "energy" in k.lower()}
            if cfg.cycle:
                stage = "cycle " + ("(guided)" if method == "edit" else "(no guidance)")
                with _Stage(costs, stage + " prepare") as st:
                    p2 = runner.prepare(_image01(res.image), scene.prompt, _as_np(res.edited_depth),
                                        np.asarray(_as_np(res.target_mask), bool), background_depth=bg_depth)
                    st.add([getattr(p2, "stats", None)])
                with _Stage(costs, stage + " edit back") as st:
                    back = runner.edit(p2, [np.linalg.inv(frame.transform)], guided=(method == "edit"))[0]
                    st.add([back.stats])
                back_img = _resize_to(_image01(back.image), (h, w), "image")
                m["cycle_l1"] = metrics.l1(back_img, scene.image)
                m["cycle_lpips"] = metrics.lpips(back_img, scene.image) if lpips_ok else None
                if out_dir is not None and cfg.save_images:
                    _save_png(out_dir / f"cycle_{method}_{tag}.png", back_img)
            row["methods"][method] = m
            if out_dir is not None and cfg.save_images:
                _save_png(out_dir / f"{method}_{tag}.png", img)
                _save_png(out_dir / f"segmented_{method}_{tag}.png", seg)
        # baseline: nothing moved (the input itself; its cycle is the input, exactly)
        m, seg = _adherence(segmenter, scene.image, scene.prompt, frame)
        m.update(_gt_metrics(scene.image, frame))
        m["cycle_l1"] = 0.0 if cfg.cycle else None
        m["cycle_lpips"] = 0.0 if (cfg.cycle and lpips_ok) else None
        row["methods"]["nothing_moved"] = m
        if out_dir is not None and cfg.save_images:
            _save_png(out_dir / f"target_mask_{tag}.png", target)
        scene_row["frames"].append(row)
        sheet_rows.append((f"{scene.name}\nframe {tag}",
                           [scene.image, recon, images["no_guidance"], images["edit"], frame.gt_image]))
    if out_dir is not None and cfg.save_images:
        _save_png(out_dir / "reconstruction.png", recon)
    scene_row["costs"] = _per_call(costs)
    return scene_row, sheet_rows


def evaluate(cfg: EvalConfig, progress=None) -> dict:
    """Run the evaluation and write ``report.json``, ``report.md`` and ``contact_sheet.png`` under
    ``cfg.out``. Returns the report dictionary."""
    paths = find_scenes(cfg.scenes)
    if cfg.limit is not None:
        if cfg.limit < 1:
            raise InputError(f"--limit {cfg.limit}: must be at least 1")
        paths = paths[: cfg.limit]
    scenes = [load_scene(p) for p in paths]  # every input is checked before any work starts
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    lpips_ok, lpips_note = metrics.lpips_status()
    t0 = time.perf_counter()
    runner = None
    runner_key = None
    scene_rows, sheet_rows = [], []
    settings = None
    for n, scene in enumerate(scenes, start=1):
        if progress:
            progress(f"[{n}/{len(scenes)}] {scene.name}: {len(scene.frames[: cfg.frames] if cfg.frames else scene.frames)} frame(s)")
        settings = _settings(cfg, scene)
        if runner is None or runner_key != settings:
            runner = EngineRunner(cfg, settings)
            runner_key = settings
        row, sheet = evaluate_scene(scene, runner, cfg, out / scene.name, lpips_ok)
        scene_rows.append(row)
        sheet_rows += sheet
        if progress:
            f = row["frames"]
            progress("   " + "; ".join(
                f"frame {r['frame']}: IoU edit {r['methods']['edit']['adherence_iou']:.3f} "
                f"no-guid {r['methods']['no_guidance']['adherence_iou']:.3f} "
                f"nothing {r['methods']['nothing_moved']['adherence_iou']:.3f}"
                for r in f if r['methods']['edit'].get('adherence_iou') is not None))
    report = {
        "config": {
            "scenes": str(cfg.scenes), "models": cfg.models_dir or "registry defaults",
            "model_overrides": cfg.model_overrides, "steps": settings.steps, "inversion": settings.inversion,
            "guided_steps": settings.guided_steps, "resolution": settings.resolution,
            "device": cfg.device, "dtype": cfg.dtype, "seed": settings.seed, "cycle": cfg.cycle,
            "no_guidance": "the same settings with opt_iterations=0 (no latent optimisation), same "
                           "prepared photo, noise, null embeddings and edited depth",
            "settings": settings.to_dict(),
        },
        "segmenter": scene_rows[0]["segmenter"] if scene_rows else cfg.segmenter,
        "lpips": {"available": lpips_ok, "note": lpips_note},
        "scenes": scene_rows,
    }
    report["summary"] = summarise(scene_rows)
    report["seconds"] = time.perf_counter() - t0
    write_json(report, out / "report.json")
    write_markdown(report, out / "report.md")
    if sheet_rows:
        contact_sheet(sheet_rows, path=out / "contact_sheet.png")
    return report
