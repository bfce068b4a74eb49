"""``python -m engine edit``: edit a prepared photo with the transforms of a JSON file.

Writes, for frame k (1-based, 4 digits): ``frame_k.png``, ``target_mask_k.png``,
``edited_depth_k.exr``; and ``report.json`` (per-stage wall times, UNet forward / backward
counts, peak memory, settings). Every file is written under a temporary name and renamed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..errors import InputError
from .prepare import (add_input_arguments, add_model_arguments, engine_from_args, load_prepare_inputs,
                      progress_printer)

HELP = "edit a prepared photo (or prepare it first) with 3D transforms; writes frames and a report"


def add_arguments(p) -> None:
    p.add_argument("--prepared", metavar="PREP_DIR", help="a directory written by `engine prepare`")
    add_input_arguments(p, required=False)
    p.add_argument("--transforms", required=True, metavar="T.json",
                   help='transforms file: {"frames": [{"matrix": 4x4}, ...]} or translation/rotation')
    p.add_argument("--convention", choices=("camera", "pytorch3d"), default="camera",
                   help="frame of the transforms (camera = Blender camera frame; pytorch3d = the "
                        "reference release's data)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    add_model_arguments(p)


def run(args) -> int:
    from .. import io
    from ..pipeline import Prepared
    from ..transforms import load_transforms, object_centroid

    t_all = time.perf_counter()
    out = Path(args.out)
    engine = engine_from_args(args)
    verbose = getattr(args, "verbose", False)
    stages = {}
    t0 = time.perf_counter()
    if args.prepared:
        if args.image:
            raise InputError("give either --prepared or the photo arguments, not both")
        prepared = Prepared.load(args.prepared)
        prepare_report = {"loaded_from": str(args.prepared), **prepared.report}
    else:
        inputs = load_prepare_inputs(args, candidates_dir=args.out)
        prepared = engine.prepare(**inputs, progress=progress_printer(verbose))
        prepare_report = prepared.report
    stages["prepare"] = time.perf_counter() - t0
    centroids = object_centroid(prepared.depth, prepared.object_masks, prepared.camera)
    transforms = load_transforms(args.transforms, convention=args.convention, centroid=centroids)
    out.mkdir(parents=True, exist_ok=True)
    counts0 = dict(engine.counts)
    t0 = time.perf_counter()
    results = engine.edit(prepared, transforms, progress=progress_printer(verbose))
    stages["edit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    frames = []
    for k, r in enumerate(results, start=1):
        io.save_image(out / f"frame_{k:04d}.png", r.image)
        io.save_mask(out / f"target_mask_{k:04d}.png", r.target_mask)
        for n, m in enumerate(r.target_masks if len(r.target_masks) > 1 else [], start=1):
            io.save_mask(out / f"target_mask_{k:04d}_{n}.png", m)  # per object, with several
        io.save_depth_exr(out / f"edited_depth_{k:04d}.exr", r.edited_depth)
        hidden = [str(n + 1) for n, v in enumerate(r.stats["visible_objects"]) if not v]
        if hidden:
            print(f"frame {k}: object(s) {', '.join(hidden)} out of view; rendered without them")
        energy = r.stats["energy"]
        frames.append({"frame": k, "batch_frames": r.stats["batch_frames"],
                       "batch_seconds": r.stats["batch_seconds"],
                       "visible_objects": r.stats["visible_objects"],
                       "energy_first": energy[0]["energy"] if energy else 0.0,
                       "energy_last": energy[-1]["energy"] if energy else 0.0})
    stages["write"] = time.perf_counter() - t0
    counts = {k: v - counts0[k] for k, v in engine.counts.items()}
    report = {
        "frames": len(results), "size": list(prepared.size), "device": str(engine.models.device),
        "dtype": str(engine.models.dtype), "model_id": engine.models.model_id,
        "seconds": {**stages, "load": engine.timings.get("load", 0.0), "total": time.perf_counter() - t_all},
        "edit_unet_forward": counts["unet_forward"], "edit_unet_backward": counts["unet_backward"],
        "prepare": prepare_report,
        "peak_memory_bytes": max([r.stats["peak_memory_bytes"] for r in results] +
                                 [prepare_report.get("peak_memory_bytes", 0)]),
        "settings": engine.settings.replace(**{k: getattr(prepared.settings, k)
                                               for k in prepared.settings.PREPARE_FIELDS}).to_dict(),
        "per_frame": frames,
    }
    with io.atomic_output(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    print(f"wrote {len(results)} frame(s) to {out} ({report['seconds']['total']:.1f} s, "
          f"{counts['unet_forward']} UNet forwards, {counts['unet_backward']} backwards)")
    return 0
