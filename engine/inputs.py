"""The one input boundary: a photo's inputs from files, checked, completed by perception.

`load_photo` reads the user's files (image, prompt, optional depth / mask / background depth)
and checks them with engine.checks, loading no model; `complete` fills what is missing (depth
estimated, object found by a text query, background depth) with the perception models. The
command line, the add-on, batch.py and the evaluation go through these two, so a photo's
inputs are read, checked and recorded once; the interior trusts the `PhotoInputs` types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checks
from .errors import InputError


@dataclass
class PhotoInputs:
    """image float32 (H, W, 3) in [0, 1]; depth float32 (H, W) metres or None (to estimate);
    mask bool (H, W) or None (to find with ``object_query``); background_depth float32 or None;
    ``paths``: the files they came from (input name -> path), so outputs never overwrite them;
    ``notes``: where each input came from, for reports."""

    image: np.ndarray
    prompt: str
    depth: np.ndarray | None = None
    mask: np.ndarray | None = None
    background_depth: np.ndarray | None = None
    object_query: str | None = None
    candidate: int | None = None
    paths: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    candidates: list = field(default_factory=list)
    chosen: int | None = None

    @property
    def shape(self) -> tuple:
        return tuple(self.image.shape[:2])

    @property
    def complete_without_models(self) -> bool:
        return self.depth is not None and self.mask is not None

    def prepare_arguments(self) -> dict:
        """Keyword arguments of `Engine.prepare`."""
        if not self.complete_without_models:
            raise InputError("photo inputs: depth or mask still missing (run engine.inputs.complete first)")
        return dict(image=self.image, prompt=self.prompt, depth=self.depth, object_mask=self.mask,
                    background_depth=self.background_depth)


def load_photo(image, prompt, depth=None, mask=None, object_query=None, candidate=None,
               background_depth=None, depth_png_scale=None, require_prompt=True) -> PhotoInputs:
    """Read and check a photo's input files (paths; None / "" = not given). No model is loaded.

    Exactly one of ``mask`` (a file, white = object) and ``object_query`` (text) says which
    object to edit; ``candidate`` only goes with a query. Depth files are z-depth in metres
    (.exr, .npy, or 16-bit .png with ``depth_png_scale`` metres per unit)."""
    from . import io

    mask = mask or None
    object_query = object_query if object_query not in (None, "") else None
    if not image:
        raise InputError("--image: the photo is required")
    prompt = checks.text(prompt if prompt is not None else "", "prompt", allow_empty=not require_prompt)
    if mask and object_query:
        raise InputError("give either --mask or --object, not both")
    if not mask and not object_query:
        raise InputError("--mask or --object: say which object to edit (a mask file, white = object, "
                         "or a text query such as 'the car')")
    if object_query is not None:
        checks.text(object_query, "--object")
    if candidate is not None:
        if object_query is None:
            raise InputError("--candidate: only meaningful with --object")
        if isinstance(candidate, bool) or not isinstance(candidate, (int, np.integer)) or candidate < 0:
            raise InputError(f"--candidate: expected a candidate number 0, 1, ..., got {candidate!r}")
    img = io.load_image(image)
    shape = img.shape[:2]
    paths = {"image": str(image)}
    photo = PhotoInputs(image=img, prompt=prompt, object_query=object_query,
                        candidate=None if candidate is None else int(candidate), paths=paths)
    if depth:
        photo.depth = io.load_depth(depth, png_scale=depth_png_scale, expected_shape=shape)
        paths["depth"] = str(depth)
        photo.notes["depth"] = "given"
    if mask:
        photo.mask = io.load_mask(mask, expected_shape=shape)
        paths["mask"] = str(mask)
        photo.notes["mask"] = "given"
    if background_depth:
        photo.background_depth = io.load_depth(background_depth, png_scale=depth_png_scale, expected_shape=shape)
        paths["background_depth"] = str(background_depth)
    return photo


def complete(photo: PhotoInputs, models_dir=None, overrides=None, device="auto", removal="fill",
             candidates_dir=None) -> PhotoInputs:
    """Fill a photo's missing inputs with the perception models (engine.perception.inputs):
    estimated depth, the mask of the chosen candidate of a text query, background depth. The
    candidate masks of a query are written to ``candidates_dir`` when given."""
    if photo.complete_without_models and photo.object_query is None:
        return photo
    from .perception.inputs import resolve_inputs, write_candidates

    found = resolve_inputs(photo.image, depth=photo.depth, mask=photo.mask, object_query=photo.object_query,
                           candidate=photo.candidate, models_dir=models_dir, overrides=overrides,
                           device=device, removal=removal)
    if found.candidates and candidates_dir is not None:
        write_candidates(found.candidates, candidates_dir, found.chosen)
    photo.depth, photo.mask = found.depth, found.mask
    if photo.background_depth is None:
        photo.background_depth = found.background_depth
    photo.candidates, photo.chosen = found.candidates, found.chosen
    photo.notes.update(found.notes)
    return photo


def input_files(photo_or_paths) -> list:
    """The input file paths of a photo (for output-overwrite checks)."""
    paths = photo_or_paths.paths if isinstance(photo_or_paths, PhotoInputs) else photo_or_paths
    return [str(Path(p)) for p in paths.values() if p]


def check_visible(photo: PhotoInputs, mats, every: bool = True, what: str = "transform") -> list:
    """Refuse a trajectory that moves the object out of view before any model runs: the edit
    geometry on the photo's depth at a small size (the camera model does not depend on the size).
    ``every``: each transform must keep the object visible (an edit), else at least one (keyframes,
    between which the object may pass out of view). Returns the 1-based numbers of hidden frames."""
    from .camera import Camera
    from .geometry import compute_edit_geometry

    H, W = photo.shape
    f = min(1.0, 96.0 / max(H, W))
    h, w = max(8, round(H * f)), max(8, round(W * f))
    ys = np.minimum((np.arange(h) + 0.5) * H / h, H - 1).astype(int)
    xs = np.minimum((np.arange(w) + 0.5) * W / w, W - 1).astype(int)
    depth, mask = photo.depth[np.ix_(ys, xs)], photo.mask[np.ix_(ys, xs)]
    bg = None if photo.background_depth is None else photo.background_depth[np.ix_(ys, xs)]
    if not mask.any() or mask.all():
        return []  # too small to judge at this size; the engine checks at the working size
    hidden = []
    for k, T in enumerate(mats, start=1):
        g = compute_edit_geometry(depth, mask, T, background_depth=bg, camera=Camera(h, w))
        if not (np.asarray(g.target_mask, bool) & np.asarray(g.valid_mask, bool)).any():
            if every:
                raise InputError(f"{what} {k}: moves the object out of view (no pixel of it is visible "
                                 f"after the edit)")
            hidden.append(k)
    if mats and len(hidden) == len(mats):
        raise InputError(f"{what}s: the object is out of view in every one (behind the camera, outside "
                         f"the picture or too far to cover a pixel)")
    return hidden
