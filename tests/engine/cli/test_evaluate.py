"""`python -m engine eval` end to end (CPU, few steps, one scene).

With the tiny random-weight models: the command runs and writes both baselines (pictures are
meaningless, the plumbing is not). With the trained toy model ($DH_TOY_MODEL, skipped
where absent): an identity transform gives the inversion's reconstruction, and with guidance the
foreground energy at the last guided step is lower than without.
"""
from __future__ import annotations

import os

import json
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA = REPO_ROOT / "tests" / "data"
from engine.cli import main
from engine.evaluation.scenes import load_scene

SCENES = DATA / "toy"
SCENE = SCENES / "scene_003"
TOY = Path(os.environ.get("DH_TOY_MODEL", "")).expanduser()  # the trained toy model, where there is one
needs_toy = pytest.mark.skipif(not (TOY / "diffusion").is_dir(),
                               reason="the trained toy model is not here (set DH_TOY_MODEL to its folder)")


@pytest.mark.slow
def test_eval_writes_report_and_both_baselines(tiny_models_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(["eval", "--scenes", str(SCENES), "--out", str(out), "--models", str(tiny_models_dir),
               "--steps", "3", "--inversion", "negative-prompt", "--segmenter", "colour", "--frames", "1"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["steps"] == 3 and report["config"]["inversion"] == "negative-prompt"
    assert report["segmenter"].startswith("colour")
    (scene,) = report["scenes"]
    (frame,) = scene["frames"]
    assert set(frame["methods"]) == {"edit", "no_guidance", "nothing_moved"}
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


def test_settings_overrides_for_ablations():
    from engine.cli.evaluate import _parse_sets
    from engine.evaluation.runner import EvalConfig, _settings, no_guidance_settings

    sets = _parse_sets(["weight_scale=60", "loss=l2", "iteration_multipliers=[[1, 1]]"])
    assert sets == {"weight_scale": 60, "loss": "l2", "iteration_multipliers": [[1, 1]]}
    s = _settings(EvalConfig(scenes=SCENES, out=SCENES, steps=10, settings_overrides=sets), load_scene(SCENE))
    assert (s.weight_scale, s.loss, s.steps, s.guided_steps, s.resolution) == (60, "l2", 10, 8, 64)
    assert no_guidance_settings(s).opt_iterations == 0
    assert no_guidance_settings(s, measure_energy=True).weight_scale == 0


# --- with the trained toy model ---------------------------------------------------------------

@pytest.fixture(scope="module")
def toy_prepared():
    from engine.pipeline import Engine
    from engine.settings import EditSettings

    scene = load_scene(SCENE)
    settings = EditSettings(resolution=64, steps=8, guided_steps=6, inversion="negative-prompt", seed=2773)
    engine = Engine(models_dir=TOY, settings=settings, device="cpu")
    prepared = engine.prepare(scene.image, scene.prompt, scene.depth, scene.mask)
    return engine, prepared, scene


@pytest.mark.toy
@pytest.mark.slow
@needs_toy
def test_identity_transform_gives_the_reconstruction(toy_prepared):
    engine, prepared, scene = toy_prepared
    (result,) = engine.edit(prepared, [np.eye(4)])
    np.testing.assert_allclose(result.image, prepared.reconstruction, atol=2e-3)
    # the reconstruction is the scene (the toy model can invert it), not something else
    assert np.abs(prepared.reconstruction - scene.image).mean() < 0.08
    assert all(e["energy"] == pytest.approx(0.0, abs=1e-6) for e in result.stats["energy"])


@pytest.mark.toy
@pytest.mark.slow
@needs_toy
def test_guidance_lowers_foreground_energy_at_last_guided_step(toy_prepared):
    from engine.evaluation.runner import _energy_summary, no_guidance_settings

    engine, prepared, scene = toy_prepared
    transform = scene.frames[0].transform
    (guided,) = engine.edit(prepared, [transform])
    off = no_guidance_settings(engine.settings, measure_energy=True)
    (plain,) = engine.edit(prepared, [transform], settings=off)
    g = _energy_summary(guided.stats, engine.settings)
    p = _energy_summary(plain.stats, off)
    assert p["fg_energy_last_guided_step"] > 0
    assert g["fg_energy_last_guided_step"] < p["fg_energy_last_guided_step"]
    # zero weights leave the latents alone: the baseline image is the opt_iterations=0 image
    (plain0,) = engine.edit(prepared, [transform], settings=no_guidance_settings(engine.settings))
    np.testing.assert_allclose(plain.image, plain0.image, atol=1e-5)
    assert not plain0.stats["energy"]


def costs_per_frame_ok(scene) -> bool:
    c = scene["costs"]
    # an edit's costs are per frame: one frame of --steps 3 is at most 2 x 3 CFG + 3 x 3 guidance forwards
    return c["edit (no guidance)"]["frames"] == 1 and c["edit (guided)"]["unet_forward"] <= 2 * 3 + 3 * 3
