"""Ctrl+C in a headless animation render (the bpy module, as `blender -b FILE -a`): the frame in
flight finishes and is written, the render stops there, every finished frame stays whole."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from blender_session import bpy  # noqa: E402
from dh_synthetic import REPO_ROOT, addon_module, import_photo, make_photo  # noqa: E402

FRAMES = 12
NODE = r'''
import sys, time
sys.path.insert(0, {tests!r})
from blender_session import bpy, enable_addon
enable_addon()
bpy.ops.wm.open_mainfile(filepath={blend!r})
bpy.app.handlers.render_pre.append(lambda *args: time.sleep(0.5))  # each frame takes a moment
print("STARTED", flush=True)
try:
    bpy.ops.render.render(animation=True)
except RuntimeError as exc:
    print("STOPPED:", " ".join(str(exc).split()), flush=True)
    sys.exit(1)
print("RENDERED", flush=True)
'''


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent to another process on Windows")
def test_ctrl_c_stops_after_the_frame_in_flight_and_keeps_the_frames(addon, tmp_path):
    obj = import_photo(bpy, make_photo(tmp_path / "photo"), tmp_path)
    from engine.transforms import frame_to_matrix

    addon_module("blender.keyframes").key_transforms(obj, [(1, np.eye(4)), (FRAMES, frame_to_matrix(
        {"translation": [0.3, 0.0, 0.0]}, np.array(obj.dh.centroid)))], bpy.context.scene)
    scene = bpy.context.scene
    scene.render.image_settings.file_format = "PNG"
    frames = tmp_path / "frames"
    scene.render.filepath = str(frames / "f_####")
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))

    node = subprocess.Popen([sys.executable, "-c", NODE.format(tests=str(REPO_ROOT / "tests"), blend=str(blend))],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(tmp_path))
    try:
        while not (frames / "f_0001.png").exists() and node.poll() is None:
            time.sleep(0.05)
        node.send_signal(signal.SIGINT)  # while a later frame is in flight (or about to start)
        log = node.communicate(timeout=300)[0]
    finally:
        if node.poll() is None:
            node.kill()
    assert node.returncode == 1 and "STOPPED:" in log and "interrupted (Ctrl+C)" in log, log
    assert "KeyboardInterrupt" not in log and "Traceback" not in log, log
    written = sorted(p.name for p in frames.iterdir())
    k = len(written)
    assert 1 <= k < FRAMES and written == [f"f_{n:04d}.png" for n in range(1, k + 1)], written  # no gap, no partial
    from PIL import Image

    for name in written:
        assert np.asarray(Image.open(frames / name)).shape[:2] == (24, 32)  # whole frames
