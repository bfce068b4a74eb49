"""Synthetic photos for the add-on tests: a box in front of a wall, exact depth and mask.

Made in tmp_path by each test (never files from the repo), small enough for 2 CPU cores.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_photo(directory, height=24, width=32, wall=4.0, near=2.5, box=(6, 16, 9, 21), seed=0):
    """Write image.png, depth.npy, mask.png, prompt.txt into ``directory``; returns a dict of paths
    and arrays. ``box`` = (row0, row1, col0, col1) of the object, at depth ``near`` (a wall behind)."""
    from PIL import Image

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    r0, r1, c0, c1 = box
    mask = np.zeros((height, width), bool)
    mask[r0:r1, c0:c1] = True
    rows = np.linspace(0.0, 1.0, height)[:, None]
    depth = np.full((height, width), wall, np.float32) - 0.5 * rows.astype(np.float32)  # a tilted wall
    depth[mask] = near
    image = np.stack([np.broadcast_to(rows, (height, width)) * 0.6 + 0.2,
                      np.full((height, width), 0.35), np.full((height, width), 0.5)], -1)
    image[mask] = (0.9, 0.25, 0.1)
    image = np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1)
    paths = {"image": directory / "image.png", "depth": directory / "depth.npy",
             "mask": directory / "mask.png", "prompt": directory / "prompt.txt"}
    Image.fromarray((image * 255).round().astype(np.uint8)).save(paths["image"])
    np.save(paths["depth"], depth)
    Image.fromarray(mask.astype(np.uint8) * 255).save(paths["mask"])
    paths["prompt"].write_text("an orange box in front of a wall\n")
    return {"paths": paths, "depth": depth, "mask": mask, "image": image}


def write_keyframes(path, frames):
    """K.json: ``frames`` is a list of dicts in the transform file format (optional 'frame')."""
    Path(path).write_text(json.dumps({"frames": frames}, indent=1))
    return Path(path)


def addon_module(name):
    """The add-on's submodule ``name`` (e.g. 'blender.matrices') as registered in the session."""
    import importlib

    from blender_session import ADDON_MODULE

    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def import_photo(bpy, photo, tmp_path, **kwargs):
    paths = photo["paths"]
    result = bpy.ops.dh.import_photo(filepath=str(paths["image"]), depth_path=str(paths["depth"]),
                                     mask_path=str(paths["mask"]), prompt=paths["prompt"].read_text().strip(),
                                     cache_dir=str(Path(tmp_path) / "cache"), **kwargs)
    assert result == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    assert obj.dh.role == "OBJECT"
    return obj


def duplicate(bpy, obj, linked=False):
    """Shift+D (Alt+D with ``linked``) of ``obj`` as the 3D Viewport does it; returns the duplicate."""
    for other in bpy.context.view_layer.objects:
        other.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    with bpy.context.temp_override(selected_objects=[obj], active_object=obj, object=obj):
        assert bpy.ops.object.duplicate(linked=linked) == {"FINISHED"}
    return bpy.context.view_layer.objects.active


if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


def run_batch(*args, timeout=300):
    """``python batch.py ARGS`` with the bpy module, from the repository root (what a user runs)."""
    return subprocess.run([sys.executable, str(REPO_ROOT / "batch.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=str(REPO_ROOT))


# The end of every farm node's script: both nodes wait at a file barrier, then render the
# animation with Blender's own machinery, so they really start together and share the frames.
FARM_NODE_RENDER = r'''
open({barrier!r} + "-" + {node!r}, "w").close()
while len([n for n in os.listdir(os.path.dirname({barrier!r})) if n.startswith("ready-")]) < 2:
    time.sleep(0.01)
print("RESULT", bpy.ops.render.render(animation=True), flush=True)
'''


def run_farm_nodes(setup, blend, folder, tmp_path, nodes=2, timeout=300):
    """Farm nodes: ``nodes`` fresh Blender processes (the bpy module with the add-on enabled) open
    ``blend``, run ``setup`` (a script body: ``bpy``, ``os``, ``sys``, ``time`` and ``ADDON_MODULE``
    are there; ``{folder!r}`` is the shared output folder) and render the animation together.
    Asserts each finished; returns their logs."""
    head = (f"import os, sys, time\nsys.path.insert(0, {str(REPO_ROOT / 'tests')!r})\n"
            "from blender_session import bpy, enable_addon, ADDON_MODULE\nenable_addon()\n"
            f"bpy.ops.wm.open_mainfile(filepath={str(blend)!r})\n")
    (Path(tmp_path) / "sync").mkdir()
    barrier = str(Path(tmp_path) / "sync" / "ready")
    procs = [subprocess.Popen([sys.executable, "-c", head + (setup + FARM_NODE_RENDER).format(
                folder=str(folder), node=str(n), barrier=barrier)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(tmp_path))
             for n in range(nodes)]
    logs = [proc.communicate(timeout=timeout)[0] for proc in procs]
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0 and "RESULT {'FINISHED'}" in log, log
    return logs
