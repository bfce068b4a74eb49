"""The instant preset (gradient-free handles) through the command line: its counted UNet
evaluations in report.json of `engine edit` and `engine eval`, and every CLI command offers it
(batch.py and the add-on: tests/addon/test_instant_preset.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_photo import write_photo, write_shifts

from engine.cli import build_parser, main
from engine.settings import PRESETS, EditSettings

CPU = ["--device", "cpu", "--dtype", "fp32", "--resolution", "32"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    d = tmp_path_factory.mktemp("photo")
    write_photo(d)
    write_shifts(d / "transforms.json", (0.1, 0.2, 0.3))
    return d


def test_every_command_offers_the_instant_preset():
    assert "instant" in PRESETS
    parser = build_parser()
    for command in ("prepare", "edit", "eval"):
        sub = parser._subparsers._group_actions[0].choices[command]
        (preset,) = [a for a in sub._actions if "--preset" in a.option_strings]
        assert "instant" in preset.choices, command


def test_instant_counts_reach_report_json(photo, tiny_models_dir, tmp_path):
    out = tmp_path / "edit"
    assert main(["edit", "--image", str(photo / "image.png"), "--prompt", "a blue box",
                 "--depth", str(photo / "depth.npy"), "--mask", str(photo / "mask.png"),
                 "--transforms", str(photo / "transforms.json"), "--out", str(out),
                 "--models", str(tiny_models_dir), *CPU, "--preset", "instant", "--frame-batch-size", "2"]) == 0
    report = json.loads((out / "report.json").read_text())
    expected = EditSettings.preset("instant", resolution=32)
    assert report["preset"] == "instant" and report["settings"] == expected.to_dict()
    cost = expected.unet_cost()
    assert report["unet_cost_per_frame"] == cost == {"unet_forward": 30, "unet_backward": 0, "unet_equivalents": 30}
    # every frame counted: one forward per DDIM step (negative prompt), no backward at all
    assert [(f["unet_forward"], f["unet_backward"]) for f in report["per_frame"]] == [(30, 0)] * 3
    assert report["edit_unet_forward"] == 90 and report["edit_unet_backward"] == 0
    assert cost["unet_equivalents"] <= 31 < report["release_unet_cost_per_frame"]["unet_equivalents"] / 14


def test_eval_counts_the_instant_preset_and_scores_the_preview(tiny_models_dir, tmp_path):
    scenes = Path(__file__).resolve().parents[2] / "data" / "toy"
    out = tmp_path / "eval"
    assert main(["eval", "--scenes", str(scenes), "--out", str(out), "--models", str(tiny_models_dir),
                 "--steps", "4", "--inversion", "negative-prompt", "--segmenter", "colour", "--frames", "1",
                 "--no-cycle", "--compare-presets", "instant"]) == 0
    report = json.loads((out / "report.json").read_text())
    (scene,) = report["scenes"]
    (frame,) = scene["frames"]
    assert {"preset:instant", "preview"} <= set(frame["methods"])
    assert frame["methods"]["preview"]["adherence_iou"] is not None
    instant = EditSettings.from_dict(report["config"]["compare_presets"]["instant"])
    cost = scene["costs"]["edit (preset instant)"]
    # --steps 4 applies to the compared presets too: one forward per step, no backward
    assert instant.steps == 4 and instant.injects
    assert (cost["unet_forward"], cost["unet_backward"]) == (instant.unet_cost()["unet_forward"], 0) == (4, 0)
