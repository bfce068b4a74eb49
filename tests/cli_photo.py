"""The small synthetic photo the command-line tests edit (image, depth.npy, mask.png), written once
here: a blue box standing in front of a sloped backdrop, 48x40 pixels; the transforms that move it
and the options of a quick CPU run with the tiny models."""
from __future__ import annotations

import json

import numpy as np

from engine import io

# `prepare` / `edit` options of a quick CPU run (tiny models, a 32-pixel working size, 4 steps)
FAST = ["--resolution", "32", "--steps", "4", "--inversion", "negative-prompt", "--device", "cpu",
        "--dtype", "fp32"]


def write_photo(d):
    """Write image.png, depth.npy and mask.png into folder ``d``; returns (image, depth, mask)."""
    yy, xx = np.mgrid[0:40, 0:48] / 40.0
    image = np.stack([0.2 + 0.5 * xx / 1.2, 0.5 + 0.2 * yy, 0.4 + 0.0 * xx], -1)
    mask = np.zeros((40, 48), bool)
    mask[12:26, 14:26] = True
    image[mask] = [0.1, 0.3, 0.9]
    depth = np.where(mask, 1.6, 3.2 - 0.6 * yy).astype(np.float32)
    io.save_image(d / "image.png", image.astype(np.float32))
    np.save(d / "depth.npy", depth)
    io.save_mask(d / "mask.png", mask)
    return image, depth, mask


def write_shifts(path, shifts):
    """Write a transforms.json at ``path`` with one frame per shift: a 4x4 matrix moving the object
    by that many metres along +X (0.0: the identity)."""
    frames = []
    for x in shifts:
        T = np.eye(4)
        T[0, 3] = x
        frames.append({"matrix": T.tolist()})
    path.write_text(json.dumps({"frames": frames}))
