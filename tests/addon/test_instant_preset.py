"""batch.py offers the instant preset (gradient-free handles): `--preset instant` reaches the
add-on's Quality of the imported photo (an enum: a value it lacks would fail the run)."""
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dh_synthetic import REPO_ROOT, make_photo, run_batch, write_keyframes  # noqa: E402

pytestmark = pytest.mark.slow


def test_batch_takes_the_instant_preset_into_the_saved_scene(tmp_path):
    p = make_photo(tmp_path / "photo", height=20, width=24, box=(6, 14, 8, 16), seed=1)["paths"]
    keys = write_keyframes(tmp_path / "k.json", [{"frame": 1}, {"frame": 2, "translation": [0.2, 0.0, 0.0]}])
    blend = tmp_path / "scene.blend"
    result = run_batch("--image", p["image"], "--prompt", "a box", "--mask", p["mask"], "--depth", p["depth"],
                       "--keyframes", keys, "--out", tmp_path / "out", "--engine", "preview",
                       "--preset", "instant", "--save-blend", blend)
    assert result.returncode == 0, result.stdout + result.stderr
    script = (f"import sys; sys.path.insert(0, {str(REPO_ROOT / 'tests')!r})\n"
              "from blender_session import bpy, enable_addon\n"
              "enable_addon()\n"
              f"bpy.ops.wm.open_mainfile(filepath={str(blend)!r})\n"
              "print('QUALITIES', sorted({o.dh.quality for o in bpy.data.objects}))\n")
    read = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert read.returncode == 0, read.stdout + read.stderr
    (line,) = [l for l in read.stdout.splitlines() if l.startswith("QUALITIES")]
    assert "'instant'" in line  # the photo's Quality (the other objects keep the default)
    bad = run_batch("--image", p["image"], "--prompt", "a box", "--mask", p["mask"], "--depth", p["depth"],
                    "--keyframes", keys, "--out", tmp_path / "bad", "--engine", "preview", "--preset", "instantly")
    assert bad.returncode == 2 and "instant" in bad.stderr
