"""Image, depth and mask files: loading with checks at the boundary, atomic saving.

Conventions (DESIGN.md section 3): images are RGB float32 (H, W, 3) in [0, 1] inside the engine,
uint8 sRGB on disk; depth is z-depth in metres, float32 (H, W), finite and > 0; masks are bool
(H, W). Every loader raises `InputError` naming the file and what is wrong. Every saver writes a
temporary file in the destination directory and renames it (`os.replace`), so a reader never sees
a half-written file and a failure leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import InputError

# A 16-bit PNG stores integers; metres = value * scale. Millimetres is the common convention
# (Kinect/RealSense/NYU/ScanNet exports), so that is the default.
DEFAULT_PNG_DEPTH_SCALE = 0.001

DEPTH_EXTENSIONS = (".exr", ".npy", ".png")


# --------------------------------------------------------------------------------------------
# atomic writes


def _read_umask() -> int:
    # Read once at import: os.umask is process-global, and setting it from a worker thread
    # later would race with other threads creating files.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the suffix (some writers pick the format from it) and starts with a
    dot so a directory listing of finished outputs does not show it. On any exception the
    temporary file is removed and the exception propagates; ``path`` is left untouched.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=directory)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates 0600; outputs are ordinary user files (0666 less the umask).
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


# --------------------------------------------------------------------------------------------
# images


def _open_pil(path, what):
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} '{path}': file not found")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
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
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: contains NaN or inf")
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


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


def validate_depth(depth, what="depth", expected_shape=None) -> np.ndarray:
    """Check a depth array (finite, > 0, 2-D, expected size) and return it as float32 (H, W)."""
    arr = np.asarray(depth)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(f"{what}: expected a single-channel (H, W) map, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{what}: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    bad_nan = int(np.isnan(arr).sum())
    if bad_nan:
        raise InputError(f"{what}: contains {bad_nan} NaN value(s)")
    bad_inf = int(np.isinf(arr).sum())
    if bad_inf:
        raise InputError(f"{what}: contains {bad_inf} infinite value(s)")
    bad = int((arr <= 0).sum())
    if bad:
        raise InputError(f"{what}: contains {bad} zero or negative value(s); depth must be > 0 metres")
    if expected_shape is not None and tuple(arr.shape) != tuple(expected_shape):
        h, w = arr.shape
        eh, ew = expected_shape
        raise InputError(f"{what}: size {w}x{h} (WxH) does not match the expected {ew}x{eh}")
    return arr


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


def load_depth(path, png_scale=None, expected_shape=None) -> np.ndarray:
    """Read a z-depth map in metres as float32 (H, W).

    Formats: OpenEXR (channel 'Y', 'Z' or RGB, half or float), ``.npy`` (2-D numeric, no pickles),
    16-bit PNG (metres = value * ``png_scale``, default `DEFAULT_PNG_DEPTH_SCALE` = 1 mm).
    Rejects NaN, inf, zero/negative depth and a size other than ``expected_shape`` (H, W).
    """
    path = Path(path)
    what = f"depth '{path}'"
    if not path.is_file():
        raise InputError(f"{what}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".exr":
        arr = _read_exr(path)
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"{what}: not a readable .npy array ({exc})") from None
    elif suffix == ".png":
        img = _open_pil(path, "depth")
        if img.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            raise InputError(f"{what}: PNG depth must be 16-bit single-channel (got mode {img.mode}); "
                             "an 8-bit PNG cannot hold metric depth")
        scale = DEFAULT_PNG_DEPTH_SCALE if png_scale is None else float(png_scale)
        if not (np.isfinite(scale) and scale > 0):
            raise InputError(f"{what}: PNG depth scale must be a positive number, got {png_scale!r}")
        arr = np.asarray(img, dtype=np.int64).astype(np.float64) * scale
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
    """Check a mask (2-D, expected size, neither empty nor full) and return it as bool (H, W)."""
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(f"{what}: expected a single-channel (H, W) mask, got shape {arr.shape}")
    if arr.dtype != bool:
        arr = np.nan_to_num(arr.astype(np.float64)) > 0.5
    if expected_shape is not None and tuple(arr.shape) != tuple(expected_shape):
        h, w = arr.shape
        eh, ew = expected_shape
        raise InputError(f"{what}: size {w}x{h} (WxH) does not match the expected {ew}x{eh}")
    if not arr.any():
        raise InputError(f"{what}: is empty (no pixel selected)")
    if arr.all():
        raise InputError(f"{what}: selects the whole image; the object must leave some background")
    return arr


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
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"{what}: not a readable .npy array ({exc})") from None
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
    save_image(path, (arr.astype(bool)).astype(np.uint8) * 255)
