"""One input, one result: the same photo, options and transforms through two command-line paths
give the same settings, UNet counts, pivots and frames (tiny models on the CPU)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cli_photo import write_photo
from engine import io
from engine.cli import main
from engine.pipeline import pivots
from engine.prepared import Prepared
from engine.settings import EditSettings

pytestmark = pytest.mark.slow

CPU = ["--resolution", "32", "--steps", "4", "--device", "cpu", "--dtype", "fp32"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    d = tmp_path_factory.mktemp("pairs")
    write_photo(d)
    # a rotation about the default pivot (the object's centroid) and a translation
    (d / "rotate.json").write_text(json.dumps({"frames": [
        {"rotation_axis": [0, 1, 0], "rotation_angle": 35},
        {"translation": [0.15, 0.0, 0.0], "rotation_axis": [1, 0, 0], "rotation_angle": -20, "scale": 1.1},
    ]}))
    return d


def _photo_args(d):
    return ["--image", str(d / "image.png"), "--prompt", "a blue box", "--depth", str(d / "depth.npy"),
            "--mask", str(d / "mask.png")]


def _report(out):
    return json.loads((out / "report.json").read_text())


def _frame_keys(out):
    frames = json.loads((out / "manifest.json").read_text())["frames"]
    return [frames[k]["key"] for k in sorted(frames, key=int)]


def test_prepared_fast_preset_is_the_edit_default_and_equals_editing_from_the_photo(photo, tiny_models_dir, tmp_path):
    models = ["--models", str(tiny_models_dir)]
    prep = tmp_path / "prep"
    assert main(["-q", "prepare", *_photo_args(photo), "--out", str(prep), "--preset", "fast", *models, *CPU]) == 0
    assert Prepared.load(prep).preset == "fast"
    via_prepared = tmp_path / "via-prepared"
    assert main(["-q", "edit", "--prepared", str(prep), "--transforms", str(photo / "rotate.json"),
                 "--out", str(via_prepared), *models, "--device", "cpu", "--dtype", "fp32"]) == 0
    direct = tmp_path / "direct"
    assert main(["-q", "edit", *_photo_args(photo), "--transforms", str(photo / "rotate.json"), "--out",
                 str(direct), "--preset", "fast", *models, *CPU]) == 0
    a, b = _report(via_prepared), _report(direct)
    fast = EditSettings.preset("fast", resolution=32).with_steps(4)
    assert a["preset"] == b["preset"] == "fast"
    assert a["settings"] == b["settings"] == fast.to_dict()
    assert (a["edit_unet_forward"], a["edit_unet_backward"]) == (b["edit_unet_forward"], b["edit_unet_backward"])
    assert a["edit_unet_forward"] == 2 * fast.unet_cost()["unet_forward"]  # fast's count, not default's
    assert [(f["unet_forward"], f["unet_backward"]) for f in a["per_frame"]] == \
        [(f["unet_forward"], f["unet_backward"]) for f in b["per_frame"]]
    assert _frame_keys(via_prepared) == _frame_keys(direct)  # the same matrices (same pivots)
    for k in (1, 2):
        name = f"frame_{k:04d}.png"
        assert np.array_equal(io.load_image(via_prepared / name), io.load_image(direct / name)), name

    # naming another preset still wins over the prepared one (its edit-time part applies)
    named = tmp_path / "named"
    assert main(["-q", "edit", "--prepared", str(prep), "--transforms", str(photo / "rotate.json"),
                 "--out", str(named), "--preset", "default", *models, "--device", "cpu", "--dtype", "fp32"]) == 0
    r = _report(named)
    assert r["preset"] == "default"
    assert r["settings"]["opt_iterations"] == EditSettings().opt_iterations
    assert r["settings"]["inversion"] == "negative-prompt"  # fixed by the prepared photo


def test_centroid_pivots_agree_between_edit_preview_and_the_prepared_photo(photo, tiny_models_dir, tmp_path):
    depth = np.load(photo / "depth.npy")
    mask = io.load_mask(photo / "mask.png")
    preview = tmp_path / "preview"
    assert main(["-q", "preview", "--image", str(photo / "image.png"), "--depth", str(photo / "depth.npy"),
                 "--mask", str(photo / "mask.png"), "--transforms", str(photo / "rotate.json"),
                 "--out", str(preview)]) == 0
    edit = tmp_path / "edit"
    assert main(["-q", "edit", *_photo_args(photo), "--transforms", str(photo / "rotate.json"), "--out",
                 str(edit), "--models", str(tiny_models_dir), "--preset", "fast", *CPU]) == 0
    expected = pivots(depth, mask)
    assert np.allclose(_report_centroids(preview), expected, atol=1e-9)
    assert np.allclose(Prepared.load(edit / "prepared").centroids, expected, atol=1e-12)
    # the frames' matrices are the same (the manifests key each frame by its matrices)
    assert _frame_keys(preview) == _frame_keys(edit)


def _report_centroids(out):
    return np.asarray(_report(out)["centroids"])
