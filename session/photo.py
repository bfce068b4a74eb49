"""Import Photo's inputs and the photo's cache folder, as the add-on uses the engine's.

No bpy here: this runs in worker threads. A photo is the engine's `engine.inputs.PhotoInputs`
from import to frame: read and checked by `engine.inputs.load_photo`, completed (background
included) by `engine.inputs.complete`, written to and read back from its cache folder by
`engine.inputs.save_photo_folder` / `load_photo_folder`. The folder holds the inputs exactly as
imported, so a saved .blend renders later without the original files or the perception models;
the engine's prepared photos go beside them (``prepared-<key>/``, session/store.py). What stays
here is the add-on's own: its field names, the folder's name and key, its messages.
"""
from __future__ import annotations

import hashlib
import os

from .errors import AddonError


def split_list(text):
    """'a; b' -> ['a', 'b']: several masks or queries in one text field (';' between them)."""
    return [part.strip() for part in (text or "").split(";") if part.strip()]


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


def load_cache(directory):
    """The photo's inputs (`engine.inputs.PhotoInputs`) read back from its cache folder by the
    engine; a missing or damaged folder is an AddonError saying to import the photo again."""
    from ..engine.errors import InputError
    from ..engine.inputs import load_photo_folder

    try:
        return load_photo_folder(directory)
    except InputError as exc:
        raise AddonError(f"{exc}; import the photo again (its cache folder was moved, deleted or "
                         "damaged)") from exc


def default_cache_root():
    return os.path.join(os.path.expanduser("~"), ".cache", "diffusion-handles", "photos")


def needed_modules(depth_path, mask_path):
    """The Python packages an import needs: few with depth and masks given, else the perception's too."""
    from . import deps

    return ("numpy", "PIL", "scipy") if (depth_path and mask_path) else tuple(deps.MODULES)


def import_inputs(root, stem, image_path, depth_path, mask_path, query, candidate, options, progress, photo=None):
    """Worker thread: a photo's inputs resolved (files, perception where not given, the
    background always) and written to its cache folder under ``root``; ``photo``: the files
    already read by `load_inputs`. Returns (the `PhotoInputs`, cache folder, seconds taken).

    mask_path / query: one or several (';' between them), one object each, in order."""
    import time

    from ..engine.inputs import complete, save_photo_folder

    started = time.perf_counter()
    progress("reading inputs", 0, 3)
    directory = os.path.join(root, f"{stem}-{cache_key(image_path, depth_path, mask_path, query, candidate)}")
    photo = photo if photo is not None else load_inputs(image_path, depth_path, mask_path, query, candidate)
    complete(photo, models_dir=options["models_dir"], overrides=options["overrides"], device=options["device"],
             background=True)
    progress("writing the photo cache", 1, 3)
    save_photo_folder(directory, photo, {"image": image_path, "depth": depth_path, "mask": mask_path,
                                         "object_query": query, "candidate": candidate})
    return photo, directory, time.perf_counter() - started


def import_note(photo, query):
    """What an import report adds about several objects and a query's other candidates ('' or '; ...')."""
    note = ""
    candidates = photo.candidates[0] if len(photo.object_queries) == 1 and photo.candidates else ()
    if len(candidates) > 1:
        note = f"; {len(candidates)} candidates for '{query}' (Candidate picks another)"
    count = len(photo.masks)
    if count > 1:
        note = f"; {count} objects, each moved and keyed on its own" + note
    if "resized" in photo.notes:  # a depth or mask at the photo's aspect ratio, another size
        note += f"; {photo.notes['resized']}"
    return note
