"""`python -m engine bench`: what is cheap and real on a CPU.

The model part builds SD2-depth's full UNet and VAE with random weights (about 950 M parameters,
3.8 GB in fp32) and runs prepare + edit on them: far too heavy for a test, so it is not run here.
Tested: the geometry-only bench (`--geometry`) end to end, the argument refusals, and the pure
parts (per-configuration settings, the cost at 50 steps, the synthetic photo and trajectory)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.cli.bench import CONFIGS, cost_at_50, bench_settings, synthetic_photo, trajectory
from engine.settings import EditSettings


def _check_geometry_result(result, size, frames):
    assert result["size"] == size
    assert set(result) == {"size", "import_fills_s", "lifted_scene_build_s", "build_parts_s", "per_frame_s"}
    assert result["import_fills_s"] > 0 and result["lifted_scene_build_s"] > 0
    parts = result["build_parts_s"]
    assert parts and all(v >= 0 for v in parts.values())
    # the scene's own total is measured inside the timed build
    assert parts["total_s"] <= result["lifted_scene_build_s"]
    assert all(v <= parts["total_s"] for k, v in parts.items() if k != "total_s")
    assert set(result["per_frame_s"]) == {"object_move", "object_move_64", "camera_move"}
    assert all(v > 0 for v in result["per_frame_s"].values())


def test_geometry_bench_prints_and_writes_the_same_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--geometry", "--resolution", "48", "--frames", "2", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(out.read_text())
    assert printed == written
    _check_geometry_result(written, 48, 2)


def test_geometry_bench_without_out_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--geometry", "--resolution", "32", "--frames", "1"]) == 0
    _check_geometry_result(json.loads(capsys.readouterr().out), 32, 1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [
    ["bench", "--configs", "nightly"],
    ["bench", "--device", "tpu"],
    ["bench", "--dtype", "fp8"],
    ["bench", "--resolution", "big"],
    ["bench", "--frames", "2.5"],
    ["bench", "--no-such-option"],
])
def test_argument_refusals(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error" in err and err.count("\n") <= 3


def _args(**kw):
    base = dict(device="cpu", dtype="fp32", steps=50, resolution=512, frames=4)
    return SimpleNamespace(**{**base, **kw})


def test_bench_settings_at_the_release_step_count():
    configs, device = bench_settings(_args())
    assert device == torch.device("cpu") and set(configs) == set(CONFIGS)
    release, rt_release, dt_release = configs["release"]
    assert release.inversion == "null-text" and release.cache_activations_fp16 is False
    assert (release.steps, release.guided_steps) == (EditSettings().steps, EditSettings().guided_steps)
    assert rt_release.dtype == "fp32" and rt_release.frame_batch_size == 1 and dt_release == torch.float32
    for name in ("default", "fast"):
        s, rt, dt = configs[name]
        preset = EditSettings.preset(name)
        assert s == preset.replace(resolution=512)
        assert rt.frame_batch_size == 4 and dt == torch.float32


def test_bench_settings_scale_each_preset_with_the_steps():
    configs, _ = bench_settings(_args(steps=10, resolution=256, frames=3))
    for name in CONFIGS:
        s, rt, _ = configs[name]
        base = EditSettings() if name == "release" else EditSettings.preset(name)
        assert s.resolution == 256
        assert s.steps == max(1, round(base.steps * 10 / 50))
        assert s.guided_steps == min(s.steps, round(s.steps * base.guided_steps / base.steps))
        if name != "release":
            assert rt.frame_batch_size == 3


@pytest.mark.parametrize("name", ["release", "default", "fast", "default+cpu_offload", "fast+vae_tiling"])
@pytest.mark.parametrize("inversion", ["null-text", "negative-prompt"])
def test_cost_at_50_steps_is_the_settings_own_count(name, inversion):
    """Whatever steps the run used, the figure is the configuration's cost at the release's 50 steps."""
    run_settings = EditSettings.preset(name.split("+")[0]) if name != "release" else EditSettings()
    run_settings = run_settings.replace(inversion=inversion).with_steps(7)
    base = EditSettings() if name == "release" else EditSettings.preset(name.split("+")[0])
    expected = base.replace(inversion=inversion).unet_cost(cfg_pair=inversion != "negative-prompt")
    assert cost_at_50(name, run_settings) == expected["unet_equivalents"]
    # forwards + 2 x backwards, and a CFG pair costs one forward more per step
    c = base.replace(inversion=inversion).unet_cost()
    assert c["unet_equivalents"] == c["unet_forward"] + 2 * c["unet_backward"]


def test_negative_prompt_inversion_saves_one_forward_per_step():
    s = EditSettings()
    pair = cost_at_50("release", s.replace(inversion="null-text"))
    single = cost_at_50("release", s.replace(inversion="negative-prompt"))
    assert pair - single == s.steps


def test_the_fast_preset_costs_less_than_the_release():
    release = cost_at_50("release", EditSettings())
    assert 0 < cost_at_50("fast", EditSettings.preset("fast")) < release
    assert 0 < cost_at_50("default", EditSettings.preset("default")) <= release


def test_synthetic_photo_and_trajectory():
    image, depth, mask = synthetic_photo(40)
    assert image.shape == (40, 40, 3) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1
    assert depth.shape == mask.shape == (40, 40) and depth.dtype == np.float32 and mask.dtype == bool
    assert mask.any() and not mask.all()
    assert np.allclose(image[mask], [0.9, 0.2, 0.1])
    assert (depth > 0).all() and depth[mask].max() < depth[~mask].min()  # the box stands in front
    Ts = trajectory(3)
    assert len(Ts) == 3
    for k, T in enumerate(Ts):
        expected = np.eye(4)
        expected[0, 3] = 0.05 * (k + 1)
        assert np.array_equal(T, expected)
