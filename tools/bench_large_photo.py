"""Large photos in Blender (the bpy module): import seconds, .blend size and F12 seconds / peak memory.

    .venv/bin/python tools/bench_large_photo.py [--megapixels 1 4 12] [--depth-shrink 4] [--out F.json]

Each size runs in two fresh processes: one imports a synthetic photo (a tilted wall and a box,
4:3) whose depth map and mask are a quarter of its sides (``--depth-shrink``; as a depth model or
a phone gives them) and saves the .blend; a second opens that .blend, as a farm node does, and renders frame 1
with the preview engine (F12). Peak memory is the process's maximum resident size. Figures:
docs/benchmark.md ("Large photos").
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT = r'''
import json, os, resource, sys, time
sys.path.insert(0, {tests!r})
import numpy as np
from PIL import Image
from blender_session import bpy, enable_addon
enable_addon()
H, W, d = {height}, {width}, {folder!r}
h, w = H // {shrink}, W // {shrink}
yy = np.linspace(0, 1, h)[:, None]
depth = ((4.0 - 0.5 * yy) * np.ones((1, w))).astype(np.float32)
mask = np.zeros((h, w), bool)
mask[h // 4: h * 3 // 4, w // 4: w // 2] = True
depth[mask] = 2.5
np.save(os.path.join(d, "depth.npy"), depth)
Image.fromarray(mask.astype(np.uint8) * 255).save(os.path.join(d, "mask.png"))
Y, X = np.mgrid[0:H, 0:W]
big = np.zeros((H, W, 3), np.uint8)
big[..., 0] = (60 + 120 * Y / H).astype(np.uint8)
big[..., 1] = (90 + 60 * X / W).astype(np.uint8)
inside = (Y >= H // 4) & (Y < H * 3 // 4) & (X >= W // 4) & (X < W // 2)
big[inside] = (230, 70, 30)
Image.fromarray(big).save(os.path.join(d, "photo.png"))
del big, Y, X, inside
t = time.perf_counter()
result = bpy.ops.dh.import_photo(filepath=os.path.join(d, "photo.png"), depth_path=os.path.join(d, "depth.npy"),
                                 mask_path=os.path.join(d, "mask.png"), prompt="a box",
                                 cache_dir=os.path.join(d, "cache"))
seconds = time.perf_counter() - t
assert result == {{"FINISHED"}}, result
obj = bpy.context.view_layer.objects.active
vertices = len(obj.data.vertices) + len(obj.dh.background.data.vertices)
bpy.context.scene.render.filepath = os.path.join(d, "frame_")
blend = os.path.join(d, "scene.blend")
bpy.ops.wm.save_as_mainfile(filepath=blend)
print("RESULT", json.dumps({{"import_s": seconds, "vertices": vertices, "blend_bytes": os.path.getsize(blend),
                            "import_peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}))
'''

RENDER = r'''
import json, os, resource, sys, time
sys.path.insert(0, {tests!r})
from blender_session import bpy, enable_addon
enable_addon()
t = time.perf_counter()
bpy.ops.wm.open_mainfile(filepath=os.path.join({folder!r}, "scene.blend"))
open_s = time.perf_counter() - t
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = time.perf_counter()
result = bpy.ops.render.render(write_still=True)
seconds = time.perf_counter() - t
assert result == {{"FINISHED"}}, result
print("RESULT", json.dumps({{"open_s": open_s, "f12_s": seconds, "peak_before_f12_bytes": before,
                            "f12_peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}))
'''


def _run(script) -> dict:
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=str(ROOT))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"bench_large_photo: a run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--megapixels", type=float, nargs="+", default=[1, 4, 12])
    p.add_argument("--depth-shrink", type=int, default=4,
                   help="the depth map's and mask's sides are the photo's divided by this (1: the photo's size)")
    p.add_argument("--out", default=None, help="also write the figures as JSON")
    args = p.parse_args(argv)
    rows = []
    for mp in args.megapixels:
        width = int(round((mp * 1e6 * 4 / 3) ** 0.5 / 16)) * 16  # both sides multiples of 4
        height = width * 3 // 4
        with tempfile.TemporaryDirectory(prefix="dh-large-") as folder:
            fill = dict(tests=str(ROOT / "tests"), folder=folder, height=height, width=width,
                        shrink=args.depth_shrink)
            row = {"width": width, "height": height, **_run(IMPORT.format(**fill)), **_run(RENDER.format(**fill))}
        rows.append(row)
        print(f"{width}x{height}: import {row['import_s']:.1f} s, {row['vertices']} vertices, .blend "
              f"{row['blend_bytes'] / 1e6:.1f} MB; open {row['open_s']:.1f} s; F12 {row['f12_s']:.1f} s, peak "
              f"{row['f12_peak_bytes'] / 2 ** 30:.2f} GiB", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
