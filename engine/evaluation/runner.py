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
from .report import contact_sheet, summarise, write_json, write_markdown
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
    baseline_energy: bool = False  # no-guidance baseline with zero weights (energies recorded, slower)
    settings_overrides: dict = field(default_factory=dict)  # any EditSettings field, for ablations
    cache_dir: Path | None = None  # reuse prepared input photos (keyed by content and prepare settings)
    preset: str = "default"  # the method's schedule (EditSettings.preset)
    compare_presets: tuple = ()  # other presets run side by side as methods "preset:<name>"
    backbone: str = "sd2-depth"  # engine.diffusion.backbones


# ---------------------------------------------------------------------------------------------
# engine access (the only place that knows the pipeline's API)

def eval_settings(cfg: EvalConfig, scene: Scene | None = None, preset: str | None = None):
    """The settings an evaluation runs ``scene`` with: those of ``preset`` (default: cfg.preset)
    with the config's options (at the scene's own resolution unless cfg.resolution is given); the
    --set overrides apply to the method's own preset only, not to the presets compared with it."""
    from ..settings import EditSettings

    s = EditSettings.preset(preset or cfg.preset)
    changes = {name: getattr(cfg, name) for name in ("inversion", "seed", "resolution")
               if getattr(cfg, name) is not None}
    if cfg.resolution is None and scene is not None:
        changes["resolution"] = max(scene.shape)  # evaluate at the scenes' own resolution
    s = s.replace(**changes)
    if cfg.steps is not None or cfg.guided_steps is not None:
        s = s.with_steps(cfg.steps if cfg.steps is not None else s.steps, cfg.guided_steps)
    if cfg.settings_overrides and preset is None:
        s = s.replace(**cfg.settings_overrides)
    return s


def no_guidance_settings(settings, measure_energy: bool = False):
    """The same settings with guidance switched off, everything else (noise, null embeddings,
    edited depth, CFG) unchanged: no optimisation iterations on the latents, or, with
    ``measure_energy``, the iterations run with zero weights (the latents do not move, the same
    image comes out, and the energies are recorded for comparison, at the cost of the
    forward/backward passes); nor the local background (the edited depth alone)."""
    if measure_energy:
        return settings.replace(weight_scale=0.0, background="paper")
    return settings.replace(opt_iterations=0, background="paper")


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
    """An image (smooth) or a mask (nearest) at the scene's size, with the engine's resize helpers."""
    from ..images import resize_image, resize_nearest

    if a is None or a.shape[:2] == tuple(shape):
        return a
    return resize_image(a, shape) if kind == "image" else resize_nearest(a, shape)


class _Stage:
    """Accumulates seconds and the engine's UNet forward/backward counts for one named stage."""

    def __init__(self, costs: dict, name: str, runner: "EngineRunner", frames: int = 1):
        self.costs, self.name, self.runner, self.frames = costs, name, runner, frames

    def __enter__(self):
        self.counts0 = self.runner.counts()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            return False
        seconds = time.perf_counter() - self.t0
        counts = self.runner.counts()
        c = self.costs.setdefault(self.name, {"calls": 0, "frames": 0, "seconds": 0.0, "unet_forward": 0,
                                              "unet_backward": 0})
        c["calls"] += 1
        c["frames"] += self.frames
        c["seconds"] += seconds
        for k in ("unet_forward", "unet_backward"):
            c[k] += counts.get(k, 0) - self.counts0.get(k, 0)
        return False


def _per_call(costs: dict) -> dict:
    """Per frame for edits (a call edits a batch of frames), per photo for prepares."""
    out = {}
    for stage, c in costs.items():
        n = max(1, c["frames"])
        out[stage] = {"calls": c["calls"], "frames": c["frames"], "seconds": c["seconds"] / n,
                      "unet_forward": c["unet_forward"] / n, "unet_backward": c["unet_backward"] / n}
    return out


class EngineRunner:
    """Thin adapter around ``engine.pipeline.Engine`` for the evaluation: one engine with the
    method's settings and a second one, sharing the loaded models, with guidance switched off."""

    def __init__(self, cfg: EvalConfig, settings):
        from ..pipeline import Engine
        from ..settings import RuntimeOptions

        self.settings = settings
        self.ng_settings = no_guidance_settings(settings, cfg.baseline_energy)
        self.engine = Engine(models_dir=cfg.models_dir, model_overrides=cfg.model_overrides or None,
                             settings=settings, runtime=RuntimeOptions(device=cfg.device, dtype=cfg.dtype),
                             backbone=cfg.backbone)
        self.engine.load()

    def counts(self) -> dict:
        return dict(self.engine.counts)

    def prepare(self, image, prompt, depth, mask, background_depth=None, cache_dir=None, settings=None):
        return self.engine.prepare(image, prompt, depth, mask, background_depth=background_depth,
                                   cache_dir=cache_dir, settings=settings)

    def edit(self, prepared, transforms, guided: bool = True, settings=None):
        """Edit with ``settings`` (default: the method's, or without guidance when not ``guided``);
        transforms: FrameEdits or 4x4 matrices."""
        s = settings or (self.settings if guided else self.ng_settings)
        return self.engine.edit(prepared, list(transforms), settings=s)


# ---------------------------------------------------------------------------------------------

def _save_png(path: Path, a: np.ndarray) -> None:
    from PIL import Image

    from ..images import to_uint8

    Image.fromarray(to_uint8(a)).save(path)


def _gt_metrics(image: np.ndarray, frame, object_mask: np.ndarray) -> dict:
    """L1 / PSNR to the true render: over the image, inside the true moved object, and outside
    the object regions (neither the input's object nor the true moved one: the background)."""
    out = {"gt_l1": None, "gt_psnr": None, "gt_l1_object": None, "gt_psnr_object": None,
           "gt_l1_outside": None}
    if frame.gt_image is None:
        return out
    out["gt_l1"] = metrics.l1(image, frame.gt_image)
    out["gt_psnr"] = metrics.psnr(image, frame.gt_image)
    if frame.gt_true is not None and frame.gt_true.any():
        out["gt_l1_object"] = metrics.l1(image, frame.gt_image, frame.gt_true)
        out["gt_psnr_object"] = metrics.psnr(image, frame.gt_image, frame.gt_true)
        out["gt_l1_outside"] = metrics.l1(image, frame.gt_image, ~(frame.gt_true | object_mask))
    return out


def _adherence(segmenter, image, prompt, frame) -> tuple[dict, np.ndarray]:
    mask = segmenter.segment(image, prompt)
    out = {"adherence_iou": None, "centroid_error_px": None}
    if frame.gt_true is not None:
        out["adherence_iou"] = metrics.iou(mask, frame.gt_true)
        out["centroid_error_px"] = metrics.centroid_distance(mask, frame.gt_true)
    return out, mask


def energy_summary(stats) -> dict:
    """The report's energies of one frame (its ``FrameStats``): foreground / background energy
    (unweighted, summed over the guided layers) at the first and the last guided step, first
    iteration (before that step's own updates); {} for a frame without guidance iterations."""
    trace = stats.energy
    out = {}
    if not trace:
        return out
    first_step, last_step = trace[0]["step"], trace[-1]["step"]
    for name, step in (("first", first_step), ("last", last_step)):
        rows = [e for e in trace if e["step"] == step and e["iteration"] == 0]
        if rows:
            parts = rows[0]["parts"].values()
            out[f"fg_energy_{name}_guided_step"] = float(sum(p[0] for p in parts))
            out[f"bg_energy_{name}_guided_step"] = float(sum(p[1] for p in parts))
    return out


def _scene_masks(scene: Scene):
    """The photo's object mask(s) as prepare takes them: one per object (the method and every
    compared preset alike, so a scene's multi-object transforms fit each of them)."""
    return scene.mask if scene.masks is None else scene.masks


def evaluate_scene(scene: Scene, runner: EngineRunner, cfg: EvalConfig, out_dir: Path | None,
                   lpips_ok: bool) -> tuple[dict, list]:
    h, w = scene.shape
    costs: dict = {}
    frames = scene.frames[: cfg.frames] if cfg.frames else scene.frames
    mats = [f.transform for f in frames]
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    save = out_dir is not None and cfg.save_images

    cache = None if cfg.cache_dir is None else Path(cfg.cache_dir) / scene.name
    with _Stage(costs, "prepare" if cache is None else "prepare (or load from --cache)", runner):
        prepared = runner.prepare(scene.image, scene.prompt, scene.depth, _scene_masks(scene), cache_dir=cache)
    recon = _resize_to(_image01(prepared.reconstruction), (h, w), "image")
    # the segmenter knows the object's colours in the photo AND in the model's reconstruction
    segmenter, seg_note = make_segmenter(cfg.segmenter, scene.image, scene.mask, extra_references=[recon],
                                         models_dir=cfg.models_dir, model_overrides=cfg.model_overrides,
                                         device=cfg.device)
    scene_row = {"name": scene.name, "prompt": scene.prompt, "segmenter": seg_note,
                 "working_size": list(prepared.size),
                 "reconstruction": {"l1": metrics.l1(recon, scene.image), "psnr": metrics.psnr(recon, scene.image),
                                    "segmenter_iou": metrics.iou(segmenter.segment(recon, scene.prompt), scene.mask)},
                 "frames": []}
    with _Stage(costs, "edit (guided)", runner, frames=len(mats)):
        edits = runner.edit(prepared, mats, guided=True)
    with _Stage(costs, "edit (no guidance)", runner, frames=len(mats)):
        plain = runner.edit(prepared, mats, guided=False)
    bg_depth = prepared.background_depth  # the static scene does not change: reuse it in the cycle
    compared = {}  # other presets side by side: their own prepare (cached apart) and edit
    for name in cfg.compare_presets:
        ps = eval_settings(cfg, scene, name)
        pcache = None if cache is None else cache.with_name(f"{scene.name}-preset-{name}")
        with _Stage(costs, f"prepare (preset {name})", runner):
            pp = runner.prepare(scene.image, scene.prompt, scene.depth, _scene_masks(scene), cache_dir=pcache,
                                settings=ps)
        with _Stage(costs, f"edit (preset {name})", runner, frames=len(mats)):
            compared[f"preset:{name}"] = runner.edit(pp, mats, settings=ps)

    # the weightless geometric preview (engine.preview): the photo's pixels moved, no model
    from ..preview import preview_frame

    previews = [_Image(preview_frame(prepared.image, prepared.scene.frame(e)))
                for e in runner.engine.check_frames(prepared, mats)]
    sheet_rows = []
    previous = None  # (frame, {method: image}) of the previous frame, for the flicker
    for n_frame, (frame, res_g, res_n) in enumerate(zip(frames, edits, plain)):
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
            if save:
                _save_png(out_dir / f"segmented_truth_{tag}.png", ceiling_mask)
        images = {}
        runs = [("edit", res_g), ("no_guidance", res_n)] + [(k, v[n_frame]) for k, v in compared.items()]
        runs.append(("preview", previews[n_frame]))
        for method, res in runs:
            img = _resize_to(_image01(res.image), (h, w), "image")
            images[method] = img
            m, seg = _adherence(segmenter, img, scene.prompt, frame)
            m.update(_gt_metrics(img, frame, scene.mask))
            if res.stats is not None:
                m.update(energy_summary(res.stats))
            m["flicker"] = _flicker(img, frame, method, previous)
            if (cfg.cycle and method in ("edit", "no_guidance") and len(frame.transform.objects) == 1
                    and not frame.transform.moves_camera):
                stage = "cycle " + ("(guided)" if method == "edit" else "(no guidance)")
                with _Stage(costs, stage + " prepare", runner):
                    p2 = runner.prepare(np.clip(np.asarray(res.image, np.float32), 0, 1), scene.prompt,
                                        np.asarray(res.edited_depth, np.float32),
                                        np.asarray(res.target_mask, bool),
                                        background_depth=bg_depth)
                with _Stage(costs, stage + " edit back", runner):
                    back = runner.edit(p2, [np.linalg.inv(frame.transform)], guided=(method == "edit"))[0]
                back_img = _resize_to(_image01(back.image), (h, w), "image")
                m["cycle_l1"] = metrics.l1(back_img, scene.image)
                m["cycle_lpips"] = metrics.lpips(back_img, scene.image) if lpips_ok else None
                if save:
                    _save_png(out_dir / f"cycle_{method}_{tag}.png", back_img)
            row["methods"][method] = m
            if save:
                _save_png(out_dir / f"{method.replace(':', '_')}_{tag}.png", img)
                _save_png(out_dir / f"segmented_{method.replace(':', '_')}_{tag}.png", seg)
        # baseline: nothing moved (the input itself; its cycle gives back the input exactly)
        m, seg = _adherence(segmenter, scene.image, scene.prompt, frame)
        m.update(_gt_metrics(scene.image, frame, scene.mask))
        images["nothing_moved"] = scene.image
        m["flicker"] = _flicker(scene.image, frame, "nothing_moved", previous)
        previous = (frame, images)
        m["cycle_l1"] = 0.0 if cfg.cycle else None
        m["cycle_lpips"] = 0.0 if (cfg.cycle and lpips_ok) else None
        row["methods"]["nothing_moved"] = m
        if save:
            _save_png(out_dir / f"target_mask_{tag}.png", target)
            _save_png(out_dir / f"edited_depth_{tag}.png", _depth_vis(res_g.edited_depth))
        scene_row["frames"].append(row)
        sheet_rows.append((f"{scene.name}\nframe {tag}",
                           [scene.image, recon, images["no_guidance"], images["edit"], frame.gt_image]))
    if save:
        _save_png(out_dir / "reconstruction.png", recon)
    scene_row["costs"] = _per_call(costs)
    return scene_row, sheet_rows


@dataclass
class _Image:
    """A frame made without the engine's edit (the preview): an image and no stats."""

    image: np.ndarray
    stats: object = None


def _flicker(image, frame, method, previous):
    """`metrics.flicker` of this frame against the scene's previous frame (None for the first
    frame or without true renders)."""
    if previous is None or frame.gt_image is None or previous[0].gt_image is None:
        return None
    return metrics.flicker(image, previous[1][method], frame.gt_image, previous[0].gt_image)


def _depth_vis(depth) -> np.ndarray:
    d = 1.0 / np.asarray(depth, np.float64)
    d = (d - d.min()) / max(d.max() - d.min(), 1e-12)
    return np.repeat(d[..., None], 3, -1).astype(np.float32)


def evaluate(cfg: EvalConfig, progress=None) -> dict:
    """Run the evaluation and write ``report.json``, ``report.md`` and ``contact_sheet.png`` under
    ``cfg.out``. Returns the report dictionary."""
    paths = find_scenes(cfg.scenes)
    if cfg.limit is not None:
        if cfg.limit < 1:
            raise InputError(f"--limit {cfg.limit}: must be at least 1")
        paths = paths[: cfg.limit]
    scenes = [load_scene(p) for p in paths]  # every input is checked before any work starts
    for scene in scenes:  # a scene's caption is optional to load, but the diffusion model needs one
        if not scene.prompt:
            raise InputError(f"scene prompt.txt {str(scene.path / 'prompt.txt')!r}: missing or empty; the "
                             f"evaluation needs a caption of the photo (one line)")
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
        settings = eval_settings(cfg, scene)
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
            "scenes": str(cfg.scenes), "models": cfg.models_dir or "registry defaults", "backbone": cfg.backbone,
            "model_overrides": cfg.model_overrides, "steps": settings.steps, "inversion": settings.inversion,
            "guided_steps": settings.guided_steps, "resolution": settings.resolution,
            "device": cfg.device, "dtype": cfg.dtype, "seed": settings.seed, "cycle": cfg.cycle,
            "no_guidance": ("the same settings with weight_scale=0 (energies recorded, latents unchanged)"
                            if cfg.baseline_energy else "the same settings with opt_iterations=0 (no latent "
                            "optimisation)") + "; same prepared photo, noise, null embeddings and edited depth",
            "settings_overrides": cfg.settings_overrides, "preset": cfg.preset,
            "compare_presets": {name: eval_settings(cfg, None, name).to_dict() for name in cfg.compare_presets},
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


def rescore(cfg: EvalConfig, progress=None) -> dict:
    """Recompute the adherence metrics of an existing ``cfg.out`` (its saved frames and
    reconstructions) with the current segmenter, without running the model again; rewrites
    report.json and report.md. For segmenter changes only: every other number is kept."""
    import json

    from PIL import Image

    out = Path(cfg.out)
    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"--rescore: {str(out / 'report.json')!r} cannot be read ({exc})") from None

    def read(p):
        return np.asarray(Image.open(p).convert("RGB"), np.float32) / 255.0

    root = Path(report["config"]["scenes"])
    for row in report["scenes"]:
        scene = load_scene(root / row["name"] if (root / row["name"]).is_dir() else root)
        d = out / row["name"]
        recon = read(d / "reconstruction.png")
        seg, note = make_segmenter(cfg.segmenter, scene.image, scene.mask, extra_references=[recon],
                                   models_dir=cfg.models_dir, model_overrides=cfg.model_overrides)
        row["segmenter"] = note
        row["reconstruction"]["segmenter_iou"] = metrics.iou(seg.segment(recon, scene.prompt), scene.mask)
        frames = {f.tag: f for f in scene.frames}
        for fr in row["frames"]:
            frame = frames[fr["frame"]]
            if frame.gt_image is not None and frame.gt_true is not None:
                fr["segmenter_ceiling_iou"] = metrics.iou(seg.segment(frame.gt_image, scene.prompt), frame.gt_true)
            for method, m in fr["methods"].items():
                img = scene.image if method == "nothing_moved" else read(d / f"{method.replace(':', '_')}_{frame.tag}.png")
                a, _ = _adherence(seg, img, scene.prompt, frame)
                m.update(a)
        if progress:
            progress(f"rescored {row['name']}")
    report["segmenter"] = report["scenes"][0]["segmenter"] if report["scenes"] else cfg.segmenter
    report["summary"] = summarise(report["scenes"])
    report["rescored"] = True
    write_json(report, out / "report.json")
    write_markdown(report, out / "report.md")
    return report
