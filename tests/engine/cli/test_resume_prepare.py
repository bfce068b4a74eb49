"""`engine edit` from the photo keeps its prepared photo in the output folder: a rerun (after an
interruption, or with more frames) does not invert the photo again, and a changed input does not
reuse it."""
from __future__ import annotations

import json

import numpy as np

from cli_photo import write_photo
from engine import io
from engine.cli import main

OPTIONS = ["--resolution", "32", "--steps", "4", "--guided-steps", "2", "--inversion", "negative-prompt",
           "--device", "cpu", "--dtype", "fp32", "--frame-batch-size", "1", "--output-size", "working"]


def _transforms(path, n):
    frames = []
    for k in range(n):
        T = np.eye(4)
        T[0, 3] = 0.06 * (k + 1)
        frames.append({"matrix": T.tolist()})
    path.write_text(json.dumps({"frames": frames}))
    return path


def _edit(d, out, models, transforms, prompt="a blue box"):
    return main(["edit", "--image", str(d / "image.png"), "--prompt", prompt, "--depth", str(d / "depth.npy"),
                 "--mask", str(d / "mask.png"), "--transforms", str(transforms), "--out", str(out),
                 "--models", str(models), *OPTIONS])


def test_rerun_reuses_the_prepared_photo_and_a_changed_input_does_not(tmp_path, tiny_models_dir, capsys):
    write_photo(tmp_path)
    two, three = _transforms(tmp_path / "two.json", 2), _transforms(tmp_path / "three.json", 3)
    out = tmp_path / "out"
    assert _edit(tmp_path, out, tiny_models_dir, two) == 0, capsys.readouterr().err
    first = json.loads((out / "report.json").read_text())
    assert first["prepare"]["reused"] is False and first["prepare"]["unet_forward"] > 0
    assert (out / "prepared" / "prepared.json").is_file()
    capsys.readouterr()

    # more frames: frames 1-2 are kept, only frame 3 is sampled, and the photo is not inverted again
    assert _edit(tmp_path, out, tiny_models_dir, three) == 0, capsys.readouterr().err
    said = capsys.readouterr().out + capsys.readouterr().err
    second = json.loads((out / "report.json").read_text())
    assert second["prepare"]["reused"] is True, said
    assert second["computed"] == [3] and second["resumed"] == [1, 2]
    fresh = tmp_path / "fresh"
    assert _edit(tmp_path, fresh, tiny_models_dir, three) == 0
    for k in (1, 2, 3):  # the same frames as one uninterrupted run of three
        np.testing.assert_array_equal(io.load_image(out / f"frame_{k:04d}.png"),
                                      io.load_image(fresh / f"frame_{k:04d}.png"))

    # another prompt: another photo to the method, prepared again, every frame recomputed
    assert _edit(tmp_path, out, tiny_models_dir, three, prompt="a red box") == 0
    third = json.loads((out / "report.json").read_text())
    assert third["prepare"]["reused"] is False and third["computed"] == [1, 2, 3]
    assert json.loads((out / "prepared" / "prepared.json").read_text())["prompt"] == "a red box"


def test_a_file_where_the_prepared_photo_goes_is_refused_before_any_work(tmp_path, tiny_models_dir, capsys):
    write_photo(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "prepared").write_text("someone's notes")
    assert _edit(tmp_path, out, tiny_models_dir, _transforms(tmp_path / "one.json", 1)) == 2
    err = capsys.readouterr().err
    assert "prepared" in err and "not a folder" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["prepared"]
    assert (out / "prepared").read_text() == "someone's notes"
