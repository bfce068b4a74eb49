"""`python -m engine eval` end to end (CPU, few steps, one scene), with the tiny random-weight
models: the command runs and writes both baselines (pictures are meaningless, the plumbing is not).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main

SCENES = Path(__file__).resolve().parents[2] / "data" / "toy"


@pytest.mark.slow
def test_eval_writes_report_and_both_baselines(tiny_models_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(["eval", "--scenes", str(SCENES), "--out", str(out), "--models", str(tiny_models_dir),
               "--steps", "3", "--inversion", "negative-prompt", "--segmenter", "colour", "--frames", "1",
               "--set", "loss=l2", "--set", "background-margin=0.25"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["steps"] == 3 and report["config"]["inversion"] == "negative-prompt"
    # --set: a bare word, a JSON number, a field named with dashes; the method runs with them
    assert report["config"]["settings_overrides"] == {"loss": "l2", "background_margin": 0.25}
    assert (report["config"]["settings"]["loss"], report["config"]["settings"]["background_margin"]) == ("l2", 0.25)
    assert report["segmenter"].startswith("colour")
    (scene,) = report["scenes"]
    (frame,) = scene["frames"]
    assert set(frame["methods"]) == {"edit", "no_guidance", "nothing_moved", "preview"}
    for method in ("edit", "no_guidance", "nothing_moved"):
        m = frame["methods"][method]
        for key in ("adherence_iou", "gt_l1", "gt_psnr", "gt_l1_object", "cycle_l1"):
            assert m[key] is not None, (method, key)
        assert 0.0 <= m["adherence_iou"] <= 1.0
    assert frame["methods"]["nothing_moved"]["cycle_l1"] == 0.0
    # (random weights: the reconstruction whose colours the segmenter also learns is noise)
    assert 0.8 < frame["segmenter_ceiling_iou"] <= 1.0
    assert costs_per_frame_ok(scene)
    assert frame["target_mask_iou_lifted"] > 0.5  # the geometry finds the moved object
    costs = scene["costs"]
    assert costs["prepare"]["unet_forward"] > 0
    assert costs["edit (guided)"]["unet_backward"] > 0  # guidance differentiates the UNet
    assert costs["edit (no guidance)"]["unet_backward"] == 0  # ... and the baseline does not
    for stage in ("cycle (guided) prepare", "cycle (guided) edit back", "cycle (no guidance) edit back"):
        assert costs[stage]["calls"] == 1
    md = (out / "report.md").read_text()
    assert "no guidance" in md and "nothing moved" in md and "adherence IoU" in md
    assert (out / "contact_sheet.png").is_file()
    for name in ("edit_0001.png", "no_guidance_0001.png", "cycle_edit_0001.png", "reconstruction.png"):
        assert (out / "scene_003" / name).is_file(), name
    assert "adherence IoU" in capsys.readouterr().out


def test_eval_bad_inputs(tmp_path, capsys):
    assert main(["eval", "--scenes", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["eval", "--scenes", str(SCENES), "--out", str(tmp_path / "o"), "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err
    assert main(["eval", "--scenes", str(SCENES), "--out", str(tmp_path / "o"), "--set", "nope=1"]) == 2
    assert "--set" in capsys.readouterr().err


# --- with the trained toy model ---------------------------------------------------------------

def costs_per_frame_ok(scene) -> bool:
    c = scene["costs"]
    # an edit's costs are per frame: one frame of --steps 3 is at most 2 x 3 CFG + 3 x 3 guidance forwards
    return c["edit (no guidance)"]["frames"] == 1 and c["edit (guided)"]["unet_forward"] <= 2 * 3 + 3 * 3
