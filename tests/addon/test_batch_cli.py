"""batch.py's command line as documented: --device explained, copies in the summary, --save-blend
into a folder that does not exist yet, and a refusal after the import (an --object whose model is
missing) leaves no new file or folder behind."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dh_synthetic import make_photo, run_batch, write_keyframes  # noqa: E402

pytestmark = pytest.mark.slow


def test_help_summary_and_save_blend_into_a_new_folder(tmp_path):
    usage = run_batch("--help")
    assert usage.returncode == 0
    options = usage.stdout[usage.stdout.index("options:"):]
    device = options[options.index("--device"):].split("\n  -")[0]
    assert "cuda" in device and "cpu" in device, device
    photo = make_photo(tmp_path / "photo")
    T = np.eye(4)
    T[0, 3] = 0.5
    keys = write_keyframes(tmp_path / "k.json", [{"frame": 1, "copies": [{"of": 1, "matrix": T.tolist()}]},
                                                 {"frame": 2}])
    blend = tmp_path / "not" / "yet" / "scene.blend"
    p = photo["paths"]
    result = run_batch("--image", p["image"], "--mask", p["mask"], "--depth", p["depth"], "--keyframes", keys,
                       "--out", tmp_path / "out", "--engine", "preview", "--save-blend", blend)
    assert result.returncode == 0, result.stdout + result.stderr
    assert blend.is_file()
    lines = result.stdout.splitlines()
    assert any(line.startswith("batch.py: keyed 2 edits of 1 object(s) and 1 copy") for line in lines), lines
    assert any(line.startswith("batch.py: 2 frames of 1 object(s) and 1 copy") for line in lines), lines


def test_an_object_query_without_its_models_leaves_no_output(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    photo = make_photo(tmp_path / "photo")
    keys = write_keyframes(tmp_path / "k.json", [{"frame": 1}, {"frame": 2, "translation": [0.2, 0, 0]}])
    out, blend = tmp_path / "out", tmp_path / "new" / "scene.blend"
    result = run_batch("--image", photo["paths"]["image"], "--object", "the box", "--depth", photo["paths"]["depth"],
                       "--keyframes", keys, "--out", out, "--engine", "preview", "--models", tmp_path / "photo",
                       "--save-blend", blend)
    err = result.stderr.strip()
    assert result.returncode != 0 and len(err.splitlines()) == 1 and err.startswith("batch.py: error:"), err
    assert not out.exists() and not blend.parent.exists()  # nothing made is left behind
