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

    from ..errors import InputError
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
    keyframes = load_keyframes(args.transforms, args.convention, centroid)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"out '{out}': exists and is not a directory")
    t_inputs = time.perf_counter() - t_start

    # 2. Frames.
    out.mkdir(parents=True, exist_ok=True)
    frames = []
    for k, (number, T) in enumerate(keyframes, start=1):
        t0 = time.perf_counter()
        rgb, geo = render_preview(image, depth, mask, T, background=background,
                                  background_depth=background_depth)
        t1 = time.perf_counter()
        tag = f"{k:04d}"
        save_image(out / f"preview_{tag}.png", rgb)
        save_mask(out / f"target_mask_{tag}.png", geo.target_mask)
        save_mask(out / f"valid_mask_{tag}.png", geo.valid_mask)
        save_depth_exr(out / f"edited_depth_{tag}.exr", geo.edited_depth)
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
    }
    from ..io import atomic_output

    with atomic_output(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    print(f"wrote {len(frames)} frame(s) to {out}")
    return 0
