"""batch.py refuses bad input with one line, exit code 2, and no new file (before the add-on
renders anything)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dh_synthetic import make_photo, run_batch, write_keyframes  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    d = tmp_path_factory.mktemp("batch-bad")
    p = make_photo(d / "photo", height=30, width=40, box=(10, 22, 12, 26), seed=3)["paths"]
    keys = {
        "ok": [{"frame": 1}, {"frame": 4, "translation": [0.3, 0.0, 0.0]}],
        "duplicate": [{"frame": 1}, {"frame": 1, "translation": [0.3, 0.0, 0.0]}],
        "far_frame": [{"frame": 1}, {"frame": 2_000_000_000, "translation": [0.3, 0.0, 0.0]}],
        "never_visible": [{"frame": 1, "translation": [0, 0, 5]}, {"frame": 3, "translation": [0, 0, 6]}],
        "boolean": [{"frame": 1, "translation": [True, 0, 0]}],
    }
    for name, frames in keys.items():
        write_keyframes(d / f"{name}.json", frames)
    (d / "deep.json").write_text('{"frames": ' + "[" * 3000 + "]" * 3000 + "}")
    (d / "a_file").write_text("x")
    return d, p


CASES = [
    ("duplicate keyframes", {"--keyframes": "duplicate.json"}, "both key frame 1"),
    ("frame 2,000,000,000", {"--keyframes": "far_frame.json"}, "outside"),
    ("never visible", {"--keyframes": "never_visible.json"}, "out of view"),
    ("booleans in keyframes", {"--keyframes": "boolean.json"}, "expected a number"),
    ("deeply nested keyframes", {"--keyframes": "deep.json"}, "nested"),
    ("out is a file", {"--out": "a_file"}, "not a folder"),
    ("out below a file", {"--out": "a_file/x"}, "file"),
    ("missing mask", {"--mask": "nope.png"}, "file not found"),
    ("bad steps", {"--steps": "0"}, "steps"),
    ("usage", {"--engine": "fast"}, "invalid choice"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_batch_refuses(case, photo, tmp_path):
    d, p = photo
    _, changes, fragment = case
    args = {"--image": p["image"], "--mask": p["mask"], "--depth": p["depth"], "--keyframes": d / "ok.json",
            "--out": tmp_path / "out", "--engine": "preview"}
    for k, v in changes.items():
        args[k] = v if k in ("--steps", "--engine") else d / v
    before = sorted(x.name for x in d.rglob("*"))
    result = run_batch(*[x for kv in args.items() for x in kv])
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("batch.py: error: ") and fragment in lines[0], result.stderr
    assert not (tmp_path / "out").exists() and sorted(x.name for x in d.rglob("*")) == before
