"""engine.diffusion.ddim: deterministic DDIM on SD2-depth's scheduler configuration (the loader's
steps_offset 0): the release's timesteps, the step after the last on alpha_cumprod[0], the same
step as diffusers' own DDIMScheduler (eta 0), and an inverse step that undoes a step."""
from __future__ import annotations

import pytest
import torch

from engine.diffusion.ddim import DDIM
from engine.diffusion.tiny import SCHEDULER_CONFIG


def scheduler():
    from diffusers import DDIMScheduler

    config = {k: v for k, v in SCHEDULER_CONFIG.items() if not k.startswith("_")}
    return DDIMScheduler(**{**config, "steps_offset": 0})  # as engine.diffusion.loading loads it


def test_timesteps_and_stride_of_the_release():
    d = DDIM(scheduler(), 50)
    assert d.stride == 20 and len(d.timesteps) == 50
    assert d.timesteps[:3] == [980, 960, 940] and d.timesteps[-1] == 0
    assert all(a - b == 20 for a, b in zip(d.timesteps, d.timesteps[1:]))
    assert DDIM(scheduler(), 10).timesteps == list(range(900, -1, -100))


def test_alphas_and_the_step_after_the_last():
    s = scheduler()
    d = DDIM(s, 50)
    assert d.alphas.dtype == torch.float64
    assert d.alpha(980) == pytest.approx(float(s.alphas_cumprod[980]))
    # set_alpha_to_one false: the step after t = 0 ends on alpha_cumprod[0], not on 1
    assert d.alpha(-20) == d.final_alpha == pytest.approx(float(s.alphas_cumprod[0]))
    assert d.final_alpha < 1.0
    assert d.alpha(980) < d.alpha(500) < d.alpha(0)  # the noise level falls along the schedule


def test_step_removes_exactly_the_predicted_noise():
    d = DDIM(scheduler(), 50)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 4, 8, 8, generator=gen, dtype=torch.float64)
    eps = torch.randn(1, 4, 8, 8, generator=gen, dtype=torch.float64)
    t = 500
    a_t, a_prev = d.alpha(t), d.alpha(t - 20)
    x_t = a_t ** 0.5 * x0 + (1 - a_t) ** 0.5 * eps
    expected = a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps
    torch.testing.assert_close(d.step(x_t, eps, t), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("t", [980, 500, 20, 0])
def test_step_equals_diffusers_ddim_with_eta_zero(t):
    s = scheduler()
    d = DDIM(s, 50)
    gen = torch.Generator().manual_seed(t)
    x = torch.randn(1, 4, 8, 8, generator=gen)
    eps = torch.randn(1, 4, 8, 8, generator=gen)
    ours = d.step(x.double(), eps.double(), t).float()
    theirs = s.step(eps, t, x, eta=0.0).prev_sample
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("t", [980, 500, 0])
def test_inverse_step_undoes_a_step_with_the_same_noise(t):
    d = DDIM(scheduler(), 50)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 8, 8, generator=gen, dtype=torch.float64)
    eps = torch.randn(2, 4, 8, 8, generator=gen, dtype=torch.float64)
    back = d.inverse_step(d.step(x, eps, t), eps, t)
    torch.testing.assert_close(back, x, rtol=1e-9, atol=1e-9)


def test_steps_are_differentiable():
    d = DDIM(scheduler(), 10)
    x = torch.randn(1, 4, 4, 4, requires_grad=True)
    eps = torch.randn(1, 4, 4, 4)
    d.step(x, eps, 500).sum().backward()
    # d x_prev / d x_t = sqrt(a_prev / a_t) everywhere
    expected = (d.alpha(400) / d.alpha(500)) ** 0.5
    torch.testing.assert_close(x.grad, torch.full_like(x, expected))
