"""Image, depth and mask files: loading with checks at the boundary, atomic saving.

Conventions (docs/design.md section 3): images are RGB float32 (H, W, 3) in [0, 1] inside the engine,
uint8 sRGB on disk; depth is z-depth in metres, float32 (H, W), finite and > 0; masks are bool
(H, W). Every loader raises `InputError` naming the file and what is wrong. Every saver writes a
temporary file in the destination directory and renames it (`os.replace`), so a reader never sees
a half-written file and a failure leaves nothing behind.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import checks
from .checks import DEFAULT_PNG_DEPTH_SCALE  # noqa: F401  (part of this module's interface)
from .errors import InputError
from .images import to_uint8
from .output import atomic_output  # noqa: F401  (the one atomic writer; io's savers use it)


DEPTH_EXTENSIONS = (".exr", ".npy", ".png")


# --------------------------------------------------------------------------------------------
# images


def _open_pil(path, what):
    from PIL import Image, UnidentifiedImageError

    import warnings

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} '{path}': file not found" if not path.exists() else f"{what} '{path}': not a file")
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # PIL only warns between 1x and 2x its pixel limit; past the limit is refused either way
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{what} '{path}': more than {limit // 1_000_000} megapixels (a decompression "
                         f"bomb or an image far larger than any model input); refused") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"{what} '{path}': not a readable image ({exc})") from None
    return img


def _pil_to_float(img) -> np.ndarray:
    """Any PIL mode -> float (H, W, C) in [0, 1] with C in {1, 2, 3, 4} (alpha kept last)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return (np.asarray(img, dtype=np.uint16).astype(np.float32) / 65535.0)[..., None]
    if mode == "I":
        arr = np.asarray(img, dtype=np.int64).astype(np.float32)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        return np.clip(arr / top, 0, 1)[..., None]
    if mode == "F":
        return np.clip(np.asarray(img, dtype=np.float32), 0, 1)[..., None]
    if mode == "1":
        return np.asarray(img, dtype=np.float32)[..., None]
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in mode else "RGB")
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr if arr.ndim == 3 else arr[..., None]


def load_image(path) -> np.ndarray:
    """Read an image file as RGB float32 (H, W, 3) in [0, 1]; alpha is dropped, grey is expanded."""
    arr = _pil_to_float(_open_pil(path, "image"))
    if arr.shape[-1] in (1, 2):
        arr = np.repeat(arr[..., :1], 3, axis=-1)
    return np.ascontiguousarray(arr[..., :3], dtype=np.float32)


def _to_uint8(rgb, what) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: contains NaN or inf")
    return to_uint8(arr)


def save_image(path, rgb) -> None:
    """Write (H, W, 3) or (H, W) float in [0, 1] (clipped) or uint8 atomically; format from suffix."""
    from PIL import Image

    arr = _to_uint8(rgb, f"image '{path}'")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"image '{path}': expected (H, W, 3), got shape {arr.shape}")
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    with atomic_output(path) as tmp:
        Image.fromarray(arr).save(tmp, format=fmt)


# --------------------------------------------------------------------------------------------
# depth


MAX_ARRAY_ELEMENTS = 1 << 28  # a quarter of a billion values: far beyond any photo


def _load_npy(path, what) -> np.ndarray:
    """A .npy array without pickles; its header is read first so a huge declared shape is
    refused before any memory is allocated."""
    try:
        header = np.load(path, mmap_mode="r", allow_pickle=False)
        if header.size > MAX_ARRAY_ELEMENTS:
            raise InputError(f"{what}: {header.size} values, more than any photo ({MAX_ARRAY_ELEMENTS})")
        return np.array(header)
    except InputError:
        raise
    except (ValueError, OSError, EOFError, MemoryError, TypeError) as exc:
        raise InputError(f"{what}: not a readable .npy array ({exc})") from None


def validate_depth(depth, what="depth", expected_shape=None) -> np.ndarray:
    """Check a depth array and return it as float32 (H, W): `engine.checks.depth`."""
    return checks.depth(depth, what, expected_shape)


def _read_exr(path) -> np.ndarray:
    import OpenEXR

    try:
        with OpenEXR.File(str(path), separate_channels=True) as f:
            channels = {name: np.asarray(ch.pixels) for name, ch in f.channels().items()}
    except Exception as exc:  # OpenEXR raises plain Exceptions for broken files
        raise InputError(f"depth '{path}': not a readable OpenEXR file ({exc})") from None
    # Single-channel depth is 'Y' (our writer, the scenes) or 'Z' / '*.Z' (Blender's depth pass);
    # an RGB(A) image stores it in every colour channel: take R.
    for name in ("Y", "Z", "depth", "R", "V"):
        if name in channels:
            return channels[name]
    for name, arr in channels.items():
        if name.endswith(".Z") or name.endswith(".Y") or name.endswith(".R"):
            return arr
    if len(channels) == 1:
        return next(iter(channels.values()))
    raise InputError(f"depth '{path}': no depth channel (looked for Y, Z, R); has {sorted(channels)}")


def load_depth(path, png_scale=None, expected_shape=None, scale_label="the PNG depth scale") -> np.ndarray:
    """Read a z-depth map in metres as float32 (H, W).

    Formats: OpenEXR (channel 'Y', 'Z' or RGB, half or float), ``.npy`` (2-D numeric, no pickles),
    16-bit PNG (metres = value * ``png_scale``, default `DEFAULT_PNG_DEPTH_SCALE` = 1 mm).
    Rejects NaN, inf, zero/negative depth and a size other than ``expected_shape`` (H, W).
    ``scale_label``: how the caller names its ``png_scale`` setting in messages ("": it has none).
    """
    path = Path(path)
    what = f"depth '{path}'"
    if not path.is_file():
        raise InputError(f"{what}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".exr":
        arr = _read_exr(path)
    elif suffix == ".npy":
        arr = _load_npy(path, what)
    elif suffix == ".png":
        img = _open_pil(path, "depth")
        if img.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            raise InputError(f"{what}: PNG depth must be 16-bit single-channel (got mode {img.mode}); "
                             "an 8-bit PNG cannot hold metric depth")
        raw = np.asarray(img, dtype=np.int64)
        scale = checks.png_depth_scale(int(raw.max(initial=0)), png_scale, what, scale_label)
        arr = raw.astype(np.float64) * scale
    else:
        raise InputError(f"{what}: unsupported format {suffix or '(none)'}; use .exr, .npy or 16-bit .png")
    return validate_depth(arr, what, expected_shape)


def save_depth_exr(path, depth) -> None:
    """Write a float32 (H, W) depth map as a single float channel 'Y' OpenEXR file, atomically."""
    import OpenEXR

    arr = np.ascontiguousarray(np.asarray(depth, dtype=np.float32))
    if arr.ndim != 2:
        raise ValueError(f"depth for '{path}': expected (H, W), got shape {arr.shape}")
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with atomic_output(path) as tmp:
        with OpenEXR.File(header, {"Y": arr}) as f:
            f.write(str(tmp))


# --------------------------------------------------------------------------------------------
# masks


def validate_mask(mask, what="mask", expected_shape=None) -> np.ndarray:
    """Check a mask and return it as bool (H, W): `engine.checks.mask`."""
    return checks.mask(mask, what, expected_shape)


def load_mask(path, expected_shape=None) -> np.ndarray:
    """Read an object mask as bool (H, W).

    Any channel layout: if the image has alpha and it is not fully opaque, the mask is
    alpha > 0.5; otherwise luminance > 0.5 (so white-on-black PNGs and cut-outs both work).
    ``.npy`` arrays are accepted too (value > 0.5). Rejects empty and full masks.
    """
    path = Path(path)
    what = f"mask '{path}'"
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise InputError(f"{what}: file not found")
        arr = _load_npy(path, what)
        return validate_mask(arr, what, expected_shape)
    arr = _pil_to_float(_open_pil(path, "mask"))
    channels = arr.shape[-1]
    if channels in (2, 4) and np.any(arr[..., -1] < 1.0):
        m = arr[..., -1] > 0.5
    elif channels >= 3:
        lum = 0.2126 * arr[..., 0] + 0.7152 * arr[..., 1] + 0.0722 * arr[..., 2]
        m = lum > 0.5
    else:
        m = arr[..., 0] > 0.5
    return validate_mask(m, what, expected_shape)


def save_mask(path, mask) -> None:
    """Write a bool (H, W) mask as an 8-bit greyscale PNG (0 / 255), atomically."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"mask for '{path}': expected (H, W), got shape {arr.shape}")
    save_image(path, to_uint8(arr.astype(bool)))
