"""The engine without the Unix-only standard modules (resource, fcntl, pwd, grp, termios), as on
Windows: imported and run end to end (`engine edit` from a photo with the tiny models, and
`engine preview`) in a subprocess where importing any of them raises ImportError, with paths
that hold spaces and non-ASCII characters."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_photo import FAST, write_photo, write_shifts
from unix_blocker import UNIX_ONLY, environment

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(args, env, timeout=600):
    return subprocess.run([sys.executable, *args], cwd=str(REPO_ROOT), env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout)


def test_the_blocker_really_blocks(tmp_path):
    env = environment(tmp_path / "site")
    code = ("import importlib\nfor n in %r:\n    try:\n        importlib.import_module(n)\n"
            "    except ImportError:\n        print('blocked', n)\n") % (UNIX_ONLY,)
    result = _run(["-c", code], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:-1] == [f"blocked {n}" for n in UNIX_ONLY]


def test_profiling_without_resource_reports_no_error(tmp_path):
    env = environment(tmp_path / "site", REPO_ROOT)
    result = _run(["-c", "from engine import profiling; print(repr(profiling.process_peak_memory()))"], env)
    assert result.returncode == 0, result.stderr
    value = eval(result.stdout.strip())  # None, or bytes from psutil
    assert value is None or (isinstance(value, int) and value > 0)


@pytest.mark.slow
def test_engine_edit_and_preview_run_without_unix_only_modules(tmp_path, tiny_models_dir):
    d = tmp_path / "dossier été" / "photo 1"
    d.mkdir(parents=True)
    write_photo(d)
    write_shifts(d / "transforms.json", [0.0, 0.2])
    env = environment(tmp_path / "site", REPO_ROOT)
    out = tmp_path / "sortie à rendre" / "edit 1"
    result = _run(["-m", "engine", "-q", "edit", "--image", str(d / "image.png"), "--prompt", "a blue box",
                   "--depth", str(d / "depth.npy"), "--mask", str(d / "mask.png"),
                   "--transforms", str(d / "transforms.json"), "--out", str(out),
                   "--models", str(tiny_models_dir), *FAST], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", result.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["computed"] == [1, 2]
    assert isinstance(report["peak_memory_bytes"], int)
    for k in (1, 2):
        assert (out / f"frame_{k:04d}.png").is_file()

    preview = tmp_path / "sortie à rendre" / "aperçu"
    result = _run(["-m", "engine", "-q", "preview", "--image", str(d / "image.png"), "--depth",
                   str(d / "depth.npy"), "--mask", str(d / "mask.png"), "--transforms",
                   str(d / "transforms.json"), "--out", str(preview)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in preview.glob("preview_*.png")) == ["preview_0001.png", "preview_0002.png"]
    # an error still ends in one line (the error log goes to the temporary folder, from tempfile)
    result = _run(["-m", "engine", "preview", "--image", str(d / "missing.png"), "--depth",
                   str(d / "depth.npy"), "--mask", str(d / "mask.png"), "--transforms",
                   str(d / "transforms.json"), "--out", str(tmp_path / "never")], env)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "never").exists()
    assert np.asarray(json.loads((preview / "report.json").read_text(encoding="utf-8"))["centroids"]).shape == (1, 3)
