#!/usr/bin/env python3
"""Headless Diffusion Handles: photo + keyframed trajectory -> stop-motion frames (+ contact sheet).

    blender -b --python batch.py -- --image IMG --prompt TEXT (--mask M... | --object TEXT...) [--depth D]
                                    --keyframes K.json --out DIR [--engine preview|diffusion|auto]
                                    [--models DIR_OR_FILE]
    python batch.py ...same arguments...            (with the bpy module installed)

It imports the photo exactly as the add-on's Import Photo does (camera, lifted background and one
lifted object per --mask / --object, each repeatable, in order), keys the objects and the camera
with the edits of K.json (the transform file format: per entry {"matrix": T} for one object, or
{"objects": [{"matrix": T1}, ...]} in mask order and/or {"camera": M}, p_new = M p_old, each with
an optional "frame": N, default 1, 2, 3, ...; Blender interpolates between keys; "visible": false
on an object's entry keys its Disable in Renders there, and "copies": [{"of": N, "matrix": T}]
makes copies of object N, each keyed on its own),
renders every frame of the keyed range through the add-on's render engine ("Diffusion Handles",
Blender's own animation render) into DIR/frames/, and writes DIR/contact_sheet.png (and, with
--movie, DIR/frames/stop_motion.mp4 through Blender's FFmpeg output). Every input, option and
keyframe (frame numbers, the object visible in at least one key) and the output folder are
checked before anything is written. A failure is one line ``batch.py: error: ...``: exit code 2
for bad input, 1 for a runtime failure; -v adds the traceback, an unexpected error says where
its traceback was logged.

--save-blend FILE saves the keyed scene ready for Blender's render machinery (the render engine
selected, PNG frames to DIR/frames/, paths relative to FILE): `blender -b FILE -a` renders it
again, on one machine or split over a farm's nodes.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.abspath(__file__))


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # a usage error is one line, like every other input error
        fail(f"{message} (see `batch.py --help`)", 2)


def parse_args(argv):
    p = _Parser(prog="batch.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true", help="show the traceback of any error")
    p.add_argument("--image", required=True, help="the photo (PNG/JPEG/...)")
    p.add_argument("--prompt", default="", help="a caption of the photo (needed by the diffusion engine)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--mask", action="append", help="object mask image (white = object); repeat for "
                                                     "several objects, in order")
    who.add_argument("--object", action="append", help="text naming the object (needs the perception "
                                                       "models); repeat for several objects")
    p.add_argument("--candidate", type=int, default=0, help="which candidate of each --object (0 = best)")
    p.add_argument("--depth", help="z-depth in metres (.exr, .npy, 16-bit .png in mm); default: estimated")
    p.add_argument("--keyframes", required=True, help="K.json: camera-frame transforms, optional 'frame' each")
    p.add_argument("--convention", default="camera", choices=("camera", "pytorch3d"),
                   help="frame of the vectors/matrices in K.json (default: Blender's camera frame)")
    p.add_argument("--out", required=True, help="output folder (frames/, contact_sheet.png, cache/)")
    p.add_argument("--engine", default="auto", choices=("auto", "preview", "diffusion"),
                   help="auto: diffusion when its weights are found, else the weightless preview")
    p.add_argument("--models", help="models folder (one sub-folder per role, e.g. diffusion/), or the original "
                                    "SD2-depth checkpoint file (512-depth-ema.safetensors or .ckpt) as the diffusion model")
    p.add_argument("--device", default="auto", help="where the models run: auto (default: CUDA, else Apple "
                                                    "MPS, else the CPU), cuda, cuda:N, mps or cpu")
    p.add_argument("--preset", help="edit schedule, one of the engine's presets: 'default' (the paper's, "
                                    "the add-on's Final quality), 'fast' (Draft), 'quick' (Sketch) or 'instant' "
                                    "(Instant: no gradients); default: default")
    p.add_argument("--steps", type=int, help="DDIM steps (default: the preset's)")
    p.add_argument("--resolution", type=int, help="working resolution, longer side (default: the model's native size, 512 for SD2-depth)")
    p.add_argument("--seed", type=int)
    p.add_argument("--backbone", default="sd2-depth",
                   help="the depth-conditioned model: sd2-depth (default), sd15-depth or sdxl-depth "
                        "(engine.diffusion.backbones)")
    p.add_argument("--inversion", help="null-text, negative-prompt or ddim (default: the preset's)")
    p.add_argument("--movie", action="store_true", help="also encode DIR/frames/stop_motion.mp4")
    p.add_argument("--save-blend", help="save the keyed scene as a .blend, ready for `blender -b FILE -a` "
                                        "(the Diffusion Handles render engine, on one machine or a farm)")
    return p.parse_args(argv)


def script_argv():
    """Arguments after ``--`` (blender -b --python batch.py -- ...), else the script's own."""
    return sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]


def fail(message, code=1):
    print(f"batch.py: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def ensure_addon():
    """The add-on's package name, registering it when it is not already (installed or not)."""
    import bpy

    if hasattr(bpy.types, "DH_OT_import_photo"):
        return bpy.types.DH_OT_import_photo.__module__.rsplit(".operators", 1)[0]
    import addon_utils

    for module in addon_utils.modules():
        path = os.path.dirname(getattr(module, "__file__", "") or "")
        if path and os.path.isdir(path) and os.path.samefile(path, ROOT):
            addon_utils.enable(module.__name__, default_set=False, handle_error=None)
            return module.__name__
    # not installed: register this folder as a package by hand (no preferences then)
    name = "diffusion_handles"
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "__init__.py"),
                                                  submodule_search_locations=[ROOT])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    module.register()
    return name


def clear_scene(bpy):
    scene = bpy.context.scene
    for obj in list(scene.objects):
        bpy.data.objects.remove(obj)
    for child in list(scene.collection.children):
        bpy.data.collections.remove(child)


def choose_engine(package, requested, models_dir, backbone="sd2-depth"):
    """('PREVIEW' | 'DIFFUSION', why) for --engine auto|preview|diffusion."""
    if requested != "auto":
        return requested.upper(), "as requested"
    deps = importlib.import_module(f"{package}.session.deps")
    missing = deps.missing_modules()
    if missing:
        return "PREVIEW", f"the diffusion engine needs {', '.join(missing)}"
    registry = importlib.import_module(f"{package}.engine.registry")
    roles = importlib.import_module(f"{package}.engine.diffusion.backbones").get(backbone).roles
    try:
        where = ", ".join(str(registry.resolve(role, models_dir=models_dir)) for role in roles)
    except Exception as exc:  # noqa: BLE001 - any failure to find weights means: preview
        return "PREVIEW", f"no diffusion weights found ({str(exc).split(';')[0]})"
    return "DIFFUSION", f"diffusion weights found in {where}"


def contact_sheet(package, paths, out_path, columns=4):
    """Frames side by side, ``columns`` per row, written atomically (engine.contact_sheet)."""
    io = importlib.import_module(f"{package}.engine.io")
    sheet = importlib.import_module(f"{package}.engine.contact_sheet")
    frames = [io.load_image(p) for p in paths]
    sheet.contact_sheet([("", frames[i:i + columns]) for i in range(0, len(frames), columns)], path=out_path,
                        gap=2, margin=0)
    return out_path


def check_visible(package, photo, keyed):
    """Refuse keyframes that never show the object (engine.inputs.check_visible); note those that do not."""
    hidden = importlib.import_module(f"{package}.engine.inputs").check_visible(photo, [T for _, T in keyed],
                                                                               what="keyframe")
    if hidden:
        print(f"batch.py: note: the object is out of view at keyframe(s) {', '.join(map(str, hidden))}", flush=True)


def check_inputs(package, args):
    """Everything checked before any folder is made or model loaded (engine.inputs / checks /
    output): the engine (--engine auto decided here, so it gets the checks of the engine it
    picks), the photo's files, the settings, the keyframes (strict JSON, frame numbers, the
    object visible in at least one key), the output folder. Returns (photo inputs, engine, why)."""
    engine = lambda name: importlib.import_module(f"{package}.engine.{name}")  # noqa: E731
    checks, inputs, output, transforms = engine("checks"), engine("inputs"), engine("output"), engine("transforms")
    errors = engine("errors")
    if args.models and not os.path.isdir(args.models) and not (  # a folder, or the diffusion checkpoint FILE
            os.path.isfile(args.models) and args.models.lower().endswith((".safetensors", ".ckpt"))):
        raise errors.InputError(f"--models '{args.models}': neither a models folder nor a checkpoint file "
                                f"(.safetensors or .ckpt)")
    models_dir = os.path.abspath(args.models) if args.models else None
    engine("diffusion.backbones").get(args.backbone)  # an unknown one: one line naming it
    chosen, why = choose_engine(package, args.engine, models_dir, args.backbone)
    photo = inputs.load_photo(args.image, args.prompt, depth=args.depth, mask=args.mask,
                              object_query=args.object, candidate=args.candidate if args.object else None,
                              require_prompt=chosen == "DIFFUSION")
    if "resized" in photo.notes:  # a depth or mask at the photo's aspect ratio, another size
        print(f"batch.py: note: {photo.notes['resized']}", flush=True)
    if chosen == "DIFFUSION":  # found, and safetensors, before anything is written (auto too)
        registry = engine("registry")
        for role in engine("diffusion.backbones").get(args.backbone).roles:
            registry.check_weights(role, registry.resolve(role, None, models_dir))
    settings_mod = importlib.import_module(f"{package}.engine.settings")  # the choices live there
    for name, choices in (("preset", settings_mod.PRESETS), ("inversion", settings_mod.INVERSIONS)):
        if getattr(args, name) is not None and getattr(args, name) not in choices:
            raise errors.InputError(f"--{name} {getattr(args, name)!r}: expected one of {', '.join(choices)}")
    # the rule the add-on applies to the same choices (blender/options.edit_settings)
    checks.settings_from(args.preset, {k: getattr(args, k) for k in ("resolution", "seed", "inversion", "steps")
                                       if getattr(args, k) is not None})
    checks.transforms_json(args.keyframes, "--keyframes")
    centroid = None
    if photo.complete_without_models:
        centroid = engine("pipeline").pivots(photo.depth, photo.mask)
    keyed = transforms.load_keyframes(args.keyframes, convention=args.convention,
                                      centroid=centroid if centroid is not None else (0.0, 0.0, -2.0))
    checks.frame_numbers([n for n, _ in keyed], f"--keyframes '{args.keyframes}'")
    if photo.complete_without_models:  # with --object: after the import found the masks (run)
        check_visible(package, photo, keyed)
    sources = [*inputs.input_files(photo), args.keyframes]
    output.check_output_dir(args.out, "--out")
    output.check_inputs_not_in(args.out, sources, "--out", (r"contact_sheet\.png",))
    output.check_inputs_not_in(os.path.join(args.out, "frames"), sources, "--out", (r"frame_\d+\.png",
                                                                                  r"stop_motion\.mp4"))
    if args.save_blend:
        blend = os.path.abspath(args.save_blend)
        output.check_output_dir(os.path.dirname(blend), "--save-blend")
        output.check_inputs_not_in(os.path.dirname(blend), sources, "--save-blend", (re.escape(os.path.basename(blend)),))
    return photo, chosen, why


def run(args):
    import bpy

    started = time.perf_counter()
    package = ensure_addon()
    _, engine, why = check_inputs(package, args)
    masks, queries = args.mask or [], args.object or []
    for what, value in (("--mask", masks), ("--object", queries)):
        if any(";" in v for v in value):
            fail(f"{what} '{next(v for v in value if ';' in v)}': ';' is not allowed (repeat {what} instead)", 2)
    out = os.path.abspath(args.out)
    made = _NewPaths(out, args.save_blend)
    try:
        _run(args, package, engine, why, out, masks, queries, started, made)
    except BaseException:
        made.remove()  # a refusal or failure before any frame leaves no new file or folder behind
        raise


class _NewPaths:
    """What a run creates before its first frame (the --out folder, the photo's cache in it, the
    --save-blend file and its folder), removed again when the run fails before rendering."""

    def __init__(self, out, blend):
        self.out, self.blend = out, os.path.abspath(blend) if blend else None
        self.paths = [p for p in (out, os.path.join(out, "cache"), self.blend) if p and not os.path.lexists(p)]
        if self.blend:
            folder = os.path.dirname(self.blend)
            while not os.path.lexists(folder):
                self.paths.append(folder)
                folder = os.path.dirname(folder)
        self.cached = set(os.listdir(os.path.join(out, "cache"))) if os.path.isdir(os.path.join(out, "cache")) else set()
        self.rendering = False

    def remove(self):
        import shutil

        if self.rendering:  # frames are kept (a rerun resumes); nothing else is left half-made
            return
        cache = os.path.join(self.out, "cache")
        if os.path.isdir(cache) and cache not in self.paths:
            for name in set(os.listdir(cache)) - self.cached:
                shutil.rmtree(os.path.join(cache, name), ignore_errors=True)
        for path in sorted(self.paths, key=len, reverse=True):  # deepest first
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                os.remove(path)


def _run(args, package, engine, why, out, masks, queries, started, made):
    import bpy

    os.makedirs(out, exist_ok=True)
    output = importlib.import_module(f"{package}.engine.output")
    output.clean_temporaries(os.path.join(out, "frames"))  # what a killed earlier run left
    store = importlib.import_module(f"{package}.session.store")
    keyframes = importlib.import_module(f"{package}.blender.keyframes")
    transforms = importlib.import_module(f"{package}.engine.transforms")
    models_dir = os.path.abspath(args.models) if args.models else None
    store.SESSION_OPTIONS.update(models_dir=models_dir, device=args.device, backbone=args.backbone)
    print(f"batch.py: engine: {engine.lower()} ({why})", flush=True)

    clear_scene(bpy)
    scene = bpy.context.scene
    bpy.ops.dh.import_photo(filepath=os.path.abspath(args.image), prompt=args.prompt,
                            mask_path=";".join(os.path.abspath(m) for m in masks),
                            depth_path=os.path.abspath(args.depth) if args.depth else "",
                            object_query=";".join(queries), candidate=args.candidate,
                            cache_dir=os.path.join(out, "cache"), engine=engine)
    obj = bpy.context.view_layer.objects.active
    if args.preset is not None:
        obj.dh.quality = args.preset
    for name in ("steps", "resolution", "seed", "inversion"):
        if getattr(args, name) is not None:
            setattr(obj.dh, name, getattr(args, name))

    matrices = importlib.import_module(f"{package}.blender.matrices")
    objects = matrices.moving_objects(obj, scene)
    # the pivots of `engine edit` and `engine preview`: the imported photo's depth and masks at full size
    cached = importlib.import_module(f"{package}.session.photo").load_cache(bpy.path.abspath(obj.dh.cache_dir))
    centroids = importlib.import_module(f"{package}.engine.pipeline").pivots(cached.depth, cached.masks)
    keyed = transforms.load_keyframes(args.keyframes, convention=args.convention, centroid=centroids)
    if queries:  # the masks the object queries found: the check --mask gets before anything is written
        check_visible(package, cached, keyed)
    frames = keyframes.key_transforms(obj, keyed, scene)
    copies = len(matrices.photo_copies(obj))
    parts = f"{len(objects)} object(s)" + (f" and {copies} cop{'y' if copies == 1 else 'ies'}" if copies else "")
    print(f"batch.py: keyed {len(keyed)} edits of {parts}, frames {frames[0]}-{frames[-1]}", flush=True)

    render_engine = importlib.import_module(f"{package}.operators.render_engine")
    scene.render.engine = render_engine.IDNAME
    scene.render.filepath = os.path.join(out, "frames", "frame_####")
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.color_depth = "8"
    if models_dir:
        scene.dh.models_dir = models_dir
    if args.save_blend:
        os.makedirs(os.path.dirname(os.path.abspath(args.save_blend)), exist_ok=True)  # checked before
        bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(args.save_blend))
    made.rendering = True
    bpy.ops.render.render(animation=True)  # Blender's own animation render, frame by frame
    if args.movie:
        render_ops = importlib.import_module(f"{package}.blender.render")
        movie = render_ops.write_movie(scene, os.path.join(out, "frames", "stop_motion.mp4"))
        print(f"batch.py: movie {movie}", flush=True)

    paths = [scene.render.frame_path(frame=f) for f in range(scene.frame_start, scene.frame_end + 1)]
    sheet = contact_sheet(package, paths, os.path.join(out, "contact_sheet.png"))
    print(f"batch.py: {len(paths)} frames of {parts} in {os.path.dirname(paths[0])}, contact sheet {sheet} "
          f"({engine.lower()} engine, {time.perf_counter() - started:.1f} s)", flush=True)


def main(argv=None):
    """The one error path of batch.py: the engine's (engine.cli.report_error), prefixed."""
    args = parse_args(script_argv() if argv is None else argv)
    package = None
    try:
        package = ensure_addon()
        run(args)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure: one line, exit code 2 or 1
        if package is None:
            fail(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, RuntimeError) and type(exc) is RuntimeError:  # an operator's error report
            fail(" ".join(str(exc).split()).removeprefix("Error: "))
        cli = importlib.import_module(f"{package}.engine.cli")
        sys.exit(cli.report_error(exc, args.verbose, prefix="batch.py: error"))
    return 0


if __name__ == "__main__":
    main()
    sys.exit(0)
