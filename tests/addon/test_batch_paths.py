"""batch.py and the engine's command line on the same inputs: the same pivots give the same frames
(a rotation about the object's centroid); --engine auto makes the checks of the engine it picks
before any output exists (pickle-only diffusion weights are refused, as with --engine diffusion)."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dh_synthetic import make_photo, run_batch, write_keyframes  # noqa: E402

pytestmark = pytest.mark.slow



def test_batch_preview_and_engine_preview_pivot_alike_and_give_the_same_frames(tmp_path):
    photo = make_photo(tmp_path / "photo", height=30, width=40, box=(9, 23, 11, 27), seed=4)
    p = photo["paths"]
    keys = write_keyframes(tmp_path / "k.json", [  # every frame keyed: no interpolation in between
        {"frame": 1, "rotation_axis": [0, 1, 0], "rotation_angle": 40},
        {"frame": 2, "rotation_axis": [1, 0.5, 0], "rotation_angle": -25, "scale": 1.2},
        {"frame": 3, "translation": [0.2, 0.1, 0.0], "rotation_axis": [0, 0, 1], "rotation_angle": 30},
    ])
    out = tmp_path / "batch"
    result = run_batch("--image", p["image"], "--mask", p["mask"], "--depth", p["depth"], "--keyframes", keys,
                    "--out", out, "--engine", "preview")
    assert result.returncode == 0, result.stdout + result.stderr
    # the preview command over the background batch.py's import made (objects removed, depth behind)
    cache = next((out / "cache").iterdir())
    preview = tmp_path / "preview"
    from engine.cli import main

    assert main(["-q", "preview", "--image", str(p["image"]), "--depth", str(p["depth"]), "--mask", str(p["mask"]),
                 "--transforms", str(keys), "--out", str(preview), "--background", str(cache / "background.png"),
                 "--background-depth", str(cache / "background_depth.npy")]) == 0
    from PIL import Image

    for k in (1, 2, 3):
        a = np.asarray(Image.open(out / "frames" / f"frame_{k:04d}.png").convert("RGB")).astype(int)
        b = np.asarray(Image.open(preview / f"preview_{k:04d}.png").convert("RGB")).astype(int)
        assert np.abs(a - np.asarray(Image.open(p["image"]).convert("RGB"))).max() > 50  # it moved
        # Blender keeps its keyed poses in float32: at most a rounding step on a few edge pixels
        differ = np.abs(a - b).max(-1) > 1
        assert differ.mean() < 0.01, (k, differ.sum())


def test_auto_engine_refuses_pickle_only_weights_before_any_output(tmp_path, pickle_only_models):
    photo = make_photo(tmp_path / "photo")
    p = photo["paths"]
    keys = write_keyframes(tmp_path / "k.json", [{"frame": 1}, {"frame": 2, "translation": [0.2, 0, 0]}])
    models = pickle_only_models
    for engine in ("auto", "diffusion"):
        out = tmp_path / f"out-{engine}"
        result = run_batch("--image", p["image"], "--prompt", "a box", "--mask", p["mask"], "--depth", p["depth"],
                        "--keyframes", keys, "--out", out, "--models", models, "--engine", engine)
        err = result.stderr.strip()
        assert result.returncode == 2, result.stdout + result.stderr
        assert len(err.splitlines()) == 1 and "pickle" in err and "diffusion_pytorch_model.bin" in err, err
        assert not out.exists()
