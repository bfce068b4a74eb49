"""From a bare photo to the method's inputs (docs/design.md section 4, steps 2 to 4):

1. depth: given (checked) or estimated (metric, :mod:`.depth`);
2. object mask: given (checked), or the chosen candidate for a text query (:mod:`.detect`);
3. background image: the object removed (:mod:`.removal`);
4. background depth: depth estimated on the background image, aligned to the input depth in the
   gradient domain inside the dilated mask (a Poisson solve in log depth with the input depth as
   the boundary condition, :func:`align_background_depth`), or, where no depth model is at hand,
   the input depth completed behind the object by continuing the surrounding surfaces
   (:func:`engine.geometry.fill_background_depth`, engine.completion).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, ModelNotFoundError
from ..images import to_uint8
from .common import check_depth, check_image, check_mask, role_override

log = logging.getLogger(__name__)

BACKGROUND_DEPTH_MODES = ("auto", "estimate", "fill")


@dataclass
class PreparedInputs:
    """depth float32 (H, W) metres; mask bool (H, W); candidates: the ranked
    :class:`~engine.perception.detect.Candidate` list of a text query (empty when a mask was given);
    background_image float32 (H, W, 3) in [0, 1]; background_depth float32 (H, W) metres."""

    depth: np.ndarray
    mask: np.ndarray
    candidates: list
    background_image: np.ndarray
    background_depth: np.ndarray
    chosen: int | None = None  # index into candidates of the mask used
    notes: dict = field(default_factory=dict)  # where each input came from, for reports


def align_background_depth(depth, estimated_background_depth, region) -> np.ndarray:
    """The estimated background depth's shape inside ``region``, fitted to ``depth`` at its edge.

    Solved in log depth: the estimate's log-gradients are kept (so a metric estimate that is off by
    a global scale factor still aligns exactly) and the input depth is the Dirichlet boundary.
    Outside ``region`` the result is ``depth``. Returns float32 (H, W).
    """
    from ..poisson import poisson_blend

    from .. import checks

    depth = np.asarray(depth, np.float64)
    estimate = checks.depth(estimated_background_depth, "background depth", depth.shape).astype(np.float64)
    aligned = np.exp(poisson_blend(np.log(estimate), np.log(depth), np.asarray(region, bool)))
    return aligned.astype(np.float32)


class CandidateError(InputError):
    """The candidate asked for is beyond the ones the query found (a caller may name its field)."""


def resolve_inputs(image, depth=None, mask=None, object_query=None, candidate=None, models_dir=None,
                   overrides=None, device="auto", removal: str = "fill", dilate_px=None,
                   background_depth: str = "auto", max_candidates: int = 5) -> PreparedInputs:
    """Everything ``prepare`` needs from a photo (see the module docstring for the steps).

    image: (H, W, 3) float in [0, 1] or uint8. depth: (H, W) metres or None (estimate).
    mask: bool (H, W), or None with ``object_query`` (text) to find it; ``candidate``: 0-based
    index into the ranked candidates (default 0, the best). overrides: role -> id or directory.
    removal: ``"fill"`` | ``"diffusers"``. background_depth: ``"estimate"`` (depth model on the
    background, aligned), ``"fill"`` (the input depth completed, engine.completion) or ``"auto"`` (estimate
    when a depth model is available, else fill).
    """
    from .detect import select_objects
    from .removal import default_dilate_px, remove_object, removal_region

    # 1. Check inputs
    image = check_image(image)
    shape = image.shape[:2]
    if background_depth not in BACKGROUND_DEPTH_MODES:
        raise InputError(f"background depth mode {background_depth!r}: expected one of "
                         f"{', '.join(BACKGROUND_DEPTH_MODES)}")
    if mask is not None and object_query is not None:
        raise InputError("give either a mask or an object query, not both")
    if mask is None and object_query is None:
        raise InputError("no object: give a mask, or an object query (text such as 'the car')")
    if candidate is not None and object_query is None:
        raise InputError("candidate: only meaningful with an object query")
    if candidate is not None and (isinstance(candidate, bool) or not isinstance(candidate, (int, np.integer))
                                  or candidate < 0):
        raise InputError(f"candidate: expected a candidate number 0, 1, ..., got {candidate!r}")
    notes = {}
    depth_override = role_override(overrides, "depth")

    # 2. Depth
    if depth is not None:
        depth = check_depth(depth, shape)
        notes["depth"] = "given"
    else:
        from .depth import estimate_depth

        depth = estimate_depth(image, depth_override, models_dir, device)
        notes["depth"] = "estimated"

    # 3. Object mask
    candidates, chosen = [], None
    if mask is not None:
        mask = check_mask(mask, shape)
        notes["mask"] = "given"
    else:
        candidates = select_objects(image, object_query, models_dir, overrides, device, max_candidates)
        chosen = 0 if candidate is None else int(candidate)
        if chosen >= len(candidates):
            raise CandidateError(f"candidate {chosen}: only {len(candidates)} candidate(s) found for "
                                 f"{object_query!r} (numbered 0 to {len(candidates) - 1})")
        mask = check_mask(candidates[chosen].mask, shape, f"candidate {chosen} mask")
        notes["mask"] = f"candidate {chosen} of {len(candidates)} for {object_query!r}"

    # 4. Background image
    px = default_dilate_px(*shape) if dilate_px is None else dilate_px
    region = removal_region(mask, px)  # the same dilated region for the image and the depth
    background_image = remove_object(image, mask, backend=removal, dilate_px=px, models_dir=models_dir,
                                     overrides=overrides, device=device)
    notes["background_image"] = f"removal backend {removal!r}"

    # 5. Background depth
    mode = background_depth
    if mode == "auto":
        mode = "estimate" if notes["depth"] == "estimated" or _depth_model_available(depth_override, models_dir) \
            else "fill"
    if mode == "estimate":
        from .depth import estimate_depth

        estimate = estimate_depth(background_image, depth_override, models_dir, device)
        bg_depth = align_background_depth(depth, estimate, region)
        notes["background_depth"] = "estimated on the background image, aligned in the gradient domain"
    else:
        from ..geometry import fill_background_depth

        bg_depth = fill_background_depth(depth, mask, dilate_px=px)
        notes["background_depth"] = "input depth Laplace-filled into the dilated mask (no depth model used)"
        log.info("background depth: %s", notes["background_depth"])
    return PreparedInputs(depth=depth, mask=mask, candidates=candidates, background_image=background_image,
                          background_depth=np.asarray(bg_depth, np.float32), chosen=chosen, notes=notes)


def _depth_model_available(override, models_dir) -> bool:
    from .. import registry

    try:
        registry.resolve("depth", override, models_dir)
        return True
    except ModelNotFoundError:
        return False


def write_candidates(candidates, out_dir, chosen: int | None = None) -> list:
    """Write ``candidate_<i>.png`` (white = object, i from 0 = best) and ``candidates.json``
    (index, score, mask_score, box, label, area, chosen) into ``out_dir``; each file is written
    under a temporary name and renamed, so a failure leaves no half-written file. Returns paths."""
    import json
    import math
    from pathlib import Path

    from PIL import Image

    from ..output import atomic_output, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, rows = [], []
    for i, c in enumerate(candidates):
        path = out / f"candidate_{i}.png"
        with atomic_output(path) as tmp:
            Image.fromarray(to_uint8(np.asarray(c.mask, bool))).save(tmp, format="PNG")
        written.append(path)
        mask_score = getattr(c, "mask_score", float("nan"))
        rows.append({"index": i, "file": path.name, "score": float(c.score),
                     "mask_score": None if math.isnan(mask_score) else float(mask_score),
                     "box": [float(v) for v in c.box], "label": c.label, "area": int(np.count_nonzero(c.mask)),
                     "chosen": chosen == i})
    path = out / "candidates.json"
    write_text(path, json.dumps({"candidates": rows}, indent=2) + "\n")
    written.append(path)
    return written
