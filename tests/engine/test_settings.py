"""engine.settings: presets, the steps -> guided-steps rule, prepare-time fields, runtime options."""
from __future__ import annotations

import dataclasses
import json

import pytest

from engine.errors import InputError
from engine.settings import PRESET_LABELS, PRESETS, EditSettings, RuntimeOptions


def test_presets_default_is_the_paper_and_fast_is_cheaper_than_030x_the_release():
    assert EditSettings.preset("default") == EditSettings()
    release = EditSettings().unet_cost(cfg_pair=True)
    # the release per frame: 50 CFG pairs + 38 steps x 3 iterations of forward and backward
    assert release == {"unet_forward": 100 + 114, "unet_backward": 114, "unet_equivalents": 442}
    fast = EditSettings.preset("fast")
    assert fast.unet_cost()["unet_equivalents"] <= 0.30 * release["unet_equivalents"]
    assert set(PRESET_LABELS) == set(PRESETS)
    with pytest.raises(InputError, match="preset 'turbo'"):
        EditSettings.preset("turbo")
    assert EditSettings.preset("fast", seed=5).seed == 5


def test_unet_cost_counts_what_the_schedule_guides():
    s = EditSettings(steps=6, guided_steps=4, layer_cycle=((3,), ()), opt_iterations=2)
    # steps 0 and 2 are guided (the empty cycle entry leaves 1 and 3 unguided); 4, 5 are not
    assert [bool(s.layers_at(i)) for i in range(6)] == [True, False, True, False, False, False]
    assert s.unet_cost() == {"unet_forward": 12 + 4, "unet_backward": 4, "unet_equivalents": 24}
    assert s.replace(inversion="negative-prompt").unet_cost()["unet_forward"] == 6 + 4


def test_with_steps_keeps_each_schedules_guided_share():
    assert EditSettings().with_steps(10).guided_steps == 8  # 38 of 50
    assert EditSettings().with_steps(4).guided_steps == 3
    fast = EditSettings.preset("fast")
    assert fast.with_steps(fast.steps * 2).guided_steps == fast.guided_steps * 2
    assert EditSettings().with_steps(10, guided_steps=2).guided_steps == 2
    assert EditSettings().with_steps(1).guided_steps <= 1


def test_prepare_fields_are_marked_on_the_fields():
    names = EditSettings.prepare_fields()
    assert {"steps", "guided_steps", "inversion", "layer_cycle", "resolution", "seed"} <= set(names)
    # edit-only settings never invalidate a prepared photo
    assert not {"opt_iterations", "guidance_step_size", "fg_weight", "weight_scale", "loss"} & set(names)
    for f in dataclasses.fields(EditSettings):
        assert (f.name in names) == bool(f.metadata.get("prepare"))
    a, b = EditSettings(), EditSettings(weight_scale=30, opt_iterations=1)
    assert a.prepare_dict() == b.prepare_dict()
    assert a.prepare_dict() != EditSettings(steps=20, guided_steps=15).prepare_dict()
    # for_prepared: the prepared photo's prepare-time fields, this call's edit-only fields
    mixed = b.for_prepared(EditSettings(steps=20, guided_steps=15))
    assert (mixed.steps, mixed.guided_steps, mixed.opt_iterations, mixed.weight_scale) == (20, 15, 1, 30)


def test_json_round_trip_and_saved_settings_of_older_caches():
    s = EditSettings.preset("fast")
    assert EditSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    old = {**s.to_dict(), "device": "cpu", "dtype": "fp32", "frame_batch_size": 2}
    with pytest.raises(InputError, match="runtime options"):
        EditSettings.from_dict(old)
    assert EditSettings.from_saved(old) == s


def test_runtime_options_apart_from_the_method():
    method = {f.name for f in dataclasses.fields(EditSettings)}
    runtime = {f.name for f in dataclasses.fields(RuntimeOptions)}
    assert not method & runtime
    assert {"device", "dtype", "frame_batch_size", "cpu_offload"} <= runtime
    assert set(RuntimeOptions.MEMORY_OPTIONS) <= set(RuntimeOptions.switches())
    with pytest.raises(InputError, match="frame batch size"):
        RuntimeOptions(frame_batch_size=0)
    with pytest.raises(InputError, match="dtype 'fp64'"):
        RuntimeOptions(dtype="fp64")


def test_settings_defaults_and_round_trip():
    s = EditSettings()
    # resolution None = the model's native size (512 for SD2-depth, see test_native_resolution)
    assert (s.resolution, s.steps, s.guided_steps, s.opt_iterations) == (None, 50, 38, 3)
    assert (s.guidance_step_size, s.cfg_scale, s.seed, s.loss, s.inversion) == (0.1, 7.5, 2773, "l1", "null-text")
    assert s.layers_at(0) == (3,) and s.layers_at(1) == (2,) and s.layers_at(2) == (2, 3)
    assert s.layers_at(37) == (2,) and s.layers_at(38) == ()
    # weight_scale 100 (the release: 30; measured change, docs/method.md)
    assert s.layer_weights(2) == (5.0 * 1.5 * 100, 1.5 * 1.25 * 100)
    assert s.layer_weights(3) == (7.5 * 1.5 * 100, 1.5 * 1.25 * 100)
    assert s.multipliers_at(0) == (2.5, 1.25) and s.multipliers_at(1) == (1.25, 2.5)
    assert EditSettings.from_dict(s.to_dict()) == s and hash(EditSettings.from_dict(s.to_dict())) == hash(s)
    with pytest.raises(InputError, match="inversion"):
        EditSettings(inversion="magic")
    with pytest.raises(InputError, match="unknown"):
        EditSettings.from_dict({"bogus": 1})
