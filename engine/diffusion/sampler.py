"""DDIM sampling from the inverted noise: the reconstruction (recording the reference activations)
and the guided edit (paper section 5.2 and S5).

Per DDIM step i with timestep t (both passes):
1. (edit, i < guided_steps) ``opt_iterations`` times: a conditional-only UNet forward capturing the
   layers of ``layer_cycle[i % 3]``, the energy G, its gradient w.r.t. the latents, and
   latents -= guidance_step_size * grad (beyond the paper, off by default: the step size may
   fall linearly over the guided steps, ``guidance_step_decay``, and the update may carry
   heavy-ball momentum across iterations and guided steps, ``guidance_momentum``).
   (reconstruction, i < guided_steps) the same conditional-only forward, its activations kept as
   the references Psi_{i, layer}: so an identity edit sees exactly zero energy.
2. The classifier-free guided DDIM step with the step's null embedding and the depth
   (the original depth in the reconstruction, the edited depth in the edit).
   With ``reuse_guidance_eps`` (negative-prompt inversion only, where that step is one
   conditional forward) a guided step's last guidance forward runs the whole UNet and its noise
   prediction, taken before that iteration's update, serves the DDIM step: one forward less.
1'. (edit, ``settings.handles == "injection"``, beyond the paper: docs/method.md, "The instant
   preset") instead of 1., at the steps injection_start .. guided_steps-1: the latents inside the
   target region move toward the warped reconstruction latents of the same step
   (``latent_injection``), and the step's one CFG forward runs with `hooks.writing` hooks that
   write the warped reference activations into the guided layers' outputs there and shift the new
   background's mean toward the original background's (`Guidance.writers`). No gradient, no
   extra forward; the hooks exist only during that forward.
3. (edit, ``settings.background == "local"``, i < guided_steps; beyond the paper) the latents
   outside the region the edit may touch are set to the reconstruction's latents after the same
   step (recorded by ``reconstruct``), with a feathered mask (`local_background_keep`). The paper's
   background energy holds only the mean activation; this holds every background pixel, while the
   object's old and new places, the holes and a margin around them (shadows) stay free, and the
   unguided last steps blend the seam.
"""
from __future__ import annotations

import numpy as np

from .progress import check_cancel, report
from .ddim import DDIM
from .denoiser import Denoiser
from .guidance import Guidance
from .hooks import writing


def reconstruct(den: Denoiser, ddim: DDIM, noise, cond, nulls, depth, settings, progress=None,
                should_cancel=None, trajectory: list | None = None):
    """Unguided sampling from the inverted noise; returns (latents x_0, references).

    references: {(step, layer): (1, C, h, w) on the CPU}, only the layers each guided step uses,
    rounded to half precision when ``settings.cache_activations_fp16``. ``trajectory``: a list
    that receives the latents after each step (float32 on the CPU), for the local background."""
    import torch

    refs = {}
    keep = torch.float16 if settings.cache_activations_fp16 else torch.float32
    x = noise.float()
    steps = len(ddim.timesteps)
    for i, t in enumerate(ddim.timesteps):
        check_cancel(should_cancel)
        layers = settings.layers_at(i)
        with torch.no_grad():
            if layers:
                acts = den.activations(x, t, cond, depth, layers)
                for layer, a in acts.items():
                    refs[(i, layer)] = a.detach().to("cpu", keep).clone()
            eps = den.cfg_eps(x, t, cond, nulls[i:i + 1], depth, settings.cfg_scale)
            x = ddim.step(x, eps, t)
        if trajectory is not None:
            trajectory.append(x.detach().float().cpu())
        report(progress, "reconstruct", i + 1, steps)
    return x, refs


def guided_sample(den: Denoiser, ddim: DDIM, noise, cond, nulls, depth, settings, guidance: Guidance | None,
                  progress=None, should_cancel=None, stage="edit", progress_offset=0, progress_total=None,
                  keep=None):
    """Sample B frames from the shared inverted noise with the (edited) depth (B, 1, h, w).

    ``keep``: None, or (trajectory (steps, 1, C, h, w), weight (B, 1, h, w)): after each guided
    step the latents become weight * reconstruction + (1 - weight) * latents (step 3 above).

    Returns (latents (B, C, h, w), stats) where stats["energy"] lists, per guided step and
    iteration, the weighted energy of each frame and the energy without iteration multipliers."""
    import torch

    B = depth.shape[0]
    x = noise.float().expand(B, *noise.shape[1:]).clone()  # latents in fp32 (denoiser docstring)
    steps = len(ddim.timesteps)
    total = progress_total or steps
    trace = []
    velocity = None  # guidance_momentum: carried across iterations and guided steps
    for i, t in enumerate(ddim.timesteps):
        check_cancel(should_cancel)
        layers = settings.layers_at(i) if guidance is not None else ()
        eps = None
        if layers and settings.injects and i < settings.injection_start:
            layers = ()  # before the written window: a plain step
        if layers and settings.injects:
            # gradient-free handles: written into this step's own forward (no extra evaluation)
            if settings.latent_injection > 0.0:
                x = guidance.inject_latents(i, x, ddim)
            with torch.no_grad(), writing(den.unet, guidance.writers(i, layers)):
                eps = den.cfg_eps(x, t, cond, nulls[i:i + 1], depth, settings.cfg_scale)
        elif layers and settings.opt_iterations > 0:
            warped = guidance.warped_references(i, layers)
            step_size = settings.step_size_at(i)
            for k in range(settings.opt_iterations):
                last = k == settings.opt_iterations - 1
                with torch.enable_grad():
                    xg = x.detach().requires_grad_(True)
                    if last and settings.reuses_guidance_eps:
                        acts, eps = den.activations_and_eps(xg, t, cond, depth, layers)
                    else:
                        acts = den.activations(xg, t, cond, depth, layers)
                    energy, plain, parts = guidance.energy(i, acts, warped, k)
                    if torch.is_tensor(energy) and energy.requires_grad:
                        grad = den.energy_grad(energy, xg)
                    else:
                        grad = torch.zeros_like(xg)
                if settings.guidance_momentum:
                    velocity = grad if velocity is None else settings.guidance_momentum * velocity + grad
                    grad = velocity
                x = (x - step_size * grad).detach()
                trace.append({"step": i, "iteration": k, "layers": list(layers),
                              "energy": _floats(energy, B), "energy_unscaled": _floats(plain, B),
                              "parts": {str(l): [_floats(p[0], B), _floats(p[1], B)] for l, p in parts.items()}})
        with torch.no_grad():
            if eps is None:
                eps = den.cfg_eps(x, t, cond, nulls[i:i + 1], depth, settings.cfg_scale)
            x = ddim.step(x, eps, t)
            if keep is not None and i < settings.guided_steps:
                trajectory, weight = keep
                x = x + weight * (trajectory[i].to(x.device, x.dtype) - x)
        report(progress, stage, progress_offset + i + 1, total)
    return x, {"energy": trace}


def _floats(v, B):
    import torch

    if torch.is_tensor(v):
        return [float(a) for a in v.detach().reshape(-1).cpu()]
    return [float(v)] * B


def local_background_keep(object_mask, geometries, latent_hw, margin: float):
    """(B, 1, h, w) float32 numpy: how much of each latent pixel is the reconstruction's (1 far from
    the edit, 0 where it may change: the object's old and new places and the holes, on the image
    grid, widened by ``margin`` of the longer side and feathered over two latent pixels)."""
    from scipy import ndimage

    from ..images import resize_image

    out = []
    h, w = latent_hw
    reach = margin * max(h, w)
    for g in geometries:
        touched = np.asarray(object_mask, bool) | np.asarray(g.target_mask, bool) | ~np.asarray(g.valid_mask, bool)
        touched = resize_image(touched.astype(np.float32), (h, w)) > 0  # any pixel of it
        d = ndimage.distance_transform_edt(~touched)
        out.append(np.clip((d - reach) / 2.0, 0.0, 1.0)[None].astype(np.float32))
    return np.stack(out)
