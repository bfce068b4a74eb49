"""``python -m engine preview``: the naive 3D-warped photo and the edit geometry, per frame.

Writes into --out, for each frame k (1-based, 4 digits): preview_k.png, target_mask_k.png (the
union of the objects), with several objects (or copies) target_mask_k_n.png (part n, 1-based:
the objects in --mask order, then the frame's copies), valid_mask_k.png
(the covered part of the view), edited_depth_k.exr, then report.json. Every input is read and
every transform parsed before anything is written; each file is written to a temporary name and
renamed. The photo is lifted once (engine.lifted) and every frame reuses it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

HELP = "preview an edit geometrically: warp the objects in 3D (no diffusion), write masks and depth"


def add_arguments(parser):
    from ..transforms import CONVENTIONS

    parser.add_argument("--image", required=True, help="the photo (PNG/JPEG, RGB)")
    parser.add_argument("--depth", required=True, help="z-depth in metres: .exr, .npy or 16-bit .png")
    parser.add_argument("--mask", action="append",
                        help="object mask image (alpha or luminance > 0.5) or .npy; repeat for several "
                             "objects (their order is the order of the transform file's 'objects')")
    parser.add_argument("--transforms", required=True, help="transform file (README: Transform files)")
    parser.add_argument("--convention", choices=CONVENTIONS, default=CONVENTIONS[0],
                        help="frame the transforms are given in (default: camera = Blender's camera frame)")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--background", help="background image (objects removed) to draw the moved objects over")
    parser.add_argument("--background-depth", help="depth behind the objects (default: completed from the "
                                                   "surrounding depth, engine.completion)")
    parser.add_argument("--png-scale", type=float, default=None,
                        help="metres per unit of a 16-bit PNG depth (default 0.001: millimetres)")
    from .prepare import add_point_arguments

    add_point_arguments(parser)  # the object by clicked points instead of --mask (needs SAM)
    parser.add_argument("--models", metavar="DIR", help="models directory (DIR/sam/ for --point)")
    parser.add_argument("--sam-model", metavar="ID_OR_DIR", help="override the SAM model (with --point)")


def run(args) -> int:
    from .. import checks
    from ..errors import InputError
    from .. import console
    from ..inputs import load_photo, segment_points
    from ..io import load_image
    from ..pipeline import pivots
    from ..transforms import FrameEdit, load_keyframes
    from ..output import check_inputs_not_in, check_output_dir, folder_writer

    t_start = time.perf_counter()
    # 1. Everything is read and checked before the first write (the photo's files by the one
    # input boundary, engine.inputs.load_photo, as edit and batch.py read them).
    if bool(args.mask) == bool(args.point or args.point_out):  # preview has no text query
        raise InputError("give --mask (one per object) or --point / --point-out (one object clicked), "
                         "one of the two")
    photo = load_photo(args.image, "", depth=args.depth, mask=args.mask, depth_png_scale=args.png_scale,
                       background_depth=args.background_depth, require_prompt=False,
                       points=args.point, points_out=args.point_out, labels={"depth_png_scale": "--png-scale"})
    if "resized" in photo.notes:
        console.say(f"note: {photo.notes['resized']}")
    if photo.mask is None:  # SAM's mask of the clicked points, exactly as prepare / edit compute it
        from .. import registry

        registry.check_weights("sam", registry.resolve("sam", args.sam_model, args.models))
        segment_points(photo, models_dir=args.models, overrides={"sam": args.sam_model} if args.sam_model else None)
    image, depth, background_depth, masks = photo.image, photo.depth, photo.background_depth, photo.masks
    shape = image.shape[:2]
    background = None
    if args.background:
        background = load_image(args.background)
        if background.shape != image.shape:
            h, w = background.shape[:2]
            raise InputError(f"background '{args.background}': size {w}x{h} (WxH) does not match "
                             f"the image's {shape[1]}x{shape[0]}")
    scene = photo.scene  # lifted once; every frame reuses it
    centroids = pivots(depth, masks)  # the pivots every path uses (engine.pipeline.pivots)
    checks.transforms_json(args.transforms, "--transforms")  # strict JSON, bounded, no booleans
    keyframes = load_keyframes(args.transforms, args.convention, centroids)
    edits = [FrameEdit.of(e, scene.n_objects, f"transforms frame {k}") for k, (_, e) in
             enumerate(keyframes, start=1)]
    # Some object must be visible in some frame (behind the camera or 100 m away in every frame
    # would write nothing but empty masks); frames where none is are reported.
    out_of_view = scene.hidden_frames(edits, f"transforms '{args.transforms}'")
    out = Path(args.out)
    sources = [args.image, args.depth, *(args.mask or []), args.transforms, args.background, args.background_depth]
    check_output_dir(out, "--out")
    check_inputs_not_in(out, sources, "--out", OUTPUTS)
    t_inputs = time.perf_counter() - t_start

    # 2. Frames, each written (atomically) as it is made. The run key covers what decides the
    # pixels (the inputs as read, the convention is in the frames' matrices), so a rerun of the
    # same command keeps the finished frames and computes the rest; the manifest drops extras.
    with folder_writer(out, "--out"):
        return _write_frames(args, out, image, scene, keyframes, edits, background, background_depth,
                             centroids, out_of_view, shape, t_start, t_inputs)


def _run_key(image, depth, masks, background, background_depth) -> str:
    import hashlib

    import numpy as np

    h = hashlib.sha256(b"preview/1")
    for a in (image, depth, masks, background, background_depth):
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def _write_frames(args, out, image, scene, keyframes, edits, background, background_depth, centroids,
                  out_of_view, shape, t_start, t_inputs) -> int:
    import numpy as np

    from .. import console
    from ..io import atomic_output, save_depth_exr, save_image, save_mask
    from ..output import FrameManifest
    from ..preview import preview_frame

    manifest = FrameManifest(out, _run_key(image, scene.depth, scene.object_masks, background, background_depth),
                             [e.key() for e in edits])
    done = set(manifest.resume())
    if done:
        console.say(f"resuming: {len(done)} of {len(edits)} frame(s) already finished in {out}")
    frames = []
    for k, ((number, _), edit) in enumerate(zip(keyframes, edits), start=1):
        t0 = time.perf_counter()
        geo = scene.frame(edit)
        t1 = time.perf_counter()
        rgb = None if k in done else preview_frame(image, geo, background)
        t2 = time.perf_counter()
        tag = f"{k:04d}"
        names = [(f"target_mask_{tag}.png", lambda p: save_mask(p, geo.target_mask))]
        names += [(f"target_mask_{tag}_{n}.png", lambda p, m=m: save_mask(p, m))  # objects, then copies
                  for n, m in enumerate(geo.target_masks if len(geo.target_masks) > 1 else [], start=1)]
        names += [(f"valid_mask_{tag}.png", lambda p: save_mask(p, geo.valid_mask)),
                  (f"edited_depth_{tag}.exr", lambda p: save_depth_exr(p, geo.edited_depth)),
                  (f"preview_{tag}.png", lambda p: save_image(p, rgb))]
        if k not in done:
            manifest.commit(k, names)
        frames.append({
            "k": k,
            "frame": number,
            "edit": edit.to_dict(),
            "target_area": int(geo.target_mask.sum()),
            "target_areas": [int(m.sum()) for m in geo.target_masks],
            "visible_objects": list(geo.visible),
            "removed": [n + 1 for n, v in enumerate(geo.shown) if not v],
            "object_area": int(scene.object_mask.sum()),
            "hole_area": int((~geo.valid_mask).sum()),
            "timings_s": {"geometry": round(t1 - t0, 4), "preview": round(t2 - t1, 4),
                          "write": round(time.perf_counter() - t2, 4)},
        })
        if geo.notes:  # out of view, hidden behind another object, too small, filling the frame
            print(f"frame {k}: {'; '.join(geo.notes)}")
    report = {
        "image": str(args.image), "depth": str(args.depth), "masks": [str(m) for m in args.mask or []],
        "points": args.point or [], "points_out": args.point_out or [],
        "transforms": str(args.transforms), "convention": args.convention,
        "background": args.background, "size": {"width": int(shape[1]), "height": int(shape[0])},
        "centroids": np.asarray(centroids).tolist(),
        "frames": frames,
        "timings_s": {"inputs": round(t_inputs, 4), "scene": round(scene.timings["total_s"], 4),
                      "total": round(time.perf_counter() - t_start, 4)},
        "out_of_view": out_of_view,
        "resumed": sorted(done),
    }
    with atomic_output(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    note = f"; no object is seen in frame(s) {', '.join(map(str, out_of_view))}" if out_of_view else ""
    console.say(f"wrote {len(frames)} frame(s) to {out}{note}")
    return 0


# Names preview writes into its folder.
OUTPUTS = (r"preview_\d+\.png", r"target_mask_\d+(_\d+)?\.png", r"valid_mask_\d+\.png", r"edited_depth_\d+\.exr",
           r"report\.json", r"manifest\.json")
