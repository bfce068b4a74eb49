"""Screen candidate edit schedules on scenes with ground truth (how the fast preset was chosen).

    python tools/schedule_search.py --scenes $DH_SCENES/toy --models $DH_TOY_MODEL \
        --cache /tmp/cache --candidates candidates.json [--out table.json]

candidates.json: {"name": {EditSettings fields on top of the default preset}, ...}. One process,
models loaded once; each distinct set of prepare-time fields prepares every scene once (cached
under --cache); every candidate edits every frame. Scores as `engine eval` does (colour
segmenter built from the photo and the default schedule's reconstruction, so every candidate is
judged by the same segmenter): adherence IoU to the true silhouette and L1 to the true render
inside it, the L1 to the true render, the flicker of consecutive frames (`metrics.flicker`:
meaningful on scenes whose frames are one move), with each candidate's UNet cost per frame (forward = 1, backward = 2). `engine eval
--compare-presets` is the final side-by-side check; this is the quick screen.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.evaluation import metrics  # noqa: E402
from engine.evaluation.scenes import find_scenes, load_scene  # noqa: E402
from engine.evaluation.segmenters import make_segmenter  # noqa: E402
from engine.pipeline import Engine  # noqa: E402
from engine.settings import EditSettings, RuntimeOptions  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--cache", required=True, type=Path)
    p.add_argument("--candidates", required=True, type=Path)
    p.add_argument("--out", type=Path)
    p.add_argument("--limit", type=int)
    p.add_argument("--only", nargs="+", metavar="SCENE", help="these scene folders, in this order")
    args = p.parse_args(argv)

    candidates = json.loads(args.candidates.read_text())
    paths = find_scenes(args.scenes)
    if args.only:
        paths = sorted(paths, key=lambda p: args.only.index(p.name) if p.name in args.only else len(args.only))
        paths = [p for p in paths if p.name in args.only]
    scenes = [load_scene(s) for s in paths][: args.limit]
    engine = Engine(models_dir=args.models, runtime=RuntimeOptions(device="cpu"))
    rows = {name: {"iou": [], "l1_object": [], "l1": [], "flicker": [], "seconds": 0.0} for name in candidates}
    for scene in scenes:
        res = max(scene.shape)
        base = EditSettings(resolution=res)
        prepared = {}

        def prepare(s):
            key = hashlib.sha1(json.dumps(s.prepare_dict(), sort_keys=True).encode()).hexdigest()[:10]
            if key not in prepared:
                # the default's cache sits where `engine eval --cache` puts it, so both share it
                folder = scene.name if s.prepare_dict() == base.prepare_dict() else f"{scene.name}-{key}"
                prepared[key] = engine.prepare(scene.image, scene.prompt, scene.depth, scene.mask, settings=s,
                                               cache_dir=args.cache / folder)
            return prepared[key]

        recon = prepare(base).reconstruction  # the default's: one judge for every candidate
        seg, _ = make_segmenter("colour", scene.image, scene.mask, extra_references=[recon])
        mats = [f.transform for f in scene.frames]
        for name, changes in candidates.items():
            s = EditSettings.from_dict({**base.to_dict(), **changes})
            pr = prepare(s)
            t0 = time.perf_counter()
            results = engine.edit(pr, mats, settings=s)
            rows[name]["seconds"] += time.perf_counter() - t0
            previous = None
            for frame, r in zip(scene.frames, results):
                img = np.clip(np.asarray(r.image, np.float32), 0, 1)
                rows[name]["l1"].append(metrics.l1(img, frame.gt_image))
                flick = ""
                if previous is not None:  # consecutive frames (meaningful where they are one move)
                    rows[name]["flicker"].append(metrics.flicker(img, previous[0], frame.gt_image, previous[1]))
                    flick = f" flicker {rows[name]['flicker'][-1]:.4f}"
                previous = (img, frame.gt_image)
                rows[name]["iou"].append(metrics.iou(seg.segment(img, scene.prompt), frame.gt_true))
                rows[name]["l1_object"].append(metrics.l1(img, frame.gt_image, frame.gt_true))
                print(f"  {scene.name} frame {frame.tag} {name}: IoU {rows[name]['iou'][-1]:.3f} "
                      f"L1obj {rows[name]['l1_object'][-1]:.4f}{flick}", flush=True)
        print(f"{scene.name} done", flush=True)
    table = []
    for name, r in rows.items():
        s = EditSettings.from_dict({**EditSettings().to_dict(), **candidates[name]})
        cost = s.unet_cost()["unet_equivalents"]
        table.append({"name": name, "changes": candidates[name], "unet_equivalents_per_frame": cost,
                      "ratio_to_release": cost / EditSettings().unet_cost(cfg_pair=True)["unet_equivalents"],
                      "adherence_iou": float(np.mean(r["iou"])), "l1_object": float(np.mean(r["l1_object"])),
                      "l1": float(np.mean(r["l1"])), "flicker": float(np.mean(r["flicker"])) if r["flicker"] else None,
                      "frames": len(r["iou"]),
                      "per_frame_iou": [round(float(x), 3) for x in r["iou"]],
                      "edit_seconds": r["seconds"]})
        t = table[-1]
        print(f"{name:<28} cost {cost:4d} ({t['ratio_to_release']:.2f}x)  IoU {t['adherence_iou']:.3f}  "
              f"L1obj {t['l1_object']:.4f}  L1 {t['l1']:.4f}  flicker {t['flicker'] or 0:.4f}  "
              f"{r['seconds']:.0f} s", flush=True)
    if args.out:
        args.out.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
