"""Image, depth and mask files: loading with checks at the boundary, atomic saving.

Conventions (docs/design.md section 3): images are RGB float32 (H, W, 3) in [0, 1] inside the engine,
uint8 sRGB on disk; depth is z-depth in metres, float32 (H, W), finite and > 0; masks are bool
(H, W). Every image file (photo, mask, background, PNG depth) is turned upright by its EXIF
orientation first (a phone's JPEG), so all of a photo's inputs share the upright view; the image
modes and how each is read are the table in docs/guarantees.md ("Image files"). Every loader raises `InputError` naming the file and what is wrong. Every saver writes a
temporary file in the destination directory and renames it (`os.replace`), so a reader never sees
a half-written file and a failure leaves nothing behind.
"""
from __future__ import annotations

import errno
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
    return _upright(img, f"{what} '{path}'")


def _upright(img, what):
    """``img`` turned as its EXIF orientation (tag 0x0112) says, so it is seen as the camera's
    viewer shows it; unchanged without the tag. Unreadable EXIF is refused (the image's sides
    would be a guess)."""
    from PIL import ImageOps

    try:
        orientation = img.getexif().get(0x0112)
    except Exception as exc:  # noqa: BLE001 - Pillow raises several types for broken EXIF blocks
        raise InputError(f"{what}: its EXIF data is unreadable ({type(exc).__name__}); save the "
                         f"image again without EXIF") from None
    if orientation in (None, 1):
        return img
    if orientation not in range(2, 9):
        raise InputError(f"{what}: EXIF orientation {orientation!r} is not one of 1..8; save the image "
                         f"again upright without an orientation tag")
    try:
        return ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{what}: cannot apply its EXIF orientation {orientation} ({exc})") from None


def exif_orientation(path) -> int | None:
    """The EXIF orientation tag of an image file (1..8), None without one or when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            value = img.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - only a hint for messages
        return None
    return value if isinstance(value, int) else None


def _pil_to_float(img) -> np.ndarray:
    """Any PIL mode -> float32 (H, W, C) in [0, 1] with C in {1, 2, 3, 4} (alpha kept last):
    16-bit and 32-bit grey by their full scale, palettes through their colours (RGBA when the
    palette has a transparent entry), CMYK / YCbCr / LAB / HSV by Pillow's conversion to RGB.
    One float array is made (the division happens in place)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.uint16).astype(np.float32)
        arr /= 65535.0
        return arr[..., None]
    if mode == "I":
        arr = np.asarray(img, dtype=np.int64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        arr = arr.astype(np.float32)
        arr /= top
        return np.clip(arr, 0, 1, out=arr)[..., None]
    if mode == "F":
        arr = np.array(img, dtype=np.float32)
        np.nan_to_num(arr, copy=False, nan=0.0)
        return np.clip(arr, 0, 1, out=arr)[..., None]
    if mode == "1":
        return np.asarray(img, dtype=np.float32)[..., None]
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    elif mode in ("La", "RGBa"):  # premultiplied alpha
        img = img.convert("LA" if mode == "La" else "RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in mode else "RGB")
    arr = np.asarray(img).astype(np.float32)
    arr /= 255.0
    return arr if arr.ndim == 3 else arr[..., None]


# Transparent pixels of a photo are composited over this (white, as an image viewer shows them).
TRANSPARENT_OVER = 1.0


def load_image(path, what="image") -> np.ndarray:
    """Read an image file as RGB float32 (H, W, 3) in [0, 1], upright (EXIF orientation). Grey is
    expanded to RGB; an alpha channel that is not fully opaque is composited over white
    (`TRANSPARENT_OVER`), a fully opaque one dropped (docs/guarantees.md, "Image files")."""
    arr = _pil_to_float(_open_pil(path, what))
    if arr.shape[-1] in (2, 4):
        alpha = arr[..., -1:]
        colour = arr[..., :-1]
        if (alpha < 1.0).any():
            colour *= alpha  # in place: colour * a + white * (1 - a)
            colour += TRANSPARENT_OVER * (1.0 - alpha)
        arr = colour
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr, dtype=np.float32)


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
        try:
            with OpenEXR.File(header, {"Y": arr}) as f:
                f.write(str(tmp))
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - OpenEXR reports a failed write as a plain error
            if "failed to write" not in str(exc).lower():
                raise
            # the writer does not say why; the one cause a checked array and folder leave is space
            raise OSError(errno.ENOSPC, f"the OpenEXR writer failed ({exc}); the disk is probably full",
                          str(path)) from None
        # the writer can also end without an error on a short final write: read it back
        if not _reads_back(tmp, arr):
            raise OSError(errno.ENOSPC, "the OpenEXR file written does not read back (truncated); the disk "
                          "is probably full", str(path))


def _reads_back(path, arr) -> bool:
    """Whether a scanline OpenEXR file we wrote is whole: its header parses and every chunk its
    offset table lists lies inside the file (no decoding: the library prints its own errors)."""
    import struct

    lines = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256}  # per chunk, by compression
    try:
        data = Path(path).read_bytes()
        if data[:4] != b"\x76\x2f\x31\x01":
            return False
        pos, window, compression = 8, None, None
        while data[pos] != 0:
            name_end = data.index(b"\0", pos)
            type_end = data.index(b"\0", name_end + 1)
            size = struct.unpack_from("<i", data, type_end + 1)[0]
            value = type_end + 5
            name = data[pos:name_end]
            if name == b"dataWindow":
                window = struct.unpack_from("<4i", data, value)
            elif name == b"compression":
                compression = data[value]
            pos = value + size
        pos += 1
        if window is None or compression not in lines:
            return False
        height = window[3] - window[1] + 1
        if height != arr.shape[0]:
            return False
        chunks = -(-height // lines[compression])
        offsets = struct.unpack_from(f"<{chunks}Q", data, pos)
        first = pos + 8 * chunks  # chunks start after the offset table (zeros: never filled in)
        for offset in offsets:
            if offset < first:
                return False
            y, packed = struct.unpack_from("<ii", data, offset)
            if packed < 0 or offset + 8 + packed > len(data):
                return False
        return True
    except (OSError, ValueError, IndexError, struct.error):
        return False


# --------------------------------------------------------------------------------------------
# masks


def validate_mask(mask, what="mask", expected_shape=None) -> np.ndarray:
    """Check a mask and return it as bool (H, W): `engine.checks.mask`."""
    return checks.mask(mask, what, expected_shape)


def load_mask(path, expected_shape=None) -> np.ndarray:
    """Read an object mask as bool (H, W), upright (EXIF orientation, like the photo).

    Any image mode (docs/guarantees.md, "Image files"): if the image has an alpha channel that is
    not fully opaque, the alpha is the mask (a cut-out, or a constant colour with the mask in its
    alpha); otherwise the grey level (the luminance of a colour image). Soft edges are thresholded
    at half of full scale: >= 128 of 255 (>= 32768 of 65535) is the object. ``.npy`` arrays are
    accepted too (bool; numbers > 0.5). Rejects empty and full masks.
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


def load_masks(path, expected_shape=None) -> np.ndarray:
    """Several objects' masks from a ``.npy`` array (N, H, W) as bool, each checked as `load_mask`
    checks one (bool, or numbers > 0.5; not empty, not full, the expected size)."""
    path = Path(path)
    what = f"masks '{path}'"
    if not path.is_file():
        raise InputError(f"{what}: file not found")
    arr = _load_npy(path, what)
    if arr.ndim != 3 or len(arr) == 0:
        raise InputError(f"{what}: expected (N, H, W) masks, got shape {arr.shape}")
    return np.stack([validate_mask(m, f"{what}, mask {n + 1}", expected_shape) for n, m in enumerate(arr)])


def save_mask(path, mask) -> None:
    """Write a bool (H, W) mask as an 8-bit greyscale PNG (0 / 255), atomically."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"mask for '{path}': expected (H, W), got shape {arr.shape}")
    save_image(path, to_uint8(arr.astype(bool)))
