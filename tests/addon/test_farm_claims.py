"""Farm nodes that reach the same frame together: two Blender processes render one animation into
one folder with no-overwrite and NO placeholders, so both start every frame whose file is not
there yet; the render engine's per-frame claim lets one node compute each frame and hands the
other its pixels. The frames equal a single node's."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dh_synthetic import import_photo, make_photo, run_farm_nodes  # noqa: E402

pytestmark = pytest.mark.slow

FRAMES = 4

# One farm node: no placeholders, so both nodes start every frame not yet saved; its claims are
# logged, and a claimed frame takes a moment so the other node meets it.
NODE = r'''
stopmotion = sys.modules[ADDON_MODULE + ".session.stopmotion"]
claim_frame = stopmotion.claim_frame
def logged(path, *args, **kwargs):
    state, value = claim_frame(path, *args, **kwargs)
    print("CLAIM", os.path.basename(path), state, flush=True)
    if state == "claimed":
        time.sleep(0.5)
    return state, value
stopmotion.claim_frame = logged
scene = bpy.context.scene
scene.render.filepath = {folder!r} + "/frame_####"
scene.render.use_placeholder = False
scene.render.use_overwrite = False
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
    logs = run_farm_nodes(NODE, blend, folder, tmp_path)
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
