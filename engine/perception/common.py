"""Input checks and small helpers shared by the perception modules (docs/design.md sections 3 and 7)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

# Models loaded once per process: (kind, path, device) -> object. Perception models are small
# next to the diffusion model and get reused (depth runs on the photo and on its background).
_LOADED: dict[tuple, object] = {}


def cached(key: tuple, build):
    if key not in _LOADED:
        _LOADED[key] = build()
    return _LOADED[key]


def clear_cache() -> None:
    """Forget every loaded perception model (frees their memory)."""
    _LOADED.clear()


def check_image(image, name: str = "image") -> np.ndarray:
    """RGB image -> float32 (H, W, 3) in [0, 1]: `engine.checks.image`."""
    from .. import checks

    return checks.image(image, name)


def check_mask(mask, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """Object mask -> bool (H, W) of the image's size: `engine.checks.mask`."""
    from .. import checks

    return checks.mask(mask, name, shape)


def check_depth(depth, shape: tuple[int, int], name: str = "depth") -> np.ndarray:
    """Z-depth in metres -> float32 (H, W) of the image's size: `engine.checks.depth`."""
    from .. import checks

    return checks.depth(depth, name, shape)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a disc of ``radius`` pixels: the pixels within ``radius`` of the mask
    (one Euclidean distance transform, much faster than a disc-shaped structuring element)."""
    mask = np.asarray(mask, dtype=bool)
    if radius <= 0 or not mask.any():  # (an empty mask has no distance to measure from)
        return mask.copy()
    from scipy import ndimage

    return ndimage.distance_transform_edt(~mask) <= radius


def role_override(overrides, role: str):
    """``overrides`` maps role -> id or directory (None or missing: the registry default)."""
    if not overrides:
        return None
    from collections.abc import Mapping

    if not isinstance(overrides, Mapping):
        raise InputError(f"model overrides: expected a mapping of role to id or directory, got {type(overrides).__name__}")
    value = overrides.get(role)
    return str(value) if value else None


def resolve_model(role: str, override=None, models_dir=None) -> Path:
    from .. import registry

    path = registry.resolve(role, override, models_dir)
    registry.check_weights(role, path)  # safetensors only, refused before anything is unpickled
    return path


def load_role(role: str, override, models_dir, device, what: str, build):
    """(build(path, device), device): ``role``'s model resolved through the registry and loaded
    once per process. ``build`` calls the library's own ``from_pretrained``; the errors those raise
    for a broken folder become one ModelNotFoundError naming ``what`` and the folder."""
    import torch

    from ..devices import resolve_device
    from ..errors import ModelNotFoundError, model_load_errors

    path = resolve_model(role, override, models_dir)
    dev = resolve_device(device) if not isinstance(device, torch.device) else device

    def load():
        try:
            return build(path, dev)
        except model_load_errors() as exc:
            raise ModelNotFoundError(f"{what} in {path} could not be loaded: {exc}".splitlines()[0]) from exc

    return cached((role, str(path), str(dev)), load), dev
