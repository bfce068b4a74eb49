"""Deterministic DDIM (eta 0), written on the scheduler's alphas so every step is differentiable
and the inversion uses exactly the same schedule as the sampler.

Timesteps come from ``scheduler.set_timesteps`` (the loader sets steps_offset 0, so 50 steps give
980, 960, ..., 0 as in the authors' release). The step after the last uses the scheduler's
``final_alpha_cumprod`` (``set_alpha_to_one`` false: alpha_cumprod[0]).
"""
from __future__ import annotations


class DDIM:
    def __init__(self, scheduler, steps: int):
        import torch

        scheduler.set_timesteps(steps)
        self.timesteps = [int(t) for t in scheduler.timesteps]  # descending
        self.stride = scheduler.config.num_train_timesteps // steps
        self.alphas = scheduler.alphas_cumprod.to(torch.float64)
        self.final_alpha = float(scheduler.final_alpha_cumprod)

    def alpha(self, t: int) -> float:
        return float(self.alphas[t]) if t >= 0 else self.final_alpha

    def step(self, latents, eps, t: int):
        """x_t -> x_{t - stride} given the predicted noise."""
        a_t, a_prev = self.alpha(t), self.alpha(t - self.stride)
        x0 = (latents - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        return a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps

    def inverse_step(self, latents, eps, t: int):
        """x_{t - stride} -> x_t given the noise predicted at (x_{t - stride}, t)."""
        a_prev, a_t = self.alpha(t - self.stride), self.alpha(t)
        x0 = (latents - (1 - a_prev) ** 0.5 * eps) / a_prev ** 0.5
        return a_t ** 0.5 * x0 + (1 - a_t) ** 0.5 * eps
