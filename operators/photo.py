"""A photo's inputs (image, depth, object mask, background) and its per-photo cache folder.

No bpy here: this runs in worker threads. The cache folder holds the inputs exactly as imported,
so a saved .blend renders later without the original files or the perception models:

    <cache>/image.png  depth.npy  mask.png  background.png  background_depth.npy  photo.json
    <cache>/prepared-<key>/     the engine's prepared (inverted) photo, once made
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AddonError

FILES = {"image": "image.png", "depth": "depth.npy", "mask": "mask.png",
         "background_image": "background.png", "background_depth": "background_depth.npy"}


@dataclass
class PhotoInputs:
    """Float (H, W, 3) image in [0, 1], float32 (H, W) z-depth (m), bool (H, W) mask, and the
    background with the object removed (image and depth, same shapes)."""

    image: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    background_image: np.ndarray
    background_depth: np.ndarray
    candidates: tuple = ()  # the object candidates of a text query (perception.detect.Candidate)

    @property
    def shape(self):
        return self.depth.shape

    @property
    def camera(self):
        from ..engine.camera import Camera

        return Camera(*self.depth.shape)


def fill_background(image, depth, mask):
    """The photo with the object removed, without models: (background image, background depth),
    harmonic fills of colour and inverse depth inside the dilated mask (engine.perception)."""
    from ..engine.perception.removal import fill_background as fill

    return fill(image, depth, mask)


def resolve_inputs(image_path, depth_path="", mask_path="", object_query="", candidate=0,
                   models_dir=None, overrides=None, device="auto"):
    """Load the given files; estimate depth / find the object with perception where not given."""
    from ..engine.inputs import load_photo

    if not image_path:
        raise AddonError("no photo given: choose an image file")
    if not mask_path and not object_query.strip():
        raise AddonError("name the object to move (object query, e.g. 'the car') or give a mask file")
    query = None if mask_path else object_query.strip()
    photo = load_photo(image_path, "", depth=depth_path, mask=mask_path, object_query=query,
                       candidate=candidate if query else None, require_prompt=False)
    image, depth, mask = photo.image, photo.depth, photo.mask
    if depth is not None and mask is not None:
        background_image, background_depth = fill_background(image, depth, mask)
        return PhotoInputs(image, depth, mask, background_image, background_depth)
    from ..engine.perception.inputs import resolve_inputs as perceive

    prepared = perceive(image, depth=depth, mask=mask, object_query=object_query or None,
                        candidate=candidate, models_dir=models_dir, overrides=overrides, device=device)
    background_image, background_depth = prepared.background_image, prepared.background_depth
    return PhotoInputs(image, np.asarray(prepared.depth, dtype=np.float32), np.asarray(prepared.mask, bool),
                       np.asarray(background_image, dtype=np.float32),
                       np.asarray(background_depth, dtype=np.float32),
                       tuple(getattr(prepared, "candidates", ()) or ()))


def cache_key(image_path, depth_path="", mask_path="", object_query="", candidate=0):
    """Content hash of everything that decides a photo's inputs (12 hex digits)."""
    from ..engine.output import file_digest

    digest = hashlib.sha1()
    for path in (image_path, depth_path, mask_path):
        digest.update(b"|")
        if path:
            digest.update(file_digest(path).encode())
    digest.update(f"|{object_query.strip().lower()}|{candidate}".encode())
    return digest.hexdigest()[:12]


def write_cache(directory, inputs: PhotoInputs, info: dict):
    """Write the inputs into ``directory`` (each file atomically) with ``photo.json``."""
    from ..engine import io

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    io.save_image(directory / FILES["image"], inputs.image)
    io.save_image(directory / FILES["background_image"], inputs.background_image)
    io.save_mask(directory / FILES["mask"], inputs.mask)
    for name in ("depth", "background_depth"):
        with io.atomic_output(directory / FILES[name]) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(getattr(inputs, name), dtype=np.float32))
    with io.atomic_output(directory / "photo.json") as tmp:
        Path(tmp).write_text(json.dumps(info, indent=1, sort_keys=True))


def load_cache(directory) -> PhotoInputs:
    """Read a photo's inputs back from its cache folder (clear errors when it is gone)."""
    from ..engine import io

    directory = Path(directory)
    missing = [name for name in FILES.values() if not (directory / name).is_file()]
    if missing:
        raise AddonError(f"photo cache '{directory}' is missing {', '.join(missing)}: "
                         "import the photo again (the cache folder was moved or deleted)")
    image = io.load_image(directory / FILES["image"])
    shape = image.shape[:2]
    return PhotoInputs(
        image=image,
        depth=io.load_depth(directory / FILES["depth"], expected_shape=shape),
        mask=io.load_mask(directory / FILES["mask"], expected_shape=shape),
        background_image=io.load_image(directory / FILES["background_image"]),
        background_depth=io.load_depth(directory / FILES["background_depth"], expected_shape=shape),
    )


def default_cache_root():
    return os.path.join(os.path.expanduser("~"), ".cache", "diffusion-handles", "photos")
