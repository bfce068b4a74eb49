"""The object by clicked points (``--point X,Y`` / ``--point-out X,Y``, SAM's point prompt with the
tiny SAM): prepare, edit and preview take them, with the mask the segment module computes, and
refuse bad points in one line before anything is written."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cli_photo import FAST
from engine import io
from engine.cli import main
from engine.errors import InputError
from engine.inputs import complete, load_photo
from engine.perception.segment import mask_from_points, parse_point


@pytest.fixture(scope="module")
def models(tiny_models_dir, tmp_path_factory):
    """The tiny models with a tiny SAM whose random weights give a part of this photo (not nearly
    all of it) for the point 20,18: removal needs some background left."""
    import shutil

    from engine.perception.tiny import write_tiny_sam

    out = tmp_path_factory.mktemp("point-models")
    shutil.copytree(tiny_models_dir, out, dirs_exist_ok=True)
    shutil.rmtree(out / "sam")
    write_tiny_sam(out / "sam", seed=6)
    return out


def _sam_mask(photo, tiny_models_dir, points, points_out=()):
    return mask_from_points(io.load_image(photo / "image.png"), points, points_out, models_dir=tiny_models_dir)


def test_parse_point_reads_x_then_y_in_photo_pixels():
    assert parse_point("20,12") == (20.0, 12.0) and parse_point(" 3.5 , 7 ") == (3.5, 7.0)
    for bad in ("20", "20,12,1", "a,b", "nan,3", ""):
        with pytest.raises(InputError, match="expected X,Y in photo pixels"):
            parse_point(bad)


def test_load_photo_and_complete_give_the_mask_of_the_points(photo, models):
    p = load_photo(photo / "image.png", "a blue box", depth=photo / "depth.npy", points=["20,18", (22, 20)],
                   points_out=["2,2"])
    assert p.mask is None and p.points == [(20.0, 18.0), (22.0, 20.0)] and p.points_out == [(2.0, 2.0)]
    p = load_photo(photo / "image.png", "a blue box", depth=photo / "depth.npy", points=["20,18"])
    complete(p, models_dir=models, device="cpu")
    want = _sam_mask(photo, models, ["20,18"])
    assert np.array_equal(p.mask, want) and p.notes["mask"].startswith("SAM from 1 point(s)")
    assert p.background_depth is not None and p.background_depth.shape == p.mask.shape


@pytest.mark.parametrize("kwargs, message", [
    ({"points": ["48,3"]}, "--point 48,3: lies outside the 48x40 photo"),
    ({"points": ["3,-1"]}, "--point 3,-1: lies outside"),
    ({"points": ["3,4"], "points_out": ["100,4"]}, "--point-out 100,4: lies outside"),
    ({"points_out": ["3,4"]}, "--point-out: needs at least one --point"),
    ({"points": ["3;4"]}, "--point '3;4': expected X,Y"),
    ({"points": ["3,4"], "mask": "m.png"}, "not several of them"),
])
def test_bad_points_are_refused_before_any_model(photo, kwargs, message):
    kwargs = {**kwargs, **({"mask": str(photo / "mask.png")} if "mask" in kwargs else {})}
    with pytest.raises(InputError) as exc:
        load_photo(photo / "image.png", "a blue box", depth=photo / "depth.npy", **kwargs)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_prepare_takes_points(photo, models, tmp_path, capsys):
    from engine.prepared import Prepared

    prep = tmp_path / "prep"
    rc = main(["prepare", "--image", str(photo / "image.png"), "--prompt", "a blue box", "--depth",
               str(photo / "depth.npy"), "--point", "20,18", "--out", str(prep),
               "--models", str(models), *FAST])
    assert rc == 0, capsys.readouterr().err
    prepared = Prepared.load(prep)
    assert np.array_equal(prepared.photo_mask, _sam_mask(photo, models, ["20,18"]))


def test_prepare_refuses_a_point_outside_the_photo_and_writes_nothing(photo, tiny_models_dir, tmp_path, capsys):
    rc = main(["prepare", "--image", str(photo / "image.png"), "--prompt", "a blue box", "--point", "60,5",
               "--out", str(tmp_path / "p"), "--models", str(tiny_models_dir), *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and "--point 60,5: lies outside the 48x40 photo" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "p").exists()


def test_preview_takes_points(photo, models, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["preview", "--image", str(photo / "image.png"), "--depth", str(photo / "depth.npy"),
               "--point", "20,18", "--point-out", "40,3", "--transforms", str(photo / "transforms.json"),
               "--out", str(out), "--models", str(models)])
    assert rc == 0, capsys.readouterr().err
    want = _sam_mask(photo, models, ["20,18"], ["40,3"])
    assert want.any() and not want.all()
    assert np.array_equal(io.load_mask(out / "target_mask_0001.png"), want)  # frame 1 is the identity
    assert json.loads((out / "report.json").read_text())["points_out"] == ["40,3"]
    rc = main(["preview", "--image", str(photo / "image.png"), "--depth", str(photo / "depth.npy"),
               "--transforms", str(photo / "transforms.json"), "--out", str(tmp_path / "none")])
    assert rc == 2 and "give --mask" in capsys.readouterr().err and not (tmp_path / "none").exists()
