"""The preset reaches the engine: UNet evaluation counts in report.json of `engine edit` (tiny models)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_photo import write_photo, write_shifts

from engine.cli import main
from engine.settings import EditSettings

CPU = ["--device", "cpu", "--dtype", "fp32", "--resolution", "32", "--inversion", "negative-prompt"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    d = tmp_path_factory.mktemp("photo")
    write_photo(d)
    write_shifts(d / "transforms.json", (0.1, 0.2, 0.3))
    return d


def edit(photo, tiny_models_dir, out, *extra):
    rc = main(["edit", "--image", str(photo / "image.png"), "--prompt", "a blue box",
               "--depth", str(photo / "depth.npy"), "--mask", str(photo / "mask.png"),
               "--transforms", str(photo / "transforms.json"), "--out", str(out),
               "--models", str(tiny_models_dir), *CPU, *extra])
    assert rc == 0
    return json.loads((out / "report.json").read_text())


def test_fast_preset_reaches_the_engine_with_its_counted_reduction(photo, tiny_models_dir, tmp_path):
    # both at 8 steps (a short run); each preset keeps its guided share and its iterations
    fast = edit(photo, tiny_models_dir, tmp_path / "fast", "--preset", "fast", "--steps", "8",
                "--frame-batch-size", "2")
    default = edit(photo, tiny_models_dir, tmp_path / "default", "--steps", "8")
    assert fast["preset"] == "fast" and default["preset"] == "default"
    expected = EditSettings.preset("fast", resolution=32, inversion="negative-prompt").with_steps(8)
    assert fast["settings"] == expected.to_dict()
    assert fast["runtime"]["frame_batch_size"] == 2
    # every frame's counted UNet evaluations are the schedule's cost (the batch of 2 + a batch of 1)
    for report, s in ((fast, expected), (default, EditSettings(resolution=32, inversion="negative-prompt").with_steps(8))):
        cost = s.unet_cost()
        assert report["unet_cost_per_frame"] == cost
        assert [(f["unet_forward"], f["unet_backward"]) for f in report["per_frame"]] == \
            [(cost["unet_forward"], cost["unet_backward"])] * 3
        assert report["edit_unet_forward"] == 3 * cost["unet_forward"]
        assert report["edit_unet_backward"] == 3 * cost["unet_backward"]
    # the fast schedule: its own guided share and iterations, fewer backward passes
    assert default["settings"]["guided_steps"] == 6 and fast["settings"]["guided_steps"] == expected.guided_steps
    assert fast["edit_unet_backward"] == 3 * expected.guided_steps * expected.opt_iterations
    assert fast["edit_unet_backward"] < default["edit_unet_backward"] == 3 * 6 * 3
    assert fast["release_unet_cost_per_frame"]["unet_equivalents"] == 442


def test_prepared_photo_fixes_its_prepare_time_settings(photo, tiny_models_dir, tmp_path, capsys):
    prep = tmp_path / "prep"
    assert main(["prepare", "--image", str(photo / "image.png"), "--prompt", "a blue box",
                 "--depth", str(photo / "depth.npy"), "--mask", str(photo / "mask.png"), "--out", str(prep),
                 "--models", str(tiny_models_dir), *CPU, "--steps", "4"]) == 0
    out = tmp_path / "out"
    assert main(["edit", "--prepared", str(prep), "--transforms", str(photo / "transforms.json"),
                 "--out", str(out), "--models", str(tiny_models_dir), "--device", "cpu", "--dtype", "fp32",
                 "--preset", "fast"]) == 0
    assert "the prepared photo fixes steps=4" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    # the photo's 4 steps (3 guided), whatever the preset asked
    assert (report["settings"]["steps"], report["settings"]["guided_steps"]) == (4, 3)
    assert report["per_frame"][0]["unet_backward"] == report["unet_cost_per_frame"]["unet_backward"]


def test_eval_puts_presets_side_by_side(tiny_models_dir, tmp_path):
    scenes = Path(__file__).resolve().parents[2] / "data" / "toy"
    out = tmp_path / "eval"
    assert main(["eval", "--scenes", str(scenes), "--out", str(out), "--models", str(tiny_models_dir),
                 "--steps", "4", "--inversion", "negative-prompt", "--segmenter", "colour", "--frames", "1",
                 "--no-cycle", "--compare-presets", "fast"]) == 0
    report = json.loads((out / "report.json").read_text())
    (scene,) = report["scenes"]
    (frame,) = scene["frames"]
    assert set(frame["methods"]) == {"edit", "no_guidance", "nothing_moved", "preview", "preset:fast"}
    assert frame["methods"]["preset:fast"]["adherence_iou"] is not None
    assert "preset:fast" in report["summary"]["methods"]
    fast = EditSettings.from_dict(report["config"]["compare_presets"]["fast"])
    assert fast == EditSettings.preset("fast", inversion="negative-prompt").with_steps(4)
    # the counted cost of each: 3 guided steps x 3 iterations (default), the fast schedule's own
    costs = scene["costs"]
    assert costs["edit (guided)"]["unet_backward"] == 9
    assert costs["edit (preset fast)"]["unet_backward"] == fast.unet_cost()["unet_backward"] < 9
    assert "preset:fast" in (out / "report.md").read_text()


def test_quick_preset_counts_reach_report_json(photo, tiny_models_dir, tmp_path):
    # at its own 25 steps: the counted evaluations of every frame are the schedule's cost, which is
    # at most 0.15x the release's 442 UNet-forward equivalents per frame
    quick = edit(photo, tiny_models_dir, tmp_path / "quick", "--preset", "quick", "--frame-batch-size", "2")
    expected = EditSettings.preset("quick", resolution=32, inversion="negative-prompt")
    assert quick["preset"] == "quick" and quick["settings"] == expected.to_dict()
    cost = expected.unet_cost()
    assert quick["unet_cost_per_frame"] == cost
    assert [(f["unet_forward"], f["unet_backward"]) for f in quick["per_frame"]] == \
        [(cost["unet_forward"], cost["unet_backward"])] * 3
    # one forward per step (negative prompt, the guided steps' from their guidance forward) and one
    # backward per guided step
    assert (cost["unet_forward"], cost["unet_backward"]) == (expected.steps, expected.guided_steps)
    assert cost["unet_equivalents"] <= 0.15 * quick["release_unet_cost_per_frame"]["unet_equivalents"]
