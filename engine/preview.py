"""The naive geometric preview of an edit: the photo's pixels moved in 3D, no diffusion.

It shows what the geometry (target masks, correspondences, holes) says before any model runs:
useful to check a transform, and as the "3D-warped" baseline.
"""
from __future__ import annotations

import numpy as np

from .geometry import EditGeometry
from .lifted import compute_edit_geometry

# Disoccluded pixels with no background image: magenta, which photos rarely contain.
HOLE_COLOUR = (1.0, 0.0, 1.0)


def preview_frame(image, geometry: EditGeometry, background=None) -> np.ndarray:
    """The warped photo (h, w, 3) float32 for one frame's geometry (on the image's grid).

    Moved pixels (the objects; every covered pixel when the camera moves) take the input colour
    at their source point (bilinear). Elsewhere: the ``background`` image (object removed) when
    given and the camera stays, else the input image; holes are painted `HOLE_COLOUR`.
    """
    import torch

    from .warp import warp

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image: expected (H, W, 3), got shape {image.shape}")
    geo = geometry
    if geo.shape != image.shape[:2]:
        raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, geometry {geo.shape[1]}x{geo.shape[0]}")
    if background is not None and not geo.camera_moved:
        out = np.array(background, dtype=np.float32)
        if out.shape != image.shape:
            raise ValueError(f"background: shape {out.shape} differs from the image {image.shape}")
    else:
        out = image.copy()
        out[geo.hole_mask] = HOLE_COLOUR
    moved_mask = geo.moved_mask
    signal = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    moved = warp(signal, torch.from_numpy(geo.source_coords))[0].numpy().transpose(1, 2, 0)
    out[moved_mask] = moved[moved_mask]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def render_preview(image, depth, object_mask, transform, background=None, camera=None, *,
                   background_depth=None, geometry: EditGeometry | None = None):
    """Warp the object(s) of ``image`` (H, W, 3 float [0, 1]) by ``transform`` (a 4x4 matrix or
    an `engine.transforms.FrameEdit`); return (rgb float32 (H, W, 3), EditGeometry). One-off use:
    for several frames of one photo build an `engine.lifted.LiftedScene` once and call
    `preview_frame` with each of its frames. Pass ``geometry`` to reuse one already computed."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image: expected (H, W, 3), got shape {image.shape}")
    geo = geometry or compute_edit_geometry(depth, object_mask, transform, background_depth, camera)
    return preview_frame(image, geo, background), geo
