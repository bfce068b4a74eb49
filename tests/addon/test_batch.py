"""batch.py, run as `python batch.py ...` with the bpy module, on photos and trajectories made here."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dh_synthetic import REPO_ROOT, make_photo, run_batch, write_keyframes  # noqa: E402

pytestmark = pytest.mark.slow



def test_batch_renders_every_frame_of_the_keyed_range(tmp_path):
    photo = make_photo(tmp_path / "photo", height=30, width=40, box=(10, 22, 12, 26), seed=3)
    p = photo["paths"]
    keys = write_keyframes(tmp_path / "k.json", [
        {"frame": 1},  # identity
        {"frame": 4, "translation": [0.3, 0.0, 0.0], "rotation_axis": [0, 1, 0], "rotation_angle": 25},
    ])
    out = tmp_path / "out"
    blend = tmp_path / "scene.blend"
    result = run_batch("--image", p["image"], "--prompt", "a box", "--mask", p["mask"], "--depth", p["depth"],
                    "--keyframes", keys, "--out", out, "--engine", "preview", "--save-blend", blend)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "engine: preview" in result.stdout
    frames = sorted(f.name for f in (out / "frames").glob("frame_*.png"))
    assert frames == [f"frame_{k:04d}.png" for k in range(1, 5)]  # 1..4: Blender interpolates 2 and 3
    from engine.io import load_image

    images = [load_image(out / "frames" / f) for f in frames]
    assert np.allclose(images[0], photo["image"], atol=2 / 255) or np.abs(images[0] - photo["image"]).mean() < 0.02
    diffs = [np.abs(images[k] - images[0]).mean() for k in range(4)]
    assert diffs[0] == 0 and diffs[1] > 0 and diffs[3] > diffs[1]  # moving progressively
    sheet = load_image(out / "contact_sheet.png")  # the 4 frames (30 x 40) in one row, 2 px apart
    assert sheet.shape == (30, 4 * 40 + 3 * 2, 3)
    for k, image in enumerate(images):
        assert np.array_equal(sheet[:, k * 42:k * 42 + 40], image)
    assert blend.is_file()

    # The saved .blend renders again without importing (originals gone), as
    # `blender -b scene.blend --python-expr "import bpy; bpy.ops.dh.render_stop_motion()"` does.
    for f in p.values():
        os.remove(f)
    again = tmp_path / "again"
    script = (f"import sys; sys.path.insert(0, {str(REPO_ROOT / 'tests')!r})\n"
              "from blender_session import bpy, enable_addon\n"
              "enable_addon()\n"
              f"bpy.ops.wm.open_mainfile(filepath={str(blend)!r})\n"
              f"bpy.context.scene.render.filepath = {str(again / 'f_####')!r}\n"
              "print(bpy.ops.dh.render_stop_motion())\n")
    rerun = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert sorted(f.name for f in again.glob("f_*.png")) == [f"f_{k:04d}.png" for k in range(1, 5)]
    assert np.array_equal(load_image(again / "f_0004.png"), images[3])


def test_batch_fails_clearly_on_bad_input(tmp_path):
    photo = make_photo(tmp_path / "photo")
    p = photo["paths"]
    common = ["--image", p["image"], "--mask", p["mask"], "--depth", p["depth"], "--out", tmp_path / "out"]
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    shear = write_keyframes(tmp_path / "shear.json", [{"matrix": [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0],
                                                                  [0, 0, 0, 1]]}])
    for keys, expected in ((bad_json, "not valid JSON"), (shear, "shear.json"),
                           (tmp_path / "missing.json", "not found")):
        result = run_batch(*common, "--keyframes", keys, "--engine", "preview")
        assert result.returncode != 0
        assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not list((tmp_path / "out").glob("frames/*.png"))
