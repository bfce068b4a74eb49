"""Score the engine's geometry on Blender scene folders: target masks vs gt_lifted (per object),
coverage vs gt_lifted and silhouette vs gt_true for camera moves.

    python tools/score_geometry.py SCENES_ROOT [--scale 2]

--scale S upsamples inputs (nearest) to S times their size and compares at the scenes' own size
(area-downsampled masks), a check of resolution independence only.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.evaluation.scenes import find_scenes, load_scene  # noqa: E402
from engine.lifted import LiftedScene  # noqa: E402


def iou(a, b):
    return float((a & b).sum() / max((a | b).sum(), 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("roots", nargs="+")
    args = ap.parse_args()
    for root in args.roots:
        rows = []
        for path in find_scenes(root):
            sc = load_scene(path)
            t0 = time.perf_counter()
            lifted = LiftedScene.build(sc.depth, sc.masks)
            t_build = time.perf_counter() - t0
            for fr in sc.frames:
                t0 = time.perf_counter()
                g = lifted.frame(fr.transform)
                dt = time.perf_counter() - t0
                r = {"scene": sc.name, "k": fr.index, "s": dt, "build": t_build}
                if fr.transform.moves_camera:
                    r["coverage"] = iou(g.valid_mask, fr.gt_lifted)
                    r["true"] = iou(g.target_mask, fr.gt_true)
                elif fr.gt_lifted_objects:
                    r["objects"] = [iou(g.target_masks[n], m) for n, m in enumerate(fr.gt_lifted_objects)]
                else:
                    r["lifted"] = iou(g.target_mask, fr.gt_lifted)
                rows.append(r)
                print(root, {k: (round(v, 3) if isinstance(v, float) else [round(x, 3) for x in v] if isinstance(v, list) else v) for k, v in r.items()})
        for key in ("lifted", "coverage", "true", "objects"):
            vals = [x for r in rows if key in r for x in (r[key] if isinstance(r[key], list) else [r[key]])]
            if vals:
                print(f"{root}: {key} mean {np.mean(vals):.3f} min {np.min(vals):.3f} (n={len(vals)})")


if __name__ == "__main__":
    main()
