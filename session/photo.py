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

import numpy as np

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


# Where the photo's sources can be given again when they are gone (panels/render.py).
POINT_AT_SOURCES = "point the photo at its files or its cache in Render Properties > Diffusion Handles"


def load_or_rebuild(directory, sources, options, n_objects=None):
    """(the photo's inputs, note): its cache folder read back, or, when the folder is missing or
    damaged (a .blend moved without it), made again in place from the photo's stored ``sources``
    (image, depth, mask, object_query, candidate: what Import Photo was given), so the frames and
    keyframes stay as they were; the note is the one line saying so ('' when the cache was there).
    Sources gone too: an AddonError asking for them. ``n_objects``: the photo's objects (a picked
    object has no source: such a photo cannot be rebuilt)."""
    from ..engine.errors import InputError
    from ..engine.inputs import load_photo_folder

    try:
        return load_photo_folder(directory), ""
    except InputError as exc:
        why = str(exc)
    sources = sources or {}
    files = [("photo", sources.get("image", "")), ("depth", sources.get("depth", "")),
             *(("mask", m) for m in split_list(sources.get("mask", "")))]
    gone = [f"{what} '{path}'" for what, path in files if path and not os.path.isfile(path)]
    if not sources.get("image") or gone:
        raise AddonError(f"{why}; its sources are gone too ({', '.join(gone) or 'no photo file recorded'}): "
                         f"{POINT_AT_SOURCES}")
    from . import deps

    deps.require(needed_modules(sources.get("depth", ""), sources.get("mask", "")))
    photo = build_cache(directory, sources["image"], sources.get("depth", ""), sources.get("mask", ""),
                        sources.get("object_query", ""), int(sources.get("candidate", 0)), options)
    if n_objects is not None and len(photo.masks) != n_objects:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)  # not this photo: nothing half-right stays
        raise AddonError(f"{why}; its sources give {len(photo.masks)} object(s), the photo has {n_objects} "
                         f"(picked by clicking): {POINT_AT_SOURCES}")
    return photo, f"photo cache '{directory}' was missing: rebuilt from the photo's sources ('{sources['image']}')"


def unsaved_cache_root():
    """Where a photo's cache waits until the .blend is first saved (then it moves beside it:
    blender/properties.py): a folder of this process in the system's temporary folder, never the
    process's working folder nor the extension's own (an uninstall deletes that)."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"diffusion-handles-unsaved-{os.getpid()}")


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

    started = time.perf_counter()
    progress("reading inputs", 0, 3)
    directory = os.path.join(root, f"{stem}-{cache_key(image_path, depth_path, mask_path, query, candidate)}")
    photo = build_cache(directory, image_path, depth_path, mask_path, query, candidate, options, photo,
                        lambda: progress("writing the photo cache", 1, 3))
    return photo, directory, time.perf_counter() - started


def build_cache(directory, image_path, depth_path, mask_path, query, candidate, options, photo=None,
                writing=None):
    """A photo's inputs completed (perception where not given, the background always) and written
    to the cache folder ``directory``: Import Photo's, and a rebuild's from the same sources."""
    from ..engine.inputs import complete, save_photo_folder

    photo = photo if photo is not None else load_inputs(image_path, depth_path, mask_path, query, candidate)
    candidates = os.path.join(directory, CANDIDATES_DIR)
    complete(photo, models_dir=options["models_dir"], overrides=options["overrides"], device=options["device"],
             background=True, candidates_dir=candidates)
    if writing is not None:
        writing()
    write_candidate_overlays(candidates, photo)
    save_photo_folder(directory, photo, {"image": image_path, "depth": depth_path, "mask": mask_path,
                                         "object_query": query, "candidate": candidate})
    return photo


# A query's candidates in the photo's cache folder: the engine's candidate masks and
# candidates.json (engine.perception.inputs.write_candidates; ``object_<n>/`` below it with several
# queries) and the add-on's overlays, the photo with each candidate lit, for the sidebar.
CANDIDATES_DIR = "candidates"
OVERLAY_SIDE = 256  # the overlays' longer side (a panel thumbnail; any photo size)


def write_candidate_overlays(folder, photo):
    """``overlay_<i>.png`` for each candidate of each query (the photo darkened, the candidate's
    pixels lit and tinted), next to the engine's candidate masks."""
    from ..engine.images import resize_image, resize_nearest
    from ..engine.io import save_image

    several = len(photo.candidates) > 1
    for n, candidates in enumerate(photo.candidates):
        out = os.path.join(folder, f"object_{n + 1}") if several else folder
        if not candidates:
            continue
        height, width = photo.shape
        f = min(1.0, OVERLAY_SIDE / max(height, width))
        size = (max(1, round(height * f)), max(1, round(width * f)))
        image = resize_image(photo.image, size) if size != (height, width) else photo.image
        for i, candidate in enumerate(candidates):
            mask = resize_nearest(np.asarray(candidate.mask, bool), size)
            lit = image * 0.3
            lit[mask] = 0.6 * image[mask] + 0.4 * np.array([1.0, 0.55, 0.1])
            save_image(os.path.join(out, f"overlay_{i}.png"), lit)


def candidate_overlays(directory, n=0, several=False):
    """[(index, overlay file, chosen)] of the query of object ``n`` in the photo's cache folder ``directory``
    (empty: no query, or its candidates are not in the cache)."""
    import json

    folder = os.path.join(directory, CANDIDATES_DIR, f"object_{n + 1}" if several else "")
    try:
        with open(os.path.join(folder, "candidates.json"), encoding="utf-8") as f:
            rows = json.load(f)["candidates"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [(int(r["index"]), os.path.join(folder, f"overlay_{int(r['index'])}.png"), bool(r.get("chosen")))
            for r in rows if os.path.isfile(os.path.join(folder, f"overlay_{int(r['index'])}.png"))]


def import_note(photo, query):
    """What an import report adds about several objects and a query's other candidates ('' or '; ...')."""
    note = ""
    candidates = photo.candidates[0] if len(photo.object_queries) == 1 and photo.candidates else ()
    if len(candidates) > 1:
        note = f"; {len(candidates)} candidates for '{query}' (the sidebar shows them: choose another there)"
    count = len(photo.masks)
    if count > 1:
        note = f"; {count} objects, each moved and keyed on its own" + note
    if "resized" in photo.notes:  # a depth or mask at the photo's aspect ratio, another size
        note += f"; {photo.notes['resized']}"
    return note
