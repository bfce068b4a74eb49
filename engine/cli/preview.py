"""``python -m engine preview``: the naive 3D-warped photo and the edit geometry, per frame.

Writes into --out, for each frame k (1-based, 4 digits): preview_k.png, target_mask_k.png,
valid_mask_k.png, edited_depth_k.exr, then report.json. Every input is read and every transform
parsed before anything is written; each file is written to a temporary name and renamed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

HELP = "preview an edit geometrically: warp the object in 3D (no diffusion), write masks and depth"


def add_arguments(parser):
    parser.add_argument("--image", required=True, help="the photo (PNG/JPEG, RGB)")
    parser.add_argument("--depth", required=True, help="z-depth in metres: .exr, .npy or 16-bit .png")
    parser.add_argument("--mask", required=True, help="object mask image (alpha or luminance > 0.5) or .npy")
    parser.add_argument("--transforms", required=True, help="transform file (README: Transform files)")
    parser.add_argument("--convention", choices=("camera", "pytorch3d"), default="camera",
                        help="frame the transforms are given in (default: camera = Blender's camera frame)")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--background", help="background image (object removed) to draw the moved object over")
    parser.add_argument("--background-depth", help="depth of the background (default: Laplace fill of the input depth)")
    parser.add_argument("--png-scale", type=float, default=None,
                        help="metres per unit of a 16-bit PNG depth (default 0.001: millimetres)")


def run(args) -> int:
    import numpy as np

    from .. import checks, console
    from ..errors import InputError
    from ..output import FrameManifest, check_inputs_not_in, check_output_dir, digest_json
    from ..geometry import compute_edit_geometry, fill_background_depth
    from ..io import (load_depth, load_image, load_mask, save_depth_exr, save_image, save_mask)
    from ..preview import render_preview
    from ..transforms import load_keyframes, object_centroid

    t_start = time.perf_counter()
    # 1. Everything is read and checked before the first write.
    image = load_image(args.image)
    shape = image.shape[:2]
    depth = load_depth(args.depth, png_scale=args.png_scale, expected_shape=shape)
    mask = load_mask(args.mask, expected_shape=shape)
    background = None
    if args.background:
        background = load_image(args.background)
        if background.shape != image.shape:
            h, w = background.shape[:2]
            raise InputError(f"background '{args.background}': size {w}x{h} (WxH) does not match "
                             f"the image's {shape[1]}x{shape[0]}")
    if args.background_depth:
        background_depth = load_depth(args.background_depth, png_scale=args.png_scale,
                                      expected_shape=shape)
    else:
        background_depth = fill_background_depth(depth, mask)
    centroid = object_centroid(depth, mask)
    checks.transforms_json(args.transforms, "--transforms")  # strict JSON, bounded, no booleans
    keyframes = load_keyframes(args.transforms, args.convention, centroid)
    # The object must be visible in at least one frame (behind the camera or 100 m away in
    # every frame would write nothing but empty masks); frames where it is not are reported.
    hidden = [k for k, (_, T) in enumerate(keyframes, start=1)
              if not _visible(compute_edit_geometry(depth, mask, T, background_depth))]
    if len(hidden) == len(keyframes):
        raise InputError(f"transforms '{args.transforms}': the object is out of view in every frame "
                         f"(behind the camera, outside the picture or too far to cover a pixel)")
    out = Path(args.out)
    sources = [args.image, args.depth, args.mask, args.transforms, args.background, args.background_depth]
    check_output_dir(out, "--out")
    check_inputs_not_in(out, sources, "--out", OUTPUTS)
    t_inputs = time.perf_counter() - t_start

    # 2. Frames, each written (atomically) as it is made; the manifest drops a longer run's extras.
    out.mkdir(parents=True, exist_ok=True)
    manifest = FrameManifest(out, digest_json({"command": "preview", "run": time.time_ns()}),
                             [digest_json(T.tolist()) for _, T in keyframes])
    manifest.resume()
    frames = []
    for k, (number, T) in enumerate(keyframes, start=1):
        t0 = time.perf_counter()
        rgb, geo = render_preview(image, depth, mask, T, background=background,
                                  background_depth=background_depth)
        t1 = time.perf_counter()
        tag = f"{k:04d}"
        manifest.commit(k, [(f"target_mask_{tag}.png", lambda p: save_mask(p, geo.target_mask)),
                            (f"valid_mask_{tag}.png", lambda p: save_mask(p, geo.valid_mask)),
                            (f"edited_depth_{tag}.exr", lambda p: save_depth_exr(p, geo.edited_depth)),
                            (f"preview_{tag}.png", lambda p: save_image(p, rgb))])
        frames.append({
            "k": k,
            "frame": number,
            "transform": T.tolist(),
            "target_area": int(geo.target_mask.sum()),
            "object_area": int(mask.sum()),
            "hole_area": int((~geo.valid_mask).sum()),
            "timings_s": {"geometry": round(geo.timings.get("total_s", 0.0), 4),
                          "preview": round(t1 - t0, 4),
                          "write": round(time.perf_counter() - t1, 4)},
        })
    report = {
        "image": str(args.image), "depth": str(args.depth), "mask": str(args.mask),
        "transforms": str(args.transforms), "convention": args.convention,
        "background": args.background, "size": {"width": int(shape[1]), "height": int(shape[0])},
        "centroid": [float(x) for x in np.asarray(centroid)],
        "frames": frames,
        "timings_s": {"inputs": round(t_inputs, 4), "total": round(time.perf_counter() - t_start, 4)},
        "out_of_view": hidden,
    }
    from ..io import atomic_output

    with atomic_output(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    note = f"; the object is out of view in frame(s) {', '.join(map(str, hidden))}" if hidden else ""
    console.say(f"wrote {len(frames)} frame(s) to {out}{note}")
    return 0


# Names preview writes into its folder.
OUTPUTS = (r"preview_\d+\.png", r"target_mask_\d+\.png", r"valid_mask_\d+\.png", r"edited_depth_\d+\.exr",
           r"report\.json", r"manifest\.json")


def _visible(geo) -> bool:
    import numpy as np

    return bool((np.asarray(geo.target_mask, bool) & np.asarray(geo.valid_mask, bool)).any())
