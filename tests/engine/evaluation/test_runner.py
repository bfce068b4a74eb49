"""engine.evaluation.runner: the settings of an evaluation and its ablations; with the trained toy
model ($DH_TOY_MODEL, skipped where absent) an identity transform gives the inversion's
reconstruction, and with guidance the foreground energy at the last guided step is lower than
without."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engine.evaluation.scenes import load_scene

SCENES = Path(__file__).resolve().parents[2] / "data" / "toy"
SCENE = SCENES / "scene_003"
TOY = Path(os.environ.get("DH_TOY_MODEL", "")).expanduser()  # the trained toy model, where there is one
needs_toy = pytest.mark.skipif(not (TOY / "diffusion").is_dir(),
                               reason="the trained toy model is not here (set DH_TOY_MODEL to its folder)")


def test_settings_overrides_for_ablations():
    from engine.evaluation.runner import EvalConfig, eval_settings, no_guidance_settings

    sets = {"weight_scale": 60, "loss": "l2", "iteration_multipliers": [[1, 1]]}  # as --set gives them
    s = eval_settings(EvalConfig(scenes=SCENES, out=SCENES, steps=10, settings_overrides=sets), load_scene(SCENE))
    assert (s.weight_scale, s.loss, s.steps, s.guided_steps, s.resolution) == (60, "l2", 10, 8, 64)
    assert no_guidance_settings(s).opt_iterations == 0
    assert no_guidance_settings(s, measure_energy=True).weight_scale == 0


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
    np.testing.assert_array_equal(result.image, prepared.reconstruction)  # not sampled: iter_edit's shortcut
    # ... which sampling confirms: no energy to descend, the same image
    (sampled,) = engine.sample(prepared, [np.eye(4)])
    np.testing.assert_allclose(sampled.image, prepared.reconstruction, atol=2e-3)
    assert sampled.stats.energy and all(e["energy"] == pytest.approx(0.0, abs=1e-6) for e in sampled.stats.energy)
    # the reconstruction is the scene (the toy model can invert it), not something else
    assert np.abs(prepared.reconstruction - scene.image).mean() < 0.08


@pytest.mark.toy
@pytest.mark.slow
@needs_toy
def test_guidance_lowers_foreground_energy_at_last_guided_step(toy_prepared):
    from engine.evaluation.runner import energy_summary, no_guidance_settings

    engine, prepared, scene = toy_prepared
    transform = scene.frames[0].transform
    (guided,) = engine.edit(prepared, [transform])
    off = no_guidance_settings(engine.settings, measure_energy=True)
    (plain,) = engine.edit(prepared, [transform], settings=off)
    g = energy_summary(guided.stats)
    p = energy_summary(plain.stats)
    assert p["fg_energy_last_guided_step"] > 0
    assert g["fg_energy_last_guided_step"] < p["fg_energy_last_guided_step"]
    # zero weights leave the latents alone: the baseline image is the opt_iterations=0 image
    (plain0,) = engine.edit(prepared, [transform], settings=no_guidance_settings(engine.settings))
    np.testing.assert_allclose(plain.image, plain0.image, atol=1e-5)
    assert not plain0.stats.energy


def test_energy_summary_reads_the_first_iteration_of_the_first_and_last_guided_steps():
    from engine.evaluation.runner import energy_summary
    from engine.pipeline import FrameStats

    trace = [{"step": step, "iteration": it, "energy": 1.0, "parts": {"a": [10 * step + it, 1.0], "b": [1.0, 2.0]}}
             for step in (0, 3) for it in (0, 1)]
    assert energy_summary(FrameStats(energy=trace)) == {
        "fg_energy_first_guided_step": 1.0, "bg_energy_first_guided_step": 3.0,  # summed over the layers
        "fg_energy_last_guided_step": 31.0, "bg_energy_last_guided_step": 3.0}
    assert energy_summary(FrameStats()) == {}  # no guidance iterations (the no-guidance baseline)
