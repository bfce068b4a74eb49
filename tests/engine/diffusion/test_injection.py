"""The gradient-free handles (`handles="injection"`, the instant preset): the warped reference
activations and latents written into the step's own forward by forward hooks that exist only
during it, at the cost of unguided sampling."""
from __future__ import annotations

import numpy as np
import pytest

from edit_scene import scene, shift
from engine.diffusion.hooks import writing
from engine.errors import InputError
from engine.pipeline import Engine
from engine.settings import EditSettings, RuntimeOptions

GUIDED = EditSettings(resolution=32, steps=6, guided_steps=4, opt_iterations=2, inversion="negative-prompt",
                      layer_cycle=((2, 3),))
INJECT = GUIDED.replace(handles="injection", latent_injection=1.0, injection_strength=0.5)
RUNTIME = RuntimeOptions(device="cpu", dtype="fp32", frame_batch_size=1)


@pytest.fixture(scope="module")
def engine(tiny_models_dir):
    return Engine(models_dir=tiny_models_dir, settings=GUIDED, runtime=RUNTIME)


@pytest.fixture(scope="module")
def prepared(engine):
    image, depth, mask = scene()
    return engine.prepare(image, "a red box", depth, mask)


def _hooks(unet):
    return [len(b._forward_hooks) for b in unet.up_blocks]


def test_instant_preset_costs_at_most_31_forward_equivalents_and_no_backward():
    s = EditSettings.preset("instant")
    cost = s.unet_cost()
    assert s.injects and cost["unet_backward"] == 0
    assert cost["unet_forward"] == s.steps == cost["unet_equivalents"] <= 31
    # the handles replace the gradient steps: iterations set elsewhere cost nothing
    assert s.replace(opt_iterations=5).unet_cost() == cost


def test_injection_settings_are_checked():
    for bad in ({"handles": "write"}, {"injection_strength": 1.5}, {"latent_injection": -0.1},
                {"injection_feather": -1}, {"injection_start": 99}, {"injection_noise": "copy"},
                {"injection_keep": 2.0}):
        with pytest.raises(InputError, match=next(iter(bad))):
            INJECT.replace(**bad)


def test_writing_replaces_the_output_only_inside_the_context(engine):
    import torch

    unet = engine.models.unet
    before = _hooks(unet)
    seen = {}

    def halve(out):
        seen["shape"] = tuple(out.shape)
        return out * 0.5

    x = torch.randn(1, unet.config.in_channels, 8, 8)
    text = torch.zeros(1, 77, unet.config.cross_attention_dim)
    with torch.no_grad():
        plain = unet(x, 10, encoder_hidden_states=text).sample
        with writing(unet, {3: halve}):
            assert _hooks(unet)[3] == before[3] + 1
            written = unet(x, 10, encoder_hidden_states=text).sample
        again = unet(x, 10, encoder_hidden_states=text).sample
        with pytest.raises(RuntimeError, match="boom"), writing(unet, {2: halve}):
            raise RuntimeError("boom")
    assert seen["shape"][0] == 1 and not torch.equal(written, plain)
    assert torch.equal(again, plain) and _hooks(unet) == before


def test_identity_edit_with_injection_is_the_reconstruction(engine, prepared):
    (frame,) = engine.sample(prepared, [np.eye(4)], settings=INJECT)
    # the references are kept in fp16: writing them back is exact to their rounding, no more
    np.testing.assert_allclose(frame.image, prepared.reconstruction, atol=5e-4)


def test_injection_counts_one_forward_per_step_and_moves_the_frame(engine, prepared):
    count0 = dict(engine.counts)
    (injected,) = engine.edit(prepared, [shift(0.2)], settings=INJECT)
    used = {k: engine.counts[k] - count0[k] for k in count0}
    cost = engine.edit_settings(prepared, INJECT).unet_cost()
    assert (used["unet_forward"], used["unet_backward"]) == (cost["unet_forward"], 0) == (GUIDED.steps, 0)
    assert (injected.stats.unet_forward, injected.stats.unet_backward) == (GUIDED.steps, 0)
    (plain,) = engine.edit(prepared, [shift(0.2)], settings=GUIDED.replace(opt_iterations=0))
    assert np.abs(injected.image - plain.image).max() > 1e-3  # the handles did write something


def test_hooks_are_removed_after_every_frame(tiny_models_dir, engine, prepared):
    # a guided frame after injected frames equals, bit for bit, the same frame from a fresh engine
    unet = engine.models.unet
    before = _hooks(unet)
    engine.edit(prepared, [shift(0.1), shift(0.3)], settings=INJECT)
    assert _hooks(unet) == before
    (after,) = engine.edit(prepared, [shift(0.2)], settings=GUIDED)
    fresh = Engine(models_dir=tiny_models_dir, settings=GUIDED, runtime=RUNTIME)
    (clean,) = fresh.edit(prepared, [shift(0.2)], settings=GUIDED)
    assert np.array_equal(after.image, clean.image)


def test_fill_takes_the_nearest_pixel_that_stays_background(engine, prepared):
    from engine.diffusion.guidance import Guidance, layer_targets

    grid = tuple(prepared.noise.shape[-2:])
    edit = engine.check_frames(prepared, [shift(0.3)])[0]
    targets = {grid: layer_targets([prepared.scene.frame(edit, grid, edited_depth=False)], "cpu")}
    hole, index = Guidance(prepared.references, targets, INJECT.replace(injection_fill=True), "cpu")._holes(grid)
    tg = targets[grid]
    obj, new_bg = tg.orig_bg_mask[0, 0] < 0.5, tg.new_bg_mask[0, 0] > 0.5
    assert hole[0, 0].bool().equal(obj & new_bg) and hole.sum() > 0  # the object's old place, uncovered
    stays = (~obj & new_bg).flatten()
    src = index[0, 0]
    assert stays[src].all()  # every pixel's source is background before and after
    assert (src[stays] == stays.nonzero()[:, 0]).all()  # such a pixel is its own source


def _guidance(engine, prepared, settings, x):
    from engine.diffusion.guidance import Guidance, layer_targets

    grids = {tuple(a.shape[-2:]) for a in prepared.references.values()} | {tuple(prepared.noise.shape[-2:])}
    edit = engine.check_frames(prepared, [shift(x)])[0]
    targets = {g: layer_targets([prepared.scene.frame(edit, g, edited_depth=False)], "cpu") for g in grids}
    return Guidance(prepared.references, targets, settings, "cpu", (prepared.noise, prepared.trajectory))


def test_local_noise_moves_the_clean_latents_and_leaves_the_noise_in_place(engine, prepared):
    import torch

    from engine.diffusion.ddim import DDIM

    s = engine.edit_settings(prepared, INJECT)
    ddim = DDIM(engine.models.scheduler, s.steps)
    step = 1
    before = prepared.trajectory[step - 1].float()
    # identity: x0 and eps solved from two consecutive reconstruction latents give them back
    same = _guidance(engine, prepared, s.replace(injection_noise="local"), 0.0).inject_latents(step, before.clone(), ddim)
    torch.testing.assert_close(same, before, atol=1e-4, rtol=1e-4)
    g_local = _guidance(engine, prepared, s.replace(injection_noise="local"), 0.3)
    g_warped = _guidance(engine, prepared, s, 0.3)
    x = torch.randn_like(before)
    local, warped = g_local.inject_latents(step, x.clone(), ddim), g_warped.inject_latents(step, x.clone(), ddim)
    target = g_local.targets[tuple(x.shape[-2:])].fg_mask.expand_as(x) > 0.5
    assert target.any()
    assert torch.equal(local[~target], x[~target]) and torch.equal(warped[~target], x[~target])
    assert (local[target] - warped[target]).abs().max() > 1e-2  # the noise did not travel with the object


def test_keep_writes_the_reference_over_the_background_that_stays(engine, prepared):
    import torch

    s = engine.edit_settings(prepared, INJECT).replace(injection_keep=1.0, injection_background=0.0,
                                                       injection_strength=1.0)
    g = _guidance(engine, prepared, s, 0.3)
    layer = 3
    fn = g.writers(0, (layer,))[layer]
    ref = g._ref(0, layer).float()
    tg = g.targets[tuple(ref.shape[-2:])]
    cur = torch.randn_like(ref)
    out = fn(cur)
    stays = (tg.new_bg_mask * tg.orig_bg_mask * (1 - tg.fg_mask)).expand_as(cur) > 0.5
    vacated = ((1 - tg.orig_bg_mask) * tg.new_bg_mask).expand_as(cur) > 0.5  # the object's old place
    assert stays.any() and vacated.any()
    torch.testing.assert_close(out[stays], ref[stays])
    assert torch.equal(out[vacated], cur[vacated])  # left to the model
    fg = tg.fg_mask.expand_as(cur) > 0.5
    torch.testing.assert_close(out[fg], g.warped_references(0, (layer,))[layer][fg])
