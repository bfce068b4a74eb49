"""engine.evaluation.scenes: loading the evaluation scenes (tests/data/toy), named refusals."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError
from engine.evaluation.scenes import find_scenes, load_scene, object_query

DATA = Path(__file__).resolve().parents[2] / "data"
SCENE = DATA / "toy" / "scene_003"


def test_load_scene():
    s = load_scene(SCENE)
    assert s.image.shape == (64, 64, 3) and s.image.dtype == np.float32
    assert 0.0 <= s.image.min() and s.image.max() <= 1.0
    assert s.depth.shape == (64, 64) and np.all(s.depth > 0)
    assert s.mask.dtype == bool and s.mask.any()
    assert s.prompt == "a ring on a floor"
    assert [f.index for f in s.frames] == [1, 2]
    for f in s.frames:
        assert f.transform.matrix.shape == (4, 4) and not f.transform.moves_camera
        assert f.gt_image.shape == (64, 64, 3) and f.gt_true.any() and f.gt_lifted.any()
    assert find_scenes(SCENE) == [SCENE]
    assert find_scenes(SCENE.parent) == [SCENE]


def test_bad_scene_inputs(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        find_scenes(tmp_path / "nope")
    with pytest.raises(InputError, match="no scene folders"):
        find_scenes(tmp_path)
    bad = tmp_path / "scene"
    bad.mkdir()
    for name in ("image.png", "mask.png", "prompt.txt", "depth.npy"):
        (bad / name).write_bytes((SCENE / name).read_bytes())
    (bad / "transforms.json").write_text('{"frames": [{"matrix": [[1, 0, 0], [0, 1, 0]]}]}')
    with pytest.raises(InputError, match="transforms"):
        load_scene(bad)
    (bad / "transforms.json").write_text((SCENE / "transforms.json").read_text())
    d = np.load(SCENE / "depth.npy")
    d[3, 3] = np.nan
    np.save(bad / "depth.npy", d)
    with pytest.raises(InputError, match="NaN"):
        load_scene(bad)


def test_object_query():
    assert object_query("a toy car on a floor") == "toy car"
    assert object_query("A ring on a floor.") == "ring"
    assert object_query("the cone") == "cone"


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_an_empty_prompt_file_is_refused_before_the_evaluation_starts(tmp_path, tiny_models_dir, capsys, text):
    # loading gives an empty prompt, as for a missing prompt.txt (it was an IndexError); the
    # evaluation, whose model needs a caption, names the file before it writes anything
    import shutil

    from engine.cli import main

    scene = tmp_path / "scenes" / "scene_003"
    shutil.copytree(SCENE, scene)
    (scene / "prompt.txt").write_text(text)
    assert load_scene(scene).prompt == ""
    shutil.copytree(SCENE, tmp_path / "scenes" / "scene_000")  # a good scene before it: not started
    out = tmp_path / "eval"
    assert main(["eval", "--scenes", str(tmp_path / "scenes"), "--out", str(out), "--models", str(tiny_models_dir),
                 "--steps", "2", "--segmenter", "colour", "--no-cycle"]) == 2
    err = capsys.readouterr().err
    assert "prompt.txt" in err and "scene_003" in err and "missing or empty" in err
    assert not out.exists()
