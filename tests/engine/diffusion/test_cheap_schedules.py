"""The schedule options beyond the paper (all off in the default preset): the DDIM step taking the
last guidance forward's noise (one UNet forward less per guided step), heavy-ball momentum of the
latent updates, and a step size that falls over the guided steps."""
from __future__ import annotations

import numpy as np
import pytest

from edit_scene import scene, shift
from engine.pipeline import Engine
from engine.settings import EditSettings, RuntimeOptions

BASE = EditSettings(resolution=32, steps=6, guided_steps=4, opt_iterations=2, inversion="negative-prompt",
                    guidance_step_size=0.002)


@pytest.fixture(scope="module")
def engine(tiny_models_dir):
    return Engine(models_dir=tiny_models_dir, settings=BASE,
                  runtime=RuntimeOptions(device="cpu", dtype="fp32", frame_batch_size=1))


@pytest.fixture(scope="module")
def prepared(engine):
    image, depth, mask = scene()
    return engine.prepare(image, "a red box", depth, mask)


def _edit(engine, prepared, settings, frames=(0.2,)):
    count0 = dict(engine.counts)
    results = engine.edit(prepared, [shift(x) for x in frames], settings=settings)
    used = {k: engine.counts[k] - count0[k] for k in count0}
    return results, used


def test_default_preset_leaves_the_options_off():
    s = EditSettings.preset("default")
    assert s == EditSettings()
    assert (s.guidance_momentum, s.guidance_step_decay, s.reuse_guidance_eps) == (0.0, 0.0, False)
    assert all(s.step_size_at(i) == s.guidance_step_size for i in range(s.steps))


def test_reused_noise_saves_one_forward_per_guided_step_and_is_counted(engine, prepared):
    reuse = BASE.replace(reuse_guidance_eps=True)
    (_,), plain = _edit(engine, prepared, BASE)
    (_,), cheap = _edit(engine, prepared, reuse)
    assert plain["unet_forward"] - cheap["unet_forward"] == BASE.guided_steps
    assert cheap["unet_backward"] == plain["unet_backward"] == BASE.guided_steps * BASE.opt_iterations
    cost = reuse.unet_cost()
    assert (cheap["unet_forward"], cheap["unet_backward"]) == (cost["unet_forward"], cost["unet_backward"])
    assert cost["unet_equivalents"] == BASE.unet_cost()["unet_equivalents"] - BASE.guided_steps


def test_reused_noise_is_the_noise_of_the_same_latents_and_timestep(engine, prepared):
    # without guidance weight the latents never move, so the reused prediction is exactly the one
    # the DDIM step would have computed: a noise taken at another step or latents would show
    still = BASE.replace(weight_scale=0.0)
    (a,), _ = _edit(engine, prepared, still)
    (b,), _ = _edit(engine, prepared, still.replace(reuse_guidance_eps=True))
    np.testing.assert_allclose(b.image, a.image, atol=1e-5)


def test_reused_noise_keeps_the_identity_edit_the_reconstruction(engine, prepared):
    s = engine.edit_settings(prepared).replace(reuse_guidance_eps=True)
    (identity,) = engine.sample(prepared, [np.eye(4)], s)
    assert identity.stats.energy and all(e["energy"] == 0.0 for e in identity.stats.energy)
    np.testing.assert_allclose(identity.image, prepared.reconstruction, atol=1e-5)


def test_reuse_is_ignored_where_the_cfg_step_is_a_pair():
    s = EditSettings(reuse_guidance_eps=True)  # null-text: the CFG step is two other forwards
    assert not s.reuses_guidance_eps and s.unet_cost() == EditSettings().unet_cost()
    assert not BASE.replace(reuse_guidance_eps=True, opt_iterations=0).reuses_guidance_eps


def test_momentum_changes_the_second_update_not_the_first(engine, prepared):
    (plain,), _ = _edit(engine, prepared, BASE)
    (heavy,), _ = _edit(engine, prepared, BASE.replace(guidance_momentum=0.9))
    e_plain = [e["energy"] for e in plain.stats.energy]
    e_heavy = [e["energy"] for e in heavy.stats.energy]
    # iteration 0 of step 0 sees the same latents; so does iteration 1 (the first update is the
    # gradient itself); the second update adds 0.9 x the first, so iteration 0 of step 1 differs
    assert e_heavy[:2] == pytest.approx(e_plain[:2], rel=1e-6)
    assert e_heavy[2] != pytest.approx(e_plain[2], rel=1e-4)
    assert not np.allclose(heavy.image, plain.image, atol=1e-4)


def test_step_size_falls_linearly_over_the_guided_steps():
    s = EditSettings(steps=10, guided_steps=5, guidance_step_size=0.8, guidance_step_decay=0.5)
    assert [s.step_size_at(i) for i in range(5)] == pytest.approx([0.8, 0.7, 0.6, 0.5, 0.4])
    # the unguided steps of an empty cycle entry are skipped: the fall spans the guided ones only
    every2 = s.replace(layer_cycle=((3,), ()), guided_steps=10)
    guided = [i for i in range(10) if every2.layers_at(i)]
    assert [every2.step_size_at(i) for i in guided] == pytest.approx([0.8, 0.7, 0.6, 0.5, 0.4])


@pytest.mark.parametrize("field, value", [("guidance_momentum", 1.0), ("guidance_momentum", -0.1),
                                          ("guidance_step_decay", 1.5), ("guidance_step_decay", -0.5)])
def test_out_of_range_options_are_refused_by_name(field, value):
    from engine.errors import InputError

    with pytest.raises(InputError, match=field):
        EditSettings(**{field: value})
