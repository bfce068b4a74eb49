"""batch.py --models FILE: the original single-file checkpoint as the diffusion model (converted
once), the same frames as the diffusers-format folder; a file that is no checkpoint is one line."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from dh_synthetic import REPO_ROOT, make_photo, write_keyframes  # noqa: E402
from ldm_checkpoint import write_ldm_checkpoint  # noqa: E402

pytestmark = pytest.mark.slow


def _batch(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), HF_HUB_CACHE=str(tmp_path / "empty-hub"), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(REPO_ROOT / "batch.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=str(REPO_ROOT), env=env)


def test_batch_models_file_renders_the_same_frames(tmp_path, tiny_models_dir):
    photo = make_photo(tmp_path / "photo")
    p = photo["paths"]
    keys = write_keyframes(tmp_path / "k.json", [{"frame": 1}, {"frame": 2, "translation": [0.2, 0, 0]}])
    file = write_ldm_checkpoint(tiny_models_dir / "diffusion", tmp_path / "ckpt" / "512-depth-ema.safetensors")
    common = ["--image", p["image"], "--prompt", "a box", "--mask", p["mask"], "--depth", p["depth"],
              "--keyframes", keys, "--steps", "2", "--resolution", "32", "--inversion", "ddim"]
    frames = {}
    for name, models in (("folder", tiny_models_dir), ("file", file)):
        result = _batch(tmp_path, *common, "--out", tmp_path / name, "--models", models)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "engine: diffusion" in result.stdout, result.stdout  # auto: the file's weights were found
        frames[name] = [np.asarray(Image.open(tmp_path / name / "frames" / f"frame_{k:04d}.png"))
                        for k in (1, 2)]
    for a, b in zip(frames["folder"], frames["file"]):
        assert np.array_equal(a, b)
    bad = tmp_path / "notes.txt"
    bad.write_text("not a model")
    result = _batch(tmp_path, *common, "--out", tmp_path / "bad", "--models", bad)
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1 and "notes.txt" in err, err
    assert not (tmp_path / "bad").exists()
