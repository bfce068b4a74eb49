"""Writing an evaluation: ``report.json``, ``report.md`` (Markdown tables) and a contact sheet.

The report dictionary (built by :mod:`.runner`) has ``config``, ``segmenter``, ``scenes`` (per
scene: costs and per-frame rows) and ``summary`` (per method: means over all frames). JSON has no
infinity: an infinite PSNR (identical images) is written as ``null`` with the key listed in
``"infinite"`` of its row.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

METHODS = ("edit", "no_guidance", "nothing_moved")
METHOD_LABELS = {"edit": "edit (guided)", "no_guidance": "no guidance (edited depth only)",
                 "nothing_moved": "nothing moved (input)",
                 "preview": "weightless preview (photo warped, no model)"}

# (key, header, format, better) for the per-method metrics, in table order
METRIC_COLUMNS = (
    ("adherence_iou", "adherence IoU", "{:.3f}", "higher"),
    ("centroid_error_px", "centroid err px", "{:.1f}", "lower"),
    ("cycle_l1", "cycle L1", "{:.4f}", "lower"),
    ("cycle_lpips", "cycle LPIPS", "{:.3f}", "lower"),
    ("gt_l1", "L1 to truth", "{:.4f}", "lower"),
    ("gt_psnr", "PSNR to truth", "{:.2f}", "higher"),
    ("gt_l1_object", "L1 in true obj", "{:.4f}", "lower"),
    ("gt_psnr_object", "PSNR in true obj", "{:.2f}", "higher"),
    ("gt_l1_outside", "L1 to truth outside objs", "{:.4f}", "lower"),
    ("fg_energy_last_guided_step", "fg energy, last guided step", "{:.4f}", "lower"),
    # frame k against frame k-1 of the same scene (none for a scene's first frame): on scenes whose
    # frames are one move, how far the frame-to-frame change departs from the true change
    ("flicker", "flicker vs truth", "{:.4f}", "lower"),
)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _atomic_write(path: Path, data: bytes) -> None:
    from ..output import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_json(report: dict, path: Path) -> None:
    _atomic_write(Path(path), (json.dumps(_json_safe(report), indent=1, sort_keys=False) + "\n").encode())


def _fmt(value, fmt: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return fmt.format(value)


def mean_of(values) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None
    if any(isinstance(v, float) and math.isinf(v) for v in vals):
        return math.inf
    return float(np.mean(vals))


def _methods(frames) -> tuple:
    """METHODS, then any other method the frames have (presets compared side by side)."""
    extra = sorted({m for f in frames for m in f.get("methods", {})} - set(METHODS))
    return METHODS + tuple(extra)


def summarise(scenes: list[dict]) -> dict:
    """Means over every frame of every scene, per method, plus the segmenter ceiling and costs."""
    frames = [f for s in scenes for f in s["frames"]]
    summary: dict = {"frames": len(frames), "scenes": len(scenes), "methods": {}}
    for m in _methods(frames):
        rows = [f["methods"][m] for f in frames if m in f.get("methods", {})]
        summary["methods"][m] = {key: mean_of([r.get(key) for r in rows]) for key, *_ in METRIC_COLUMNS}
    summary["segmenter_ceiling_iou"] = mean_of([f.get("segmenter_ceiling_iou") for f in frames])
    summary["target_mask_iou_lifted"] = mean_of([f.get("target_mask_iou_lifted") for f in frames])
    summary["reconstruction_l1"] = mean_of([s.get("reconstruction", {}).get("l1") for s in scenes])
    summary["reconstruction_psnr"] = mean_of([s.get("reconstruction", {}).get("psnr") for s in scenes])
    summary["segmenter_reconstruction_iou"] = mean_of([s.get("reconstruction", {}).get("segmenter_iou") for s in scenes])
    # costs: per stage, mean seconds and UNet evaluations per call
    stages: dict[str, dict[str, list]] = {}
    for s in scenes:
        for stage, cost in s.get("costs", {}).items():
            for k, v in cost.items():
                stages.setdefault(stage, {}).setdefault(k, []).append(v)
    summary["costs"] = {st: {k: mean_of(v) for k, v in d.items()} for st, d in stages.items()}
    return summary


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def summary_table(summary: dict, lpips_present: bool = True) -> str:
    cols = [c for c in METRIC_COLUMNS if lpips_present or c[0] != "cycle_lpips"]
    header = ["method"] + [c[1] + (" ↑" if c[3] == "higher" else " ↓") for c in cols]
    rows = []
    for m in summary["methods"]:
        vals = summary["methods"][m]
        rows.append([METHOD_LABELS.get(m, m)] + [_fmt(vals.get(c[0]), c[2]) for c in cols])
    return _table(header, rows)


def frames_table(scenes: list[dict]) -> str:
    header = ["scene", "frame", "ceiling IoU", "target/lifted IoU", "IoU edit", "IoU no-guid",
              "IoU nothing", "cycle L1 edit", "cycle L1 no-guid", "L1 truth edit", "L1 truth no-guid",
              "L1 truth nothing"]
    rows = []
    for s in scenes:
        for f in s["frames"]:
            m = f["methods"]

            def g(method, key, fmt):
                return _fmt(m.get(method, {}).get(key), fmt)

            rows.append([s["name"], f["frame"], _fmt(f.get("segmenter_ceiling_iou"), "{:.3f}"),
                         _fmt(f.get("target_mask_iou_lifted"), "{:.3f}"),
                         g("edit", "adherence_iou", "{:.3f}"), g("no_guidance", "adherence_iou", "{:.3f}"),
                         g("nothing_moved", "adherence_iou", "{:.3f}"),
                         g("edit", "cycle_l1", "{:.4f}"), g("no_guidance", "cycle_l1", "{:.4f}"),
                         g("edit", "gt_l1", "{:.4f}"), g("no_guidance", "gt_l1", "{:.4f}"),
                         g("nothing_moved", "gt_l1", "{:.4f}")])
    return _table(header, rows)


def costs_table(summary: dict) -> str:
    header = ["stage (per frame; prepare: per photo)", "calls", "seconds", "UNet forwards", "UNet backwards"]
    rows = []
    for stage, c in summary.get("costs", {}).items():
        rows.append([stage, _fmt(c.get("calls"), "{:.0f}"), _fmt(c.get("seconds"), "{:.2f}"),
                     _fmt(c.get("unet_forward"), "{:.0f}"), _fmt(c.get("unet_backward"), "{:.0f}")])
    return _table(header, rows)


def markdown(report: dict) -> str:
    cfg = report["config"]
    s = report["summary"]
    lp_ok = bool(report.get("lpips", {}).get("available"))
    out = [f"# Evaluation: {cfg.get('scenes')}", ""]
    out.append(f"- settings: steps {cfg.get('steps')}, inversion {cfg.get('inversion')}, "
               f"guided steps {cfg.get('guided_steps')}, resolution {cfg.get('resolution')}, "
               f"device {cfg.get('device')}, seed {cfg.get('seed')}")
    out.append(f"- models: {cfg.get('models')}")
    if cfg.get("settings_overrides"):
        out.append(f"- settings overrides (ablation): {cfg.get('settings_overrides')}")
    out.append(f"- no-guidance baseline: {cfg.get('no_guidance')}")
    out.append(f"- segmenter: {report['segmenter']}; its ceiling (same segmenter on the true render "
               f"gt_image_K vs gt_true_K): IoU {_fmt(s.get('segmenter_ceiling_iou'), '{:.3f}')}; on the "
               f"model's reconstruction vs the input mask: IoU {_fmt(s.get('segmenter_reconstruction_iou'), '{:.3f}')}")
    out.append(f"- target mask vs gt_lifted_K (geometry): IoU {_fmt(s.get('target_mask_iou_lifted'), '{:.3f}')}")
    out.append(f"- inversion reconstruction vs input: L1 {_fmt(s.get('reconstruction_l1'), '{:.4f}')}, "
               f"PSNR {_fmt(s.get('reconstruction_psnr'), '{:.2f}')} dB")
    out.append(f"- LPIPS: {report.get('lpips', {}).get('note')}")
    out.append(f"- {s['scenes']} scenes, {s['frames']} frames; wall time {_fmt(report.get('seconds'), '{:.0f}')} s")
    out += ["", "## Summary (mean over frames)", "", summary_table(s, lp_ok), ""]
    out.append("cycle L1 of \"nothing moved\" is 0 by construction (the cycle of a method that does "
               "nothing is the input): identity alone rewards doing nothing, read it with adherence.")
    out += ["", "## Per frame", "", frames_table(report["scenes"]), ""]
    out += ["## Cost per stage", "", costs_table(s), ""]
    return "\n".join(out)


def write_markdown(report: dict, path: Path) -> None:
    _atomic_write(Path(path), markdown(report).encode())


# ---------------------------------------------------------------------------------------------
# contact sheet

SHEET_COLUMNS = ("input", "reconstruction", "no guidance", "edit", "truth")


def contact_sheet(rows: list[tuple[str, list[np.ndarray]]], scale: int = 3, path: Path | None = None):
    """One row per (label, [images in SHEET_COLUMNS order]) (engine.contact_sheet)."""
    from ..contact_sheet import contact_sheet as sheet

    return sheet(rows, SHEET_COLUMNS, scale, path)
