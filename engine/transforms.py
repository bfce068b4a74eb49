"""3D edit transforms: the transform file format, conversions and checks.

A transform is a 4x4 float64 matrix T acting on camera-frame points (Blender's camera frame,
docs/design.md): p' = T p, a rigid motion optionally with a uniform scale.

One frame of a trajectory is a `FrameEdit`: one transform per object (in mask order; identity =
the object stays), whether each object is there at all (``visible``), copies of objects (each one
more instance of an object's surface with its own transform), and an optional camera move M
(p_new = M p_old: the whole scene, objects included, is seen from a moved camera; an object's
final transform is M T).

File format (README "Transform files")::

    {"frames": [
        {"matrix": [[...], [...], [...], [0, 0, 0, 1]]},
        {"translation": [x, y, z], "rotation_axis": [x, y, z], "rotation_angle": 30,
         "scale": 1.2, "pivot": "centroid" | [x, y, z], "frame": 12},
        {"objects": [{"matrix": T1}, {"translation": [...]}, ...], "frame": 13},
        {"camera": M},
        {"objects": [...], "camera": M},
        {"objects": [{}, {"visible": false}], "copies": [{"of": 1, "matrix": T}], "frame": 14},
        ...
    ]}

A frame with a single object's keys at the top level edits object 1 (the others stay); an
``objects`` list gives one entry per object in mask order (``{}`` = identity); ``camera`` is a
matrix or an entry of the same keys (its default pivot is the centroid of all objects).
``"visible": false`` on an object's entry takes the object out of that frame (its place is filled
as background). ``copies`` adds instances: ``{"of": N, ...}`` is one more instance of object N
(1-based, mask order) moved from object N's rest pose by the entry's transform (same keys as an
object's, default pivot object N's centroid; ``"visible"`` too); the original stays as its own
entry says. Per-object results are numbered objects first, then copies.

Axis/angle frames: T = Translate(t) . Pivot(c) . Rotate(axis, angle in degrees) . Scale(s) . Pivot(-c),
i.e. rotation and scale happen about the pivot c (default: the object's 3D centroid), then the
translation is added. Every key is optional (identity); ``frame`` is the Blender frame number the
matrix belongs to (kept by `load_keyframes`).

The reference data's form ``{"edit_000": {"translation", "rotation_axis", "rotation_angle"}, ...}``
is also accepted (keys in natural order). With ``convention="pytorch3d"`` every vector and matrix
is given in the PyTorch3D camera frame (+X left, +Y up, +Z forward) and converted with
S = diag(-1, 1, -1, 1): T_cam = S T_p3d S (S is its own inverse).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

CONVENTIONS = ("camera", "pytorch3d")

# Two edits are the same edit when their matrices agree to this many decimals (a micrometre, a
# microradian: far below a pixel, above the float rounding of matrices composed from the same
# poses, e.g. Blender's float32 keys through B^-1 M M_rest^-1 B). The one rule behind
# `FrameEdit.key`, `FrameEdit.is_identity` and `same_matrix`, used by every path that skips,
# reuses or groups frames and moves.
EDIT_DECIMALS = 6


def _rounded(M) -> np.ndarray:
    return np.round(np.asarray(M, np.float64), EDIT_DECIMALS) + 0.0  # + 0.0: no -0.0


def same_matrix(a, b) -> bool:
    """Two transforms are the same move (to `EDIT_DECIMALS`)."""
    return np.array_equal(_rounded(a), _rounded(b))
_S = np.diag([-1.0, 1.0, -1.0, 1.0])
# JSON matrices often come from float32 (Blender): allow that much rounding in the checks.
_ORTHO_TOL = 1e-4
_FRAME_KEYS = {"matrix", "translation", "rotation_axis", "rotation_angle", "scale", "pivot", "frame"}
_EDIT_KEYS = {"objects", "camera", "copies", "frame"}
_COPY_KEYS = _FRAME_KEYS - {"frame"} | {"of", "visible"}


@dataclass(frozen=True, eq=False)
class Copy:
    """One more instance of object ``of`` (0-based, mask order): ``matrix`` a 4x4 float64
    camera-frame transform of that object's rest surface (p' = T p); ``visible`` False leaves it
    out of the frame."""

    of: int
    matrix: np.ndarray
    visible: bool = True

    def to_dict(self) -> dict:
        out = {"of": self.of + 1, "matrix": np.asarray(self.matrix).tolist()}
        if not self.visible:
            out["visible"] = False
        return out


@dataclass(frozen=True, eq=False)
class FrameEdit:
    """One frame's edit: ``objects`` a tuple of 4x4 float64 camera-frame transforms (p' = T p), one
    per object in mask order (identity = the object stays); ``camera`` None or a 4x4 float64 M
    mapping points of the photo's camera frame to the new camera's (p_new = M p_old)."""

    objects: tuple
    camera: np.ndarray | None = None
    # one bool per object (missing at the end: True); False takes the object out of the frame
    visible: tuple = ()
    copies: tuple = ()  # Copy entries, after the objects in every per-part result

    @classmethod
    def of(cls, value, n_objects=1, name="transform") -> "FrameEdit":
        """A FrameEdit from a FrameEdit or a bare 4x4 matrix (object 1 moves, no camera move),
        checked against ``n_objects``; objects missing at the end stay (identity, visible)."""
        if isinstance(value, FrameEdit):
            edit = value
        else:
            edit = cls((validate_transform(value, name),))
        if len(edit.objects) > n_objects:
            raise InputError(f"{name}: moves {len(edit.objects)} objects, the photo has {n_objects}")
        if len(edit.visible) > n_objects:
            raise InputError(f"{name}: 'visible' for {len(edit.visible)} objects, the photo has {n_objects}")
        objects = tuple(validate_transform(T, f"{name} object {n + 1}") for n, T in enumerate(edit.objects))
        objects += (np.eye(4),) * (n_objects - len(objects))
        visible = tuple(bool(v) for v in edit.visible) + (True,) * (n_objects - len(edit.visible))
        copies = []
        for j, c in enumerate(edit.copies, start=1):
            of = int(c.of)
            if not 0 <= of < n_objects:
                raise InputError(f"{name} copy {j}: a copy of object {of + 1}, the photo has "
                                 f"{n_objects} object{'s' if n_objects != 1 else ''}")
            copies.append(Copy(of, validate_transform(c.matrix, f"{name} copy {j}"), bool(c.visible)))
        camera = None if edit.camera is None else validate_transform(edit.camera, f"{name} camera")
        return cls(objects, camera, visible if not all(visible) else (), tuple(copies))

    @property
    def n_parts(self) -> int:
        """Objects and copies: the number of per-part results of this frame."""
        return len(self.objects) + len(self.copies)

    def shown(self) -> tuple:
        """One bool per part (objects in mask order, then copies): False where the frame removes it."""
        vis = tuple(self.visible) + (True,) * (len(self.objects) - len(self.visible))
        return vis + tuple(c.visible for c in self.copies)

    def part_sources(self) -> tuple:
        """The 0-based object each part (objects, then copies) is an instance of."""
        return tuple(range(len(self.objects))) + tuple(c.of for c in self.copies)

    def part_transforms(self) -> list:
        """The final camera-frame transform of every part, objects then copies (M T)."""
        mats = list(self.objects) + [c.matrix for c in self.copies]
        return mats if self.camera is None else [self.camera @ T for T in mats]

    @property
    def moves_camera(self) -> bool:
        return self.camera is not None and not np.allclose(self.camera, np.eye(4), atol=1e-12)

    def object_transforms(self) -> list:
        """The final camera-frame transform of each object: M T (the camera move applied last)."""
        if self.camera is None:
            return list(self.objects)
        return [self.camera @ T for T in self.objects]

    @property
    def matrix(self) -> np.ndarray:
        """The single object's transform (one object, no camera move); InputError otherwise."""
        if len(self.objects) != 1 or self.moves_camera or self.copies or not all(self.shown()):
            raise InputError("transform: this frame moves several objects or the camera, copies or "
                             "removes an object; a single 4x4 matrix cannot describe it")
        return self.objects[0]

    def __array__(self, dtype=None, copy=None):  # np.asarray(edit) for single-object callers
        m = self.matrix
        return m.astype(dtype) if dtype is not None else m.copy()

    def is_identity(self) -> bool:
        """Nothing moves: every object stays and the camera does not move (to `EDIT_DECIMALS`),
        nothing is copied or removed."""
        eye = np.eye(4)
        return (all(same_matrix(T, eye) for T in self.objects)
                and (self.camera is None or same_matrix(self.camera, eye))
                and not self.copies and all(self.shown()))

    def key(self) -> str:
        """The identity of this edit (SHA-256 of its file form, matrices to `EDIT_DECIMALS`):
        equal keys give equal frames. Frame reuse, resumable manifests and the add-on's frame
        cache all compare edits by this key."""
        import hashlib

        def rounded(value):
            if isinstance(value, dict):
                return {k: rounded(v) for k, v in value.items()}
            if isinstance(value, list):
                return [rounded(v) for v in value]
            return float(_rounded(value)) if isinstance(value, float) else value

        text = json.dumps(rounded(self.to_dict()), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def to_dict(self) -> dict:
        """The frame in the file format (keys that change nothing left out, so an edit without
        copies or removals has the same dict, and the same key, as before they existed)."""
        shown = self.shown()
        out = {"objects": [{"matrix": T.tolist(), **({} if shown[n] else {"visible": False})}
                           for n, T in enumerate(self.objects)]}
        if self.camera is not None:
            out["camera"] = self.camera.tolist()
        if self.copies:
            out["copies"] = [c.to_dict() for c in self.copies]
        return out


def first_occurrences(keys) -> list:
    """For each position of ``keys``, the index of the first position with an equal key.

    The one rule for frames with equal edits (equal `FrameEdit.key`, or a key built on it): the
    first such frame is computed and every later one is that frame's result, never computed again.
    `Engine.iter_edit`, the add-on's stop-motion loop and its frame renderer all apply it through
    this function (or `distinct`)."""
    first = {}
    return [first.setdefault(key, n) for n, key in enumerate(keys)]


def distinct(keys) -> list:
    """The indices of the frames `first_occurrences` computes (the first of each key), in order."""
    return [n for n, f in enumerate(first_occurrences(keys)) if f == n]


def validate_transform(T, name="transform") -> np.ndarray:
    """Check a 4x4 edit matrix and return it as float64.

    Rejects: wrong shape, NaN/inf, a projective last row (not [0, 0, 0, 1]), a singular or
    mirroring linear part, and shear / non-uniform scale (the linear part must be s * R).
    """
    try:
        M = np.asarray(T, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: not a 4x4 matrix of numbers") from None
    if M.shape != (4, 4):
        raise InputError(f"{name}: expected a 4x4 matrix, got shape {M.shape}")
    if not np.all(np.isfinite(M)):
        raise InputError(f"{name}: contains NaN or inf")
    if not np.allclose(M[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise InputError(f"{name}: last row is {M[3].tolist()}, expected [0, 0, 0, 1] "
                         "(projective matrices are not 3D edits)")
    A = M[:3, :3]
    det = float(np.linalg.det(A))
    norm = float(np.abs(A).max())
    if norm == 0 or abs(det) < 1e-9 * norm ** 3:
        raise InputError(f"{name}: singular (determinant {det:.3g}); a scale of 0 collapses the object")
    if det < 0:
        raise InputError(f"{name}: mirrors the object (negative determinant); only rotation, "
                         "translation and uniform scale are allowed")
    s = det ** (1.0 / 3.0)
    gram = A.T @ A / (s * s)
    err = float(np.abs(gram - np.eye(3)).max())
    if err > _ORTHO_TOL:
        scales = np.sqrt(np.linalg.eigvalsh(A.T @ A))
        raise InputError(f"{name}: has shear or non-uniform scale (axis scales "
                         f"{', '.join(f'{x:.4g}' for x in scales)}); only uniform scale is allowed")
    M[3] = [0.0, 0.0, 0.0, 1.0]
    return M


def rotation_matrix(axis, angle_deg) -> np.ndarray:
    """3x3 rotation by ``angle_deg`` degrees about ``axis`` (right-handed, Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64)
    n = np.linalg.norm(a)
    a = a / n
    t = math.radians(angle_deg)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(t) * K + (1 - math.cos(t)) * (K @ K)


def _vector(value, key, name):
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: '{key}' must be 3 numbers, got {value!r}") from None
    if v.shape != (3,):
        raise InputError(f"{name}: '{key}' must be 3 numbers, got {value!r}")
    if not np.all(np.isfinite(v)):
        raise InputError(f"{name}: '{key}' contains NaN or inf")
    return v


def _number(value, key, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name}: '{key}' must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InputError(f"{name}: '{key}' is NaN or inf")
    return float(value)


def frame_to_matrix(frame, centroid=None, convention="camera", name="frame") -> np.ndarray:
    """One frame dict (see module docstring) -> validated 4x4 camera-frame matrix.

    ``centroid`` (3,) is the object's centroid in the CAMERA frame; it is the default pivot and is
    required when the frame rotates or scales without an explicit pivot.
    """
    if convention not in CONVENTIONS:
        raise InputError(f"transform convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    if not isinstance(frame, dict):
        raise InputError(f"{name}: expected an object with 'matrix' or 'translation'/'rotation_*', "
                         f"got {type(frame).__name__}")
    unknown = set(frame) - _FRAME_KEYS
    if unknown:
        raise InputError(f"{name}: unknown key(s) {', '.join(sorted(unknown))}; "
                         f"expected {', '.join(sorted(_FRAME_KEYS))}")
    if "matrix" in frame:
        other = set(frame) & (_FRAME_KEYS - {"matrix", "frame"})
        if other:
            raise InputError(f"{name}: give either 'matrix' or {', '.join(sorted(other))}, not both")
        M = validate_transform(frame["matrix"], name)
        return validate_transform(_S @ M @ _S, name) if convention == "pytorch3d" else M

    t = _vector(frame.get("translation", [0, 0, 0]), "translation", name)
    angle = _number(frame.get("rotation_angle", 0.0), "rotation_angle", name)
    axis = None
    if "rotation_axis" in frame:
        axis = _vector(frame["rotation_axis"], "rotation_axis", name)
        if np.linalg.norm(axis) == 0 and angle != 0:
            raise InputError(f"{name}: 'rotation_axis' is the zero vector")
    elif angle != 0:
        raise InputError(f"{name}: 'rotation_angle' given without 'rotation_axis'")
    s = _number(frame.get("scale", 1.0), "scale", name)
    if s <= 0:
        raise InputError(f"{name}: 'scale' must be > 0, got {s}")

    R = rotation_matrix(axis, angle) if (axis is not None and angle != 0) else np.eye(3)
    if convention == "pytorch3d":
        # Conjugating by S maps a p3d-frame rotation/translation to the camera frame.
        S3 = _S[:3, :3]
        R = S3 @ R @ S3
        t = S3 @ t
    pivot = frame.get("pivot", "centroid")
    needs_pivot = angle != 0 or s != 1.0
    if isinstance(pivot, str):
        if pivot != "centroid":
            raise InputError(f"{name}: 'pivot' must be \"centroid\" or 3 numbers, got {pivot!r}")
        if centroid is None:
            if needs_pivot:
                raise InputError(f"{name}: rotating or scaling about the centroid needs the object's "
                                 "centroid (give depth and mask, or an explicit 'pivot')")
            c = np.zeros(3)
        else:
            c = np.asarray(centroid, dtype=np.float64).reshape(3)
    else:
        c = _vector(pivot, "pivot", name)
        if convention == "pytorch3d":
            c = _S[:3, :3] @ c
    M = np.eye(4)
    M[:3, :3] = s * R
    M[:3, 3] = c - s * R @ c + t
    return validate_transform(M, name)


def _natural_key(key: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def _frame_dicts(obj, name):
    """The list of frame dicts of a parsed transform file (either accepted layout)."""
    if isinstance(obj, dict) and "frames" in obj:
        frames = obj["frames"]
        if not isinstance(frames, list):
            raise InputError(f"{name}: 'frames' must be a list")
        return [(f"{name} frame {k + 1}", f) for k, f in enumerate(frames)]
    if isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values()):
        # The reference data's layout: {"edit_000": {...}, "edit_001": {...}}.
        return [(f"{name} '{k}'", obj[k]) for k in sorted(obj, key=_natural_key)]
    if isinstance(obj, list):
        return [(f"{name} frame {k + 1}", f) for k, f in enumerate(obj)]
    raise InputError(f"{name}: expected {{\"frames\": [...]}} or {{\"edit_000\": {{...}}, ...}}")


def _centroids(centroid):
    """None, one (3,) centroid or one per object -> list of (3,) arrays or None."""
    if centroid is None:
        return None
    c = np.asarray(centroid, dtype=np.float64)
    return [c.reshape(3)] if c.size == 3 else [x for x in c.reshape(-1, 3)]


def frame_to_edit(frame, centroid=None, convention="camera", name="frame") -> FrameEdit:
    """One frame dict (see module docstring) -> FrameEdit. ``centroid``: the objects' camera-frame
    centroids, one (3,) or one per object (the default pivots)."""
    cents = _centroids(centroid)
    if not isinstance(frame, dict) or not (set(frame) & {"objects", "camera", "copies"}):
        c = None if cents is None else cents[0]
        if isinstance(frame, dict) and "visible" in frame:
            visible = _visible(frame, name)
            frame = {k: v for k, v in frame.items() if k != "visible"}
            return FrameEdit((frame_to_matrix(frame, c, convention, name),), visible=(visible,))
        return FrameEdit((frame_to_matrix(frame, c, convention, name),))
    unknown = set(frame) - _EDIT_KEYS
    if unknown:
        raise InputError(f"{name}: unknown key(s) {', '.join(sorted(unknown))} next to 'objects'/'camera'; "
                         f"expected {', '.join(sorted(_EDIT_KEYS))}")
    objects = frame.get("objects", [])
    if not isinstance(objects, list):
        raise InputError(f"{name}: 'objects' must be a list with one entry per object")
    if cents is not None and len(objects) > len(cents):
        raise InputError(f"{name}: moves {len(objects)} objects, the photo has {len(cents)}")
    visible = tuple(_visible(o, f"{name} object {n + 1}") for n, o in enumerate(objects))
    mats = tuple(frame_to_matrix(_without(o, "visible"), None if cents is None else cents[n], convention,
                                 f"{name} object {n + 1}")
                 for n, o in enumerate(objects))
    copies = _copies(frame.get("copies", []), cents, convention, name)
    camera = None
    if "camera" in frame:
        cam = frame["camera"]
        pivot = None if cents is None else np.mean(cents, axis=0)
        camera = frame_to_matrix(cam if isinstance(cam, dict) else {"matrix": cam}, pivot, convention,
                                 f"{name} camera")
    if not mats:
        mats = (np.eye(4),)
    return FrameEdit(mats, camera, visible if not all(visible) else (), copies)


def _without(entry, key):
    return {k: v for k, v in entry.items() if k != key} if isinstance(entry, dict) else entry


def _visible(entry, name) -> bool:
    """An entry's ``visible`` flag (default True); only true / false are accepted."""
    if not isinstance(entry, dict) or "visible" not in entry:
        return True
    value = entry["visible"]
    if not isinstance(value, bool):
        raise InputError(f"{name}: 'visible' must be true or false, got {value!r}")
    return value


def _copies(entries, cents, convention, name) -> tuple:
    """The ``copies`` list of a frame -> Copy tuple (``of`` checked against the photo's objects
    when their centroids are known; `FrameEdit.of` checks it in any case)."""
    if not isinstance(entries, list):
        raise InputError(f"{name}: 'copies' must be a list of {{\"of\": N, ...}} entries")
    out = []
    for j, entry in enumerate(entries, start=1):
        label = f"{name} copy {j}"
        if not isinstance(entry, dict):
            raise InputError(f"{label}: expected an object with 'of' and a transform, got {type(entry).__name__}")
        unknown = set(entry) - _COPY_KEYS
        if unknown:
            raise InputError(f"{label}: unknown key(s) {', '.join(sorted(unknown))}; "
                             f"expected {', '.join(sorted(_COPY_KEYS))}")
        of = entry.get("of")
        if isinstance(of, bool) or not isinstance(of, int):
            raise InputError(f"{label}: 'of' must be the number of the object it copies (1 = the first), "
                             f"got {of!r}")
        n = len(cents) if cents is not None else None
        if of < 1:
            raise InputError(f"{label}: 'of' must be 1 or more (objects count from 1), got {of}")
        if n is not None and of > n:
            raise InputError(f"{label}: a copy of object {of}, the photo has {n} object{'s' if n != 1 else ''}")
        visible = _visible(entry, label)
        T = frame_to_matrix({k: v for k, v in entry.items() if k not in ("of", "visible")},
                            None if cents is None else cents[of - 1], convention, label)
        out.append(Copy(of - 1, T, visible))
    return tuple(out)


def parse_keyframes(obj, convention="camera", centroid=None, name="transforms"):
    """Parsed JSON -> list of (frame number or None, FrameEdit)."""
    if convention not in CONVENTIONS:
        raise InputError(f"transform convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    items = _frame_dicts(obj, name)
    if not items:
        raise InputError(f"{name}: contains no frames")
    out = []
    for label, frame in items:
        edit = frame_to_edit(frame, centroid, convention, label)
        number = frame.get("frame")
        if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
            raise InputError(f"{label}: 'frame' must be an integer frame number, got {number!r}")
        out.append((number, edit))
    return out


def parse_transforms(obj, convention="camera", centroid=None, name="transforms"):
    """Parsed JSON -> list of FrameEdit."""
    return [e for _, e in parse_keyframes(obj, convention, centroid, name)]


def _read_json(path):
    path = Path(path)
    name = f"transforms '{path}'"
    if not path.is_file():
        raise InputError(f"{name}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
        # parse_constant rejects the non-standard NaN / Infinity tokens Python's json accepts.
        return json.loads(text, parse_constant=lambda c: float("nan")), name
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{name}: not valid JSON ({exc})") from None


def load_keyframes(path, convention="camera", centroid=None):
    """Read a transform file -> list of (frame number or None, FrameEdit)."""
    obj, name = _read_json(path)
    return parse_keyframes(obj, convention, centroid, name)


def load_transforms(path, convention="camera", centroid=None):
    """Read a transform file -> list of FrameEdit (see module docstring)."""
    obj, name = _read_json(path)
    return parse_transforms(obj, convention, centroid, name)


def object_centroid(depth, mask, camera=None) -> np.ndarray:
    """Mean camera-frame 3D point (3,) float64 of the object pixels lifted with ``depth``; with
    masks (N, H, W), one centroid per object (N, 3)."""
    from .camera import Camera

    depth = np.asarray(depth, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if depth.shape != mask.shape[-2:]:
        raise InputError(f"mask: size {mask.shape[::-1]} does not match depth {depth.shape[::-1]} (WxH)")
    if not mask.any():
        raise InputError("mask: is empty (no pixel selected)")
    camera = camera or Camera(*depth.shape)
    points = camera.lift(depth)
    if mask.ndim == 3:
        for n, m in enumerate(mask):
            if not m.any():
                raise InputError(f"mask {n + 1}: is empty (no pixel selected)")
        return np.stack([points[m].mean(axis=0) for m in mask])
    return points[mask].mean(axis=0)
