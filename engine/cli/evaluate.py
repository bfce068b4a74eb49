"""``python -m engine eval``: score the method on scenes with ground truth (docs/evaluation.md)."""
from __future__ import annotations

from pathlib import Path

HELP = "evaluate edits on scene folders with ground truth: adherence, identity, baselines, costs"


def add_arguments(parser) -> None:
    parser.add_argument("--scenes", required=True, type=Path,
                        help="a scene folder, or a folder of scene folders (each with image, depth, mask, prompt and transforms; see docs/evaluation.md)")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder: report.json, report.md, contact_sheet.png, per-scene images")
    parser.add_argument("--models", default=None, metavar="DIR",
                        help="models directory with one sub-folder per role")
    parser.add_argument("--diffusion-model", default=None, metavar="ID_OR_DIR",
                        help="override the diffusion model (Hugging Face id[@revision] or local directory)")
    from ..diffusion.backbones import add_argument as add_backbone_argument
    from ..settings import DEVICE_CHOICES, DTYPE_CHOICES, INVERSIONS, PRESETS, RuntimeOptions

    add_backbone_argument(parser)

    parser.add_argument("--preset", default="default", choices=tuple(PRESETS),
                        help="the method's schedule (default: the paper's; fast, quick: docs/method.md)")
    parser.add_argument("--compare-presets", nargs="+", default=[], choices=tuple(PRESETS), metavar="PRESET",
                        help="also run these presets at their own settings, side by side in the same "
                             "report (methods 'preset:NAME'; each with its own prepare)")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the preset's)")
    parser.add_argument("--guided-steps", type=int, default=None,
                        help="guided steps (default 38 of 50, the same proportion at other step counts)")
    parser.add_argument("--inversion", default=None, choices=INVERSIONS,
                        help="inversion (default null-text; negative-prompt is the fast one)")
    parser.add_argument("--resolution", type=int, default=None,
                        help="working resolution (default: each scene's own longer side)")
    parser.add_argument("--seed", type=int, default=None, help="seed (default 2773)")
    parser.add_argument("--device", default=RuntimeOptions.device, choices=DEVICE_CHOICES)
    parser.add_argument("--dtype", default=RuntimeOptions.dtype, choices=DTYPE_CHOICES)
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N scenes")
    parser.add_argument("--frames", type=int, default=None, metavar="N", help="only the first N frames of each scene")
    parser.add_argument("--segmenter", default="auto", choices=("auto", "perception", "colour"),
                        help="object segmenter for edit adherence (auto: perception where its weights "
                             "are present, else colour)")
    parser.add_argument("--no-cycle", action="store_true",
                        help="skip the cycle-consistency identity metric (saves two prepares per frame)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any EditSettings field for an ablation (VALUE is JSON, e.g. "
                             "--set weight_scale=60 --set loss=\"l2\"); repeatable")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="keep the prepared input photos here and reuse them when inputs and prepare "
                             "settings match (ablations of edit-only settings; its timing is then a load)")
    parser.add_argument("--rescore", action="store_true",
                        help="recompute the adherence metrics of an existing --out with the current "
                             "segmenter, from its saved frames (no model run)")
    parser.add_argument("--baseline-energy", action="store_true",
                        help="run the no-guidance baseline with zero guidance weights instead of zero "
                             "iterations: same images, its guidance energies recorded (slower)")


def run(args) -> int:
    from ..errors import InputError
    from ..evaluation.runner import EvalConfig, evaluate

    for name in ("steps", "guided_steps", "limit", "frames", "resolution"):
        v = getattr(args, name)
        if v is not None and v < (0 if name == "guided_steps" else 1):
            raise InputError(f"--{name.replace('_', '-')} {v}: must be positive")
    from .. import checks, console
    from ..output import check_output_dir

    overrides = {"diffusion": args.diffusion_model} if args.diffusion_model else {}
    settings_overrides = checks.settings_types(_parse_sets(args.set), "--set")
    check_output_dir(args.out, "--out")
    if args.models is not None and not Path(args.models).is_dir():
        raise InputError(f"--models '{args.models}': not a folder")
    cfg = EvalConfig(scenes=args.scenes, out=args.out, models_dir=args.models, model_overrides=overrides,
                     steps=args.steps, inversion=args.inversion, resolution=args.resolution,
                     guided_steps=args.guided_steps, device=args.device, dtype=args.dtype, seed=args.seed,
                     limit=args.limit, frames=args.frames, segmenter=args.segmenter, cycle=not args.no_cycle,
                     baseline_energy=args.baseline_energy, settings_overrides=settings_overrides,
                     cache_dir=args.cache, preset=args.preset, compare_presets=tuple(args.compare_presets),
                     backbone=args.backbone)
    if args.rescore:
        from ..evaluation.runner import rescore

        report = rescore(cfg, progress=console.say)
    else:
        report = evaluate(cfg, progress=console.say)
    from ..evaluation.report import summary_table

    s = report["summary"]
    print()
    print(summary_table(s, bool(report["lpips"]["available"])))
    print(f"segmenter: {report['segmenter']}; ceiling IoU {s['segmenter_ceiling_iou']}")
    print(f"wrote {Path(args.out) / 'report.md'}, report.json, contact_sheet.png")
    return 0


def _parse_sets(items) -> dict:
    import json
    from dataclasses import fields

    from ..errors import InputError
    from ..settings import EditSettings

    known = {f.name for f in fields(EditSettings)}
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in known:
            raise InputError(f"--set {item!r}: expected FIELD=VALUE with FIELD one of the settings "
                             f"({', '.join(sorted(known))})")
        try:
            value = json.loads(text)
        except ValueError:
            value = text  # a bare word: a string setting such as loss=l2
        out[name] = value
    return out
