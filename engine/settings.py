"""The method's constants: one settings object with the defaults of the authors' release.

Every default below is a row of DESIGN.md section 4 (the paper, sections 5.2 and S5). Change one
only with a measured reason, and write it down in docs/method.md.

`EditSettings` is frozen (hashable), and round-trips through plain JSON (`to_dict` / `from_dict`).
`prepare_dict()` is the subset that changes what `Engine.prepare` computes: it goes into the
per-photo cache key, so changing an edit-only weight never invalidates a prepared photo.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields

from .errors import InputError

LOSSES = ("l1", "l2")
INVERSIONS = ("null-text", "negative-prompt", "ddim")
BACKGROUNDS = ("paper", "local")


@dataclass(frozen=True)
class EditSettings:
    # --- image and sampler -------------------------------------------------------------------
    resolution: int | None = None
    """Working resolution: the longer image side in pixels (sides are rounded to multiples of the
    VAE scale factor times the UNet's downsampling, read from the loaded model's configs). None
    (default): the loaded model's native size, UNet sample_size x VAE scale factor, i.e. 512 for
    SD2-depth (the release's fixed size) and 64 for a model trained at 64x64."""
    steps: int = 50
    """DDIM steps (eta 0; timesteps 980, 960, ..., 0 for 50 steps)."""
    cfg_scale: float = 7.5
    """Classifier-free guidance scale, used in inversion replay, reconstruction and edit."""
    seed: int = 2773
    """Seed for anything random (the inverted noise makes the method itself deterministic)."""

    # --- inversion ---------------------------------------------------------------------------
    inversion: str = "null-text"
    """'null-text' (the paper: DDIM inversion then per-step null-embedding optimisation),
    'negative-prompt' (fast: the prompt embedding is the null embedding, no optimisation; one
    UNet forward per step instead of two), or 'ddim' (plain DDIM inversion, empty-prompt null)."""
    null_text_inner_steps: int = 5
    """Adam iterations per DDIM step in null-text inversion."""
    null_text_lr: float = 1e-2
    """Adam learning rate at step i is null_text_lr * (1 - i * null_text_lr_decay)."""
    null_text_lr_decay: float = 1.0 / 100.0
    """See null_text_lr."""
    null_text_early_stop: float = 1e-5
    """Stop the inner loop of step i when the latent MSE < early_stop + i * early_stop_growth."""
    null_text_early_stop_growth: float = 2e-5
    """See null_text_early_stop."""

    # --- guidance (section 5.2) --------------------------------------------------------------
    guided_steps: int = 38
    """Steps 0 .. guided_steps-1 are guided; the rest are plain CFG DDIM steps."""
    opt_iterations: int = 3
    """Gradient-descent iterations on the latents per guided step (paper S5)."""
    guidance_step_size: float = 0.1
    """latents -= guidance_step_size * grad(energy) at each iteration."""
    guided_layers: tuple = (2, 3)
    """Indices into unet.up_blocks whose outputs are guided (SD2: 640 and 320 channels)."""
    layer_cycle: tuple = ((3,), (2,), (2, 3))
    """Layers guided at step i: layer_cycle[i % len(layer_cycle)] (paper: 3, then 2, then both)."""
    fg_layer_weights: tuple = (5.0, 7.5)
    """Foreground (object) energy weight per guided layer, in the order of guided_layers."""
    bg_layer_weights: tuple = (1.5, 1.5)
    """Background energy weight per guided layer, in the order of guided_layers."""
    fg_weight: float = 1.5
    """User weight of the foreground energy (identity preservation of the object)."""
    bg_weight: float = 1.25
    """User weight of the background energy (preservation of the rest of the scene)."""
    weight_scale: float = 100.0
    """Both user weights are multiplied by this. The authors' release uses 30; 100 is a measured
    change (docs/method.md): on the toy-depth model at the release's 30 the object barely follows
    the edit (adherence IoU 0.44 vs 0.32 unguided), at 100 it does (0.55) with a better PSNR to
    the true edit. Set 30 for the release's exact behaviour."""
    iteration_multipliers: tuple = ((2.5, 1.25), (1.25, 2.5), (1.25, 1.25))
    """(fg, bg) multipliers per optimisation iteration (the last repeats if there are more)."""
    loss: str = "l1"
    """Distance used by both energies: 'l1' (mean absolute, the release) or 'l2' (mean squared,
    as the paper writes)."""

    # --- background (beyond the paper: docs/method.md, measured in docs/evaluation.md) -------
    background: str = "paper"
    """'paper' (default): only the background energy (the mean activation) holds the background.
    'local': at the guided steps the latents outside the region the edit may touch are also set
    to the reconstruction's at the same step, so a wall stays a wall; the region is the object's
    old and new places and the holes, widened by background_margin; the unguided last steps blend
    it in. Not the default: in the one comparison measured so far it did not lower the background
    error (docs/evaluation.md)."""
    background_margin: float = 0.1
    """'local': how far around the object's regions the edit may change the background (shadows,
    light), as a fraction of the image's longer side."""

    # --- precision, device and memory --------------------------------------------------------
    device: str = "auto"
    """'auto', 'cuda', 'mps' or 'cpu'."""
    dtype: str = "auto"
    """'auto' (fp16 on GPU, fp32 on CPU), 'fp32', 'fp16' or 'bf16'."""
    cache_activations_fp16: bool = True
    """Keep the reference activations in half precision (in memory and in the cache); the energy
    compares the current activations rounded the same way, so an identity edit stays at zero."""
    cpu_offload: bool = False
    """Keep each model on the CPU and move it to the device only while it runs."""
    vae_tiling: bool = False
    """Decode/encode with the VAE in tiles (large images on small GPUs)."""
    vae_slicing: bool = False
    """Decode a batch of frames one image at a time."""
    gradient_checkpointing: bool = False
    """Recompute UNet activations in the guidance backward pass instead of storing them."""
    frame_batch_size: int = 4
    """Frames of a trajectory sampled together (results equal one-by-one within float tolerance)."""

    # fields that change what prepare computes (the per-photo cache key)
    PREPARE_FIELDS = ("resolution", "steps", "cfg_scale", "seed", "inversion", "null_text_inner_steps",
                      "null_text_lr", "null_text_lr_decay", "null_text_early_stop",
                      "null_text_early_stop_growth", "guided_steps", "guided_layers", "layer_cycle",
                      "dtype", "cache_activations_fp16")

    def __post_init__(self):
        # tuples (from JSON lists) keep the object hashable
        for name in ("guided_layers", "fg_layer_weights", "bg_layer_weights"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("layer_cycle", "iteration_multipliers"):
            object.__setattr__(self, name, tuple(tuple(x) for x in getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        def bad(name, why):
            raise InputError(f"setting {name}={getattr(self, name)!r}: {why}")

        if self.resolution is not None and self.resolution < 8:
            bad("resolution", "must be at least 8 pixels (or None for the model's native size)")
        if not 1 <= self.steps <= 1000:
            bad("steps", "must be between 1 and 1000")
        if not 0 <= self.guided_steps <= self.steps:
            bad("guided_steps", f"must be between 0 and steps ({self.steps})")
        if self.opt_iterations < 0:
            bad("opt_iterations", "must be >= 0")
        if self.loss not in LOSSES:
            bad("loss", f"expected one of {', '.join(LOSSES)}")
        if self.inversion not in INVERSIONS:
            bad("inversion", f"expected one of {', '.join(INVERSIONS)}")
        if self.background not in BACKGROUNDS:
            bad("background", f"expected one of {', '.join(BACKGROUNDS)}")
        if not 0.0 <= self.background_margin <= 1.0:
            bad("background_margin", "must be between 0 and 1")
        if len(self.fg_layer_weights) != len(self.guided_layers):
            bad("fg_layer_weights", "needs one weight per guided layer")
        if len(self.bg_layer_weights) != len(self.guided_layers):
            bad("bg_layer_weights", "needs one weight per guided layer")
        if not self.layer_cycle or any(l not in self.guided_layers for c in self.layer_cycle for l in c):
            bad("layer_cycle", "every entry must list layers from guided_layers")
        if not self.iteration_multipliers or any(len(m) != 2 for m in self.iteration_multipliers):
            bad("iteration_multipliers", "expected (fg, bg) pairs")
        if self.frame_batch_size < 1:
            bad("frame_batch_size", "must be >= 1")

    # --- derived values -------------------------------------------------------------------------
    def layers_at(self, step: int) -> tuple:
        """Guided layers at DDIM step index ``step`` (empty when the step is not guided)."""
        if step >= self.guided_steps:
            return ()
        return self.layer_cycle[step % len(self.layer_cycle)]

    def multipliers_at(self, iteration: int) -> tuple:
        m = self.iteration_multipliers
        return m[min(iteration, len(m) - 1)]

    def layer_weights(self, layer: int) -> tuple:
        """(fg, bg) weight of a guided layer, user weights and scale included."""
        k = self.guided_layers.index(layer)
        return (self.fg_layer_weights[k] * self.fg_weight * self.weight_scale,
                self.bg_layer_weights[k] * self.bg_weight * self.weight_scale)

    # --- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "EditSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"settings: unknown field(s) {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes) -> "EditSettings":
        return dataclasses.replace(self, **changes)

    def prepare_dict(self) -> dict:
        d = self.to_dict()
        return {k: d[k] for k in self.PREPARE_FIELDS}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
