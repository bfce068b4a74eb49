"""Table-driven bad inputs for `engine prepare`, `engine edit` and `engine preview`: every case
ends in one `error:` line naming the input, exit code 2, no traceback, and no new file."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from cli_photo import FAST, write_photo, write_shifts
from engine.cli import main


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("scene")
    image, depth, mask = write_photo(d)
    write_shifts(d / "transforms.json", [0.1])
    # hostile and broken files
    np.save(d / "complex.npy", depth.astype(np.complex64) + 1j)
    np.save(d / "tiny.npy", depth * 1e-6)
    np.save(d / "small.npy", depth[:10])
    np.save(d / "empty_mask.npy", np.zeros((40, 48)))
    Image.fromarray((depth * 1).astype(np.uint16)).save(d / "metres.png")  # 1..3: metres, not mm
    (d / "text.png").write_text("not an image")
    Image.new("1", (10_000, 10_000)).save(d / "bomb.png")  # 100 megapixels, a few kB on disk
    (d / "settings_str.json").write_text(json.dumps({"steps": "ten"}))
    (d / "settings_bool.json").write_text(json.dumps({"steps": True}))
    (d / "settings_unknown.json").write_text(json.dumps({"stepz": 4}))
    (d / "settings_list.json").write_text(json.dumps([1, 2]))
    (d / "settings_deep.json").write_text("[" * 5000 + "]" * 5000)
    (d / "settings_nan.json").write_text('{"cfg_scale": NaN}')
    (d / "deep.json").write_text('{"frames": ' + "[" * 5000 + "]" * 5000 + "}")
    (d / "bool.json").write_text(json.dumps({"frames": [{"translation": [True, 0, 0]}]}))
    (d / "behind.json").write_text(json.dumps({"frames": [{"translation": [0, 0, 5]}]}))
    (d / "far.json").write_text(json.dumps({"frames": [{"translation": [0, 0, -100]}]}))
    (d / "latin1.json").write_bytes('{"frames": [{"translation": [0.1, 0, 0]}], "n": "\xe9"}'.encode("latin-1"))
    (d / "a_file").write_text("x")
    (d / "loop").symlink_to(d / "loop")
    return d


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, err


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


PREPARE_CASES = [
    # (id, changes to the arguments, expected fragment of the message)
    ("image missing", {"--image": "nope.png"}, "file not found"),
    ("image not an image", {"--image": "text.png"}, "not a readable image"),
    ("decompression bomb", {"--image": "bomb.png"}, "megapixels"),
    ("prompt not utf-8", {"--prompt": "caf\udce9"}, "not valid UTF-8"),
    ("prompt empty", {"--prompt": "  "}, "non-empty"),
    ("complex depth", {"--depth": "complex.npy"}, "complex"),
    ("absurdly small depth", {"--depth": "tiny.npy"}, "plausible"),
    ("depth size", {"--depth": "small.npy"}, "does not match"),
    ("png depth in metres", {"--depth": "metres.png"}, "--depth-png-scale"),
    ("empty mask", {"--mask": "empty_mask.npy"}, "empty"),
    ("settings wrong type", {"--settings": "settings_str.json"}, "wrong type"),
    ("settings bool as number", {"--settings": "settings_bool.json"}, "wrong type"),
    ("settings unknown", {"--settings": "settings_unknown.json"}, "unknown setting"),
    ("settings not an object", {"--settings": "settings_list.json"}, "JSON object"),
    ("settings deeply nested", {"--settings": "settings_deep.json"}, "nested"),
    ("settings NaN", {"--settings": "settings_nan.json"}, "NaN"),
    ("steps out of range", {"--steps": "0"}, "steps"),
    ("resolution absurd", {"--resolution": "100000"}, "resolution"),
    ("seed overflows", {"--seed": str(2 ** 64)}, "seed"),
    ("prompt too long", {"--prompt": "a box " * 100}, "tokens"),
    ("out is a file", {"--out": "a_file"}, "not a folder"),
    ("out below a file", {"--out": "a_file/sub"}, "file"),
    ("out symlink loop", {"--out": "loop/sub"}, "symlink loop"),
    ("models missing", {"--models": "no-models"}, "does not exist"),
]


def _prepare_args(scene, models, out, changes):
    args = {"--image": scene / "image.png", "--prompt": "a blue box", "--depth": scene / "depth.npy",
            "--mask": scene / "mask.png", "--out": out, "--models": models}
    for k, v in changes.items():
        args[k] = v if k in ("--prompt", "--steps", "--resolution", "--seed") else scene / v
    return [x for kv in args.items() for x in kv]


@pytest.mark.parametrize("case", PREPARE_CASES, ids=[c[0] for c in PREPARE_CASES])
def test_prepare_refuses(case, scene, tiny_models_dir, tmp_path, capsys):
    _, changes, fragment = case
    before = _listing(scene)
    out = tmp_path / "prep"
    rc, err = _run(["prepare", *FAST, *_prepare_args(scene, tiny_models_dir, out, changes)], capsys)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert "Traceback" not in err
    assert not out.exists() and _listing(scene) == before
    assert not list(tmp_path.iterdir())


def test_usage_error_is_one_line(capsys):
    rc, err = _run(["edit", "--transforms"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")


def test_pickle_weights_are_refused_before_loading(scene, pickle_only_models, tmp_path, capsys):
    models = pickle_only_models
    out = tmp_path / "prep"
    rc, err = _run(["prepare", *_prepare_args(scene, models, out, {}), *FAST], capsys)
    assert rc == 2 and "pickle" in err and "diffusion_pytorch_model.bin" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


@pytest.fixture(scope="module")
def prepared_dir(scene, tiny_models_dir, tmp_path_factory):
    prep = tmp_path_factory.mktemp("prepared") / "prep"
    assert main(["prepare", *map(str, _prepare_args(scene, tiny_models_dir, prep, {})), *FAST]) == 0
    return prep


def test_prepared_files_have_the_same_permissions(prepared_dir):
    modes = {p.name: p.stat().st_mode & 0o777 for p in prepared_dir.iterdir()}
    assert modes["prepared.json"] == modes["prepared.safetensors"], modes


EDIT_CASES = [
    ("transforms nested deep", {"--transforms": "deep.json"}, "nested"),
    ("transforms with booleans", {"--transforms": "bool.json"}, "true"),
    ("transforms not utf-8", {"--transforms": "latin1.json"}, "UTF-8"),
    ("object behind the camera", {"--transforms": "behind.json"}, "out of view"),
    ("object 100 m away", {"--transforms": "far.json"}, "too small to see"),
    ("contradicts the prepared photo", {"--steps": "8"}, "fixed at prepare time"),
    ("contradicts the prepared photo (inversion)", {"--inversion": "ddim"}, "fixed at prepare time"),
    ("contradicts the prepared photo (resolution)", {"--resolution": "64"}, "fixed at prepare time"),
    ("photo arguments too", {"--image": "image.png"}, "not both"),
    ("out is a file", {"--out": "a_file"}, "not a folder"),
]


@pytest.mark.parametrize("case", EDIT_CASES, ids=[c[0] for c in EDIT_CASES])
def test_edit_refuses(case, scene, prepared_dir, tiny_models_dir, tmp_path, capsys):
    _, changes, fragment = case
    args = {"--prepared": prepared_dir, "--transforms": scene / "transforms.json", "--out": tmp_path / "out",
            "--models": tiny_models_dir, "--device": "cpu", "--dtype": "fp32"}
    for k, v in changes.items():
        args[k] = scene / v if k in ("--transforms", "--out", "--image") else v
    before = _listing(scene), _listing(prepared_dir)
    rc, err = _run(["edit", *[x for kv in args.items() for x in kv]], capsys)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in err, err
    assert (_listing(scene), _listing(prepared_dir)) == before
    assert not list(tmp_path.iterdir())


def test_edit_refuses_a_hand_edited_prepared_json(prepared_dir, scene, tiny_models_dir, tmp_path, capsys):
    copy = tmp_path / "prep"
    shutil.copytree(prepared_dir, copy)
    meta = json.loads((copy / "prepared.json").read_text())
    for change in ({"prompt": "something else"}, {"settings": {**meta["settings"], "steps": "4"}}):
        (copy / "prepared.json").write_text(json.dumps({**meta, **change}))
        rc, err = _run(["edit", "--prepared", copy, "--transforms", scene / "transforms.json",
                        "--out", tmp_path / "out", "--models", tiny_models_dir, "--device", "cpu"], capsys)
        assert rc == 2 and "integrity" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()


def test_edit_output_would_overwrite_an_input(prepared_dir, scene, tiny_models_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(scene / "transforms.json", out / "report.json")
    rc, err = _run(["edit", "--prepared", prepared_dir, "--transforms", out / "report.json", "--out", out,
                    "--models", tiny_models_dir, "--device", "cpu"], capsys)
    assert rc == 2 and "overwrite" in err or "name of an output" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]


def test_preview_names_its_own_png_scale_option(scene, tmp_path, capsys):
    rc, err = _run(["preview", "--image", scene / "image.png", "--depth", scene / "metres.png",
                    "--mask", scene / "mask.png", "--transforms", scene / "transforms.json", "--out", tmp_path / "pv"],
                   capsys)
    assert rc == 2 and "say so with --png-scale" in err and "--depth-png-scale" not in err, err
    assert not (tmp_path / "pv").exists()


def test_preview_refuses_when_never_visible(scene, tmp_path, capsys):
    # behind the camera: out of view; 100 m away, in the frame but under a pixel: too small to see
    for name, said in (("behind.json", "out of view in every frame"),
                       ("far.json", "no object is seen in any frame (frame 1: object 1 too small to see")):
        rc, err = _run(["preview", "--image", scene / "image.png", "--depth", scene / "depth.npy",
                        "--mask", scene / "mask.png", "--transforms", scene / name, "--out", tmp_path / "pv"],
                       capsys)
        assert rc == 2 and said in err, err
        assert not (tmp_path / "pv").exists()


def test_unexpected_error_says_where_the_log_is(monkeypatch, scene, tmp_path, capsys):
    import engine.cli.preview as preview

    def boom(args):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(preview, "run", boom)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    rc, err = _run(["preview", "--image", "x", "--depth", "x", "--mask", "x", "--transforms", "x",
                    "--out", "x"], capsys)
    assert rc == 1 and "unexpected ZeroDivisionError: boom" in err and "Traceback" not in err, err
    logs = list((tmp_path / "diffusion-handles").glob("error-*.log"))
    assert logs and "ZeroDivisionError" in logs[0].read_text()
    assert str(logs[0]) in err
