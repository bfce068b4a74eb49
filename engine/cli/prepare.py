"""``python -m engine prepare``: invert a photo into the depth-to-image model and write the
per-photo cache (PREP_DIR/prepared.safetensors + prepared.json) that ``engine edit`` reads."""
from __future__ import annotations

import logging
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
    add_point_arguments(g)
    g.add_argument("--removal", choices=("fill", "diffusers"), default="fill",
                   help="object removal backend for the background (default: fill, no download)")
    g.add_argument("--background-depth", help="depth of the scene without the object (optional)")


def add_point_arguments(g) -> None:
    """``--point X,Y`` / ``--point-out X,Y``: the object by clicked points (SAM's point prompt)."""
    g.add_argument("--point", action="append", metavar="X,Y",
                   help="a point on the object, in photo pixels (x the column, y the row from the top); "
                        "repeat for more; SAM's mask of the points is the object (instead of --mask / --object)")
    g.add_argument("--point-out", action="append", metavar="X,Y",
                   help="a point outside the object (with --point), to tell SAM what is not the object")


def add_model_arguments(p) -> None:
    from ..settings import DEVICE_CHOICES, DTYPE_CHOICES, INVERSIONS, PRESETS, EditSettings, RuntimeOptions

    d = EditSettings()
    g = p.add_argument_group("model and settings")
    g.add_argument("--models", metavar="DIR_OR_FILE", help="models directory laid out as DIR/<role>/, or the "
                                                         "original SD2-depth checkpoint FILE (512-depth-ema.safetensors "
                                                         "or .ckpt; converted once) as the diffusion model")
    g.add_argument("--diffusion-model", metavar="ID_OR_DIR", help="override the diffusion model (also a checkpoint file)")
    from ..diffusion.backbones import add_argument as add_backbone_argument

    add_backbone_argument(g)
    g.add_argument("--preset", choices=tuple(PRESETS), default=None,
                   help="edit schedule: default (the paper's) or fast (about a quarter of the UNet "
                        "evaluations per frame; docs/method.md); the options below override it. "
                        "`edit --prepared` without it: the preset the photo was prepared with")
    g.add_argument("--steps", type=int, help=f"DDIM steps (default {d.steps}; guided steps keep the "
                                             f"preset's share)")
    g.add_argument("--guided-steps", type=int, help=f"guided steps (default {d.guided_steps} of {d.steps})")
    g.add_argument("--inversion", choices=INVERSIONS, help=f"inversion method (default {d.inversion})")
    g.add_argument("--resolution", type=int, help="longer side of the working image (default: the model's native size, 512 for SD2-depth)")
    g.add_argument("--seed", type=int, help=f"seed (default {d.seed})")
    g.add_argument("--settings", metavar="JSON", help="a JSON file of EditSettings fields (on top of the preset)")
    r = p.add_argument_group("runtime (where and how the model runs)")
    r.add_argument("--device", choices=DEVICE_CHOICES, default=RuntimeOptions.device)
    r.add_argument("--dtype", choices=DTYPE_CHOICES, default=RuntimeOptions.dtype)
    r.add_argument("--frame-batch-size", type=int,
                   help=f"frames sampled together (default {RuntimeOptions.frame_batch_size})")
    for name, text in RuntimeOptions.switches().items():
        r.add_argument("--" + name.replace("_", "-"), action="store_true", help=text)
    from .models import add_model_override_arguments

    add_model_override_arguments(g, PERCEPTION_ROLES)


def add_arguments(p) -> None:
    add_input_arguments(p)
    p.add_argument("--out", required=True, metavar="PREP_DIR", help="directory for the prepared cache")
    add_model_arguments(p)


# Options that set an EditSettings field of the same name (runtime options are RuntimeOptions').
SETTING_OPTIONS = ("steps", "guided_steps", "inversion", "resolution", "seed")


def settings_changes(args) -> dict:
    """The EditSettings fields the user set: those of --settings FILE, then the options given."""
    from .. import checks

    data = {}
    if getattr(args, "settings", None):
        data = checks.json_file(args.settings, "--settings")
        checks.settings_data(data, f"--settings '{args.settings}'")  # types and ranges, one line
    changes = dict(data)
    changes.update({k: getattr(args, k) for k in SETTING_OPTIONS if getattr(args, k, None) is not None})
    return changes


def settings_from_args(args, base=None):
    """EditSettings from ``base`` (default: the --preset, else the defaults) with the user's
    changes, checked (`engine.checks.settings_from`, the rule batch.py and the add-on use too)."""
    from .. import checks

    return checks.settings_from(getattr(args, "preset", None), settings_changes(args), base=base)


def runtime_from_args(args):
    from ..settings import RuntimeOptions

    changes = {k: getattr(args, k) for k in ("device", "dtype", "frame_batch_size") if getattr(args, k, None) is not None}
    changes.update({k: True for k in RuntimeOptions.switches() if getattr(args, k, False)})
    return RuntimeOptions(**changes)


def check_models_dir(args) -> None:
    """--models must be a folder or a checkpoint file (checked before any output is made)."""
    from ..diffusion.single_file import CHECKPOINT_SUFFIXES

    models = getattr(args, "models", None)
    if models is not None:
        p = Path(models).expanduser()
        if p.is_file() and p.suffix.lower() not in CHECKPOINT_SUFFIXES:
            raise InputError(f"--models '{models}': a file, but not a checkpoint "
                             f"({', '.join(CHECKPOINT_SUFFIXES)}); give a models folder or the model file")
        if not p.exists():
            raise InputError(f"--models '{models}': does not exist "
                             f"(write tiny test models with `python -m engine tiny-models DIR`)")


def check_models_available(args, photo=None) -> None:
    """Every model this run will load is found, and its weights are safetensors, before any
    output is made (nothing is loaded here)."""
    from .. import registry
    from .models import overrides_from_args

    check_models_dir(args)
    overrides = overrides_from_args(args, PERCEPTION_ROLES)
    roles = {}  # in the order they are used: perception, then diffusion
    if photo is not None:
        if photo.depth is None:
            roles["depth"] = overrides.get("depth")
        if photo.object_queries:
            roles["detector"], roles["sam"] = overrides.get("detector"), overrides.get("sam")
        if photo.points:
            roles["sam"] = overrides.get("sam")
        if getattr(args, "removal", "fill") == "diffusers":
            roles["inpaint"] = overrides.get("inpaint")
    from ..diffusion.backbones import get as backbone

    base = backbone(getattr(args, "backbone", None)).roles
    for role in base:  # the diffusion model, or a base model and its ControlNet
        roles[role] = getattr(args, "diffusion_model", None) if role == "diffusion" else None
    for role, override in roles.items():
        # a SAM checkpoint file is read by its loader; the diffusion roles' files resolve (converted once)
        override_file = override and Path(override).expanduser().is_file() and not registry.spec(role).single_file
        if not override_file:
            path = registry.resolve(role, override, args.models)
            registry.check_weights(role, path)
            if role == base[0] and photo is not None:
                _check_prompt_length(path, photo.prompt)


def _check_prompt_length(path, prompt) -> None:
    """The prompt fits the text encoder (its tokenizer only is read; no weights)."""
    from transformers import CLIPTokenizer

    from ..diffusion.conditioning import check_prompt

    try:
        tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", local_files_only=True)
    except (OSError, ValueError):
        return  # an incomplete model folder: the loader says so with its own message
    check_prompt(tokenizer, prompt)


def engine_from_args(args, settings=None):
    from ..pipeline import Engine

    overrides = {"diffusion": args.diffusion_model} if getattr(args, "diffusion_model", None) else None
    return Engine(models_dir=args.models, model_overrides=overrides,
                  settings=settings or settings_from_args(args), runtime=runtime_from_args(args),
                  backbone=getattr(args, "backbone", None))


def load_photo_args(args):
    """The photo's files from the command line, read and checked; no model is loaded
    (engine.inputs.load_photo)."""
    from .. import console
    from ..inputs import load_photo

    if not args.image or args.prompt is None:
        raise InputError("give --image and --prompt (or --prepared PREP_DIR)")
    photo = load_photo(args.image, args.prompt, depth=args.depth, mask=args.mask,
                       object_query=getattr(args, "object", None), candidate=getattr(args, "candidate", None),
                       background_depth=getattr(args, "background_depth", None),
                       depth_png_scale=args.depth_png_scale, points=getattr(args, "point", None),
                       points_out=getattr(args, "point_out", None))
    if "resized" in photo.notes:
        console.say(f"note: {photo.notes['resized']}")
    return photo


def complete_photo(args, photo, candidates_dir=None):
    """Fill the missing inputs with the perception models; say which candidate was used."""
    from ..inputs import complete
    from .models import overrides_from_args
    from .. import console

    complete(photo, models_dir=args.models, overrides=overrides_from_args(args, PERCEPTION_ROLES),
             device=args.device, removal=getattr(args, "removal", "fill"), candidates_dir=candidates_dir)
    for n, (query, found, chosen) in enumerate(zip(photo.object_queries, photo.candidates, photo.chosen)):
        if found:
            where = ""
            if candidates_dir is not None:
                folder = Path(candidates_dir) / f"object_{n + 1}" if len(photo.candidates) > 1 else Path(candidates_dir)
                where = f" (see {folder / 'candidates.json'})"
            console.say(f"{len(found)} candidate(s) for {query!r}; using candidate {chosen}{where}")
    return photo


def load_prepare_inputs(args, candidates_dir=None) -> dict:
    """All of prepare's photo inputs from the command line: `Engine.prepare` keyword arguments."""
    return complete_photo(args, load_photo_args(args), candidates_dir).prepare_arguments()


# Names prepare writes into its folder.
PREPARE_OUTPUTS = (r"prepared\.json", r"prepared\.safetensors", r"candidates\.json", r"candidate_\d+\.png")


def run(args) -> int:
    from .. import console
    from ..inputs import input_files
    from ..output import check_inputs_not_in, check_output_dir

    # 1. Everything checked before any folder is made or any model loaded
    settings = settings_from_args(args)
    photo = load_photo_args(args)
    check_models_available(args, photo)
    check_output_dir(args.out, "--out")
    check_inputs_not_in(args.out, input_files(photo), "--out", PREPARE_OUTPUTS)
    # 2. The work
    engine = engine_from_args(args, settings)
    complete_photo(args, photo, candidates_dir=args.out)
    with console.Progress() as progress:
        prepared = engine.prepare(**photo.prepare_arguments(), cache_dir=args.out, progress=progress,
                                  preset=args.preset or "default")
    r = prepared.report
    console.say(f"prepared {args.image} -> {args.out} ({prepared.size[1]}x{prepared.size[0]}, "
                f"{r.get('unet_forward', 0)} UNet forwards, {r.get('total_seconds', 0):.1f} s)")
    return 0
