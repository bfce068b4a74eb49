"""session/stopmotion.py: the resumable frame loop keeps a frame only while its file is the one it
wrote (its key and its bytes), renders each new content once, reuses repeats, and never deletes a
file of the user's folder (frames outside the run's range, other names, stale frames)."""
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


def _plan(stopmotion, frames, folder, shifts, name="f", context="k", first=1):
    plan = []
    for n, dx in enumerate(shifts, start=first):
        T = np.eye(4)
        T[0, 3] = dx
        edit = frames.as_edit(T)
        plan.append(stopmotion.FramePlan(n, edit, str(folder / f"{name}_{n:04d}.png"), frames.frame_key(edit, context)))
    return plan


def _finished(stopmotion, folder, plan):
    """The frames of ``plan`` the folder's manifest lists as finished (read through the engine's
    FrameManifest, the one format the add-on's manifest is written in)."""
    from engine.output import FrameManifest

    keys = {Path(item.path).name: item.key for item in plan}
    return FrameManifest(folder, stopmotion.RUN_KEY, keys, name=stopmotion.MANIFEST, owns_folder=False).finished()


def _contents(folder):
    return {p.name: p.read_bytes() for p in Path(folder).iterdir() if not p.name.startswith(".")}


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
    assert _finished(stopmotion, tmp_path, plan) == ["f_0001.png", "f_0002.png", "f_0003.png", "f_0004.png"]

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


def test_a_manifest_of_the_earlier_format_is_ignored_and_its_frames_render_again(modules, tmp_path):
    stopmotion, frames = modules
    plan = _plan(stopmotion, frames, tmp_path, [0.0, 0.2])
    renderer = ShadeRenderer()
    stopmotion.run_frames(plan, renderer)
    from engine.output import file_digest

    # the add-on's manifest before it used the engine's: file name -> {"key", "sha256"}, all valid
    old = {Path(item.path).name: {"key": item.key, "sha256": file_digest(item.path)} for item in plan}
    (tmp_path / stopmotion.MANIFEST).write_text(json.dumps(old))
    summary = stopmotion.run_frames(plan, renderer)
    assert summary.kept == [] and summary.rendered == [1, 2] and renderer.rendered == 4
    assert stopmotion.run_frames(plan, renderer).kept == [1, 2]  # rewritten in the new format


def test_a_shorter_range_or_another_file_name_deletes_no_frame(modules, tmp_path):
    stopmotion, frames = modules
    full = _plan(stopmotion, frames, tmp_path, [0.0, 0.1, 0.2, 0.3])
    renderer = ShadeRenderer()
    stopmotion.run_frames(full, renderer)
    before = _contents(tmp_path)

    # the range shrinks to frames 2..3 and frame 3's pose changes: frames 1 and 4 stay on disk and
    # in the manifest, frame 2 is kept, frame 3 rendered again
    shorter = _plan(stopmotion, frames, tmp_path, [0.1, 0.25], first=2)
    summary = stopmotion.run_frames(shorter, renderer)
    assert (summary.kept, summary.rendered) == ([2], [3]) and renderer.rendered == 5
    after = _contents(tmp_path)
    assert set(after) == set(before)
    assert {n: after[n] for n in ("f_0001.png", "f_0002.png", "f_0004.png")} == \
        {n: before[n] for n in ("f_0001.png", "f_0002.png", "f_0004.png")}
    assert after["f_0003.png"] != before["f_0003.png"]

    # the full range again: frames 1, 2 and 4 are kept (their entries survived), 3 is re-rendered
    again = stopmotion.run_frames(full, renderer)
    assert (again.kept, again.rendered) == ([1, 2, 4], [3]) and renderer.rendered == 6

    # another output name in the same folder: the earlier frames stay, the new ones are written
    other = _plan(stopmotion, frames, tmp_path, [0.0, 0.1], name="g")
    assert stopmotion.run_frames(other, renderer).rendered == [1, 2]
    assert {n: v for n, v in _contents(tmp_path).items() if n.startswith("f_")} == before
    assert _finished(stopmotion, tmp_path, full) == ["f_0001.png", "f_0002.png", "f_0003.png", "f_0004.png"]


def test_a_stale_frame_keeps_its_file_until_it_is_rendered_again(modules, tmp_path):
    stopmotion, frames = modules
    CancelledError = addon_module("engine.errors").CancelledError  # the add-on's copy of the engine
    plan = _plan(stopmotion, frames, tmp_path, [0.0, 0.1])
    renderer = ShadeRenderer()
    stopmotion.run_frames(plan, renderer)
    before = _contents(tmp_path)
    # other settings (another key for every frame), cancelled before the first frame
    changed = _plan(stopmotion, frames, tmp_path, [0.0, 0.1], context="other settings")
    with pytest.raises(CancelledError):
        stopmotion.run_frames(changed, renderer, should_cancel=lambda: True)
    assert _contents(tmp_path) == before
    summary = stopmotion.run_frames(changed, renderer)
    assert summary.kept == [] and summary.rendered == [1, 2]


def test_frames_in_several_folders_resume_and_reuse_across_them(modules, tmp_path):
    stopmotion, frames = modules
    a = _plan(stopmotion, frames, tmp_path / "a", [0.0, 0.1])
    b = _plan(stopmotion, frames, tmp_path / "b", [0.0, 0.3], first=3)  # frame 3 repeats frame 1's pose
    plan = a + b
    renderer = ShadeRenderer()
    first = stopmotion.run_frames(plan, renderer)
    assert (first.rendered, first.reused) == ([1, 2, 4], [3])
    assert (tmp_path / "b" / "f_0003.png").read_bytes() == (tmp_path / "a" / "f_0001.png").read_bytes()
    assert _finished(stopmotion, tmp_path / "a", a) == ["f_0001.png", "f_0002.png"]
    assert _finished(stopmotion, tmp_path / "b", b) == ["f_0003.png", "f_0004.png"]
    # frame 1's file damaged: it comes back as a copy of frame 3 (same pose, intact, other folder)
    (tmp_path / "a" / "f_0001.png").write_bytes(b"not a frame")
    again = stopmotion.run_frames(plan, renderer)
    assert (again.kept, again.reused, again.rendered) == ([2, 3, 4], [1], []) and renderer.rendered == 3
    assert (tmp_path / "a" / "f_0001.png").read_bytes() == (tmp_path / "b" / "f_0003.png").read_bytes()
