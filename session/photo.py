"""A photo's inputs (image, depth, object masks, background) and its per-photo cache folder.

No bpy here: this runs in worker threads. The cache folder holds the inputs exactly as imported,
so a saved .blend renders later without the original files or the perception models:

    <cache>/image.png  depth.npy  mask.png  background.png  background_depth.npy  photo.json
    <cache>/masks.npy           (N, H, W) bool, one mask per object, with several objects
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


MASKS_FILE = "masks.npy"  # several objects only; mask.png is then their union


def split_list(text):
    """'a; b' -> ['a', 'b']: several masks or queries in one text field (';' between them)."""
    return [part.strip() for part in (text or "").split(";") if part.strip()]


@dataclass
class ImportedPhoto:
    """A photo as the add-on imported and caches it (made from the engine's `engine.inputs.PhotoInputs`):
    float (H, W, 3) image in [0, 1], float32 (H, W) z-depth (m), bool (H, W) mask (the union
    of the objects), the background with the objects removed (image and depth, same shapes), and
    with several objects their disjoint masks (N, H, W) in order (a pixel in two goes to the first)."""

    image: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    background_image: np.ndarray
    background_depth: np.ndarray
    candidates: tuple = ()  # the object candidates of a text query (perception.detect.Candidate)
    object_masks: np.ndarray | None = None  # (N, H, W) bool with several objects; None: just ``mask``

    @property
    def masks(self):
        """(N, H, W) bool, one mask per object in order (N = 1 for a one-object photo)."""
        return self.mask[None] if self.object_masks is None else self.object_masks

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


# How Import Photo names its inputs (its properties' labels), for the engine's messages.
LABELS = {"image": "Photo", "prompt": "Prompt", "depth": "Depth File", "mask": "Mask File",
          "object_query": "Object", "candidate": "Candidate", "depth_png_scale": ""}  # no scale field: PNG in mm


def load_inputs(image_path, depth_path="", mask_path="", object_query="", candidate=0):
    """Import Photo's fields read and checked by the engine's input boundary (engine.inputs.load_photo,
    no model loaded): an engine PhotoInputs, or InputError naming the field. ``candidate`` applies
    to every query."""
    from ..engine.inputs import load_photo

    queries = split_list(object_query)
    return load_photo(image_path, "", depth=depth_path, mask=split_list(mask_path), object_query=queries,
                      candidate=[candidate] * len(queries), require_prompt=False, labels=LABELS)


def imported_photo(image_path, depth_path="", mask_path="", object_query="", candidate=0,
                   models_dir=None, overrides=None, device="auto", photo=None) -> ImportedPhoto:
    """The photo's inputs for the add-on: read and checked (`load_inputs`, or ``photo`` already
    loaded by it), completed by perception where not given (engine.inputs.complete), plus the
    background (image and depth) the Background mesh shows.

    mask_path / object_query: one or several (';' between them), one object each, in order.
    """
    from ..engine.inputs import complete

    photo = photo if photo is not None else load_inputs(image_path, depth_path, mask_path, object_query, candidate)
    complete(photo, models_dir=models_dir, overrides=overrides, device=device)
    union = photo.union_mask
    if photo.background_image is not None and photo.background_depth is not None:
        background_image, background_depth = photo.background_image, photo.background_depth  # one object, perceived
    else:
        background_image, background_depth = fill_background(photo.image, photo.depth, union)
    candidates = tuple(photo.candidates[0]) if len(photo.object_queries) == 1 else ()
    return ImportedPhoto(np.asarray(photo.image, np.float32), np.asarray(photo.depth, np.float32), union,
                       np.asarray(background_image, np.float32), np.asarray(background_depth, np.float32),
                       candidates, photo.mask if photo.mask.ndim == 3 else None)


def cache_key(image_path, depth_path="", mask_path="", object_query="", candidate=0):
    """Content hash of everything that decides a photo's inputs (12 hex digits)."""
    from ..engine.output import file_digest

    digest = hashlib.sha1()
    for path in (image_path, depth_path, *(split_list(mask_path) or [""])):
        digest.update(b"|")
        if path:
            digest.update(file_digest(path).encode())
    digest.update(f"|{object_query.strip().lower()}|{candidate}".encode())
    return digest.hexdigest()[:12]


def write_cache(directory, inputs: ImportedPhoto, info: dict):
    """Write the inputs into ``directory`` (each file atomically) with ``photo.json``."""
    from ..engine import io

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    io.save_image(directory / FILES["image"], inputs.image)
    io.save_image(directory / FILES["background_image"], inputs.background_image)
    io.save_mask(directory / FILES["mask"], inputs.mask)
    if inputs.object_masks is not None:
        with io.atomic_output(directory / MASKS_FILE) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(inputs.object_masks, bool))
    else:
        (directory / MASKS_FILE).unlink(missing_ok=True)
    for name in ("depth", "background_depth"):
        with io.atomic_output(directory / FILES[name]) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(getattr(inputs, name), dtype=np.float32))
    with io.atomic_output(directory / "photo.json") as tmp:
        Path(tmp).write_text(json.dumps(info, indent=1, sort_keys=True))


def load_cache(directory) -> ImportedPhoto:
    """Read a photo's inputs back from its cache folder (clear errors when it is gone)."""
    from ..engine import io

    directory = Path(directory)
    missing = [name for name in FILES.values() if not (directory / name).is_file()]
    if missing:
        raise AddonError(f"photo cache '{directory}' is missing {', '.join(missing)}: "
                         "import the photo again (the cache folder was moved or deleted)")
    image = io.load_image(directory / FILES["image"])
    shape = image.shape[:2]
    object_masks = None
    if (directory / MASKS_FILE).is_file():
        object_masks = np.load(directory / MASKS_FILE).astype(bool)
        if object_masks.ndim != 3 or object_masks.shape[1:] != shape:
            raise AddonError(f"photo cache '{directory}': {MASKS_FILE} does not match the photo: import it again")
    return ImportedPhoto(
        image=image,
        depth=io.load_depth(directory / FILES["depth"], expected_shape=shape),
        mask=io.load_mask(directory / FILES["mask"], expected_shape=shape),
        background_image=io.load_image(directory / FILES["background_image"]),
        background_depth=io.load_depth(directory / FILES["background_depth"], expected_shape=shape),
        object_masks=object_masks,
    )


def default_cache_root():
    return os.path.join(os.path.expanduser("~"), ".cache", "diffusion-handles", "photos")


def needed_modules(depth_path, mask_path):
    """The Python packages an import needs: few with depth and masks given, else the perception's too."""
    from . import deps

    return ("numpy", "PIL", "scipy") if (depth_path and mask_path) else tuple(deps.MODULES)


def import_inputs(root, stem, image_path, depth_path, mask_path, query, candidate, options, progress, photo=None):
    """Worker thread: a photo's inputs resolved (files, perception where not given) and written to
    its cache folder under ``root``; ``photo``: the files already read by `load_inputs`. Returns
    (inputs, cache folder, seconds taken)."""
    import time

    started = time.perf_counter()
    progress("reading inputs", 0, 3)
    directory = os.path.join(root, f"{stem}-{cache_key(image_path, depth_path, mask_path, query, candidate)}")
    inputs = imported_photo(image_path, depth_path, mask_path, query, candidate,
                            models_dir=options["models_dir"], overrides=options["overrides"],
                            device=options["device"], photo=photo)
    progress("writing the photo cache", 1, 3)
    write_cache(directory, inputs, {"image": image_path, "depth": depth_path, "mask": mask_path,
                                    "object_query": query, "candidate": candidate})
    return inputs, directory, time.perf_counter() - started


def import_note(inputs, query):
    """What an import report adds about several objects and a query's other candidates ('' or '; ...')."""
    note = ""
    if len(inputs.candidates) > 1:
        note = f"; {len(inputs.candidates)} candidates for '{query}' (Candidate picks another)"
    count = len(inputs.masks)
    if count > 1:
        note = f"; {count} objects, each moved and keyed on its own" + note
    return note
