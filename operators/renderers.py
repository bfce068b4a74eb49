"""Frame renderers: camera-frame transform (4, 4) -> edited photo (H, W, 3) float at photo size.

No bpy: they run in worker threads. ``PreviewRenderer`` needs no weights (the engine's geometric
preview); ``DiffusionRenderer`` runs the Diffusion Handles edit on a prepared photo.
Both share the call signature ``renderer(transforms, progress, should_cancel) -> list of images``.
"""
from __future__ import annotations

import numpy as np


def resize_to(rgb, height, width):
    """Resize a float (h, w, 3) image to (height, width, 3) (bicubic), unchanged if it fits."""
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.shape[:2] == (height, width):
        return np.clip(rgb, 0.0, 1.0)
    from PIL import Image

    channels = [Image.fromarray(rgb[..., c], mode="F").resize((width, height), Image.BICUBIC) for c in range(3)]
    return np.clip(np.stack([np.asarray(c) for c in channels], axis=-1), 0.0, 1.0)


class PreviewRenderer:
    """The engine's geometric preview for every frame: no model weights, fast."""

    name = "preview"
    batch_size = 1

    def __init__(self, inputs):
        self.inputs = inputs

    def __call__(self, transforms, progress=None, should_cancel=None):
        from ..engine.preview import render_preview

        inputs = self.inputs
        out = []
        for transform in transforms:
            rgb, _geometry = render_preview(inputs.image, inputs.depth, inputs.mask, np.asarray(transform),
                                            background=inputs.background_image, camera=inputs.camera,
                                            background_depth=inputs.background_depth)
            out.append(resize_to(rgb, *inputs.shape))
        return out


class DiffusionRenderer:
    """Diffusion Handles edits of a prepared photo (several frames per engine call)."""

    name = "diffusion"

    def __init__(self, inputs, engine, prepared, batch_size=1, settings=None):
        self.inputs, self.engine, self.prepared, self.settings = inputs, engine, prepared, settings
        self.batch_size = max(1, int(batch_size))

    def __call__(self, transforms, progress=None, should_cancel=None):
        results = self.engine.edit(self.prepared, [np.asarray(t) for t in transforms], progress=progress,
                                   should_cancel=should_cancel, settings=self.settings)
        return [resize_to(result.image, *self.inputs.shape) for result in results]
