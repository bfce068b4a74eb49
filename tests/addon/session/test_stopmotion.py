"""session/stopmotion.py: the resumable frame loop keeps a frame only while its file is the one it
wrote (its key and its bytes), renders each new content once, and reuses repeats."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from dh_synthetic import addon_module  # noqa: E402


class ShadeRenderer:
    """A real renderer for the loop: each edit's image is a grey shade set by its x translation
    (so frames differ and repeat exactly as their edits do); counts what it renders."""

    batch_size = 2

    def __init__(self):
        self.rendered = 0

    def __call__(self, edits, progress=None, should_cancel=None):
        self.rendered += len(edits)
        return [np.full((6, 8, 3), 0.2 + float(e.objects[0][0][3]), np.float32) for e in edits]


def _plan(stopmotion, frames, folder, shifts):
    plan = []
    for n, dx in enumerate(shifts):
        T = np.eye(4)
        T[0, 3] = dx
        edit = frames.as_edit(T)
        plan.append(stopmotion.FramePlan(n + 1, edit, str(folder / f"f_{n + 1:04d}.png"), frames.frame_key(edit, "k")))
    return plan


@pytest.fixture
def modules(addon):
    return addon_module("session.stopmotion"), addon_module("session.frames")


def test_frames_are_kept_only_while_their_files_are_unchanged(modules, tmp_path):
    stopmotion, frames = modules
    plan = _plan(stopmotion, frames, tmp_path, [0.0, 0.1, 0.1, 0.3])
    renderer = ShadeRenderer()
    first = stopmotion.run_frames(plan, renderer)
    assert (first.rendered, first.reused, first.kept) == ([1, 2, 4], [3], [])
    assert renderer.rendered == 3
    manifest = json.loads((tmp_path / stopmotion.MANIFEST).read_text())
    assert set(manifest) == {"f_0001.png", "f_0002.png", "f_0003.png", "f_0004.png"}
    assert all(set(e) == {"key", "sha256"} for e in manifest.values())

    again = stopmotion.run_frames(plan, renderer)
    assert again.kept == [1, 2, 3, 4] and renderer.rendered == 3

    # another program overwrote frame 2 (say, a paint-over) and truncated frame 4: neither is kept;
    # frame 2 comes back from frame 3 (the same edit, still intact), frame 4 is rendered again
    (tmp_path / "f_0002.png").write_bytes((tmp_path / "f_0001.png").read_bytes())
    data = (tmp_path / "f_0004.png").read_bytes()
    (tmp_path / "f_0004.png").write_bytes(data[: len(data) // 2])
    third = stopmotion.run_frames(plan, renderer)
    assert (third.kept, third.reused, third.rendered) == ([1, 3], [2], [4]) and renderer.rendered == 4
    assert (tmp_path / "f_0002.png").read_bytes() == (tmp_path / "f_0003.png").read_bytes()
    assert (tmp_path / "f_0004.png").read_bytes() == data


def test_a_manifest_without_hashes_renders_again(modules, tmp_path):
    stopmotion, frames = modules
    plan = _plan(stopmotion, frames, tmp_path, [0.0, 0.2])
    renderer = ShadeRenderer()
    stopmotion.run_frames(plan, renderer)
    old = {Path(item.path).name: item.key for item in plan}  # the format before the hashes
    (tmp_path / stopmotion.MANIFEST).write_text(json.dumps(old))
    summary = stopmotion.run_frames(plan, renderer)
    assert summary.kept == [] and summary.rendered == [1, 2]
