"""``python -m engine prepare``: invert a photo into the depth-to-image model and write the
per-photo cache (PREP_DIR/prepared.safetensors + prepared.json) that ``engine edit`` reads."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..errors import InputError

HELP = "invert a photo (image, prompt, depth, object mask) and write its prepared cache"

log = logging.getLogger(__name__)

# Models used to complete a photo's inputs (estimated depth, object by text, removal).
PERCEPTION_ROLES = ("depth", "detector", "sam", "inpaint")


def add_input_arguments(p, required=True) -> None:
    g = p.add_argument_group("photo")
    g.add_argument("--image", required=required, help="the photo (PNG/JPEG, any size)")
    g.add_argument("--prompt", required=required, help="a caption of the photo")
    g.add_argument("--depth", help="z-depth in metres (.exr, .npy, or 16-bit .png in millimetres)")
    g.add_argument("--depth-png-scale", type=float, default=None, help="metres per unit of a PNG depth")
    g.add_argument("--mask", action="append", help="object mask (white = object); repeat for several "
                   "objects (their order is the order of a transform file's 'objects')")
    g.add_argument("--object", metavar="TEXT", action="append",
                   help="find the object by a text query instead of --mask (Grounding DINO + SAM; "
                   "candidate masks are written to the output directory); repeat for several objects")
    g.add_argument("--candidate", type=int, action="append", default=None, metavar="N",
                   help="with --object: use candidate N (0 = best; see candidates.json); one per --object")
    g.add_argument("--removal", choices=("fill", "diffusers"), default="fill",
                   help="object removal backend for the background (default: fill, no download)")
    g.add_argument("--background-depth", help="depth of the scene without the object (optional)")


def add_model_arguments(p) -> None:
    from ..devices import DEVICE_CHOICES, DTYPE_CHOICES
    from ..settings import INVERSIONS

    g = p.add_argument_group("model and settings")
    g.add_argument("--models", metavar="DIR", help="models directory laid out as DIR/<role>/")
    g.add_argument("--diffusion-model", metavar="ID_OR_DIR", help="override the diffusion model")
    g.add_argument("--steps", type=int, help="DDIM steps (default 50; guided steps scale with it)")
    g.add_argument("--guided-steps", type=int, help="guided steps (default 38 of 50)")
    g.add_argument("--inversion", choices=INVERSIONS, help="inversion method (default null-text)")
    g.add_argument("--resolution", type=int, help="longer side of the working image (default: the model's native size, 512 for SD2-depth)")
    g.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    g.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto")
    g.add_argument("--seed", type=int, help="seed (default 2773)")
    g.add_argument("--frame-batch-size", type=int, help="frames sampled together (default 4)")
    g.add_argument("--settings", metavar="JSON", help="a JSON file of EditSettings fields")
    from .models import add_model_override_arguments

    add_model_override_arguments(g, PERCEPTION_ROLES)


def add_arguments(p) -> None:
    add_input_arguments(p)
    p.add_argument("--out", required=True, metavar="PREP_DIR", help="directory for the prepared cache")
    add_model_arguments(p)


def settings_from_args(args):
    from ..settings import EditSettings

    data = {}
    if getattr(args, "settings", None):
        try:
            data = json.loads(Path(args.settings).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"settings {args.settings!r}: {exc}") from None
    s = EditSettings.from_dict(data) if data else EditSettings()
    changes = {k: getattr(args, k) for k in ("steps", "guided_steps", "inversion", "resolution", "seed",
                                             "frame_batch_size") if getattr(args, k, None) is not None}
    if "steps" in changes and "guided_steps" not in changes:
        # keep the release's proportion (38 of 50) when only the step count is given
        changes["guided_steps"] = round(changes["steps"] * s.guided_steps / s.steps)
    return s.replace(**changes)


def engine_from_args(args):
    from ..pipeline import Engine

    overrides = {"diffusion": args.diffusion_model} if getattr(args, "diffusion_model", None) else None
    return Engine(models_dir=args.models, model_overrides=overrides, device=args.device,
                  dtype=args.dtype, settings=settings_from_args(args))


def load_prepare_inputs(args, candidates_dir=None) -> dict:
    """All of prepare's photo inputs from the command line, checked: the one place that turns
    --image/--prompt/--depth/--mask/--object into arrays. Without --depth, or with --object, the
    perception models complete them (estimated depth, object found by text, object removed for
    the background depth); the candidate masks of --object are written to ``candidates_dir``."""
    from .. import io

    if not args.image or args.prompt is None:
        raise InputError("give --image and --prompt (or --prepared PREP_DIR)")
    mask_files = _listed(args.mask)
    queries = _listed(getattr(args, "object", None))
    picks = _listed(getattr(args, "candidate", None))
    if mask_files and queries:
        raise InputError("give either --mask or --object, not both")
    if not mask_files and not queries:
        raise InputError("--mask or --object: say which object to edit (a mask file, white = object, "
                         "or a text query such as 'the car')")
    if picks and not queries:
        raise InputError("--candidate: only meaningful with --object")
    if len(picks) > len(queries):
        raise InputError(f"--candidate: given {len(picks)} times for {len(queries)} --object queries")
    image = io.load_image(args.image)
    shape = image.shape[:2]
    depth = io.load_depth(args.depth, png_scale=args.depth_png_scale, expected_shape=shape) if args.depth else None
    masks = [io.load_mask(f, expected_shape=shape) for f in mask_files]
    background = None
    if getattr(args, "background_depth", None):
        background = io.load_depth(args.background_depth, png_scale=args.depth_png_scale, expected_shape=shape)
    if depth is None or queries:
        from ..perception.inputs import resolve_inputs, write_candidates
        from .models import overrides_from_args

        several = max(len(masks), len(queries)) > 1
        found_masks = []
        for n in range(max(len(masks), len(queries))):
            query = queries[n] if queries else None
            found = resolve_inputs(image, depth=depth, mask=masks[n] if masks else None, object_query=query,
                                   candidate=picks[n] if n < len(picks) else None, models_dir=args.models,
                                   overrides=overrides_from_args(args, PERCEPTION_ROLES), device=args.device,
                                   removal=getattr(args, "removal", "fill"))
            if found.candidates and candidates_dir is not None:
                where = Path(candidates_dir) / f"object_{n + 1}" if several else Path(candidates_dir)
                write_candidates(found.candidates, where, found.chosen)
                print(f"{len(found.candidates)} candidate(s) for {query!r}; using candidate {found.chosen} "
                      f"(see {where / 'candidates.json'})")
            depth = found.depth  # estimated once, then shared by the other objects
            found_masks.append(found.mask)
            if background is None and not several:
                background = found.background_depth  # several objects: the lifted scene completes it
        masks = found_masks
    import numpy as np

    mask = masks[0] if len(masks) == 1 else np.stack(masks)
    return dict(image=image, prompt=args.prompt, depth=depth, object_mask=mask, background_depth=background)


def _listed(value) -> list:
    """An argparse value that may be given once (a scalar, from other callers) or repeated (a list)."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def progress_printer(verbose: bool):
    last = {}

    def progress(stage, step, total):
        if verbose and (step == total or time.monotonic() - last.get(stage, 0) > 2):
            last[stage] = time.monotonic()
            log.info("%s %d/%d", stage, step, total)

    return progress


def run(args) -> int:
    inputs = load_prepare_inputs(args, candidates_dir=args.out)
    engine = engine_from_args(args)
    prepared = engine.prepare(**inputs, cache_dir=args.out,
                              progress=progress_printer(getattr(args, "verbose", False)))
    r = prepared.report
    print(f"prepared {args.image} -> {args.out} ({prepared.size[1]}x{prepared.size[0]}, "
          f"{r.get('unet_forward', 0)} UNet forwards, {r.get('total_seconds', 0):.1f} s)")
    return 0
