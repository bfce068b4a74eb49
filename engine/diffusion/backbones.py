"""The depth-conditioned models the method runs on: what differs per backbone, in one place.

- ``sd2-depth`` (the paper's): SD2-depth, depth as the UNet's fifth input channel.
- ``sd15-depth``: SD 1.5 + ControlNet 1.1 depth (``lllyasviel/control_v11f1p_sd15_depth``).
- ``sdxl-depth``: SDXL base 1.0 + ``diffusers/controlnet-depth-sdxl-1.0``; two text encoders
  (the hidden states of both, concatenated, plus the second one's pooled embedding and the
  size "time ids").

Everything else - inversion, guidance, sampler, cache, presets, manifests, the front ends - is
one code path. Two things make that so:

1. The text condition is ONE tensor per prompt (what null-text inversion optimises and a prepared
   photo stores). For SDXL its last row carries the pooled embedding (zero-padded to the hidden
   width): `BackboneSpec.split_text` takes it apart at each UNet call.
2. The guided layers in settings are the paper's numbers, SD2's ``up_blocks`` 2 and 3 (640 and
   320 channels on the latent grid); `BackboneSpec.up_blocks` maps them to the backbone's own
   decoder blocks (SDXL: 1 and 2, see docs/method.md).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    roles: tuple  # registry roles: (base,) or (base, controlnet)
    native_size: int  # pixels, the released model's (a loaded model's own config decides at run time)
    # settings' layer number (SD2's up_blocks index) -> this backbone's up_blocks index
    # (None: the same index, SD2's own numbering)
    layer_map: tuple | None = None
    conditioning_scale: float = 1.0  # ControlNet residual scale (diffusers' controlnet_conditioning_scale)
    text_encoders: int = 1
    description: str = ""

    @property
    def controlnet(self) -> bool:
        return len(self.roles) > 1

    def up_blocks(self, layers) -> dict:
        """{settings layer: up_blocks index} for ``layers``."""
        if self.layer_map is None:
            return {l: l for l in layers}
        m = dict(self.layer_map)
        bad = [l for l in layers if l not in m]
        if bad:
            raise InputError(f"guided layers {bad}: backbone {self.name} guides the paper's layers "
                             f"{sorted(m)} (its up_blocks {[m[k] for k in sorted(m)]})")
        return {l: m[l] for l in layers}


BACKBONES: dict[str, BackboneSpec] = {b.name: b for b in (
    BackboneSpec("sd2-depth", ("diffusion",), 512,
                 description="SD2-depth: depth concatenated as a fifth UNet input channel (the paper)"),
    # SD 1.5's UNet is SD2's block for block at 512 px: up_blocks 2 and 3 give 640 and 320 channels
    # on the 64x64 latent grid, as in the paper.
    BackboneSpec("sd15-depth", ("sd15", "sd15-controlnet"), 512,
                 description="SD 1.5 + ControlNet 1.1 depth (ControlNet residuals)"),
    # SDXL has three decoder blocks (1280, 640, 320 channels); at 1024 px up_blocks[1] and [2]
    # give 640 and 320 channels on the 128x128 latent grid: the paper's two layers' role.
    BackboneSpec("sdxl-depth", ("sdxl", "sdxl-controlnet"), 1024, layer_map=((2, 1), (3, 2)),
                 conditioning_scale=0.5, text_encoders=2,
                 description="SDXL base 1.0 + ControlNet depth SDXL (ControlNet residuals, scale 0.5 "
                             "as its model card)"),
)}

DEFAULT = "sd2-depth"


def get(name: str | None) -> BackboneSpec:
    name = name or DEFAULT
    try:
        return BACKBONES[name]
    except KeyError:
        raise InputError(f"backbone {name!r}: unknown; choose one of {', '.join(BACKBONES)}") from None


def add_argument(parser) -> None:
    """The ``--backbone`` option of every command that loads the diffusion model."""
    parser.add_argument("--backbone", choices=list(BACKBONES), default=DEFAULT,
                        help="the depth-conditioned model: " + "; ".join(
                            f"{b.name}: {b.description}" for b in BACKBONES.values()) + f" (default {DEFAULT})")


# --- what each backbone does differently at run time --------------------------------------------

def depth_condition(models, depth, latent_hw, device=None, dtype=None):
    """The depth as this backbone takes it: SD2's fifth channel (B, 1, h, w) in [-1, 1], or a
    ControlNet's image (B, 3, H, W) in [0, 1] at the ControlNet's input size."""
    from . import conditioning

    if models.controlnet is None:
        return conditioning.depth_condition(depth, latent_hw, device, dtype)
    f = controlnet_downsampling(models.controlnet)
    return conditioning.control_image(depth, (latent_hw[0] * f, latent_hw[1] * f), device, dtype)


def controlnet_downsampling(controlnet) -> int:
    """Input pixels per latent pixel of a ControlNet's conditioning embedding (8 in the releases)."""
    return 2 ** (len(controlnet.config.conditioning_embedding_out_channels) - 1)


class Feed:
    """Calls the UNet the backbone's way: ``feed(unet, latents, t, text, depth)`` -> the UNet's
    output tuple (None when a hook stopped it early). The Denoiser's one call site."""

    def __init__(self, models=None):
        """``models``: DiffusionModels (None: SD2-depth's way, for a bare UNet)."""
        self.spec = get(getattr(models, "backbone", None))
        self.controlnet = getattr(models, "controlnet", None)
        self.vae_factor = models.vae_scale_factor if models is not None else 8
        self.pooled_dim = (models.text_encoder_2.config.projection_dim
                           if self.spec.text_encoders == 2 else 0)

    def split_text(self, text):
        """(states, added_cond_kwargs or None) from a condition tensor."""
        import torch

        if not self.pooled_dim:
            return text, None
        states, pooled = text[:, :-1], text[:, -1, :self.pooled_dim]
        h, w = self._hw
        ids = torch.tensor([[h, w, 0, 0, h, w]], dtype=states.dtype, device=states.device)
        return states, {"text_embeds": pooled, "time_ids": ids.expand(text.shape[0], -1)}

    def __call__(self, unet, latents, t, text, depth, dtype):
        import torch

        if self.controlnet is None:  # SD2-depth: depth as the fifth input channel
            x = torch.cat([latents, depth.to(latents.dtype)], dim=1).to(dtype)
            return unet(x, t, encoder_hidden_states=text.to(dtype), return_dict=False)
        self._hw = (latents.shape[-2] * self.vae_factor, latents.shape[-1] * self.vae_factor)
        states, added = self.split_text(text.to(dtype))
        x = latents.to(dtype)
        kw = {} if added is None else {"added_cond_kwargs": added}
        down, mid = self.controlnet(x, t, encoder_hidden_states=states, controlnet_cond=depth.to(dtype),
                                    conditioning_scale=self.spec.conditioning_scale, return_dict=False, **kw)
        return unet(x, t, encoder_hidden_states=states, down_block_additional_residuals=down,
                    mid_block_additional_residual=mid, return_dict=False, **kw)


def check_prepared(prepared_backbone: str | None, backbone: str) -> None:
    """Refuse an edit of a photo prepared on another backbone (one line)."""
    made = prepared_backbone or DEFAULT
    if made != backbone:
        raise InputError(f"prepared photo was made with backbone {made}; this edit uses {backbone}: "
                         f"edit with --backbone {made} or prepare the photo again")
