"""The engine's public API: prepare a photo once, then edit it with any number of 3D transforms.

    engine = Engine(models_dir="models")                      # loads lazily, on first use
    prepared = engine.prepare(image, prompt, depth, mask)    # invert + record activations
    prepared.save("photo.prepared")                          # the per-photo cache
    results = engine.edit(prepared, [T1, T2, ...])           # one EditResult per transform

``prepare`` follows docs/design.md section 4 steps 1 and 5 (resize, inversion, reconstruction with the
reference activations); ``edit`` steps 6: lift / transform / project (engine.geometry), edited
depth, guided sampling from the shared inverted noise. Frames of a trajectory run in batches of
``runtime.frame_batch_size``; each frame's result equals the one-by-one result within 1e-4 (the
guidance's noise floor), and frames whose result is known (nothing moves, a held pose) are not
sampled. ``progress(stage, step, total)`` is called between steps, ``should_cancel()`` is
polled there too and a True raises ``CancelledError`` (nothing is written by a cancelled call).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from . import cache, checks
from .camera import Camera
from .errors import CancelledError, InputError  # noqa: F401  (CancelledError: part of this module's contract)
from .profiling import peak_memory as _peak_memory, reset_peak_memory as _reset_peak_memory, timer as _timer
from .prepared import Prepared
from .settings import EditSettings, RuntimeOptions
from .transforms import first_occurrences

log = logging.getLogger(__name__)


@dataclass
class FrameStats:
    """What one frame of `Engine.iter_edit` cost and what its geometry says (``EditResult.stats``).

    A frame that is not sampled (``reused``) costs nothing itself: its UNet counts are 0, and an
    identity frame also has no batch, memory or energy; a frame reused from frame K keeps K's
    batch figures and energy trace (the result it shares)."""

    frame: int = 0  # 1-based, in the call's transforms (0 until iter_edit numbers it)
    reused: str | None = None  # None: sampled; "reconstruction" (an identity frame) or "frame K"
    batch_frames: int = 0  # frames sampled together in this frame's batch
    batch_seconds: float = 0.0  # the batch's geometry, sampling and decoding
    unet_forward: int = 0  # this frame's share of the batch's UNet forwards / backwards
    unet_backward: int = 0
    batch_unet_forward: int = 0
    batch_unet_backward: int = 0
    peak_memory_bytes: int = 0  # engine.profiling.peak_memory after the batch (CUDA: the batch's peak)
    # per guided step and iteration: {"step", "iteration", "energy", "energy_unscaled",
    # "parts": {layer: [foreground, background]}} (engine.diffusion.sampler.guided_sample)
    energy: list = field(default_factory=list)
    visible_objects: list = field(default_factory=list)  # bool per part (objects, then copies)
    camera_moved: bool = False
    out_of_view: list = field(default_factory=list)  # 1-based parts shown but not in view
    notes: list = field(default_factory=list)  # the geometry's visibility lines (EditGeometry.notes)


@dataclass
class EditResult:
    image: np.ndarray  # (h, w, 3) float32 in [0, 1] at the working resolution
    target_mask: np.ndarray  # (h, w) bool: the objects after the edit (union)
    valid_mask: np.ndarray  # (h, w) bool: pixels with a source (not a disocclusion hole)
    edited_depth: np.ndarray  # (h, w) float32 metres
    stats: FrameStats
    target_masks: list = field(default_factory=list)  # (h, w) bool per object in mask order, then per copy
    # (h, w, 2) float32: (u, v) working-grid pixel coordinates of each moved pixel's source in the
    # photo (the objects; every covered pixel when the camera moves), NaN elsewhere
    source_coords: np.ndarray | None = None

    @classmethod
    def of_geometry(cls, image, g, stats: FrameStats) -> "EditResult":
        """A frame's result: its ``image`` and what its geometry ``g`` (EditGeometry) says."""
        return cls(image=image, target_mask=np.asarray(g.target_mask, bool),
                   valid_mask=np.asarray(g.valid_mask, bool), edited_depth=np.asarray(g.edited_depth, np.float32),
                   target_masks=list(g.target_masks),
                   source_coords=np.where(g.moved_mask[..., None], g.source_coords, np.nan).astype(np.float32),
                   stats=dataclasses.replace(stats, visible_objects=list(g.visible), camera_moved=g.camera_moved,
                                             out_of_view=[n + 1 for n in g.out_of_view], notes=list(g.notes)))


class Engine:
    """Loads the depth-to-image model (lazily) and runs prepare / edit.

    ``settings`` (EditSettings) are the defaults of calls that do not pass their own; ``runtime``
    (RuntimeOptions) says where and how the models run. Neither is changed after construction:
    pass ``settings=`` to `prepare` / `edit` for another schedule with the same loaded models."""

    def __init__(self, models_dir=None, model_overrides=None, device=None, dtype=None,
                 settings: EditSettings | None = None, runtime: RuntimeOptions | None = None,
                 backbone: str | None = None):
        from .diffusion.backbones import get as _backbone

        self.backbone = _backbone(backbone).name  # engine.diffusion.backbones: which model family
        self.settings = settings or EditSettings()
        runtime = runtime or RuntimeOptions()
        given = {k: v for k, v in (("device", device), ("dtype", dtype)) if v not in (None, "auto")}
        self.runtime = runtime.replace(**given)
        self.models_dir = models_dir
        self.model_overrides = dict(model_overrides or {})
        self._models = None
        self._denoiser = None
        self.timings: dict = {}

    @classmethod
    def from_models(cls, models, settings: EditSettings | None = None,
                    runtime: RuntimeOptions | None = None) -> "Engine":
        """An engine around already-loaded DiffusionModels (the benchmark builds them from configs)."""
        from .diffusion.denoiser import Denoiser

        engine = cls(settings=settings, runtime=runtime, backbone=models.backbone)
        engine._models = models
        engine._denoiser = Denoiser(models.unet, engine.settings.guided_layers, models.device, models.dtype,
                                    feed=models.feed)
        return engine

    # --- model ----------------------------------------------------------------------------------
    @property
    def models(self):
        if self._models is None:
            from .diffusion.denoiser import Denoiser
            from .diffusion.loading import load_diffusion

            with _timer(self.timings, "load"):
                self._models = load_diffusion(self.models_dir, self.model_overrides.get("diffusion"),
                                              runtime=self.runtime, backbone=self.backbone,
                                              overrides=self.model_overrides)
            self._denoiser = Denoiser(self._models.unet, self.settings.guided_layers, self._models.device,
                                      self._models.dtype, feed=self._models.feed)
        return self._models

    @property
    def denoiser(self):
        self.models
        return self._denoiser

    def load(self) -> "Engine":
        self.models
        return self

    def free(self) -> None:
        """Drop the models (and the GPU memory they hold)."""
        if self._denoiser is not None:
            self._denoiser.remove()
        self._models = self._denoiser = None
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    @property
    def counts(self) -> dict:
        return self.denoiser.count.as_dict()

    # --- prepare --------------------------------------------------------------------------------
    def prepare(self, image, prompt, depth, object_mask, background_depth=None, cache_dir=None,
                progress=None, should_cancel=None, settings: EditSettings | None = None,
                preset: str | None = None) -> Prepared:
        """Invert ``image`` (H, W, 3 float in [0, 1], any size) with its z-depth (H, W) and object
        mask(s) (H, W) or (N, H, W) bool; record the reference activations; lift the scene once.
        With ``cache_dir``, a valid cache of the same inputs is loaded instead, and a fresh result
        is saved there, all while holding that folder's prepare claim (another process preparing
        the same folder is waited for, and its cache then used). ``settings``: this call's
        (default: the engine's); their prepare-time fields go into the result. ``preset``: the
        preset name ``settings`` came from, kept with the result (an edit of it without a preset
        of its own runs with the prepared settings and reports this name)."""
        import torch

        from .diffusion import conditioning as cond_mod
        from .diffusion.ddim import DDIM
        from .diffusion.inversion import invert
        from .diffusion.sampler import reconstruct
        from .images import resize_image, resize_nearest, to_uint8
        from .lifted import LiftedScene

        claim = contextlib.nullcontext() if cache_dir is None else cache.preparing(cache_dir, should_cancel)
        with claim:
            # 1. Check inputs
            image, depth, object_mask, background_depth = checks.photo_arrays(image, depth, object_mask, background_depth)
            m = self.models
            cond_mod.check_prompt(m.tokenizer, prompt)
            s = self._check_settings(settings or self.settings)
            key = cache.content_key(image, depth, object_mask, background_depth, prompt, m.model_id,
                                    m.revision, dict(s.prepare_dict(), dtype=str(m.dtype)))
            if cache_dir is not None:
                try:
                    cached = Prepared.load(cache_dir, expected_key=key)
                    log.info("using the prepared cache in %s", cache_dir)
                    cached.reused_from = str(cache_dir)
                    if preset is not None:
                        cached.preset = preset
                    return cached
                except InputError as exc:
                    log.info("prepared cache not used (%s); preparing again", exc)
            t_start = time.perf_counter()
            count0 = dict(self.counts)
            torch.manual_seed(s.seed)
            _reset_peak_memory(m.device)
            report = {"seconds": {}}
            # 2. Resize to the working resolution (multiples of the VAE scale factor x UNet downsampling)
            h, w = cond_mod.working_size(*image.shape[:2], s.resolution or m.native_resolution, m.size_multiple)
            img = resize_image(image, (h, w))
            dep = resize_nearest(depth, (h, w)).astype(np.float32)
            masks = np.stack([resize_nearest(om, (h, w)).astype(bool) for om in object_mask])
            bg = None if background_depth is None else resize_nearest(background_depth, (h, w)).astype(np.float32)
            for n, om in enumerate(masks):
                if not om.any():
                    raise InputError(f"mask{'' if len(masks) == 1 else f' {n + 1}'}: the object disappears at the "
                                     f"working resolution {w}x{h}; use a larger object or a higher resolution")
            with _timer(report["seconds"], "lift"):
                scene = LiftedScene.build(dep, masks, bg, Camera(h, w))
            den = self.denoiser
            ddim = DDIM(m.scheduler, s.steps)
            # 3. Encode prompt, image and depth
            with _timer(report["seconds"], "encode"):
                cond = cond_mod.encode_prompt(m, prompt)
                null = cond_mod.encode_prompt(m, "")
                latents = cond_mod.encode_image(m, img)
                depth_cond = m.depth_condition(dep, latents.shape[-2:], m.device, m.dtype)
            # 4. Invert (DDIM, then null-text optimisation or a fast option)
            with _timer(report["seconds"], "invert"), m.on_device(m.unet):
                inv = invert(den, ddim, latents, cond, null, depth_cond, s, progress, should_cancel)
            # 5. Reconstruct from the inverted noise, recording the reference activations
            with _timer(report["seconds"], "reconstruct"), m.on_device(m.unet):
                trajectory = []
                rec_latents, refs = reconstruct(den, ddim, inv.noise, cond, inv.null_embeddings, depth_cond,
                                                s, progress, should_cancel, trajectory)
            with _timer(report["seconds"], "decode"):
                reconstruction = cond_mod.decode_latents(m, rec_latents)[0]
            counts = {k: v - count0[k] for k, v in self.counts.items()}
            report.update(counts, total_seconds=time.perf_counter() - t_start,
                          peak_memory_bytes=_peak_memory(m.device), device=str(m.device), dtype=str(m.dtype),
                          inversion=s.inversion, null_text_losses=inv.losses)
            prepared = Prepared(
                image=img, depth=dep, object_masks=scene.object_masks,
                background_depth=scene.background_depth.astype(np.float32), prompt=prompt,
                cond_embedding=cond.detach().float().cpu(), null_embeddings=inv.null_embeddings.detach().float().cpu(),
                noise=inv.noise.detach().float().cpu(), latents=latents.detach().float().cpu(),
                reconstruction_latents=rec_latents.detach().float().cpu(), reconstruction=reconstruction,
                references=refs, settings=s, model_id=m.model_id, revision=m.revision, key=key,
                original_size=tuple(image.shape[:2]), report=report,
                photo=to_uint8(image), photo_mask=object_mask.any(0),
                trajectory=torch.stack(trajectory), preset=preset, centroids=pivots(depth, object_mask),
                backbone=m.backbone)
            prepared._scene = scene
            if cache_dir is not None:
                prepared.save(cache_dir)
            return prepared

    # --- edit -----------------------------------------------------------------------------------
    def edit(self, prepared: Prepared, transforms, settings: EditSettings | None = None, progress=None,
             should_cancel=None) -> list:
        """One EditResult per frame, all from the same inverted noise; frames run in batches of
        runtime.frame_batch_size. ``transforms``: a list of `engine.transforms.FrameEdit` (one
        transform per object, an optional camera move) or of 4x4 camera-frame matrices (p' = T p,
        object 1 moves). ``list(iter_edit(...))``."""
        return list(self.iter_edit(prepared, transforms, settings, progress=progress,
                                   should_cancel=should_cancel))

    def check_model(self, prepared: Prepared):
        """Load the model; refuse a prepared photo made with another one. Returns the models."""
        from .diffusion.backbones import check_prepared

        check_prepared(prepared.backbone, self.backbone)
        m = self.models
        if (prepared.model_id, prepared.revision) != (m.model_id, m.revision):
            raise InputError(f"prepared photo was made with the model {prepared.model_id} "
                             f"({prepared.revision}); this engine has {m.model_id} ({m.revision}): "
                             f"prepare the photo again")
        return m

    def check_frames(self, prepared: Prepared, transforms) -> list:
        """The checks of `iter_edit` without the model: every transform valid, and some object
        visible in some frame (a frame whose objects are all out of view renders without them).
        Geometry is computed one frame at a time and dropped, so a caller can refuse a trajectory
        before creating outputs or loading weights. Returns the FrameEdits."""
        mats = check_transforms(transforms, len(prepared.object_masks))
        prepared.scene.hidden_frames(mats, "transforms")
        return mats

    def iter_edit(self, prepared: Prepared, transforms, settings: EditSettings | None = None,
                  progress=None, should_cancel=None):
        """Yield one EditResult per transform, in order, as soon as its frame batch is sampled.

        Memory is bounded by the frame batch, not the trajectory: each batch's geometry is
        computed when the batch starts and nothing of a yielded frame is kept, except a result
        whose edit comes again later. A caller that writes each result as it comes keeps every
        finished frame when it is interrupted.

        Frames cost nothing when their result is known without sampling (stats.reused):
        an identity frame (nothing moves, no camera move) is the reconstruction, which is what
        sampling it gives; a frame whose edit equals an earlier frame's (a held pose in
        stop-motion) is that frame's result, since every frame starts from the same inverted
        noise and seed and does not depend on its batch (diffusion/guidance.py, noise floor)."""

        # 1. Check inputs (before the model is loaded)
        mats = self.check_frames(prepared, transforms)
        m = self.check_model(prepared)
        # the prepared photo fixes what prepare computed; edit-only settings come from this call
        s = self.edit_settings(prepared, settings)
        # equal edits are sampled once (engine.transforms.first_occurrences); equal keys are equal
        # rounded edits, so a frame and its first occurrence are both identity or neither
        first = first_occurrences([e.key() for e in mats])
        identity = [e.is_identity() for e in mats]
        last_use = {f: k for k, f in enumerate(first)}  # the last frame reusing each sampled one
        fb = self.runtime.frame_batch_size
        n = len(mats)
        known = {}  # frame index -> its EditResult, while a later frame reuses it
        for start in range(0, n, fb):
            batch = list(range(start, min(n, start + fb)))
            todo = [k for k in batch if first[k] == k and not identity[k]]  # this batch's frames to sample
            sampled = dict(zip(todo, self._sample(prepared, [mats[k] for k in todo], s, m, progress,
                                                  should_cancel, (start // fb, -(-n // fb))))) if todo else {}
            for k in todo:
                sampled[k].stats.frame = k + 1
                known[k] = sampled[k]
            for k in batch:
                if k in sampled:
                    yield sampled[k]
                elif identity[k]:
                    yield self._reconstruction_result(prepared, mats[k], k)
                else:
                    r = known[first[k]]
                    yield dataclasses.replace(r, stats=dataclasses.replace(
                        r.stats, frame=k + 1, reused=f"frame {first[k] + 1}", unet_forward=0, unet_backward=0))
            known = {f: r for f, r in known.items() if last_use[f] > batch[-1]}

    def _reconstruction_result(self, prepared: Prepared, edit, k: int) -> EditResult:
        """An identity frame: the reconstruction, with the frame's (unchanged) geometry."""
        return EditResult.of_geometry(prepared.reconstruction.copy(), prepared.scene.frame(edit),
                                      FrameStats(frame=k + 1, reused="reconstruction"))

    def sample(self, prepared: Prepared, transforms, settings: EditSettings | None = None, progress=None,
               should_cancel=None) -> list:
        """Every frame of ``transforms`` sampled, all in one batch whatever
        runtime.frame_batch_size: `iter_edit` without its shortcuts (an identity or repeated edit
        is sampled too), so that what a shortcut stands for can be checked against sampling."""
        mats = check_transforms(transforms, len(prepared.object_masks))
        m = self.check_model(prepared)
        results = self._sample(prepared, mats, self.edit_settings(prepared, settings), m, progress, should_cancel,
                               (0, 1))
        for k, r in enumerate(results):
            r.stats.frame = k + 1
        return results

    def _sample(self, prepared: Prepared, edits: list, s: EditSettings, m, progress, should_cancel,
                batch_of) -> list:
        """Guided sampling of one batch of frames: their EditResults (stats.frame: set by the caller)."""
        import torch

        from .diffusion import conditioning as cond_mod
        from .diffusion.ddim import DDIM
        from .diffusion.guidance import Guidance, layer_targets
        from .diffusion.sampler import guided_sample, local_background_keep

        den = self.denoiser
        ddim = DDIM(m.scheduler, s.steps)
        device, dtype = m.device, m.dtype
        cond = prepared.cond_embedding.to(device, dtype)
        nulls = prepared.null_embeddings.to(device, dtype)
        noise = prepared.noise.to(device, dtype)
        grids = {tuple(a.shape[-2:]) for a in prepared.references.values()}
        latent_injection = s.injects and s.latent_injection > 0.0
        if latent_injection:
            grids.add(tuple(noise.shape[-2:]))
        B = len(edits)
        # 2. Lift / transform / project this batch's frames
        geoms = [prepared.scene.frame(e) for e in edits]
        t0 = time.perf_counter()
        count0 = dict(self.counts)
        _reset_peak_memory(device)
        torch.manual_seed(s.seed)
        # 3. Edited depth -> depth conditioning; activation-grid targets for the energy
        edited = np.stack([g.edited_depth for g in geoms]).astype(np.float32)
        depth_cond = m.depth_condition(edited, noise.shape[-2:], device, dtype)
        targets = {hw: layer_targets([prepared.scene.frame(e, hw, edited_depth=False) for e in edits], device)
                   for hw in grids}
        guidance = Guidance(prepared.references, targets, s, device,
                            (prepared.noise, prepared.trajectory) if latent_injection else None)
        keep = None if s.background != "local" else (prepared.trajectory, torch.from_numpy(
            local_background_keep(prepared.object_mask, geoms, noise.shape[-2:],
                                  s.background_margin)).to(device, dtype))
        # 4. Guided sampling from the inverted noise, then plain CFG steps
        index, batches = batch_of
        with m.on_device(m.unet):
            latents, stats = guided_sample(
                den, ddim, noise, cond, nulls, depth_cond, s, guidance, progress, should_cancel,
                stage="edit", progress_offset=index * s.steps, progress_total=batches * s.steps, keep=keep)
        images = cond_mod.decode_latents(m, latents)
        seconds = time.perf_counter() - t0
        counts = {k: v - count0[k] for k, v in self.counts.items()}
        out = []
        for j, g in enumerate(geoms):
            trace = [{**e, "energy": e["energy"][j], "energy_unscaled": e["energy_unscaled"][j],
                      "parts": {l: [p[0][j], p[1][j]] for l, p in e["parts"].items()}}
                     for e in stats["energy"]]
            out.append(EditResult.of_geometry(images[j], g, FrameStats(
                batch_frames=B, batch_seconds=seconds,
                # frames of a batch cost the same: the per-frame share of the counts
                unet_forward=counts["unet_forward"] // B, unet_backward=counts["unet_backward"] // B,
                batch_unet_forward=counts["unet_forward"], batch_unet_backward=counts["unet_backward"],
                peak_memory_bytes=_peak_memory(device), energy=trace)))
        return out

    def edit_settings(self, prepared: Prepared, settings: EditSettings | None = None) -> EditSettings:
        """The settings an edit of ``prepared`` runs with: ``settings`` (default: the engine's)
        with the prepare-time fields of the prepared photo."""
        return self._check_settings(settings or self.settings).for_prepared(prepared.settings)

    def _check_settings(self, s: EditSettings) -> EditSettings:
        if not set(s.guided_layers) <= set(self.denoiser.recorder.layers):
            raise InputError(f"settings guided_layers {list(s.guided_layers)}: this engine hooks "
                             f"{list(self.denoiser.recorder.layers)} (make an Engine with those settings)")
        return s


# --- input checks and helpers ------------------------------------------------------------------
def pivots(depth, object_masks) -> np.ndarray:
    """(N, 3): the default pivot ("centroid") of each object, from the photo's depth and masks
    at their own (full) size; every path (CLI, batch.py, the add-on's import) uses these."""
    from .transforms import object_centroid

    masks = np.asarray(object_masks, bool)
    return np.asarray(object_centroid(depth, masks if masks.ndim == 3 else masks[None]), np.float64).reshape(-1, 3)


def check_transforms(transforms, n_objects=1) -> list:
    """The frames as `engine.transforms.FrameEdit` (a bare 4x4 matrix moves object 1), checked."""
    from .transforms import FrameEdit

    if transforms is None or len(transforms) == 0:
        raise InputError("transforms: none given (expected a list of 4x4 matrices or FrameEdits)")
    return [FrameEdit.of(T, n_objects, f"transform {k + 1}") for k, T in enumerate(transforms)]
