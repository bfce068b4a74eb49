"""Farm nodes that reach the same frame together: two Blender processes render one animation into
one folder with no-overwrite and NO placeholders, so both start every frame whose file is not
there yet; the render engine's per-frame claim lets one node compute each frame and hands the
other its pixels. The frames equal a single node's."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dh_synthetic import REPO_ROOT, import_photo, make_photo  # noqa: E402

pytestmark = pytest.mark.slow

FRAMES = 4

NODE = r'''
import os, sys, time
sys.path.insert(0, {tests!r})
from blender_session import bpy, enable_addon, ADDON_MODULE
enable_addon()
bpy.ops.wm.open_mainfile(filepath={blend!r})
stopmotion = sys.modules[ADDON_MODULE + ".session.stopmotion"]
claim_frame = stopmotion.claim_frame
def logged(path, *args, **kwargs):
    state, value = claim_frame(path, *args, **kwargs)
    print("CLAIM", os.path.basename(path), state, flush=True)
    if state == "claimed":
        time.sleep(0.5)  # a frame takes a moment, so the other node meets it
    return state, value
stopmotion.claim_frame = logged
scene = bpy.context.scene
scene.render.filepath = {folder!r} + "/frame_####"
scene.render.use_placeholder = False
scene.render.use_overwrite = False
open({barrier!r} + "-" + {node!r}, "w").close()
while len([n for n in os.listdir(os.path.dirname({barrier!r})) if n.startswith("ready-")]) < 2:
    time.sleep(0.01)
print("RESULT", bpy.ops.render.render(animation=True), flush=True)
'''


def test_two_nodes_compute_each_frame_once(addon, tmp_path):
    from blender_session import bpy

    photo = make_photo(tmp_path / "photo", seed=7)
    obj = import_photo(bpy, photo, tmp_path, engine="PREVIEW")
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, FRAMES
    for frame in range(1, FRAMES + 1):
        obj.location.x = 0.08 * (frame - 1)
        obj.keyframe_insert("location", frame=frame)
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    single = tmp_path / "single"
    scene.render.filepath = str(single / "frame_####")
    assert bpy.ops.render.render(animation=True) == {"FINISHED"}

    folder = tmp_path / "farm"
    (tmp_path / "sync").mkdir()
    nodes = [subprocess.Popen([sys.executable, "-c", NODE.format(tests=str(REPO_ROOT / "tests"), blend=str(blend),
                                                                  folder=str(folder), node=str(n),
                                                                  barrier=str(tmp_path / "sync" / "ready"))],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(tmp_path))
             for n in range(2)]
    logs = [node.communicate(timeout=300)[0] for node in nodes]
    for node, log in zip(nodes, logs):
        assert node.returncode == 0 and "RESULT {'FINISHED'}" in log, log
    claims = [re.findall(r"CLAIM (frame_\d+\.png) (\w+)", log) for log in logs]
    computed = sorted(name for c in claims for name, state in c if state == "claimed")
    # every frame computed by exactly one node (the other, meeting it, took the finished pixels)
    assert computed == [f"frame_{k:04d}.png" for k in range(1, FRAMES + 1)], claims
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"frame_{k:04d}.png" for k in range(1, FRAMES + 1)], names  # no claim left behind
    from PIL import Image

    for k in range(1, FRAMES + 1):
        a = np.asarray(Image.open(folder / f"frame_{k:04d}.png"))
        assert np.array_equal(a, np.asarray(Image.open(single / f"frame_{k:04d}.png"))), k
