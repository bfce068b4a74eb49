"""The per-photo cache: everything an edit needs from ``Engine.prepare``, on disk.

A prepared photo is a directory with two files:

- ``prepared.safetensors``: the tensors (working-resolution image, depth, object mask, optional
  background depth, prompt embedding, per-step null embeddings, inverted noise, input and
  reconstruction latents, reconstruction image, and the reference activations
  ``ref/<step>/<layer>``: only the guided layers of the guided steps, half precision by default);
- ``prepared.json``: metadata (format version, the content key, the SHA-256 of the tensor file,
  prompt, model id and revision, settings and the preset they came from, sizes, each object's
  camera-frame centroid at the photo's size, the prepare report) and ``integrity``: a
  SHA-256 over the rest of the JSON (canonical form) and the tensor file's hash, so a
  hand-edited prompt, setting or key is caught like a modified tensor file.

The content key is a SHA-256 over the inputs (image, depth, mask, background depth, prompt), the
model id and revision, and the settings that change what prepare computes. Loading checks the
format, the integrity of the JSON, the tensor file's hash and (when the caller gives one) the
key: a corrupt, tampered or mismatched cache raises ``InputError`` and is never trusted
(``Engine.prepare`` then rebuilds it). Both files are written under temporary names and
renamed, the JSON last, with the same normal permissions (0666 less the umask).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .errors import InputError

FORMAT = "diffusion-handles-prepared"
VERSION = 3  # 2: prepared.json carries its own integrity hash; 3: the objects' centroids and the preset
TENSORS = "prepared.safetensors"
META = "prepared.json"


def content_key(image, depth, object_mask, background_depth, prompt, model_id, revision,
                prepare_settings: dict) -> str:
    h = hashlib.sha256()
    h.update(f"{FORMAT}/{VERSION}\n".encode())
    for name, a in (("image", image), ("depth", depth), ("mask", object_mask),
                    ("background_depth", background_depth)):
        h.update(name.encode())
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)  # the array's own buffer: no copy of a full-size photo
    h.update(json.dumps({"prompt": prompt, "model_id": model_id, "revision": revision,
                         "settings": prepare_settings}, sort_keys=True).encode())
    return h.hexdigest()


def _sha256_file(path: Path) -> str:
    from .output import file_digest

    return file_digest(path)


def _integrity(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "integrity"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _os_error(exc, path):
    """safetensors' error for a failed write -> the OSError it wraps ("... (os error 28)")."""
    import errno
    import re

    m = re.search(r"os error (\d+)", str(exc))
    if m is None:
        return exc
    code = int(m.group(1))
    import os

    return OSError(code, os.strerror(code) if code in errno.errorcode else str(exc), str(path))


def save(directory, tensors: dict, meta: dict) -> None:
    """Write ``tensors`` (name -> torch tensor) and ``meta`` (JSON-able) atomically into directory."""
    from safetensors.torch import save_file

    from .output import atomic_output, clean_temporaries

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    clean_temporaries(d)  # what a killed earlier save left behind
    with atomic_output(d / TENSORS) as tmp:
        try:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - safetensors reports the OS error as its own type
            raise _os_error(exc, d / TENSORS) from None
        digest = _sha256_file(tmp)
    meta = dict(meta, format=FORMAT, version=VERSION, tensors_sha256=digest)
    meta["integrity"] = _integrity(meta)
    with atomic_output(d / META) as tmp:
        tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))


def load(directory, expected_key: str | None = None):
    """(tensors, meta) from a prepared directory; InputError if missing, corrupt or mismatched."""
    from safetensors.torch import load_file

    d = Path(directory)
    what = f"prepared cache {str(d)!r}"
    if not (d / META).is_file() or not (d / TENSORS).is_file():
        raise InputError(f"{what}: not a prepared photo (expected {META} and {TENSORS}; "
                         f"make one with `python -m engine prepare`)")
    from . import checks

    meta = checks.json_file(d / META, f"{what}: {META}")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{what}: {META} is not a prepared-photo description")
    if meta.get("version") != VERSION:
        raise InputError(f"{what}: format version {meta.get('version')} (this engine reads {VERSION}); "
                         f"prepare the photo again")
    if meta.get("integrity") != _integrity(meta):
        raise InputError(f"{what}: {META} does not match its integrity hash (edited by hand or "
                         f"corrupt); prepare the photo again")
    if _sha256_file(d / TENSORS) != meta.get("tensors_sha256"):
        raise InputError(f"{what}: {TENSORS} does not match its checksum (corrupt or modified); "
                         f"prepare the photo again")
    _check_meta_types(meta, what)
    if expected_key is not None and meta.get("key") != expected_key:
        raise InputError(f"{what}: made from other inputs, model or settings (key mismatch)")
    try:
        tensors = load_file(str(d / TENSORS))
    except Exception as exc:  # safetensors raises its own error types on bad headers
        raise InputError(f"{what}: {TENSORS} is unreadable ({exc})") from None
    return tensors, meta


# The fields of prepared.json and their JSON types (a hand-edited file with another type is refused).
META_TYPES = {"key": str, "prompt": str, "model_id": str, "revision": str, "settings": dict,
              "original_size": list, "size": list, "report": dict, "centroids": list}


def _check_meta_types(meta: dict, what: str) -> None:
    for name, kind in META_TYPES.items():
        if not isinstance(meta.get(name), kind):
            raise InputError(f"{what}: {META} field {name!r} is missing or not a {kind.__name__}; "
                             f"prepare the photo again")
    preset = meta.get("preset")
    if preset is not None and not isinstance(preset, str):
        raise InputError(f"{what}: {META} field 'preset' must be a preset name or null, got {preset!r}")
    c = meta["centroids"]
    if not c or not all(isinstance(p, list) and len(p) == 3 and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in p) for p in c):
        raise InputError(f"{what}: {META} field 'centroids' must be one [x, y, z] per object")
    for name in ("original_size", "size"):
        v = meta[name]
        if len(v) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v):
            raise InputError(f"{what}: {META} field {name!r} must be two positive integers, got {v!r}")


PREPARE_CLAIM = ".dh-prepare.claim"


class _Preparing:
    """Context manager of `preparing`."""

    def __init__(self, directory, should_cancel=None, poll: float = 0.5):
        self.directory, self.should_cancel, self.poll = Path(directory), should_cancel, poll
        self.made = False

    def __enter__(self):
        import time

        from .errors import CancelledError
        from .output import try_claim

        self.made = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / PREPARE_CLAIM
        while not try_claim(self.path, what=f"preparing {self.directory}"):
            if self.should_cancel is not None and self.should_cancel():
                self._tidy()
                raise CancelledError("cancelled while another process prepares this photo")
            time.sleep(self.poll)  # another process (a farm node) prepares it: use its result
        return self.path

    def __exit__(self, *exc):
        from .output import release_claim

        release_claim(self.path)
        self._tidy()
        return False

    def _tidy(self):
        if self.made:  # a folder this call made and nothing was saved in: not left behind
            try:
                self.directory.rmdir()
            except OSError:
                pass


def preparing(directory, should_cancel=None):
    """Hold the claim to prepare the photo cached in ``directory`` (created if missing): one
    process prepares a cache at a time; another waits (polling ``should_cancel``) and then finds
    the cache made, so two farm nodes never invert the same photo into the same folder."""
    return _Preparing(directory, should_cancel)
