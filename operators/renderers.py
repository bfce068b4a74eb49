"""Frame renderers: camera-frame transform (4, 4) -> edited photo (H, W, 3) float at photo size.

No bpy: they run in worker threads. ``PreviewRenderer`` needs no weights (the engine's geometric
preview, computed at the photo's size); ``DiffusionRenderer`` runs the Diffusion Handles edit on a
prepared photo and puts each result back onto the photo with `engine.composite.to_photo_size`
(pixels the edit does not change are the photo's own).
Both share the call signature ``renderer(transforms, progress, should_cancel) -> list of images``.
"""
from __future__ import annotations

import numpy as np


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
            out.append(rgb)
        return out


class DiffusionRenderer:
    """Diffusion Handles edits of a prepared photo (several frames per engine call)."""

    name = "diffusion"

    def __init__(self, inputs, engine, prepared, batch_size=1, settings=None):
        self.inputs, self.engine, self.prepared, self.settings = inputs, engine, prepared, settings
        self.batch_size = max(1, int(batch_size))

    def __call__(self, transforms, progress=None, should_cancel=None):
        from ..engine.composite import to_photo_size

        results = self.engine.edit(self.prepared, [np.asarray(t) for t in transforms], progress=progress,
                                   should_cancel=should_cancel, settings=self.settings)
        return [to_photo_size(self.prepared, result) for result in results]
