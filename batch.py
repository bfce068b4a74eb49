#!/usr/bin/env python3
"""Headless Diffusion Handles: photo + keyframed trajectory -> stop-motion frames (+ contact sheet).

    blender -b --python batch.py -- --image IMG --prompt TEXT (--mask M... | --object TEXT...) [--depth D]
                                    --keyframes K.json --out DIR [--engine preview|diffusion|auto]
                                    [--models DIR]
    python batch.py ...same arguments...            (with the bpy module installed)

It imports the photo exactly as the add-on's Import Photo does (camera, lifted background and one
lifted object per --mask / --object, each repeatable, in order), keys the objects and the camera
with the edits of K.json (the transform file format: per entry {"matrix": T} for one object, or
{"objects": [{"matrix": T1}, ...]} in mask order and/or {"camera": M}, p_new = M p_old, each with
an optional "frame": N, default 1, 2, 3, ...; Blender interpolates between keys),
renders every frame of the keyed range through the add-on's render engine ("Diffusion Handles",
Blender's own animation render) into DIR/frames/, and writes DIR/contact_sheet.png (and, with
--movie, DIR/frames/stop_motion.mp4 through Blender's FFmpeg output). Exits non-zero (with a
one-line message) on any failure.

--save-blend FILE saves the keyed scene ready for Blender's render machinery (the render engine
selected, PNG frames to DIR/frames/, paths relative to FILE): `blender -b FILE -a` renders it
again, on one machine or split over a farm's nodes.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time

ROOT = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    p = argparse.ArgumentParser(prog="batch.py", description=__doc__.split("\n\n")[0])
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
    p.add_argument("--models", help="models folder (one sub-folder per role, e.g. diffusion/)")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, help="DDIM steps (default 50)")
    p.add_argument("--resolution", type=int, help="working resolution, longer side (default 512)")
    p.add_argument("--seed", type=int)
    p.add_argument("--inversion", choices=("null-text", "negative-prompt", "ddim"))
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


def choose_engine(package, requested, models_dir):
    """('PREVIEW' | 'DIFFUSION', why) for --engine auto|preview|diffusion."""
    if requested != "auto":
        return requested.upper(), "as requested"
    deps = importlib.import_module(f"{package}.operators.deps")
    missing = deps.missing_modules()
    if missing:
        return "PREVIEW", f"the diffusion engine needs {', '.join(missing)}"
    registry = importlib.import_module(f"{package}.engine.registry")
    try:
        where = registry.resolve("diffusion", models_dir=models_dir)
    except Exception as exc:  # noqa: BLE001 - any failure to find weights means: preview
        return "PREVIEW", f"no diffusion weights found ({str(exc).split(';')[0]})"
    return "DIFFUSION", f"diffusion weights found in {where}"


def contact_sheet(package, paths, out_path, columns=4):
    """Frames side by side, ``columns`` per row, written atomically."""
    import numpy as np

    io = importlib.import_module(f"{package}.engine.io")
    frames = [io.load_image(p) for p in paths]
    h, w = frames[0].shape[:2]
    rows = -(-len(frames) // columns)
    cols = min(columns, len(frames))
    gap = 2
    sheet = np.ones((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), np.float32)
    for k, frame in enumerate(frames):
        r, c = divmod(k, columns)
        sheet[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = frame[:h, :w]
    io.save_image(out_path, sheet)
    return out_path


def run(args):
    import bpy

    masks, queries = args.mask or [], args.object or []
    for what, path in (("--image", args.image), *(("--mask", m) for m in masks), ("--depth", args.depth),
                       ("--keyframes", args.keyframes), ("--models", args.models)):
        if path and not os.path.exists(path):
            fail(f"{what} '{path}': not found", 2)
    for what, value in (("--mask", masks), ("--object", queries)):
        if any(";" in v for v in value):
            fail(f"{what} '{next(v for v in value if ';' in v)}': ';' is not allowed (repeat {what} instead)", 2)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()

    package = ensure_addon()
    models = importlib.import_module(f"{package}.operators.models")
    keyframes = importlib.import_module(f"{package}.operators.keyframes")
    transforms = importlib.import_module(f"{package}.engine.transforms")
    models_dir = os.path.abspath(args.models) if args.models else None
    models.SESSION_OPTIONS.update(models_dir=models_dir, device=args.device)
    engine, why = choose_engine(package, args.engine, models_dir)
    print(f"batch.py: engine: {engine.lower()} ({why})", flush=True)

    clear_scene(bpy)
    scene = bpy.context.scene
    bpy.ops.dh.import_photo(filepath=os.path.abspath(args.image), prompt=args.prompt,
                            mask_path=";".join(os.path.abspath(m) for m in masks),
                            depth_path=os.path.abspath(args.depth) if args.depth else "",
                            object_query=";".join(queries), candidate=args.candidate,
                            cache_dir=os.path.join(out, "cache"), engine=engine)
    obj = bpy.context.view_layer.objects.active
    for name in ("steps", "resolution", "seed", "inversion"):
        if getattr(args, name) is not None:
            setattr(obj.dh, name, getattr(args, name))

    matrices = importlib.import_module(f"{package}.operators.matrices")
    objects = matrices.moving_objects(obj, scene)
    centroids = [tuple(o.dh.centroid) for o in objects]
    keyed = transforms.load_keyframes(args.keyframes, convention=args.convention, centroid=centroids)
    frames = keyframes.key_transforms(obj, keyed, scene)
    print(f"batch.py: keyed {len(keyed)} edits of {len(objects)} object(s), frames {frames[0]}-{frames[-1]}",
          flush=True)

    render_engine = importlib.import_module(f"{package}.operators.render_engine")
    scene.render.engine = render_engine.IDNAME
    scene.render.filepath = os.path.join(out, "frames", "frame_####")
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.color_depth = "8"
    if models_dir:
        scene.dh.models_dir = models_dir
    scene.dh.require_weights = engine == "DIFFUSION"  # a farm node without the weights fails, never mixes
    if args.save_blend:
        bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(args.save_blend))
    bpy.ops.render.render(animation=True)  # Blender's own animation render, frame by frame
    if args.movie:
        render_ops = importlib.import_module(f"{package}.operators.render")
        movie = render_ops.write_movie(scene, os.path.join(out, "frames", "stop_motion.mp4"))
        print(f"batch.py: movie {movie}", flush=True)

    paths = [scene.render.frame_path(frame=f) for f in range(scene.frame_start, scene.frame_end + 1)]
    sheet = contact_sheet(package, paths, os.path.join(out, "contact_sheet.png"))
    print(f"batch.py: {len(paths)} frames in {os.path.dirname(paths[0])}, contact sheet {sheet} "
          f"({engine.lower()} engine, {time.perf_counter() - started:.1f} s)", flush=True)


def main(argv=None):
    args = parse_args(script_argv() if argv is None else argv)
    try:
        run(args)
    except SystemExit:
        raise
    except RuntimeError as exc:  # an operator's error report
        fail(str(exc).strip().replace("\n", " "))
    except Exception as exc:  # noqa: BLE001 - engine errors and anything unexpected: non-zero exit
        from_engine = type(exc).__name__ in {"InputError", "EngineError", "ModelNotFoundError", "AddonError"}
        if not from_engine:
            import traceback

            traceback.print_exc()
        fail(f"{exc}" if from_engine else f"{type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    main()
    sys.exit(0)
