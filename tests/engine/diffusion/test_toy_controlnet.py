"""The project's toy depth ControlNet (tests/data/toy-controlnet, tools/train_toy_controlnet.py):
a models folder for `--backbone sd15-depth` that loads through the real loading code, stays small,
keeps its training record, and whose depth input does what toy-depth's depth channel does."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.diffusion.denoiser import Denoiser
from engine.diffusion.loading import load_diffusion
from engine.settings import RuntimeOptions

TOY_CN = Path(__file__).resolve().parents[2] / "data" / "toy-controlnet"
TEACHER = Path(os.environ.get("DH_TOY_MODEL", "")).expanduser()
CPU = RuntimeOptions(device="cpu", dtype="fp32")


def test_folder_layout_size_and_record():
    assert (TOY_CN / "sd15" / "unet" / "config.json").is_file()
    assert (TOY_CN / "sd15-controlnet" / "config.json").is_file()
    size = sum(f.stat().st_size for f in TOY_CN.rglob("*") if f.is_file())
    assert size <= 30 * 2 ** 20, size
    record = json.loads((TOY_CN / "train_info.json").read_text())
    assert record["controlnet_steps"] > 0 and record["history"]
    assert "toy" in record["held_out_scene_sets"]  # the evaluation's scenes were not trained on


def _scene_depth(hw):
    d = np.full(hw, 4.0, np.float32)
    d[hw[0] // 3:, :] = np.linspace(4.0, 1.5, hw[0] - hw[0] // 3)[:, None]  # a floor coming closer
    d[20:40, 24:40] = 1.8  # an object
    return d


def test_loads_as_sd15_depth_and_depth_moves_the_noise():
    m = load_diffusion(TOY_CN, runtime=CPU, backbone="sd15-depth")
    assert m.native_resolution == 64 and m.controlnet is not None
    den = Denoiser(m.unet, (2, 3), m.device, m.dtype, feed=m.feed)
    from engine.diffusion.conditioning import encode_prompt

    text = encode_prompt(m, "a toy car on a floor")
    x = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    flat = m.depth_condition(np.full((64, 64), 3.0, np.float32) + np.eye(64, dtype=np.float32) * 1e-3, (64, 64))
    scene = m.depth_condition(_scene_depth((64, 64)), (64, 64))
    with torch.no_grad():
        a = den.eps(x, torch.tensor(600), text, scene)
        b = den.eps(x, torch.tensor(600), text, flat)
    assert (a - b).abs().mean() > 1e-3  # the trained ControlNet is not the zero one it started as


@pytest.mark.skipif(not (TEACHER / "diffusion").is_dir(),
                    reason="the toy-depth model is not here (set DH_TOY_MODEL to its folder)")
def test_student_follows_toy_depth_better_than_the_base_alone():
    """base + ControlNet(depth) is closer to toy-depth(depth) than the base without the ControlNet."""
    from engine.diffusion.conditioning import encode_prompt

    student = load_diffusion(TOY_CN, runtime=CPU, backbone="sd15-depth")
    teacher = load_diffusion(TEACHER, runtime=CPU)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 64, 64, generator=g)
    depth = _scene_depth((64, 64))
    errs = []
    with torch.no_grad():
        tt = Denoiser(teacher.unet, (2, 3), "cpu", torch.float32, feed=teacher.feed)
        st = Denoiser(student.unet, (2, 3), "cpu", torch.float32, feed=student.feed)
        for t in (800, 400):
            want = tt.eps(x, torch.tensor(t), encode_prompt(teacher, "a box on a floor"),
                          teacher.depth_condition(depth, (64, 64)))
            got = st.eps(x, torch.tensor(t), encode_prompt(student, "a box on a floor"),
                         student.depth_condition(depth, (64, 64)))
            base = student.unet(x, torch.tensor(t), encoder_hidden_states=encode_prompt(student, "a box on a floor")
                                .expand(2, -1, -1)).sample
            errs.append(((got - want).pow(2).mean().item(), (base - want).pow(2).mean().item()))
    assert all(with_cn < without for with_cn, without in errs), errs
