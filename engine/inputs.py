"""The one input boundary: a photo's inputs from files, checked, completed by perception.

`load_photo` reads the user's files (image, prompt, optional depth / mask / background depth)
and checks them with engine.checks, loading no model; `complete` fills what is missing (depth
estimated, object found by a text query, background depth) with the perception models. The
command line, the add-on, batch.py and the evaluation go through these two, so a photo's
inputs are read, checked and recorded once; the interior trusts the `PhotoInputs` types.

A completed photo's inputs also have a folder format of their own (the add-on's per-photo
cache): `save_photo_folder` writes it, `load_photo_folder` reads it back with the same checks.

    image.png  depth.npy  mask.png  background.png  background_depth.npy  photo.json
    masks.npy               (N, H, W) bool, one mask per object, with several objects
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checks
from .errors import InputError


@dataclass
class PhotoInputs:
    """image float32 (H, W, 3) in [0, 1]; depth float32 (H, W) metres or None (to estimate);
    mask bool (H, W) or (N, H, W), or None (found with ``object_queries``); background_depth or None;
    background_image: with one object completed by perception, the photo without it, else None;
    ``paths``: the files they came from (input name -> path), so outputs never overwrite them;
    ``notes``: where each input came from, for reports."""

    image: np.ndarray
    prompt: str
    depth: np.ndarray | None = None
    mask: np.ndarray | None = None  # (H, W), or (N, H, W) for several objects
    background_depth: np.ndarray | None = None
    object_queries: list = field(default_factory=list)  # text queries, one per object
    picks: list = field(default_factory=list)  # chosen candidate per query (missing: the best)
    paths: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    candidates: list = field(default_factory=list)  # the ranked candidates of each query
    chosen: list = field(default_factory=list)
    background_image: np.ndarray | None = None  # one object completed by perception: the photo without it
    labels: dict = field(default_factory=lambda: CLI_LABELS, repr=False)  # how the caller names the inputs
    # clicked points: (x, y) photo pixels on the object / outside it (SAM's point prompt, one object)
    points: list = field(default_factory=list)
    points_out: list = field(default_factory=list)

    @property
    def shape(self) -> tuple:
        return tuple(self.image.shape[:2])

    @property
    def object_query(self) -> str | None:
        return self.object_queries[0] if self.object_queries else None

    @property
    def union_mask(self) -> np.ndarray | None:
        return None if self.mask is None else (self.mask if self.mask.ndim == 2 else self.mask.any(0))

    @property
    def masks(self) -> np.ndarray | None:
        """(N, H, W) bool, one mask per object in order (N = 1 for a single (H, W) mask)."""
        return None if self.mask is None else (self.mask[None] if self.mask.ndim == 2 else self.mask)

    @property
    def camera(self):
        """The engine's camera model of the photo at its own size."""
        from .camera import Camera

        return Camera(*self.shape)

    @functools.cached_property
    def scene(self):
        """The photo lifted to 3D at its own size (`engine.lifted.LiftedScene`), built on first use
        and kept: `engine preview` and the add-on's preview frames and render passes all draw from
        this one. A photo whose depth or masks change is a new PhotoInputs (`dataclasses.replace`,
        as Pick Object makes one), which lifts its own."""
        self.require_complete()
        from .lifted import LiftedScene

        return LiftedScene.build(self.depth, self.masks, self.background_depth, self.camera)

    @property
    def complete_without_models(self) -> bool:
        return self.depth is not None and self.mask is not None

    def require_complete(self) -> None:
        """Refuse a photo whose depth or mask is still to be found (`complete` first)."""
        if not self.complete_without_models:
            raise InputError("photo inputs: depth or mask still missing (run engine.inputs.complete first)")

    def prepare_arguments(self, prompt: str | None = None) -> dict:
        """Keyword arguments of `Engine.prepare`; ``prompt``: instead of the photo's own (a caller
        whose prompt is set after the import, as the add-on's)."""
        self.require_complete()
        return dict(image=self.image, prompt=self.prompt if prompt is None else prompt, depth=self.depth,
                    object_mask=self.mask, background_depth=self.background_depth)


def _listed(value) -> list:
    """An option given once (a scalar) or repeated (a list); None or "" = not given."""
    if value is None or value == "":
        return []
    return [v for v in value if v not in (None, "")] if isinstance(value, (list, tuple)) else [value]


# How the command line names each input (its options); a caller with other names passes its own.
CLI_LABELS = {"image": "--image", "prompt": "prompt", "depth": "--depth", "mask": "--mask",
              "object_query": "--object", "candidate": "--candidate", "background_depth": "--background-depth",
              "depth_png_scale": "--depth-png-scale",
              "point": "--point", "point_out": "--point-out"}


def _named(labels, key, read, *args, **kwargs):
    """``read(*args, **kwargs)``; with a caller's own ``labels``, its errors (a file not found, not
    readable, the wrong size, ...) start with the caller's name of the input."""
    try:
        return read(*args, **kwargs)
    except InputError as exc:
        if labels is CLI_LABELS:
            raise
        raise InputError(f"{labels[key]}: {exc}") from exc


def load_photo(image, prompt, depth=None, mask=None, object_query=None, candidate=None,
               background_depth=None, depth_png_scale=None, require_prompt=True, labels=None,
               points=None, points_out=None) -> PhotoInputs:
    """Read and check a photo's input files (paths; None / "" = not given). No model is loaded.

    ``mask`` (a file, white = object) or ``object_query`` (text) says which object to edit; either
    may be a list, one per object (several masks: a pixel in two belongs to the first). ``candidate``
    (int or list, one per query) only goes with queries. Depth files are z-depth in metres (.exr,
    .npy, or 16-bit .png with ``depth_png_scale`` metres per unit). ``labels``: how the caller names
    each input in its messages (keys of `CLI_LABELS`; default: the command-line options); the
    labels are kept on the photo for `complete`'s messages. ``points`` / ``points_out``: clicked
    points ("X,Y" or (x, y) photo pixels) on the object and outside it, instead of a mask or a
    query: SAM's point prompt gives the object's mask (in `complete`). A depth or mask at another
    size than the photo, with its aspect ratio, is brought to the photo's size
    (`engine.checks.resampled_size`; ``notes["resized"]`` says so in one line); another aspect
    ratio is refused."""
    from . import io
    from .images import depth_to_photo, resize_nearest

    L = CLI_LABELS if labels is None else {**CLI_LABELS, **labels}
    masks, queries, picks = _listed(mask), _listed(object_query), _listed(candidate)
    clicks, clicks_out = _listed(points), _listed(points_out)
    if not image:
        raise InputError(f"{L['image']}: the photo is required")
    prompt = checks.text(prompt if prompt is not None else "", L["prompt"], allow_empty=not require_prompt)
    if (clicks or clicks_out) and (masks or queries):
        raise InputError(f"give {L['point']} points, {L['mask']} or {L['object_query']}, not several of them")
    if masks and queries:
        raise InputError(f"give either {L['mask']} or {L['object_query']}, not both")
    if not masks and not queries and not (clicks or clicks_out):
        raise InputError(f"{L['mask']} or {L['object_query']}: say which object to edit (a mask file, "
                         "white = object, or a text query such as 'the car')")
    for q in queries:
        checks.text(q, L["object_query"])
    if picks and not queries:
        raise InputError(f"{L['candidate']}: only meaningful with {L['object_query']}")
    if len(picks) > len(queries):
        raise InputError(f"{L['candidate']}: given {len(picks)} times for {len(queries)} {L['object_query']} queries")
    for c in picks:
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0:
            raise InputError(f"{L['candidate']}: expected a candidate number 0, 1, ..., got {c!r}")
    img = _named(L, "image", io.load_image, image)
    shape = img.shape[:2]
    paths = {"image": str(image)}
    photo = PhotoInputs(image=img, prompt=prompt, object_queries=list(queries), picks=[int(c) for c in picks],
                        paths=paths, labels=L)
    if clicks or clicks_out:  # checked against the photo now, segmented by SAM in `complete`
        from .perception.segment import point_prompt

        coords, flags = point_prompt(clicks, clicks_out, *shape, L["point"], L["point_out"])
        photo.points = [tuple(c) for c, f in zip(coords.tolist(), flags) if f]
        photo.points_out = [tuple(c) for c, f in zip(coords.tolist(), flags) if not f]
    turned = io.exif_orientation(image) in (5, 6, 7, 8)

    def read(key, reader, *args, **kwargs):
        """`_named`, and a size mismatch with a photo its EXIF orientation turned says so."""
        try:
            return _named(L, key, reader, *args, **kwargs)
        except InputError as exc:
            if not (turned and "does not match" in str(exc)):
                raise
            raise InputError(f"{exc}; the photo {L['image']} '{image}' is turned upright by its EXIF "
                             f"orientation ({shape[1]}x{shape[0]}): make masks and depth on the upright "
                             f"view") from None

    resized = []  # what was brought to the photo's size, for the one line that says so

    def to_photo(what, arr, mask=False):
        """A depth or mask of the photo's aspect ratio at another size, at the photo's size
        (engine.checks.resampled_size: the rule; masks by nearest, depth guided by the photo)."""
        if not checks.resampled_size(arr.shape, shape, what):
            return arr
        how = "nearest" if mask or arr.shape[0] > shape[0] else "guided by the photo's edges"
        resized.append(f"{what} from {arr.shape[1]}x{arr.shape[0]} ({how})")
        if mask:
            return checks.mask(resize_nearest(arr, shape), what)
        return depth_to_photo(arr, img)

    def load_depth(path, **kwargs):
        return to_photo(f"depth '{path}'", io.load_depth(path, **kwargs))

    def load_mask(path):
        return to_photo(f"mask '{path}'", io.load_mask(path), mask=True)

    if depth:
        photo.depth = read("depth", load_depth, depth, png_scale=depth_png_scale, scale_label=L["depth_png_scale"])
        paths["depth"] = str(depth)
        photo.notes["depth"] = "given"
    if masks:
        loaded = [read("mask", load_mask, m) for m in masks]
        photo.mask = loaded[0] if len(loaded) == 1 else _named(L, "mask", checks.disjoint_masks, loaded)
        if photo.union_mask.all():
            raise InputError(f"{L['mask']}: the objects cover the whole image; some background must be left")
        paths.update({f"mask {n + 1}" if len(masks) > 1 else "mask": str(m) for n, m in enumerate(masks)})
        photo.notes["mask"] = "given"
    if background_depth:
        photo.background_depth = read("background_depth", load_depth, background_depth,
                                      png_scale=depth_png_scale, scale_label=L["depth_png_scale"])
        paths["background_depth"] = str(background_depth)
    if resized:
        photo.notes["resized"] = f"resized to the photo's {shape[1]}x{shape[0]}: {', '.join(resized)}"
    return photo


def complete(photo: PhotoInputs, models_dir=None, overrides=None, device="auto", removal="fill",
             candidates_dir=None, background=False) -> PhotoInputs:
    """Fill a photo's missing inputs with the perception models (engine.perception.inputs):
    estimated depth, the mask of the chosen candidate of each text query (several objects: a
    pixel in two belongs to the first), and with one object its background image and depth. The
    candidate masks of a query are written to ``candidates_dir`` (``object_<n>/`` below it when
    there are several objects). ``background``: the background image and depth are always
    there afterwards (`fill_background` where perception gave none)."""
    if photo.complete_without_models and not photo.object_queries:
        return fill_background(photo) if background else photo
    from .perception.inputs import CandidateError, resolve_inputs, write_candidates

    L = photo.labels
    segment_points(photo, models_dir=models_dir, overrides=overrides, device=device)
    given = [] if photo.mask is None else ([photo.mask] if photo.mask.ndim == 2 else list(photo.mask))
    count = max(len(given), len(photo.object_queries))
    several = count > 1
    found_masks = []
    for n in range(count):
        query = photo.object_queries[n] if photo.object_queries else None
        try:
            found = resolve_inputs(photo.image, depth=photo.depth, mask=given[n] if given else None,
                                   object_query=query, candidate=photo.picks[n] if n < len(photo.picks) else None,
                                   models_dir=models_dir, overrides=overrides, device=device, removal=removal)
        except CandidateError as exc:  # named as the caller names the candidate
            if L is CLI_LABELS:
                raise
            raise InputError(f"{L['candidate']}: {exc}") from exc
        if found.candidates and candidates_dir is not None:
            write_candidates(found.candidates, Path(candidates_dir) / f"object_{n + 1}" if several
                             else candidates_dir, found.chosen)
        photo.depth = found.depth  # estimated once, then shared by the other objects
        found_masks.append(found.mask)
        if not several:  # several: the engine completes the background depth
            if photo.background_depth is None:
                photo.background_depth = found.background_depth
            photo.background_image = found.background_image
        photo.candidates.append(found.candidates)
        photo.chosen.append(found.chosen)
        photo.notes.update(found.notes)
    photo.mask = found_masks[0] if len(found_masks) == 1 else checks.disjoint_masks(found_masks)
    if photo.points:
        photo.notes["mask"] = (f"SAM from {len(photo.points)} point(s) on the object and "
                               f"{len(photo.points_out)} outside it")
    return fill_background(photo) if background else photo


def segment_points(photo: PhotoInputs, models_dir=None, overrides=None, device="auto") -> PhotoInputs:
    """The clicked object's mask (SAM's point prompt) as the photo's mask, where it has clicked
    points and no mask yet: `complete` and `engine preview` (no other perception) both use it."""
    if photo.points and photo.mask is None:
        from .perception.segment import mask_from_points

        L = photo.labels
        photo.mask = mask_from_points(photo.image, photo.points, photo.points_out, models_dir=models_dir,
                                      overrides=overrides, device=device)
        if photo.mask.all():
            raise InputError(f"{L['point']}: SAM's mask covers the whole photo; click closer to the object's "
                             f"middle or add {L['point_out']} points outside it")
    return photo


def fill_background(photo: PhotoInputs, refill: bool = False) -> PhotoInputs:
    """Give a completed photo a background image and depth without models where it has none
    (several objects, or depth and masks given): engine.perception.removal.fill_background with
    every object removed. A given background depth is kept; ``refill``: both made again (the
    objects changed). For a caller that shows the background (the add-on's Background mesh);
    an edit completes the background depth itself."""
    photo.require_complete()
    if refill or photo.background_image is None or photo.background_depth is None:
        from .perception.removal import fill_background as fill

        image, depth = fill(photo.image, photo.depth, photo.union_mask)
        if refill or photo.background_image is None:
            photo.background_image = image
            photo.notes["background"] = "filled without models"
        if refill or photo.background_depth is None:
            photo.background_depth = depth
    return photo


# The photo folder's files (a stored format: existing folders keep loading under these names).
PHOTO_FILES = {"image": "image.png", "depth": "depth.npy", "mask": "mask.png",
               "background_image": "background.png", "background_depth": "background_depth.npy"}
MASKS_FILE = "masks.npy"  # several objects only; mask.png is then their union
INFO_FILE = "photo.json"  # the caller's record of where the inputs came from


def save_photo_folder(directory, photo: PhotoInputs, info: dict | None = None) -> None:
    """Write a completed photo (depth, masks and background known) into ``directory``, each file
    atomically: the image and background as PNG, the depths as float32 .npy, the objects' union
    as mask.png and with several objects their masks as masks.npy; ``info`` as photo.json
    (None: photo.json left as it is)."""
    from . import io

    if not photo.complete_without_models or photo.background_image is None or photo.background_depth is None:
        raise InputError("photo inputs: depth, mask or background still missing (engine.inputs.complete "
                         "with background=True first)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    def save_npy(name, array):
        with io.atomic_output(directory / name) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array)

    io.save_image(directory / PHOTO_FILES["image"], photo.image)
    io.save_image(directory / PHOTO_FILES["background_image"], photo.background_image)
    save_npy(PHOTO_FILES["depth"], np.asarray(photo.depth, np.float32))
    save_npy(PHOTO_FILES["background_depth"], np.asarray(photo.background_depth, np.float32))
    if photo.mask.ndim == 3:
        save_npy(MASKS_FILE, np.asarray(photo.mask, bool))
    else:  # one object: a masks.npy of an earlier import must not outlive it
        (directory / MASKS_FILE).unlink(missing_ok=True)
    io.save_mask(directory / PHOTO_FILES["mask"], photo.union_mask)
    if info is not None:
        with io.atomic_output(directory / INFO_FILE) as tmp:
            Path(tmp).write_text(json.dumps(info, indent=1, sort_keys=True), encoding="utf-8")


def load_photo_folder(directory) -> PhotoInputs:
    """Read back what `save_photo_folder` wrote, checked as `load_photo` checks a user's files
    (readable, sizes, depth values, masks disjoint and matching their union). Anything missing
    or damaged: one InputError naming the folder. The prompt is "" (the caller keeps its own)."""
    from . import io

    directory = Path(directory)
    missing = [name for name in PHOTO_FILES.values() if not (directory / name).is_file()]
    if missing:
        what = "does not exist" if not directory.is_dir() else f"is missing {', '.join(missing)}"
        raise InputError(f"photo folder '{directory}' {what}")

    def read(name, reader, *args, **kwargs):
        try:
            return reader(directory / name, *args, **kwargs)
        except InputError as exc:
            raise InputError(f"photo folder '{directory}': {exc}") from None

    image = read(PHOTO_FILES["image"], io.load_image)
    shape = image.shape[:2]
    union = read(PHOTO_FILES["mask"], io.load_mask, expected_shape=shape)
    mask = union
    if (directory / MASKS_FILE).is_file():
        mask = read(MASKS_FILE, io.load_masks, expected_shape=shape)
        if (mask.sum(0) > 1).any() or not np.array_equal(mask.any(0), union):
            raise InputError(f"photo folder '{directory}': {MASKS_FILE} does not match {PHOTO_FILES['mask']} "
                             "(overlapping masks, or the two written by different imports)")
    background_image = read(PHOTO_FILES["background_image"], io.load_image)
    if background_image.shape[:2] != shape:
        raise InputError(f"photo folder '{directory}': {PHOTO_FILES['background_image']} is "
                         f"{background_image.shape[1]}x{background_image.shape[0]}, the photo "
                         f"{shape[1]}x{shape[0]}")
    return PhotoInputs(
        image=image, prompt="", mask=mask, background_image=background_image,
        depth=read(PHOTO_FILES["depth"], io.load_depth, expected_shape=shape),
        background_depth=read(PHOTO_FILES["background_depth"], io.load_depth, expected_shape=shape),
        paths={key: str(directory / name) for key, name in PHOTO_FILES.items()},
        notes={"inputs": f"photo folder '{directory}'"})


def photo_folder_info(directory) -> dict:
    """The photo folder's photo.json (where its inputs came from), {} without one."""
    path = Path(directory) / INFO_FILE
    if not path.exists():
        return {}
    info = checks.json_file(path, "photo info")
    if not isinstance(info, dict):
        raise InputError(f"photo folder '{directory}': {INFO_FILE} is not a JSON object")
    return info


def input_files(photo_or_paths) -> list:
    """The input file paths of a photo (for output-overwrite checks)."""
    paths = photo_or_paths.paths if isinstance(photo_or_paths, PhotoInputs) else photo_or_paths
    return [str(Path(p)) for p in paths.values() if p]


def check_visible(photo: PhotoInputs, edits, what: str = "transform") -> list:
    """Refuse a trajectory none of whose frames shows any object (out of view, hidden, too small:
    `LiftedScene.hidden_frames`), before any model runs: the lifted scene of the photo at a small
    size (the camera model does not depend on the size). A frame that shows none renders without
    them. Returns the 1-based numbers of those frames."""
    from .camera import Camera
    from .images import nearest_index
    from .lifted import LiftedScene
    from .transforms import FrameEdit

    H, W = photo.shape
    f = min(1.0, 96.0 / max(H, W))
    h, w = max(8, round(H * f)), max(8, round(W * f))
    ys, xs = nearest_index(h, H), nearest_index(w, W)
    small = np.stack([m[np.ix_(ys, xs)] for m in photo.masks])
    if not all(m.any() for m in small) or small.any(0).all():
        return []  # too small to judge at this size; the engine checks at the working size
    bg = None if photo.background_depth is None else photo.background_depth[np.ix_(ys, xs)]
    scene = LiftedScene.build(photo.depth[np.ix_(ys, xs)], small, bg, Camera(h, w))
    return scene.hidden_frames([FrameEdit.of(e, len(small), f"{what} {k}") for k, e in enumerate(edits, start=1)],
                               f"{what}s")
