"""Faults on real processes: a SIGKILL at any moment, two runs writing one folder, a full disk
(the file size limit, RLIMIT_FSIZE, with SIGXFSZ ignored: writes fail with EFBIG as on a full
disk), a damaged prepared cache. `engine preview` needs no models, so it runs many frames fast."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_photo import FAST, write_photo, write_shifts

REPO_ROOT = Path(__file__).resolve().parents[3]
FRAMES = 40
unix_only = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and RLIMIT_FSIZE are Unix's")


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    write_photo(d)
    write_shifts(d / "t.json", [0.01 * k for k in range(FRAMES)])
    return d


def _preview_args(d, out):
    return ["-m", "engine", "preview", "--image", str(d / "image.png"), "--depth", str(d / "depth.npy"),
            "--mask", str(d / "mask.png"), "--transforms", str(d / "t.json"), "--out", str(out)]


def _run(args, **kwargs):
    return subprocess.run([sys.executable, *args], cwd=str(REPO_ROOT), capture_output=True, text=True,
                          timeout=600, **kwargs)


def _contents(out, skip=("report.json",)):
    """{name: bytes} of a finished folder (the report holds timings)."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name not in skip}


@pytest.fixture(scope="module")
def reference(photo, tmp_path_factory):
    """An uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / "out"
    result = _run(_preview_args(photo, out))
    assert result.returncode == 0, result.stderr
    return _contents(out)


def _listed(out):
    return json.loads((out / "manifest.json").read_text())["frames"]


def _check_listed_only(out):
    """Every frame file on disk is listed in the manifest with its hash; nothing half-written."""
    from engine.output import file_digest

    listed = {name: digest for entry in _listed(out).values() for name, digest in entry["files"].items()}
    on_disk = {p.name for p in out.iterdir()} - {"manifest.json", "report.json"}
    assert on_disk == set(listed), sorted(on_disk ^ set(listed))
    for name, digest in listed.items():
        assert file_digest(out / name) == digest, name


@unix_only
@pytest.mark.slow
@pytest.mark.parametrize("after", [0, 3, 17])
def test_sigkill_then_rerun_equals_an_uninterrupted_run(photo, reference, tmp_path, after):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, *_preview_args(photo, out)], cwd=str(REPO_ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None:
        try:
            if len(_listed(out)) >= after:
                break
        except (OSError, ValueError, KeyError):
            pass
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    if out.exists():
        from PIL import Image

        for p in out.glob("preview_*.png"):  # a frame file is a whole frame, never a truncated one
            Image.open(p).load()
    result = _run(_preview_args(photo, out))
    assert result.returncode == 0, result.stderr
    assert _contents(out) == reference  # no temporary, claim or stray frame left; the same bytes
    report = json.loads((out / "report.json").read_text())
    assert len(report["frames"]) == FRAMES


@pytest.mark.slow
def test_preview_rerun_resumes_without_rewriting_finished_frames(photo, reference, tmp_path):
    out = tmp_path / "out"
    assert _run(_preview_args(photo, out)).returncode == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("preview_*.png")}
    (out / "preview_0007.png").unlink()  # a frame lost since: only it is made again
    result = _run(_preview_args(photo, out))
    assert result.returncode == 0 and "resuming" in result.stdout, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["resumed"] == [k for k in range(1, FRAMES + 1) if k != 7]
    for name, stamp in stamps.items():
        if name != "preview_0007.png":
            assert (out / name).stat().st_mtime_ns == stamp, name
    assert _contents(out) == reference


@pytest.mark.slow
def test_a_second_writer_is_refused_while_the_first_lives_and_a_dead_ones_claim_is_taken_over(
        photo, reference, tmp_path):
    from engine.output import WRITER_CLAIM, release_claim, try_claim

    out = tmp_path / "out"
    out.mkdir()
    claim = out / WRITER_CLAIM
    assert try_claim(claim)  # a live writer (this test process) holds the folder
    result = _run(_preview_args(photo, out))
    err = result.stderr.strip()
    assert result.returncode == 1 and len(err.splitlines()) == 1 and "another run" in err, err
    assert sorted(p.name for p in out.iterdir()) == [WRITER_CLAIM]  # nothing written
    release_claim(claim)

    # the claim of a process that no longer runs (killed) is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    claim.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "time": 0, "token": "x"}))
    result = _run(_preview_args(photo, out))
    assert result.returncode == 0, result.stderr
    assert _contents(out) == reference


@pytest.mark.slow
def test_two_writers_started_together_end_with_one_consistent_set(photo, reference, tmp_path):
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, *_preview_args(photo, out)], cwd=str(REPO_ROOT),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 1]), results  # the second finds it done, or is refused in one line
    for code, err in results:
        if code == 1:
            assert len(err.strip().splitlines()) == 1 and "another run" in err, err
    assert _contents(out) == reference


# --- a full disk ---------------------------------------------------------------------------------
def _limited(limit):
    import resource

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@unix_only
@pytest.mark.slow
def test_full_disk_ends_in_one_line_with_a_manifest_that_matches_the_folder(photo, reference, tmp_path):
    sizes = {name: len(data) for name, data in reference.items()}
    frame_files = {n: s for n, s in sizes.items() if n != "manifest.json"}
    exr = min(s for n, s in frame_files.items() if n.endswith(".exr"))
    masks = max(s for n, s in frame_files.items() if n.startswith(("target_mask", "valid_mask")))
    limit = max(masks, 600) + 1  # room for the masks, the folder's claim and the first manifest
    assert limit < exr  # the depth is the first file of a frame too big for this limit
    # 1. the EXR writer fails on the first frame's depth
    out = tmp_path / "exr"
    result = _run(_preview_args(photo, out), preexec_fn=_limited(limit))
    err = result.stderr.strip()
    assert result.returncode == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("error: disk full writing") and "edited_depth_0001.exr" in err and "Traceback" not in err, err
    _check_listed_only(out)
    assert _listed(out) == {}
    # 2. the manifest outgrows the limit after some frames: those frames stay, listed and whole
    limit = max(frame_files.values()) + 1
    assert limit < sizes["manifest.json"]
    out = tmp_path / "manifest"
    result = _run(_preview_args(photo, out), preexec_fn=_limited(limit))
    err = result.stderr.strip()
    assert result.returncode == 1 and err.startswith("error: disk full writing") and "manifest.json" in err, err
    assert 0 < len(_listed(out)) < FRAMES
    _check_listed_only(out)
    # a rerun with space finishes, equal to a run that never failed
    assert _run(_preview_args(photo, out)).returncode == 0
    assert _contents(out) == reference


# --- a damaged prepared cache ----------------------------------------------------------------------
@pytest.mark.slow
def test_damaged_prepared_cache_is_refused_never_half_used(photo, tiny_models_dir, tmp_path):
    prep = tmp_path / "prep"
    base = ["--models", str(tiny_models_dir), "--device", "cpu", "--dtype", "fp32"]
    result = _run(["-m", "engine", "-q", "prepare", "--image", str(photo / "image.png"), "--prompt", "a blue box",
                   "--depth", str(photo / "depth.npy"), "--mask", str(photo / "mask.png"), "--out", str(prep),
                   *base, *FAST])
    assert result.returncode == 0, result.stderr
    write_shifts(tmp_path / "two.json", [0.0, 0.1])
    tensors = prep / "prepared.safetensors"
    whole = tensors.read_bytes()
    for damage in ("truncated", "flipped", "no json"):
        if damage == "truncated":
            tensors.write_bytes(whole[: len(whole) // 2])
        elif damage == "flipped":
            tensors.write_bytes(whole[:-9] + bytes([whole[-9] ^ 1]) + whole[-8:])
        else:
            tensors.write_bytes(whole)
            os.replace(prep / "prepared.json", tmp_path / "aside.json")
        out = tmp_path / f"out-{damage.replace(' ', '-')}"
        result = _run(["-m", "engine", "edit", "--prepared", str(prep), "--transforms", str(tmp_path / "two.json"),
                       "--out", str(out), *base])
        err = result.stderr.strip()
        assert result.returncode == 2 and len(err.splitlines()) == 1 and "prepared" in err, (damage, err)
        assert not out.exists(), damage
