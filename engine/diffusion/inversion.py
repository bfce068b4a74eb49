"""Inverting a photo into the depth-conditioned model (paper section 5, "Inverting the Input Image").

- ``ddim``: DDIM inversion with guidance 1 (the conditional noise), the empty prompt as null.
  Replayed with CFG 7.5 it drifts: the baseline null-text inversion improves on.
- ``null-text`` (the paper, Mokady et al.): the same DDIM inversion, then for each step i an Adam
  optimisation of the null embedding (5 inner steps, lr 1e-2 * (1 - i/100), early stop when the
  latent MSE < 1e-5 + i * 2e-5) so the CFG 7.5 replay lands on the inversion trajectory.
- ``negative-prompt`` (fast, Miyake et al.): the prompt embedding serves as the null embedding,
  so the CFG replay equals the guidance-1 trajectory; no optimisation and one forward per step.

All return the inverted noise x_T and one null embedding per DDIM step, (steps, L, D).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from .progress import check_cancel, report
from .ddim import DDIM
from .denoiser import Denoiser

log = logging.getLogger(__name__)


@dataclass
class Inversion:
    noise: object  # (1, C, h, w) x_T
    null_embeddings: object  # (steps, L, D)
    trajectory: list  # x_0 .. x_T of the DDIM inversion
    losses: list  # per-step final null-text loss (empty for other modes)


def ddim_invert(den: Denoiser, ddim: DDIM, latents, cond, depth, progress=None, should_cancel=None):
    """x_0 -> [x_0, x_1, ..., x_T] with the conditional noise (guidance 1)."""
    import torch

    traj = [latents]
    x = latents
    steps = len(ddim.timesteps)
    for i, t in enumerate(reversed(ddim.timesteps)):
        check_cancel(should_cancel)
        with torch.no_grad():
            eps = den.eps(x, t, cond, depth)
        x = ddim.inverse_step(x, eps, t)
        traj.append(x)
        report(progress, "invert", i + 1, steps)
    return traj


def invert(den: Denoiser, ddim: DDIM, latents, cond, null, depth, settings, progress=None,
           should_cancel=None) -> Inversion:
    mode = settings.inversion
    traj = ddim_invert(den, ddim, latents, cond, depth, progress, should_cancel)
    steps = len(ddim.timesteps)
    if mode == "ddim":
        return Inversion(traj[-1], null.expand(steps, *null.shape[1:]).clone(), traj, [])
    if mode == "negative-prompt":
        return Inversion(traj[-1], cond.expand(steps, *cond.shape[1:]).clone(), traj, [])
    nulls, losses = null_text_optimise(den, ddim, traj, cond, null, depth, settings, progress,
                                       should_cancel)
    return Inversion(traj[-1], nulls, traj, losses)


def null_text_optimise(den: Denoiser, ddim: DDIM, traj, cond, null, depth, settings, progress=None,
                       should_cancel=None):
    import torch
    import torch.nn.functional as F

    steps = len(ddim.timesteps)
    scale = settings.cfg_scale
    x = traj[-1]
    null_cur = null.detach().clone().float()
    nulls, losses = [], []
    for i, t in enumerate(ddim.timesteps):
        check_cancel(should_cancel)
        target = traj[steps - i - 1]
        with torch.no_grad():
            eps_cond = den.eps(x, t, cond, depth)
        opt_null = null_cur.clone().requires_grad_(True)
        opt = torch.optim.Adam([opt_null], lr=settings.null_text_lr * (1.0 - i * settings.null_text_lr_decay))
        threshold = settings.null_text_early_stop + i * settings.null_text_early_stop_growth
        loss_value = float("nan")
        for _ in range(settings.null_text_inner_steps):
            with torch.enable_grad():
                eps_null = den.eps(x, t, opt_null.to(cond.dtype), depth)
                eps = eps_null + scale * (eps_cond - eps_null)
                loss = F.mse_loss(ddim.step(x, eps, t).float(), target.float())
                opt.zero_grad(set_to_none=True)
                loss.backward()
            den.count.backward += x.shape[0]
            opt.step()
            loss_value = loss.item()
            if loss_value < threshold:
                break
        null_cur = opt_null.detach()
        nulls.append(null_cur[0].to(cond.dtype))
        losses.append(loss_value)
        with torch.no_grad():
            e_null = den.eps(x, t, null_cur.to(cond.dtype), depth)
            x = ddim.step(x, e_null + scale * (eps_cond - e_null), t)
        report(progress, "null-text", i + 1, steps)
    return torch.stack(nulls), losses
