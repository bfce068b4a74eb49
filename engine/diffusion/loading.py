"""Loading the depth-to-image model through the unmodified diffusers / transformers classes.

``load_diffusion`` resolves the ``diffusion`` role with the registry (a Hugging Face id, a local
directory, ``<models_dir>/diffusion/``, or an original single-file checkpoint, converted once by
``engine.diffusion.single_file`` into this layout) and loads ``unet/``, ``vae/``, ``text_encoder/``,
``tokenizer/`` and ``scheduler/`` with ``from_pretrained(subfolder=...)``, offline.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, ModelNotFoundError, model_load_errors

log = logging.getLogger(__name__)

SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


@dataclass
class DiffusionModels:
    """The loaded components of a depth-to-image latent diffusion model."""

    unet: object
    vae: object
    text_encoder: object
    tokenizer: object
    scheduler: object
    path: Path
    model_id: str
    revision: str
    device: object
    dtype: object
    offload_hooks: dict = field(default_factory=dict)  # id(module) -> accelerate hook (cpu_offload)
    backbone: str = "sd2-depth"  # engine.diffusion.backbones
    controlnet: object = None  # the depth ControlNet (sd15-depth, sdxl-depth)
    text_encoder_2: object = None  # SDXL's second text encoder (with projection) and its tokenizer
    tokenizer_2: object = None

    @property
    def feed(self):
        """How the UNet takes the depth and the text (backbones.Feed)."""
        from .backbones import Feed

        return Feed(self)

    def depth_condition(self, depth, latent_hw, device=None, dtype=None):
        """Z-depth (H, W) or (B, H, W) -> the backbone's depth condition (backbones.depth_condition)."""
        from .backbones import depth_condition

        return depth_condition(self, depth, latent_hw, device, dtype)

    @property
    def vae_scale_factor(self) -> int:
        """Image pixels per latent pixel, from the VAE config (SD2: 8; never hard-coded)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def unet_downsampling(self) -> int:
        """Latent pixels per pixel of the UNet's coarsest grid."""
        return 2 ** sum(1 for b in self.unet.down_blocks if getattr(b, "downsamplers", None))

    @property
    def native_resolution(self) -> int:
        """The size the model was trained at: UNet sample_size (latent pixels) x VAE scale factor."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def size_multiple(self) -> int:
        """Image sides are multiples of this (VAE scale factor x UNet downsampling)."""
        return self.vae_scale_factor * self.unet_downsampling

    def on_device(self, module):
        """Context around a stage that runs ``module``: with cpu_offload its accelerate hook has
        moved it to the device on its first forward, and it goes back to the CPU on exit."""
        return _offload_after(module, self.offload_hooks.get(id(module)))


@contextmanager
def _offload_after(module, hook):
    try:
        yield module
    finally:
        if hook is not None:
            hook.offload()
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()


def fingerprint(path: Path) -> str:
    """A revision string for a local model directory: the HF snapshot commit when the directory is
    one, else a hash of the files' contents (survives a copy of the folder)."""
    from ..registry import content_fingerprint

    from .single_file import converted_revision

    path = Path(path)
    if path.parent.name == "snapshots" and len(path.name) == 40:
        return path.name
    return converted_revision(path) or content_fingerprint(path)


def _check_layout(role, path, subfolders):
    """Refuse, in one line, a model folder without one of the diffusers sub-folders it needs."""
    missing = [s for s in subfolders if not (path / s).is_dir()]
    if missing:
        raise ModelNotFoundError(f"{role} model at {str(path)!r} is incomplete: missing "
                                 f"{', '.join(s + '/' for s in missing)} (expected the diffusers layout "
                                 f"{', '.join(s + '/' for s in subfolders)})")


def load_diffusion(models_dir=None, override=None, runtime=None, backbone=None, overrides=None) -> DiffusionModels:
    """Load the ``diffusion`` role on ``runtime``'s device, dtype and memory options (RuntimeOptions);
    raises ModelNotFoundError naming the role and where it looked. Another ``backbone``
    (backbones.BACKBONES) loads its base and ControlNet roles instead (``overrides``: {role: override})."""
    if backbone not in (None, "sd2-depth"):
        from .backbones import get

        return load_controlnet_backbone(get(backbone), models_dir, overrides or {}, runtime)
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from .. import registry
    from ..devices import resolve_device, resolve_dtype
    from ..settings import RuntimeOptions

    if models_dir is not None and not Path(models_dir).expanduser().exists():
        raise ModelNotFoundError(f"models directory {str(models_dir)!r} does not exist "
                                 f"(write tiny test models with `python -m engine tiny-models DIR`)")
    found = registry.resolve_source("diffusion", override, models_dir)
    path = found.path
    registry.check_weights("diffusion", path)  # safetensors only, refused before anything is unpickled
    _check_layout("diffusion", path, SUBFOLDERS)
    runtime = runtime or RuntimeOptions()
    device = resolve_device(runtime.device)
    dtype = resolve_dtype(runtime.dtype, device)
    kw = dict(local_files_only=True, torch_dtype=dtype, use_safetensors=True)
    try:
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", variant=_variant(path, "unet", dtype), **kw)
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", variant=_variant(path, "vae", dtype), **kw)
        text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder",
                                                     variant=_variant(path, "text_encoder", dtype),
                                                     local_files_only=True, dtype=dtype, use_safetensors=True)
        tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", local_files_only=True)
        # The release samples at timesteps 980, 960, ..., 0 (steps_offset 0), whatever the
        # model's own scheduler config says; everything else comes from that config.
        scheduler = DDIMScheduler.from_pretrained(path, subfolder="scheduler", steps_offset=0)
    except model_load_errors() as exc:
        raise ModelNotFoundError(f"could not load the diffusion model from {str(path)!r}: "
                                 f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from exc
    if unet.config.in_channels != vae.config.latent_channels + 1:
        raise ModelNotFoundError(
            f"diffusion model at {str(path)!r} is not depth-conditioned: its UNet takes "
            f"{unet.config.in_channels} input channels, expected {vae.config.latent_channels + 1} "
            f"(latents + depth)")
    hooks = place_models(unet, vae, text_encoder, device, dtype, runtime)
    # the id of the source in use (a mirror or the withdrawn official id), a checkpoint's file name
    model_id = {"hub": found.source, "file": Path(found.source).name}.get(found.kind) or str(path)
    log.info("loaded diffusion model %s from %s on %s (%s)", model_id, path, device, dtype)
    return DiffusionModels(unet, vae, text_encoder, tokenizer, scheduler, path, model_id,
                           fingerprint(path), device, dtype, hooks)


def load_controlnet_backbone(spec, models_dir, overrides, runtime) -> DiffusionModels:
    """A base model and its depth ControlNet (backbones: sd15-depth, sdxl-depth), each its own role."""
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from .. import registry
    from ..devices import resolve_device, resolve_dtype
    from ..settings import RuntimeOptions

    if models_dir is not None and not Path(models_dir).expanduser().exists():
        raise ModelNotFoundError(f"models directory {str(models_dir)!r} does not exist "
                                 f"(write tiny test models with `python -m engine tiny-models DIR`)")
    base_role, cn_role = spec.roles
    found = registry.resolve_source(base_role, overrides.get(base_role), models_dir)
    cn_found = registry.resolve_source(cn_role, overrides.get(cn_role), models_dir)
    path, cn_path = found.path, cn_found.path
    registry.check_weights(base_role, path)
    registry.check_weights(cn_role, cn_path)
    subs = SUBFOLDERS + (("text_encoder_2", "tokenizer_2") if spec.text_encoders == 2 else ())
    _check_layout(base_role, path, subs)
    runtime = runtime or RuntimeOptions()
    device = resolve_device(runtime.device)
    dtype = resolve_dtype(runtime.dtype, device)
    kw = dict(local_files_only=True, torch_dtype=dtype, use_safetensors=True)
    tkw = dict(local_files_only=True, dtype=dtype, use_safetensors=True)
    text_encoder_2 = tokenizer_2 = None
    try:
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", variant=_variant(path, "unet", dtype), **kw)
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", variant=_variant(path, "vae", dtype), **kw)
        text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder",
                                                     variant=_variant(path, "text_encoder", dtype), **tkw)
        tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", local_files_only=True)
        if spec.text_encoders == 2:
            text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(
                path, subfolder="text_encoder_2", variant=_variant(path, "text_encoder_2", dtype), **tkw)
            tokenizer_2 = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer_2", local_files_only=True)
        scheduler = DDIMScheduler.from_pretrained(path, subfolder="scheduler", steps_offset=0)
        controlnet = ControlNetModel.from_pretrained(cn_path, variant=_variant(cn_path.parent, cn_path.name, dtype),
                                                     **kw)
    except model_load_errors() as exc:
        raise ModelNotFoundError(f"could not load the {spec.name} models from {str(path)!r} and {str(cn_path)!r}: "
                                 f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from exc
    if unet.config.in_channels != vae.config.latent_channels:
        raise ModelNotFoundError(f"{base_role} model at {str(path)!r}: its UNet takes {unet.config.in_channels} "
                                 f"input channels, expected {vae.config.latent_channels} (a base model, no depth channel)")
    if (controlnet.config.block_out_channels != unet.config.block_out_channels
            or controlnet.config.cross_attention_dim != unet.config.cross_attention_dim):
        raise ModelNotFoundError(f"{cn_role} model at {str(cn_path)!r} does not fit the {base_role} UNet "
                                 f"(block channels or cross-attention width differ)")
    hooks = place_models(unet, vae, text_encoder, device, dtype, runtime,
                         extra=[m for m in (controlnet, text_encoder_2) if m is not None])
    if spec.text_encoders == 2 and dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
        vae.to(torch.float32)  # SDXL's VAE overflows in fp16 (its diffusers pipelines upcast it too)

    def source_id(f):
        return {"hub": f.source, "file": Path(f.source).name}.get(f.kind) or str(f.path)

    model_id = f"{source_id(found)} + {source_id(cn_found)}"
    log.info("loaded %s models %s on %s (%s)", spec.name, model_id, device, dtype)
    return DiffusionModels(unet, vae, text_encoder, tokenizer, scheduler, path, model_id,
                           f"{fingerprint(path)}+{fingerprint(cn_path)}", device, dtype, hooks,
                           backbone=spec.name, controlnet=controlnet, text_encoder_2=text_encoder_2,
                           tokenizer_2=tokenizer_2)


def place_models(unet, vae, text_encoder, device, dtype, runtime=None, extra=()) -> dict:
    """Inference mode, each model in ``dtype`` on ``device``, and ``runtime``'s memory options.
    Returns the cpu_offload hooks, {id(model): hook}: with cpu_offload every model stays on the
    CPU and accelerate's hook moves it to the device at its first forward (`on_device` sends it
    back), so one model at a time occupies the GPU."""
    import torch

    from ..settings import RuntimeOptions

    runtime = runtime or RuntimeOptions()
    hooks = {}
    for m in (unet, vae, text_encoder, *extra):
        m.eval().requires_grad_(False)
        if m.dtype != dtype:  # from_pretrained already loads in dtype; casting again only warns
            m.to(dtype)
        if runtime.cpu_offload:
            from accelerate import cpu_offload_with_hook

            _, hooks[id(m)] = cpu_offload_with_hook(m, execution_device=device)
        else:
            m.to(device)
    use_sdpa(unet, vae, *extra)
    if runtime.channels_last:
        unet.to(memory_format=torch.channels_last)
        vae.to(memory_format=torch.channels_last)
    if runtime.vae_tiling:
        vae.enable_tiling()
    if runtime.vae_slicing:
        vae.enable_slicing()
    if runtime.gradient_checkpointing:
        for m in (unet, *extra):
            if hasattr(m, "enable_gradient_checkpointing"):
                m.enable_gradient_checkpointing()
    return hooks


def use_sdpa(*models) -> None:
    """PyTorch's fused scaled-dot-product attention in every attention layer (diffusers'
    AttnProcessor2_0; the flash / memory-efficient kernels on CUDA). Layers with another kind of
    processor (none in SD2-depth) keep theirs."""
    from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0

    for model in models:
        for module in model.modules():
            if isinstance(module, Attention) and type(module.processor) in (AttnProcessor, AttnProcessor2_0):
                module.set_processor(AttnProcessor2_0())


def _variant(path: Path, sub: str, dtype) -> str | None:
    """'fp16' where that subfolder has fp16 weights and we want half precision or it has nothing
    else (a download fetches only the fp16 files where a repository has them); None for the
    full-precision weights."""
    import torch

    fp16 = any((path / sub).glob("*.fp16.safetensors"))
    plain = any(p for p in (path / sub).glob("*.safetensors") if ".fp16." not in p.name) or \
        any((path / sub).glob("*.bin"))
    if fp16 and (dtype != torch.float32 or not plain):
        return "fp16"
    return None
