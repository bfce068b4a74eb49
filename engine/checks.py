"""The one checks module: every value that enters the engine from outside is checked here.

Arrays (image, depth, mask), text (prompts), JSON files (bounded nesting, no NaN tokens),
settings values (types, then EditSettings' own ranges), frame numbers. Each check raises
`InputError` with one line naming the input and what is wrong, and returns the value in the
type the interior uses (float32 image / depth, bool mask, str prompt), so the interior trusts
its types and never checks again. Conventions: docs/design.md (depth is z-depth in metres).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from .errors import InputError

# A 16-bit PNG stores integers; metres = value * scale. Millimetres is the common convention
# (Kinect/RealSense/NYU/ScanNet exports), so that is the default.
DEFAULT_PNG_DEPTH_SCALE = 0.001
# Plausible z-depth in metres: below a millimetre or beyond 100 km is a unit error, not a scene.
MIN_DEPTH_M = 1e-3
MAX_DEPTH_M = 1e5
# JSON inputs nest a few levels (frames -> frame -> matrix -> row); anything deeper is hostile.
MAX_JSON_DEPTH = 16
MAX_JSON_BYTES = 64 << 20
# Frame numbers: Blender's own limit (MAXFRAME); a trajectory longer than this is a typo.
MAX_FRAME = 1_048_574
MAX_FRAMES = 100_000


def _shape_text(shape) -> str:
    h, w = shape[:2]
    return f"{w}x{h} (WxH)"


def _real_array(value, what, kind):
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{what}: expected numbers, got values of type {arr.dtype}")
    if np.iscomplexobj(arr):
        raise InputError(f"{what}: complex values; a {kind} must be real numbers")
    return arr


# --------------------------------------------------------------------------------------------
# arrays


def image(value, what="image", expected_shape=None) -> np.ndarray:
    """RGB image -> float32 (H, W, 3) in [0, 1]. Accepts uint8, uint16 or float in [0, 1]
    (an alpha channel is dropped)."""
    arr = _real_array(value, what, "image")
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise InputError(f"{what}: expected an RGB image of shape (H, W, 3), got shape {arr.shape}")
    arr = arr[..., :3]
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise InputError(f"{what}: image of {arr.shape[1]}x{arr.shape[0]} pixels is too small")
    if expected_shape is not None and tuple(arr.shape[:2]) != tuple(expected_shape):
        raise InputError(f"{what}: size {_shape_text(arr.shape)} does not match the expected "
                         f"{_shape_text(expected_shape)}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{what}: unsupported pixel type {arr.dtype} (use uint8 or float in [0, 1])")
    # no copy of a float32 image already in range (a 12-megapixel photo is 144 MB per copy)
    arr = arr.astype(np.float32, copy=False)
    lo, hi = float(arr.min()), float(arr.max())  # NaN propagates into min / max
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"{what}: contains NaN or inf")
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise InputError(f"{what}: float pixel values must lie in [0, 1] (found {lo:.3g} to {hi:.3g})")
    return arr if lo >= 0.0 and hi <= 1.0 else np.clip(arr, 0.0, 1.0)


def _single_channel(value, what, kind, noun, expected_shape):
    """A real (H, W) array (a trailing channel of 1 dropped) of the expected size, if one is given."""
    arr = _real_array(value, what, kind)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(f"{what}: expected a single-channel (H, W) {noun}, got shape {arr.shape}")
    if expected_shape is not None and tuple(arr.shape) != tuple(expected_shape):
        raise InputError(f"{what}: size {_shape_text(arr.shape)} does not match the expected "
                         f"{_shape_text(expected_shape)}")
    return arr


def depth(value, what="depth", expected_shape=None) -> np.ndarray:
    """Z-depth in metres -> float32 (H, W). Refuses: not 2-D, non-numeric or complex values, NaN,
    inf, depth <= 0, and depths outside [1 mm, 100 km] (a unit mistake, not a scene)."""
    arr = _single_channel(value, what, "depth", "map", expected_shape).astype(np.float64)
    bad = int(np.isnan(arr).sum())
    if bad:
        raise InputError(f"{what}: contains {bad} NaN value(s)")
    bad = int(np.isinf(arr).sum())
    if bad:
        raise InputError(f"{what}: contains {bad} infinite value(s)")
    bad = int((arr <= 0).sum())
    if bad:
        raise InputError(f"{what}: contains {bad} zero or negative value(s); depth must be > 0 metres")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < MIN_DEPTH_M or hi > MAX_DEPTH_M:
        raise InputError(f"{what}: values from {lo:.3g} to {hi:.3g} m are not a plausible z-depth in "
                         f"metres (expected {MIN_DEPTH_M:g} to {MAX_DEPTH_M:g}); check the unit")
    return arr.astype(np.float32)


def resampled_size(shape, photo_shape, what) -> bool:
    """The one rule for a depth map or mask at another size than the photo: False when it is the
    photo's size, True when it has the photo's aspect ratio within a pixel's rounding (both sides
    are the photo's times one scale, each rounded to a whole pixel, as a depth model or a phone
    gives them; the caller resamples it), else InputError naming the input and both sizes."""
    h, w = (int(v) for v in shape[:2])
    H, W = (int(v) for v in photo_shape[:2])
    if (h, w) == (H, W):
        return False
    # some scale s with |h - H s| <= 1/2 and |w - W s| <= 1/2 (each side rounded from the photo's)
    r = 0.5 + 1e-9
    if h >= 2 and w >= 2 and max((h - r) / H, (w - r) / W) <= min((h + r) / H, (w + r) / W):
        return True
    raise InputError(f"{what}: size {_shape_text((h, w))} does not match the photo's {_shape_text((H, W))} "
                     f"and has another aspect ratio ({w / h:.4g} against {W / H:.4g}); give it at the "
                     f"photo's size or at its aspect ratio")


def png_depth_scale(raw_max: int, scale, what, scale_label: str = "the PNG depth scale") -> float:
    """The metres-per-unit of a 16-bit PNG depth; refuses a default (millimetre) reading of values
    that can only be metres or an 8-bit map (every pixel within 25 cm of the camera). ``scale_label``:
    how the caller names its scale setting ("": it has none)."""
    if scale is None:
        if raw_max < 256:
            fix = (f"if they are metres (or another unit) say so with {scale_label} (metres per unit: 1 "
                   f"for metres, 0.01 for centimetres)" if scale_label else
                   "save the depth in metres as .exr or .npy instead")
            raise InputError(f"{what}: 16-bit PNG values only reach {raw_max}, i.e. {raw_max} mm at the "
                             f"default millimetre scale; {fix}")
        return DEFAULT_PNG_DEPTH_SCALE
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
        raise InputError(f"{what}: PNG depth scale must be a positive number of metres per unit, got {scale!r}")
    return float(scale)


def mask(value, what="mask", expected_shape=None) -> np.ndarray:
    """Object mask -> bool (H, W): True, a float > 0.5 or an integer > 0 is the object. Refuses
    empty and full masks."""
    arr = _single_channel(value, what, "mask", "mask", expected_shape)
    if arr.dtype != bool:
        values = arr.astype(np.float64)
        if not np.isfinite(values).all():
            raise InputError(f"{what}: contains NaN or inf")
        arr = values > (0.5 if np.issubdtype(arr.dtype, np.floating) else 0)
    if not arr.any():
        raise InputError(f"{what}: is empty (no pixel selected)")
    if arr.all():
        raise InputError(f"{what}: selects the whole image; the object must leave some background")
    return arr


def photo_arrays(image_arr, depth_arr, mask_arr, background_depth=None):
    """The arrays `Engine.prepare` takes, checked against each other: (image, depth, masks (N, H, W)
    bool, one per object; a single (H, W) mask is object 1, background depth or None)."""
    img = image(image_arr)
    hw = img.shape[:2]
    d = depth(depth_arr, "depth", hw)
    arr = _real_array(mask_arr, "mask", "mask")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or len(arr) == 0:
        raise InputError(f"mask: expected (H, W) or (N, H, W) masks, got shape {arr.shape}")
    several = len(arr) > 1
    masks = np.stack([_object_mask(m, f"mask {n + 1}" if several else "mask", hw) for n, m in enumerate(arr)])
    if masks.any(0).all():
        raise InputError("mask: the objects cover the whole image; some background must be left")
    bg = None if background_depth is None else depth(background_depth, "background depth", hw)
    return img, d, masks, bg


def disjoint_masks(masks, what="mask") -> np.ndarray:
    """Object masks (H, W) or (N, H, W) -> (N, H, W) bool where a pixel in two masks belongs to
    the first; an object left with no pixel is an error naming it (``what`` 1, 2, ...)."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or len(masks) == 0:
        raise InputError(f"{what}s: expected (H, W) or (N, H, W), got shape {masks.shape}")
    masks = masks.copy()
    taken = np.zeros(masks.shape[1:], dtype=bool)
    for n in range(len(masks)):
        masks[n] &= ~taken
        if not masks[n].any():
            raise InputError(f"{what} {n + 1}: empty (or entirely inside an earlier {what})")
        taken |= masks[n]
    return masks


def _object_mask(value, what, hw):
    arr = np.asarray(value)
    if arr.dtype != bool:
        arr = arr.astype(np.float64) > 0.5
    if not arr.all():
        return mask(arr, what, hw)
    if tuple(arr.shape) != tuple(hw):  # a full mask of one object is fine when others leave background
        raise InputError(f"{what}: size {_shape_text(arr.shape)} does not match the expected {_shape_text(hw)}")
    return arr


# --------------------------------------------------------------------------------------------
# text and JSON


def text(value, what="prompt", allow_empty=False) -> str:
    """A prompt or caption: a str that is valid Unicode (no undecodable bytes from the command
    line), without NUL, non-empty unless ``allow_empty``."""
    if not isinstance(value, str):
        raise InputError(f"{what}: expected text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what}: not valid UTF-8 text (undecodable bytes); pass it as UTF-8") from None
    if "\x00" in value:
        raise InputError(f"{what}: contains a NUL character")
    if not allow_empty and not value.strip():
        raise InputError(f"{what}: must be a non-empty text describing the image")
    return value


def _reject_constant(token):
    raise ValueError(f"{token} is not valid JSON (use a finite number)")


def json_text(data: str, what: str, max_depth: int = MAX_JSON_DEPTH):
    """Parse JSON text: strict (no NaN / Infinity), nesting at most ``max_depth`` levels."""
    # Count brackets before parsing: a deeply nested document would exhaust the parser's stack.
    level = deepest = 0
    in_string = escaped = False
    for ch in data:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            level += 1
            deepest = max(deepest, level)
            if deepest > max_depth:
                raise InputError(f"{what}: nested more than {max_depth} levels deep")
        elif ch in "]}":
            level -= 1
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{what}: not valid JSON ({exc})") from None


def json_file(path, what: str, max_depth: int = MAX_JSON_DEPTH):
    """Read and parse a JSON file (UTF-8, at most 64 MB, see `json_text`)."""
    p = Path(path)
    label = f"{what} '{path}'"
    if not p.is_file():
        raise InputError(f"{label}: file not found" if not p.exists() else f"{label}: not a file")
    try:
        if p.stat().st_size > MAX_JSON_BYTES:
            raise InputError(f"{label}: larger than {MAX_JSON_BYTES >> 20} MB")
        data = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{label}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    return json_text(data, label, max_depth)


def transforms_json(path, what="transforms"):
    """A transform / keyframe file read strictly (see `json_file`), with no true/false anywhere
    but ``visible``: no other field of a transform is a boolean, and a boolean where a number belongs is a mistake
    (Python would read it as 1 or 0). The parsing itself is engine.transforms'."""
    obj = json_file(path, what)

    def walk(value, where):
        # the one boolean of the format: an object's or copy's "visible" (engine.transforms)
        if isinstance(value, bool) and not (where == "visible" or where.endswith(".visible")):
            raise InputError(f"{what} '{path}': {where} is {str(value).lower()}; expected a number")
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}" if where else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")

    walk(obj, "")
    return obj


# --------------------------------------------------------------------------------------------
# settings


def _value_ok(value, default, annotation: str) -> bool:
    if value is None:
        return default is None or "None" in annotation
    if isinstance(default, bool) or annotation.startswith("bool"):
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # true/false are not numbers
    if isinstance(default, int) or annotation.startswith("int"):
        return isinstance(value, int)
    if isinstance(default, float) or annotation.startswith("float"):
        return isinstance(value, (int, float)) and math.isfinite(value)
    if isinstance(default, str) or annotation.startswith("str"):
        return isinstance(value, str)
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        inner = [d for d in default]
        for v in value:
            proto = inner[0] if inner else 0.0
            if isinstance(proto, tuple):
                if not _value_ok(v, proto, "tuple"):
                    return False
            elif isinstance(proto, bool) or isinstance(v, bool) or not isinstance(v, (int, float)) \
                    or not math.isfinite(v) or (isinstance(proto, int) and not isinstance(v, int)):
                return False
        return True
    return True


def settings_types(data, what="settings") -> dict:
    """Check the names and value types of a dict of EditSettings fields (a bool is not a number,
    a string is not a step count); ranges are EditSettings' own check (`settings_data`)."""
    from .settings import EditSettings, plain

    if not isinstance(data, dict):
        raise InputError(f"{what}: expected a JSON object of setting names and values, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(EditSettings)}
    unknown = sorted(k for k in data if k not in fields)
    if unknown:
        raise InputError(f"{what}: unknown setting(s) {', '.join(map(str, unknown))}")
    for name, value in data.items():
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else None
        if not _value_ok(value, default, str(f.type)):
            raise InputError(f"{what}: {name}={value!r} has the wrong type (expected {f.type}, like "
                             f"the default {plain(default)!r})")
    return data


# Outer limits no real run reaches (EditSettings checks the method's own ranges): beyond them a
# value is a typo that would exhaust memory or overflow the random generator.
SANE_RANGES = {"resolution": (8, 8192), "frame_batch_size": (1, 1024), "seed": (0, 2 ** 63 - 1),
               "null_text_inner_steps": (0, 10_000), "opt_iterations": (0, 10_000),
               "cfg_scale": (0.0, 1000.0), "guidance_step_size": (0.0, 1000.0), "null_text_lr": (0.0, 10.0),
               "fg_weight": (0.0, 1e6), "bg_weight": (0.0, 1e6), "weight_scale": (0.0, 1e6)}


def settings_data(data, what="settings"):
    """A dict of EditSettings fields (a settings file, a prepared photo's record) -> EditSettings:
    types first (`settings_types`), outer limits, then EditSettings checks its ranges."""
    from .settings import EditSettings

    settings_types(data, what)
    for name, (lo, hi) in SANE_RANGES.items():
        value = data.get(name)
        if value is not None and not lo <= value <= hi:
            raise InputError(f"{what}: {name}={value!r} is outside {lo}..{hi}")
    try:
        return EditSettings.from_dict(data)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: {exc}") from None


def settings_from(preset=None, changes=None, base=None, what="settings"):
    """The one rule that turns a user's choices into EditSettings (the command line, batch.py and
    the add-on's photo properties all call it): ``base`` (default: the named ``preset``, else
    "default") with ``changes`` (EditSettings fields) on top, checked (`settings_data`); a step
    count without guided steps keeps the schedule's guided share (`EditSettings.with_steps`),
    applied after the other changes so the order the user gave them in never matters."""
    from .settings import EditSettings

    base = base if base is not None else EditSettings.preset(preset or "default")
    changes = dict(changes or {})
    settings_types(changes, what)
    steps, guided = changes.pop("steps", None), changes.pop("guided_steps", None)
    s = settings_data({**base.to_dict(), **changes}, what)
    if steps is not None or guided is not None:
        try:
            s = s.with_steps(steps if steps is not None else s.steps, guided)
        except InputError as exc:
            raise InputError(f"{what}: {exc}") from None
    return s


# --------------------------------------------------------------------------------------------
# frames


def frame_numbers(numbers, what="keyframes") -> list:
    """Keyframe numbers (int, or None = its position 1, 2, 3, ... as the add-on keys them): within
    0..MAX_FRAME, no duplicates, span at most MAX_FRAMES frames. Returns them filled in."""
    out, seen = [], {}
    for k, n in enumerate(numbers, start=1):
        if n is None:
            n = k
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise InputError(f"{what} entry {k}: 'frame' must be an integer frame number, got {n!r}")
        n = int(n)
        if not 0 <= n <= MAX_FRAME:
            raise InputError(f"{what} entry {k}: frame {n} is outside 0..{MAX_FRAME}")
        if n in seen:
            raise InputError(f"{what} entries {seen[n]} and {k}: both key frame {n}; each frame number "
                             f"may appear once")
        seen[n] = k
        out.append(n)
    if out and max(out) - min(out) + 1 > MAX_FRAMES:
        raise InputError(f"{what}: frames {min(out)} to {max(out)} span {max(out) - min(out) + 1} frames, "
                         f"more than {MAX_FRAMES}; check the frame numbers")
    return out
