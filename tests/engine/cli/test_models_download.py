"""`python -m engine models download` for real: huggingface_hub itself talking to a stand-in Hub on
127.0.0.1 (tests/hub_server.py): progress, a dropped connection resumed, files verified, and the
model loading with HF_HUB_OFFLINE=1 afterwards."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_server import HubServer, repo_with_large_file

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[3]


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1", **extra)
    return env


def _python(code, env, timeout=300):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=str(REPO_ROOT))


def test_download_resume_verify_then_offline(tmp_path, tiny_models_dir):
    repo, large = repo_with_large_file(tiny_models_dir / "diffusion", tmp_path / "repo")
    with HubServer({"dh-test/tiny-sd2-depth": repo}, interrupt={large}) as hub:
        env = _env(tmp_path, HF_ENDPOINT=hub.url)
        result = subprocess.run([sys.executable, "-m", "engine", "models", "download", "diffusion",
                                 "--id", "dh-test/tiny-sd2-depth"], capture_output=True, text=True, env=env,
                                timeout=300, cwd=str(REPO_ROOT))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "diffusion: ready in" in result.stdout
        assert "Fetching 13 files" in result.stderr and "100%" in result.stderr  # progress bars
        ranges = hub.ranges(large)  # the dropped connection was resumed from the bytes on disk
        assert len(ranges) == 2 and ranges[0] is None and ranges[1] == f"bytes={10 << 20}-", ranges
        assert any(path.endswith("/revision/main") for _, path, _ in hub.requests)

    # the server is gone: everything below is offline
    offline = _env(tmp_path, HF_HUB_OFFLINE="1")
    check = _python(
        "from engine import registry\n"
        "r = registry.verify('diffusion', 'dh-test/tiny-sd2-depth')\n"
        "print('VERIFY', r.ok, r.checked_files, r.problems)\n"
        "from engine.pipeline import Engine\n"
        "e = Engine(model_overrides={'diffusion': 'dh-test/tiny-sd2-depth'}, device='cpu').load()\n"
        "print('LOADED', type(e.models.unet).__name__)\n", offline)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "VERIFY True 13 []" in check.stdout and "LOADED UNet2DConditionModel" in check.stdout

    # a corrupted blob is found by the verification (against the Hub's metadata recorded at download)
    snapshot = next((tmp_path / "hf" / "hub" / "models--dh-test--tiny-sd2-depth" / "snapshots").iterdir())
    blob = (snapshot / "vae" / "config.json").resolve()
    blob.write_text(blob.read_text().replace("{", "{ ", 1))
    check = _python("from engine import registry\n"
                    "print(registry.verify('diffusion', 'dh-test/tiny-sd2-depth').problems)", offline)
    assert "vae/config.json has 642 bytes, the Hub's metadata says 641" in check.stdout, check.stdout + check.stderr

    # downloads refuse clearly when offline
    refused = subprocess.run([sys.executable, "-m", "engine", "models", "download", "diffusion", "--id",
                              "dh-test/tiny-sd2-depth"], capture_output=True, text=True, env=offline, timeout=120,
                             cwd=str(REPO_ROOT))
    assert refused.returncode != 0 and "HF_HUB_OFFLINE is set" in refused.stderr
