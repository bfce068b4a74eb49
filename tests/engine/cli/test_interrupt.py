"""A real interruption: `engine edit` of 4 frames in a subprocess, SIGINT once frame 2 is written.
The finished frames stay (byte-identical to an uninterrupted run), no temporary file is left,
and the rerun computes frames 3-4 only; a changed input does not reuse the stale frames."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_photo import write_photo, write_shifts
from engine.cli import main

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[3]
FRAME_FILES = ("frame", "target_mask", "edited_depth")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_models_dir):
    d = tmp_path_factory.mktemp("interrupt")
    image, depth, mask = write_photo(d)
    write_shifts(d / "transforms.json", [0.08 * (k + 1) for k in range(4)])
    prep = d / "prep"
    assert main(["-q", "prepare", "--image", str(d / "image.png"), "--prompt", "a blue box", "--depth",
                 str(d / "depth.npy"), "--mask", str(d / "mask.png"), "--out", str(prep), "--models",
                 str(tiny_models_dir), "--resolution", "32", "--steps", "3", "--inversion", "negative-prompt",
                 "--device", "cpu", "--dtype", "fp32"]) == 0
    return d, prep


def _edit_argv(d, prep, out, models, transforms="transforms.json"):
    return ["edit", "--prepared", str(prep), "--transforms", str(d / transforms), "--out", str(out),
            "--models", str(models), "--device", "cpu", "--dtype", "fp32", "--frame-batch-size", "1"]


def _files(out):
    return sorted(p.name for p in out.iterdir())


def test_interrupted_edit_keeps_finished_frames_and_resumes(setup, tiny_models_dir, tmp_path, capsys):
    d, prep = setup
    full = tmp_path / "full"
    assert main(_edit_argv(d, prep, full, tiny_models_dir)) == 0  # the uninterrupted run

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "engine", *_edit_argv(d, prep, out, tiny_models_dir)],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not (out / "frame_0002.png").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert err.strip().splitlines()[-1].startswith("error: interrupted") and "Traceback" not in err, err
    names = _files(out)
    assert not [n for n in names if ".tmp" in n], names  # no temporary survives
    kept = [n for n in names if n.startswith("frame_")]
    assert kept[:2] == ["frame_0001.png", "frame_0002.png"], names
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["frames"]) >= {"1", "2"}
    finished = sorted(int(k) for k in manifest["frames"])
    stamps = {n: (out / n).stat().st_mtime_ns for n in names if n.endswith((".png", ".exr"))}

    capsys.readouterr()
    assert main(_edit_argv(d, prep, out, tiny_models_dir)) == 0
    assert f"{len(finished)} of 4 frame(s) already finished" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["computed"] == [k for k in range(1, 5) if k not in finished]  # frames 3-4 only
    for n, stamp in stamps.items():  # the finished frames were not written again
        assert (out / n).stat().st_mtime_ns == stamp, n
    for k in range(1, 5):
        for stem in FRAME_FILES:
            name = f"{stem}_{k:04d}.{'exr' if stem == 'edited_depth' else 'png'}"
            assert (out / name).read_bytes() == (full / name).read_bytes(), name

    # Fewer frames with another trajectory: the stale frames are replaced, the extra ones removed.
    frames = json.loads((d / "transforms.json").read_text())["frames"][1:3]
    (d / "two.json").write_text(json.dumps({"frames": frames}))
    assert main(_edit_argv(d, prep, out, tiny_models_dir, "two.json")) == 0
    assert [n for n in _files(out) if n.startswith("frame_")] == ["frame_0001.png", "frame_0002.png"]
    assert (out / "frame_0001.png").read_bytes() == (full / "frame_0002.png").read_bytes()
    assert json.loads((out / "report.json").read_text())["frames"] == 2
