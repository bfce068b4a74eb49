"""engine.output: atomic writes, output-folder checks, the frame manifest."""
from __future__ import annotations

import json
import os

import pytest

from engine import output
from engine.errors import InputError


def test_atomic_output_leaves_nothing_on_failure_and_normal_permissions(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with output.atomic_output(tmp_path / "a.png") as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    output.write_text(tmp_path / "b.json", "{}")
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == output.NORMAL_FILE_MODE


def test_clean_temporaries_removes_only_our_temporaries(tmp_path):
    (tmp_path / ".frame_0001.ab12cd34.tmp.png").write_text("x")  # what atomic_output names them
    (tmp_path / ".report.x9_y8z7.tmp.json").write_text("x")
    (tmp_path / "frame_0001.png").write_text("keep")
    (tmp_path / ".hidden").write_text("keep")
    output.clean_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "frame_0001.png"]


@pytest.mark.parametrize("make, fragment", [
    (lambda d: (d / "f").write_text("x") and d / "f", "not a folder"),
    (lambda d: (d / "f").write_text("x") and d / "f" / "sub", "file"),
    (lambda d: os.symlink(d / "loop", d / "loop") or d / "loop" / "x", "symlink loop"),
    (lambda d: os.symlink(d / "nowhere", d / "dangling") or d / "dangling", "dangling"),
])
def test_check_output_dir_refuses(tmp_path, make, fragment):
    target = make(tmp_path)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(InputError, match=fragment):
        output.check_output_dir(target)
    assert sorted(tmp_path.iterdir()) == before


def test_check_output_dir_accepts_a_new_nested_folder_without_creating_it(tmp_path):
    assert output.check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()


def test_inputs_named_like_outputs_are_refused(tmp_path):
    (tmp_path / "report.json").write_text("{}")
    with pytest.raises(InputError, match="report.json"):
        output.check_inputs_not_in(tmp_path, [tmp_path / "report.json"], "--out", [r"report\.json"])
    output.check_inputs_not_in(tmp_path, [tmp_path / "mine.json"], "--out", [r"report\.json"])


def _frame(directory, k, text):
    name = f"frame_{k:04d}.png"
    (directory / name).write_text(text)
    return [name]


def test_manifest_resume_skips_valid_frames_and_drops_stale_and_extra_ones(tmp_path):
    m = output.FrameManifest(tmp_path, "run", ["a", "b", "c"])
    assert m.resume() == []
    for k in (1, 2, 3):
        m.add(k, _frame(tmp_path, k, f"frame {k}"))
    (tmp_path / ".frame_0004.abcdef12.tmp.png").write_text("killed")
    # same run: all done; a frame edited on disk is no longer trusted
    (tmp_path / "frame_0002.png").write_text("edited")
    again = output.FrameManifest(tmp_path, "run", ["a", "b", "c"])
    assert again.resume() == [1, 3]
    assert not (tmp_path / "frame_0002.png").exists() and not list(tmp_path.glob(".*tmp*"))
    # a shorter run whose first transform changed: frame 1 stale, frame 3 extra, both removed
    shorter = output.FrameManifest(tmp_path, "run", ["z", "b"])
    assert shorter.resume() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    assert json.loads((tmp_path / "manifest.json").read_text())["total"] == 2
    # another key (other inputs or settings): nothing is reused
    m = output.FrameManifest(tmp_path, "run", ["a"])
    m.add(1, _frame(tmp_path, 1, "x"))
    assert output.FrameManifest(tmp_path, "other", ["a"]).resume() == []


def _write(directory, name, text):
    (directory / name).write_text(text)
    return [name]


def test_a_manifest_of_labelled_frames_in_a_shared_folder_deletes_nothing(tmp_path):
    """Frames named by label (the add-on's file names) in a folder that is not the manifest's own:
    a resume keeps valid frames, re-lists stale ones for rendering without deleting their files,
    and keeps the entries and files of frames this run does not list."""
    shared = dict(name=".frames.json", owns_folder=False)
    m = output.FrameManifest(tmp_path, "run", {"f_3.png": "c", "f_1.png": "a", "f_2.png": "b"}, **shared)
    assert m.resume() == []
    for name in ("f_1.png", "f_2.png", "f_3.png"):
        m.commit(name, [(name, lambda p, name=name: p.write_text(name))])
    assert m.complete and not (tmp_path / output.MANIFEST).exists()
    (tmp_path / "mine.txt").write_text("the user's")
    # a shorter range whose frame 2 changed (another key) and whose frame 3's file was edited
    (tmp_path / "f_3.png").write_text("painted over")
    shorter = output.FrameManifest(tmp_path, "run", {"f_2.png": "B", "f_3.png": "c"}, **shared)
    assert shorter.finished() == [] and shorter.resume() == [] and not shorter.complete
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == \
        ["f_1.png", "f_2.png", "f_3.png", "mine.txt"]
    # the full range again: frame 1 (outside the shorter run) is still finished
    assert output.FrameManifest(tmp_path, "run", {"f_1.png": "a", "f_2.png": "b"}, **shared).resume() == ["f_1.png"]
    # the order is the run's, not the file's
    again = output.FrameManifest(tmp_path, "run", {"f_2.png": "b", "f_1.png": "a"}, **shared)
    assert again.resume() == ["f_1.png"]
    again.add("f_2.png", _write(tmp_path, "f_2.png", "two"))
    assert output.FrameManifest(tmp_path, "run", {"f_2.png": "b", "f_1.png": "a"}, **shared).finished() == \
        ["f_2.png", "f_1.png"]
    # another run key: nothing is finished, and still nothing is deleted
    assert output.FrameManifest(tmp_path, "other", {"f_1.png": "a"}, **shared).resume() == []
    assert (tmp_path / "f_1.png").read_text() == "f_1.png" and (tmp_path / "mine.txt").exists()


def test_a_labelled_manifest_in_its_own_folder_deletes_stale_and_extra_frames(tmp_path):
    m = output.FrameManifest(tmp_path, "run", {"x.png": "a", "y.png": "b"})
    m.resume()
    m.add("x.png", _write(tmp_path, "x.png", "x"))
    m.add("y.png", _write(tmp_path, "y.png", "y"))
    assert output.FrameManifest(tmp_path, "run", {"x.png": "changed"}).resume() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_manifest_never_touches_files_outside_its_folder(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep")
    d = tmp_path / "out"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"format": output.MANIFEST_FORMAT, "key": "old",
                                                 "frames": {"1": {"key": "a", "files": {"../precious.txt": "0"}}}}))
    output.FrameManifest(d, "new", ["a"]).resume()
    assert outside.read_text() == "keep"
