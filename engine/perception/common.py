"""Input checks and small helpers shared by the perception modules (DESIGN.md sections 3 and 7)."""
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
    """RGB image -> float32 (H, W, 3) in [0, 1]. Accepts uint8 (0..255) or float in [0, 1]."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InputError(f"{name}: expected an RGB image of shape (H, W, 3), got shape {arr.shape}")
    arr = arr[..., :3]
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise InputError(f"{name}: image of {arr.shape[1]}x{arr.shape[0]} pixels is too small")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{name}: unsupported pixel type {arr.dtype} (use uint8 or float in [0, 1])")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: contains NaN or inf")
    if arr.min() < -1e-3 or arr.max() > 1 + 1e-3:
        raise InputError(f"{name}: float pixel values must lie in [0, 1] "
                         f"(found {arr.min():.3g} to {arr.max():.3g})")
    return np.clip(arr, 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def check_mask(mask, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """Object mask -> bool (H, W) of the image's size; empty or full masks are refused."""
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.shape != tuple(shape):
        raise InputError(f"{name}: shape {arr.shape} does not match the image's {tuple(shape)}")
    if arr.dtype != bool:
        if not np.isfinite(arr.astype(np.float64)).all():
            raise InputError(f"{name}: contains NaN or inf")
        arr = arr > (0.5 if np.issubdtype(arr.dtype, np.floating) else 0)
    if not arr.any():
        raise InputError(f"{name}: is empty (no object pixel)")
    if arr.all():
        raise InputError(f"{name}: covers the whole image (no background left)")
    return arr


def check_depth(depth, shape: tuple[int, int], name: str = "depth") -> np.ndarray:
    """Z-depth in metres -> float32 (H, W); NaN, inf and depth <= 0 are refused (DESIGN.md 3)."""
    arr = np.asarray(depth)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.shape != tuple(shape):
        raise InputError(f"{name}: shape {arr.shape} does not match the image's {tuple(shape)}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: contains NaN or inf")
    if (arr <= 0).any():
        raise InputError(f"{name}: contains zero or negative depth ({int((arr <= 0).sum())} pixels)")
    return arr


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a disc of ``radius`` pixels: the pixels within ``radius`` of the mask
    (one Euclidean distance transform, much faster than a disc-shaped structuring element)."""
    if radius <= 0:
        return mask.copy()
    from scipy import ndimage

    return ndimage.distance_transform_edt(~np.asarray(mask, dtype=bool)) <= radius


def role_override(overrides, role: str):
    """``overrides`` maps role -> id or directory (None or missing: the registry default)."""
    if not overrides:
        return None
    if not isinstance(overrides, dict):
        raise InputError(f"model overrides: expected a mapping of role to id or directory, got {type(overrides).__name__}")
    value = overrides.get(role)
    return str(value) if value else None


def resolve_model(role: str, override=None, models_dir=None) -> Path:
    from .. import registry

    return registry.resolve(role, override, models_dir)
