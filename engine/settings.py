"""The method's constants and the machine's options: one module, every default written once.

- `EditSettings`: the method (the paper's sections 5.2 and S5; docs/design.md lists the defaults).
  Frozen (hashable), round-trips through plain JSON (`to_dict` / `from_dict`). Fields that change
  what `Engine.prepare` computes carry ``metadata={"prepare": True}``: `prepare_dict()` is that
  subset, the per-photo cache key, so changing an edit-only weight never invalidates a prepared
  photo, and `for_prepared` takes those fields from a prepared photo.
- Named presets (`EditSettings.preset(name)`): "default" (the paper's schedule, the add-on's
  "Final"), "fast" (a measured cheaper schedule, the add-on's "Draft"), "quick" (about a
  seventh of the release's work per frame, the add-on's "Sketch") and "instant" (gradient-free
  handles, 30 UNet forwards per frame, the add-on's "Instant"; docs/method.md).
- The steps -> guided-steps rule (`with_steps`): the one place that keeps a schedule's guided
  share when only the step count is given.
- `RuntimeOptions`: where and how the model runs (device, dtype, memory options, frames per
  batch); they never change the method's result beyond float tolerance.

Change a default only with a measured reason, and write it down in docs/method.md.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from .errors import InputError

LOSSES = ("l1", "l2")
INVERSIONS = ("null-text", "negative-prompt", "ddim")
INVERSION_LABELS = {  # (label, description) for menus
    "null-text": ("Null-text", "The paper's null-text inversion (slow, faithful)"),
    "negative-prompt": ("Negative prompt", "Fast inversion: no per-step optimisation, one UNet "
                                           "forward per step instead of two"),
    "ddim": ("DDIM", "Plain DDIM inversion"),
}
DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
DTYPE_CHOICES = ("auto", "fp32", "fp16", "bf16")

_PREPARE = {"prepare": True}


def _switch(help_text):
    return field(default=False, metadata={"help": help_text})


def _prep(default):
    """A field that changes what prepare computes (part of the per-photo cache key)."""
    return field(default=default, metadata=_PREPARE)
BACKGROUNDS = ("paper", "local")
HANDLES = ("guidance", "injection")
INJECTION_NOISES = ("warped", "local")


@dataclass(frozen=True)
class EditSettings:
    # --- image and sampler -------------------------------------------------------------------
    resolution: int | None = _prep(None)
    """Working resolution: the longer image side in pixels (sides are rounded to multiples of the
    VAE scale factor times the UNet's downsampling, read from the loaded model's configs). None
    (default): the loaded model's native size, UNet sample_size x VAE scale factor, i.e. 512 for
    SD2-depth (the release's fixed size) and 64 for a model trained at 64x64."""
    steps: int = _prep(50)
    """DDIM steps (eta 0; timesteps 980, 960, ..., 0 for 50 steps)."""
    cfg_scale: float = _prep(7.5)
    """Classifier-free guidance scale, used in inversion replay, reconstruction and edit."""
    seed: int = _prep(2773)
    """Seed for anything random (the inverted noise makes the method itself deterministic)."""

    # --- inversion ---------------------------------------------------------------------------
    inversion: str = _prep("null-text")
    """'null-text' (the paper: DDIM inversion then per-step null-embedding optimisation),
    'negative-prompt' (fast: the prompt embedding is the null embedding, no optimisation; one
    UNet forward per step instead of two), or 'ddim' (plain DDIM inversion, empty-prompt null)."""
    null_text_inner_steps: int = _prep(5)
    """Adam iterations per DDIM step in null-text inversion."""
    null_text_lr: float = _prep(1e-2)
    """Adam learning rate at step i is null_text_lr * (1 - i * null_text_lr_decay)."""
    null_text_lr_decay: float = _prep(1.0 / 100.0)
    """See null_text_lr."""
    null_text_early_stop: float = _prep(1e-5)
    """Stop the inner loop of step i when the latent MSE < early_stop + i * early_stop_growth."""
    null_text_early_stop_growth: float = _prep(2e-5)
    """See null_text_early_stop."""

    # --- guidance (section 5.2) --------------------------------------------------------------
    guided_steps: int = _prep(38)
    """Steps 0 .. guided_steps-1 are guided; the rest are plain CFG DDIM steps."""
    opt_iterations: int = 3
    """Gradient-descent iterations on the latents per guided step (paper S5)."""
    guidance_step_size: float = 0.1
    """latents -= guidance_step_size * grad(energy) at each iteration."""
    guided_layers: tuple = _prep((2, 3))
    """Indices into unet.up_blocks whose outputs are guided (SD2: 640 and 320 channels)."""
    layer_cycle: tuple = _prep(((3,), (2,), (2, 3)))
    """Layers guided at step i: layer_cycle[i % len(layer_cycle)] (paper: 3, then 2, then both).
    An empty entry leaves that step unguided (e.g. guiding every other step)."""
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

    # --- cheaper schedules (beyond the paper; all off in the default preset) -----------------
    guidance_momentum: float = 0.0
    """Heavy-ball momentum of the latent updates, carried across iterations and guided steps:
    v = momentum * v + grad, latents -= step * v (0: the paper's plain gradient steps)."""
    guidance_step_decay: float = 0.0
    """The step size falls linearly over the guided steps, from guidance_step_size at the first to
    guidance_step_size * (1 - guidance_step_decay) at the last (0: constant, the paper)."""
    reuse_guidance_eps: bool = False
    """At a guided step, the DDIM step uses the noise predicted by the step's last guidance
    forward (before that iteration's update) instead of a new forward: one UNet forward less per
    guided step. Only with negative-prompt inversion, where the CFG step is that same
    conditional-only forward (with another inversion it is ignored: `reuses_guidance_eps`);
    approximate (the update moves the predicted x0 with the noise estimate held fixed)."""

    # --- gradient-free handles (beyond the paper: docs/method.md, "The instant preset") -------
    handles: str = "guidance"
    """How the handles act at the guided steps: 'guidance' (the paper: gradient steps on the
    latents pulling the guided layers' activations toward the warped reference activations) or
    'injection' (no gradients: during the step's own forward, forward hooks WRITE the warped
    reference activations into each guided layer's output inside the moved objects' target
    region, blended at its boundary; optionally the warped reconstruction latents are written
    there too, ``latent_injection``). Injection costs no UNet evaluation of its own, so a frame
    costs what unguided sampling does; opt_iterations, the weights and the step sizes are unused."""
    injection_start: int = 0
    """'injection': the first DDIM step index that writes (steps injection_start .. guided_steps-1:
    a window of the early steps; the first, noisiest steps may be left free)."""
    injection_strength: float = 1.0
    """'injection': the share of the written activation inside the region (1: replaced)."""
    injection_feather: int = 0
    """'injection': the blend at the region's boundary ramps over this many activation pixels
    inside it (0: a hard edge)."""
    injection_fill: bool = False
    """'injection' with latent_injection: the pixels an object left (originally the object, now
    background) take, the same share, the reconstruction's latents of the nearest pixel that is
    background before and after the edit, so the object's own latents do not stay behind."""
    injection_background: float = 1.0
    """'injection': the share of G_b's target written: the new background's mean activation is
    shifted toward the original background's mean reference activation (without it a copied
    object's colour spreads over the whole frame on the toy model)."""
    latent_injection: float = 0.0
    """'injection': at each guided step, before its forward, the latents inside the target region
    move this share toward the reconstruction's latents at the same noise level, warped by the
    edit (0: off; 1: replaced)."""
    injection_keep: float = 0.0
    """'injection': the share of the reference activations written over the pixels that are
    background before and after the edit (the background kept like the source; 0: off)."""
    injection_noise: str = "warped"
    """'injection' with latent_injection: what the written latents carry. 'warped': the
    reconstruction's latents at the step, warped (object and its noise move together); 'local':
    the reconstruction's clean estimate x0, warped, re-noised to the step's level with the
    reconstruction's noise at the target pixel itself (the noise stays put)."""

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

    cache_activations_fp16: bool = _prep(True)
    """Keep the reference activations in half precision (in memory and in the cache); the energy
    compares the current activations rounded the same way, so an identity edit stays at zero."""

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
        if self.handles not in HANDLES:
            bad("handles", f"expected one of {', '.join(HANDLES)}")
        if not 0 <= self.injection_start <= self.guided_steps:
            bad("injection_start", f"must be between 0 and guided_steps ({self.guided_steps})")
        if not 0.0 <= self.injection_strength <= 1.0:
            bad("injection_strength", "must be between 0 and 1")
        if self.injection_feather < 0:
            bad("injection_feather", "must be >= 0")
        if not 0.0 <= self.injection_background <= 1.0:
            bad("injection_background", "must be between 0 and 1")
        if not 0.0 <= self.injection_keep <= 1.0:
            bad("injection_keep", "must be between 0 and 1")
        if not 0.0 <= self.latent_injection <= 1.0:
            bad("latent_injection", "must be between 0 and 1")
        if self.injection_noise not in INJECTION_NOISES:
            bad("injection_noise", f"expected one of {', '.join(INJECTION_NOISES)}")
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
        if not 0.0 <= self.guidance_momentum < 1.0:
            bad("guidance_momentum", "must be in [0, 1)")
        if not 0.0 <= self.guidance_step_decay <= 1.0:
            bad("guidance_step_decay", "must be between 0 and 1")

    # --- presets and the steps rule -----------------------------------------------------------
    @classmethod
    def preset(cls, name: str = "default", **changes) -> "EditSettings":
        """The named schedule (`PRESETS`), with ``changes`` on top."""
        if name not in PRESETS:
            raise InputError(f"preset {name!r}: expected one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **changes})

    def with_steps(self, steps: int, guided_steps: int | None = None) -> "EditSettings":
        """These settings at ``steps`` DDIM steps. Without ``guided_steps`` the schedule keeps its
        guided share (the release: 38 of 50), so every entry point scales the same way."""
        if guided_steps is None:
            guided_steps = min(steps, round(steps * self.guided_steps / self.steps))
        return self.replace(steps=steps, guided_steps=guided_steps)

    # --- derived values -------------------------------------------------------------------------
    def layers_at(self, step: int) -> tuple:
        """Guided layers at DDIM step index ``step`` (empty when the step is not guided)."""
        if step >= self.guided_steps:
            return ()
        return self.layer_cycle[step % len(self.layer_cycle)]

    def multipliers_at(self, iteration: int) -> tuple:
        m = self.iteration_multipliers
        return m[min(iteration, len(m) - 1)]

    @property
    def reuses_guidance_eps(self) -> bool:
        """Whether guided steps take their DDIM step's noise from the last guidance forward."""
        return (self.reuse_guidance_eps and self.inversion == "negative-prompt" and self.opt_iterations > 0
                and not self.injects)

    @property
    def injects(self) -> bool:
        """Whether the handles are written into the forwards (no gradients) instead of guided."""
        return self.handles == "injection"

    def step_size_at(self, step: int) -> float:
        """The guidance step size at DDIM step index ``step`` (``guidance_step_decay``)."""
        guided = [i for i in range(self.steps) if self.layers_at(i)]
        if self.guidance_step_decay == 0.0 or len(guided) < 2 or step not in guided:
            return self.guidance_step_size
        return self.guidance_step_size * (1.0 - self.guidance_step_decay * guided.index(step) / (len(guided) - 1))

    def layer_weights(self, layer: int) -> tuple:
        """(fg, bg) weight of a guided layer, user weights and scale included."""
        k = self.guided_layers.index(layer)
        return (self.fg_layer_weights[k] * self.fg_weight * self.weight_scale,
                self.bg_layer_weights[k] * self.bg_weight * self.weight_scale)

    def unet_cost(self, cfg_pair: bool | None = None) -> dict:
        """UNet evaluations of one edited frame, counted as `Denoiser` counts them: forwards
        (a CFG pair is 2; 1 where the null embedding is the prompt's, i.e. negative-prompt
        inversion), backwards, and forward equivalents (a backward costs about two forwards).
        With ``handles="injection"`` the guided steps cost nothing of their own (the handles are
        written into the step's forward): the count is that of unguided sampling."""
        if cfg_pair is None:
            cfg_pair = self.inversion != "negative-prompt"
        guided = sum(1 for i in range(self.steps) if self.layers_at(i))
        if self.injects:  # the handles ride on the steps' own forwards
            guided = 0
        fwd = self.steps * (2 if cfg_pair else 1) + guided * self.opt_iterations
        if self.reuses_guidance_eps:
            fwd -= guided  # the DDIM step of a guided step takes the last guidance forward's noise
        bwd = guided * self.opt_iterations
        return {"unet_forward": fwd, "unet_backward": bwd, "unet_equivalents": fwd + 2 * bwd}

    # --- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "EditSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            runtime = [k for k in unknown if k in {f.name for f in fields(RuntimeOptions)}]
            hint = (f" ({', '.join(runtime)}: runtime options, given on the command line or in the "
                    f"preferences)") if runtime else ""
            raise InputError(f"settings: unknown field(s) {', '.join(unknown)}{hint}")
        return cls(**data)

    @classmethod
    def from_saved(cls, data: dict) -> "EditSettings":
        """`from_dict` for settings saved with a prepared photo: caches written before the runtime
        options moved to RuntimeOptions also hold those (device, dtype, ...); they are dropped."""
        runtime = {f.name for f in fields(RuntimeOptions)}
        return cls.from_dict({k: v for k, v in data.items() if k not in runtime})

    def replace(self, **changes) -> "EditSettings":
        return dataclasses.replace(self, **changes)

    @classmethod
    def prepare_fields(cls) -> tuple:
        """Names of the fields that change what prepare computes."""
        return tuple(f.name for f in fields(cls) if f.metadata.get("prepare"))

    def prepare_dict(self) -> dict:
        d = self.to_dict()
        return {k: d[k] for k in self.prepare_fields()}

    def for_prepared(self, prepared_settings: "EditSettings") -> "EditSettings":
        """These settings with the prepare-time fields of a prepared photo (which fixed them)."""
        return self.replace(**{k: getattr(prepared_settings, k) for k in self.prepare_fields()})


PRESETS = {
    # the paper's schedule (sections 5.2 and S5): 50 DDIM steps, 38 guided, 3 iterations each
    "default": {},
    # measured on the toy model (docs/method.md, "Presets"): negative-prompt inversion (one UNet
    # forward per CFG step, no null-text optimisation), 25 DDIM steps, the first 17 guided with
    # 2 gradient steps of 0.6 (the paper's push per unit of time, 3 x 0.1 x mean multiplier 5/3
    # per step of 50 doubled for steps twice as long, is 0.5; 0.6 screened better on adherence and
    # on L1 inside the object): 127 UNet-forward equivalents per frame, 0.29x the release's 442
    "fast": {"inversion": "negative-prompt", "steps": 25, "guided_steps": 17, "opt_iterations": 2,
             "iteration_multipliers": ((1.0, 1.0),), "guidance_step_size": 0.6},
    # measured on the toy model (docs/method.md, "The quick preset"): negative-prompt inversion,
    # 25 DDIM steps, the first 20 guided with ONE gradient step of 0.6 with momentum 0.5 carried
    # across the guided steps, whose last guidance forward's noise serves the DDIM step:
    # 25 + 20 forwards and 20 backwards = 65 UNet-forward equivalents per frame, 0.15x the release
    "quick": {"inversion": "negative-prompt", "steps": 25, "guided_steps": 20, "opt_iterations": 1,
              "iteration_multipliers": ((1.0, 1.0),), "guidance_step_size": 0.6,
              "guidance_momentum": 0.5, "reuse_guidance_eps": True},
    # gradient-free handles (docs/method.md, "The instant preset"): negative-prompt inversion,
    # 30 DDIM steps of ONE forward each; at the first 6 steps the reconstruction's clean latents,
    # warped and re-noised with the pixel's own noise, are written into the target region (and
    # the background's mean activation shifted): 30 UNet-forward equivalents per frame, no
    # backward, 0.07x the release's 442
    "instant": {"inversion": "negative-prompt", "steps": 30, "guided_steps": 6, "layer_cycle": ((2, 3),),
                "handles": "injection", "injection_strength": 0.0, "latent_injection": 1.0,
                "injection_noise": "local"},
}
PRESET_LABELS = {  # (label, description) for menus
    "default": ("Final", "The paper's schedule: 50 steps, 38 guided with 3 gradient steps each"),
    "fast": ("Draft", "The fast schedule: under a third of the UNet evaluations per frame, and a "
                      "fast inversion"),
    "quick": ("Sketch", "A sketch schedule: about a seventh of the UNet evaluations per frame, "
                         "a fast inversion; loses most on large moves"),
    "instant": ("Instant", "Handles written into the model's features, no gradients: about a "
                           "fourteenth of the UNet evaluations per frame; loses most on rotations"),
}


@dataclass(frozen=True)
class RuntimeOptions:
    """Where and how the model runs; none of these change the method beyond float tolerance."""

    device: str = "auto"
    """'auto', 'cuda', 'mps' or 'cpu'."""
    dtype: str = "auto"
    """'auto' (fp16 on GPU, fp32 on CPU), 'fp32', 'fp16' or 'bf16'. The UNet runs in it; the
    guidance energy and its gradient are computed in fp32."""
    # memory / speed switches; "help" is what the command line and the preferences show
    cpu_offload: bool = _switch("keep each model on the CPU and move it to the device only while it "
                                "runs (accelerate's hooks)")
    vae_tiling: bool = _switch("encode/decode with the VAE in tiles (large images on small GPUs)")
    vae_slicing: bool = _switch("decode a batch of frames one image at a time")
    gradient_checkpointing: bool = _switch("recompute UNet activations in the guidance backward pass "
                                           "instead of storing them")
    channels_last: bool = _switch("run the UNet and VAE in the channels-last memory layout (faster "
                                  "convolutions in half precision on recent GPUs)")
    frame_batch_size: int = 4
    """Frames of a trajectory sampled together (results equal one-by-one within float tolerance)."""

    MEMORY_OPTIONS = ("cpu_offload", "vae_tiling", "vae_slicing", "gradient_checkpointing")

    @classmethod
    def switches(cls) -> dict:
        """{name: help} of the on/off options."""
        return {f.name: f.metadata["help"] for f in fields(cls) if "help" in f.metadata}

    def __post_init__(self):
        if self.device.split(":")[0] not in DEVICE_CHOICES:
            raise InputError(f"device {self.device!r}: expected one of {', '.join(DEVICE_CHOICES)}")
        if self.dtype not in DTYPE_CHOICES:
            raise InputError(f"dtype {self.dtype!r}: expected one of {', '.join(DTYPE_CHOICES)}")
        if self.frame_batch_size < 1:
            raise InputError(f"frame batch size {self.frame_batch_size}: must be >= 1")

    def replace(self, **changes) -> "RuntimeOptions":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def plain(value):
    """A setting's value as JSON holds it (tuples, also nested, as lists)."""
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value
