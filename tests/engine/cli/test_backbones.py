"""`--backbone` on the command line: tiny SD 1.5 and SDXL depth-ControlNet edits through the real
loading code, the backbone recorded in the prepared photo and report.json, and an edit with
another backbone refused in one line before anything is written."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cli_photo import FAST
from engine import io
from engine.cli import main


def _prepare(photo, models, prep, backbone):
    return main(["prepare", "--image", str(photo / "image.png"), "--prompt", "a blue box",
                 "--depth", str(photo / "depth.npy"), "--mask", str(photo / "mask.png"),
                 "--out", str(prep), "--models", str(models), *FAST, "--backbone", backbone])


@pytest.mark.parametrize("backbone", ["sd15-depth", "sdxl-depth"])
def test_controlnet_backbone_prepare_edit_and_refusal(photo, tiny_models_dir, tmp_path, capsys, backbone):
    prep = tmp_path / "prep"
    assert _prepare(photo, tiny_models_dir, prep, backbone) == 0, capsys.readouterr().err
    assert json.loads((prep / "prepared.json").read_text())["backbone"] == backbone
    out = tmp_path / "out"
    rc = main(["edit", "--prepared", str(prep), "--transforms", str(photo / "transforms.json"), "--out", str(out),
               "--models", str(tiny_models_dir), "--device", "cpu", "--dtype", "fp32", "--backbone", backbone])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["backbone"] == backbone and " + " in report["model_id"]
    assert report["edit_unet_forward"] > 0 and report["edit_unet_backward"] > 0
    moved = io.load_image(out / "frame_0002.png")
    assert moved.shape == (40, 48, 3) and np.isfinite(moved).all()
    # the same prepared photo edited with the default backbone: one line, exit 2, nothing written
    capsys.readouterr()
    refused = tmp_path / "refused"
    rc = main(["edit", "--prepared", str(prep), "--transforms", str(photo / "transforms.json"),
               "--out", str(refused), "--models", str(tiny_models_dir), "--device", "cpu", "--dtype", "fp32"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert f"made with backbone {backbone}; this edit uses sd2-depth" in err
    assert not refused.exists()


def test_backbone_roles_missing_refused_before_output(photo, tiny_models_dir, tmp_path, capsys):
    """A models folder with only SD2-depth: --backbone sdxl-depth names the missing role, makes nothing."""
    import shutil

    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir / "diffusion", models / "diffusion")
    prep = tmp_path / "prep"
    assert _prepare(photo, models, prep, "sdxl-depth") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sdxl" in err, err
    assert not prep.exists()
