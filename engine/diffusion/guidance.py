"""The guidance energy G = G_o + G_b of paper section 5.2, on the decoder activations Psi.

For every guided layer i (an output of ``unet.up_blocks[i]``) at DDIM step t:

- G_o (foreground / objects): for each moved part (each object; in a camera move also the static
  scene, which moves too), over its target pixels inside the valid warped mask, the distance
  between the current activation Psi^e and the edited activation Psi' = W[Psi, F] (the reference
  activation at each pixel's own source pixel); L1 mean by default (the release), L2 as the paper
  writes it. The parts' means are averaged, so a small object counts as much as a large one and
  one object gives exactly the single-object energy.
- G_b (background / global): the distance between the MEAN reference activation over the original
  background (every original object excluded) and the MEAN current activation over the new
  background (every visible object excluded): lighting and shadows may change, the average may not.

Weights: w_o = fg_layer_weight[i] * fg_weight * weight_scale * fg_multiplier[iteration], likewise
for w_b (``EditSettings.layer_weights`` and ``multipliers_at``). Each frame's energy depends only
on that frame's latents, so frames can be optimised in one batch with the sum of their energies.
Targets come per activation grid, from the lifted scene's frames on that grid (engine.lifted).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LayerTargets:
    """Where to guide, at one activation grid (h, w), for B frames with up to K moved parts."""

    source_coords: object  # (B, h, w, 2) float32, (u, v) pixel coords of the source; NaN where none
    fg_masks: object  # (B, K, h, w) float: each moved part's target & valid (zeros for absent parts)
    new_bg_mask: object  # (B, 1, h, w) float: no visible object
    orig_bg_mask: object  # (1, 1, h, w) float: no original object

    @property
    def fg_mask(self):
        """(B, 1, h, w) float: M'_o, the union of the parts."""
        return self.fg_masks.amax(dim=1, keepdim=True)


# In a camera move the static scene moves too: it is guided like one more object (docs/method.md,
# "Camera moves": measured on the toy model against guiding the objects only).
CAMERA_MOVE_GUIDES_SCENE = True


def layer_targets(geometries, device) -> LayerTargets:
    """The targets of B frames from their `engine.geometry.EditGeometry` on ONE activation grid
    (`engine.lifted.LiftedScene.frame(edit, grid=(h, w))`)."""
    import torch

    shapes = {g.shape for g in geometries}
    if len(shapes) != 1:
        raise ValueError(f"layer_targets: the frames' geometries are on different grids {sorted(shapes)}")
    coords, parts, bg = [], [], []
    for g in geometries:
        src = np.asarray(g.source_coords, dtype=np.float32)
        valid = np.asarray(g.valid_mask, dtype=bool) & np.isfinite(src).all(axis=-1)
        masks = [np.asarray(m, dtype=bool) & valid for m in g.target_masks]
        # A camera move moves the static scene too: it is one more part with its own sources.
        scene_part = g.camera_moved and CAMERA_MOVE_GUIDES_SCENE
        masks.append((valid & ~np.asarray(g.target_mask, bool)) if scene_part else np.zeros_like(valid))
        coords.append(src)
        parts.append(np.stack(masks))
        bg.append(~np.asarray(g.target_mask, dtype=bool))
    K = max(len(p) for p in parts)
    parts = [np.concatenate([p, np.zeros((K - len(p),) + p.shape[1:], bool)]) for p in parts]
    obj = np.asarray(geometries[0].object_mask, dtype=bool)  # the original objects on this grid

    def t(a):
        return torch.as_tensor(np.stack(a) if isinstance(a, list) else a).to(device)

    return LayerTargets(t(coords).float(), t(parts).float(), t(bg)[:, None].float(),
                        torch.as_tensor(~obj)[None, None].float().to(device))


# Differences below this floor are arithmetic noise, not edits. The same latents give activations
# that differ in the last bits with the batch size (batched kernels sum in another order), and the
# fp16-cached references round such a difference to a whole fp16 step. The L1 energy's gradient is
# sign(d) whatever |d| is, so without a floor that noise becomes full-size guidance steps: an
# identity frame sampled in a batch of 2 drifted far from the reconstruction. Relative to each
# value plus the layer's mean magnitude (noise accumulates in the sums, not per output value).
FP32_NOISE_FLOOR = 1e-4


def noise_floor(*dtypes) -> float:
    """The relative floor for references kept in / activations computed in ``dtypes``: two steps
    of the coarsest of them, at least FP32_NOISE_FLOOR."""
    import torch

    return max([FP32_NOISE_FLOOR] + [2.0 * torch.finfo(d).eps for d in dtypes])


def _distance(a, b, loss, floor, scale):
    """Per-element distance of a to the reference b, zero within floor * (|b| + scale)."""
    d = ((a - b).abs() - floor * (b.abs() + scale)).clamp_min(0.0)
    return d if loss == "l1" else d * d


class Guidance:
    """Reference activations and per-grid targets for a batch of frames; computes the energy."""

    def __init__(self, references: dict, targets: dict, settings, device, latent_sources=None):
        # references: {(step, layer): (1, C, h, w) tensor (fp16 when cached so)}
        # targets: {(h, w): LayerTargets}
        # latent_sources: None, or (noise (1, C, h, w), trajectory (steps, 1, C, h, w)): the
        # reconstruction's latents before each step, for the latent injection
        self.references = references
        self.targets = targets
        self.settings = settings
        self.device = device
        self.latent_sources = latent_sources
        self._hole_cache: dict = {}

    def _ref(self, step, layer):
        return self.references[(step, layer)].to(self.device)

    def warped_references(self, step: int, layers) -> dict:
        """Psi' = W[Psi, F] for each layer: (B, C, h, w) float32, zero where there is no source."""
        import torch

        from ..warp import warp

        out = {}
        with torch.no_grad():
            for layer in layers:
                ref = self._ref(step, layer).float()
                tg = self.targets[tuple(ref.shape[-2:])]
                B = tg.source_coords.shape[0]
                out[layer] = warp(ref.expand(B, *ref.shape[1:]).contiguous(), tg.source_coords).float()
        return out

    def _weight(self, grid):
        """(B, 1, h, w): where and how much the handles write on ``grid``: the moved parts' target
        region (valid sources only), ramped over ``injection_feather`` pixels inside its edge."""
        import torch.nn.functional as F

        m = self.targets[tuple(grid)].fg_mask
        acc, r = m.clone(), self.settings.injection_feather
        for _ in range(r):  # successive erosions: a pixel k inside the edge gets (k + 1) / (r + 1)
            m = -F.max_pool2d(-m, 3, stride=1, padding=1)
            acc = acc + m
        return acc / (r + 1)

    def writers(self, step: int, layers) -> dict:
        """The gradient-free handles at DDIM step ``step``, for `hooks.writing`: {layer: f} where
        f(output) is the layer's output with the energy's two targets WRITTEN instead of pulled
        toward: inside the moved parts' target region the output moves ``injection_strength`` of
        the way to Psi' = W[Psi, F] (ramped at the edge), and the new background is shifted by
        ``injection_background`` of the difference between the original background's mean
        reference activation and its own mean (G_b's target). A forward of k*B images (a CFG
        pair) writes the same targets into each group of B."""
        s = self.settings
        out = {}
        for layer, v in self.warped_references(step, layers).items():
            tg = self.targets[tuple(v.shape[-2:])]
            ref = self._ref(step, layer).float()
            orig_mean = (ref * tg.orig_bg_mask).sum(dim=(2, 3), keepdim=True) / tg.orig_bg_mask.sum().clamp_min(1.0)
            weight = s.injection_strength * self._weight(v.shape[-2:])
            if s.injection_keep:
                # the background that stays background: its own reference activations, written
                stays = tg.new_bg_mask * tg.orig_bg_mask * (1.0 - tg.fg_mask)
                v = v + stays * (ref - v)
                weight = weight + s.injection_keep * stays
            out[layer] = self._writer(v, weight, tg.new_bg_mask, orig_mean, s.injection_background)
        return out

    @staticmethod
    def _writer(values, weight, bg_mask, bg_mean, bg_share):
        def write(output):
            reps = output.shape[0] // values.shape[0]
            cur = output.float()
            v, w, m = (a.repeat(reps, 1, 1, 1) for a in (values, weight, bg_mask))
            new = cur + w * (v - cur)
            if bg_share:
                mean = (new * m).sum(dim=(2, 3), keepdim=True) / m.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
                new = new + bg_share * m * (bg_mean - mean)
            return new.to(output.dtype)
        return write

    def inject_latents(self, step: int, latents, ddim=None):
        """``latents`` (B, C, h, w) moved ``latent_injection`` of the way toward the
        reconstruction's latents before step ``step`` (the same noise level), warped by the edit,
        inside the target region. With ``injection_noise="local"`` (needs ``ddim``) only the
        reconstruction's clean estimate x0 is warped and re-noised to the step's level with the
        reconstruction's noise at the target pixel itself, so the object's noise (which carries
        the photo's colours on the toy model) does not travel with it."""
        import torch

        from ..warp import warp

        noise, trajectory = self.latent_sources
        src = noise if step == 0 else trajectory[step - 1]
        B, C = latents.shape[:2]
        grid = tuple(latents.shape[-2:])
        coords = self.targets[grid].source_coords
        with torch.no_grad():
            src = src.to(self.device).float().expand(B, *src.shape[1:]).contiguous()
            if self.settings.injection_noise == "local":
                # DDIM is deterministic: x_t and x_{t-stride} of the reconstruction give its x0, eps
                t = ddim.timesteps[step]
                nxt = trajectory[step].to(self.device).float().expand_as(src)
                sa, sb = ddim.alpha(t) ** 0.5, (1 - ddim.alpha(t)) ** 0.5
                sc, sd = ddim.alpha(t - ddim.stride) ** 0.5, (1 - ddim.alpha(t - ddim.stride)) ** 0.5
                det = sa * sd - sb * sc
                x0, eps = (sd * src - sb * nxt) / det, (sa * nxt - sc * src) / det
                moved = sa * warp(x0.contiguous(), coords).float() + sb * eps
            else:
                moved = warp(src, coords).float()
            w = self.settings.latent_injection * self._weight(grid)
            out = latents + w * (moved - latents)
            if self.settings.injection_fill:
                hole, index = self._holes(grid)
                filled = src.flatten(2).gather(2, index.expand(B, C, -1)).view_as(src)
                out = out + self.settings.latent_injection * hole * (filled - out)
            return out

    def _holes(self, grid):
        """(hole (B, 1, h, w) float, index (B, 1, h*w) long) on ``grid``: the pixels the objects
        left (originally an object, now background) and, for every pixel, the flat index of the
        nearest pixel that is background before and after the edit (itself where it is one)."""
        import torch
        from scipy import ndimage

        if grid not in self._hole_cache:
            tg = self.targets[grid]
            orig_bg = tg.orig_bg_mask[0, 0].cpu().numpy() > 0.5
            holes, index = [], []
            for new_bg in tg.new_bg_mask[:, 0].cpu().numpy() > 0.5:
                keep = orig_bg & new_bg
                if keep.any():
                    _, (iy, ix) = ndimage.distance_transform_edt(~keep, return_indices=True)
                else:  # nothing stays background: no fill
                    iy, ix = np.indices(keep.shape)
                holes.append((~orig_bg & new_bg & keep.any())[None])
                index.append((iy * keep.shape[1] + ix).reshape(1, -1))
            self._hole_cache[grid] = (torch.as_tensor(np.stack(holes)).float().to(self.device),
                                      torch.as_tensor(np.stack(index)).long().to(self.device))
        return self._hole_cache[grid]

    def energy(self, step: int, activations: dict, warped: dict, iteration: int):
        """Weighted energy per frame (B,), and the unweighted parts for the stats."""
        import torch

        s = self.settings
        m_fg, m_bg = s.multipliers_at(iteration)
        total, plain = 0.0, 0.0
        parts = {}
        for layer, act in activations.items():
            ref = self._ref(step, layer)
            cur = act.float()
            if ref.dtype != torch.float32:
                # compare in the precision the references are kept in: an identity edit is exactly 0
                cur = act.to(ref.dtype).float()
            tg = self.targets[tuple(cur.shape[-2:])]
            C = cur.shape[1]
            ref32 = ref.float()
            floor, scale = noise_floor(ref.dtype, act.dtype), ref32.abs().mean()
            # G_o: per moved part, mean distance over its valid warped mask; parts averaged
            dist = _distance(cur, warped[layer], s.loss, floor, scale).sum(dim=1, keepdim=True)  # (B,1,h,w)
            n_fg = tg.fg_masks.sum(dim=(2, 3))  # (B, K)
            per_part = (dist * tg.fg_masks).sum(dim=(2, 3)) / (n_fg * C).clamp_min(1.0)
            present = (n_fg > 0).float()
            g_o = (per_part * present).sum(dim=1) / present.sum(dim=1).clamp_min(1.0)
            # G_b: distance of the mean activations over original and new background
            orig_mean = (ref32 * tg.orig_bg_mask).sum(dim=(2, 3)) / tg.orig_bg_mask.sum().clamp_min(1.0)
            new_mean = (cur * tg.new_bg_mask).sum(dim=(2, 3)) / \
                tg.new_bg_mask.sum(dim=(2, 3)).clamp_min(1.0)
            g_b = _distance(new_mean, orig_mean, s.loss, floor, scale).mean(dim=1)
            w_o, w_b = s.layer_weights(layer)
            total = total + w_o * m_fg * g_o + w_b * m_bg * g_b
            plain = plain + w_o * g_o + w_b * g_b
            parts[layer] = (g_o.detach(), g_b.detach())
        return total, plain, parts
