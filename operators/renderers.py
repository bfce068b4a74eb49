"""Frame renderers: a frame's edit (an `engine.transforms.FrameEdit`: one transform per object,
the camera's move) -> edited photo (H, W, 3) float at photo size.

No bpy: they run in worker threads. ``PreviewRenderer`` needs no weights (the engine's geometric
preview); ``DiffusionRenderer`` runs the Diffusion Handles edit on a prepared photo.
Both share the call signature ``renderer(edits, progress, should_cancel) -> list of images`` and
leave ``last_visible``: per frame one bool per object (False: it left the view and the frame
renders without it).
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
    """The engine's geometric preview for every frame: no model weights, fast. The photo's lifted
    scene is built once (on the first frame) and kept."""

    name = "preview"
    batch_size = 1

    def __init__(self, inputs):
        self.inputs = inputs
        self.last_visible = []
        self._scene = None

    def __call__(self, edits, progress=None, should_cancel=None):
        from ..engine.lifted import LiftedScene
        from ..engine.preview import preview_frame

        inputs = self.inputs
        if self._scene is None:
            self._scene = LiftedScene.build(inputs.depth, inputs.masks, inputs.background_depth, inputs.camera)
        out, self.last_visible = [], []
        for edit in edits:
            geometry = self._scene.frame(edit)
            out.append(resize_to(preview_frame(inputs.image, geometry, inputs.background_image), *inputs.shape))
            self.last_visible.append(tuple(bool(v) for v in geometry.visible))
        return out


class DiffusionRenderer:
    """Diffusion Handles edits of a prepared photo (several frames per engine call)."""

    name = "diffusion"

    def __init__(self, inputs, engine, prepared, batch_size=1):
        self.inputs, self.engine, self.prepared = inputs, engine, prepared
        self.batch_size = max(1, int(batch_size))
        self.last_visible = []

    def __call__(self, edits, progress=None, should_cancel=None):
        results = self.engine.edit(self.prepared, list(edits), progress=progress, should_cancel=should_cancel)
        self.last_visible = [tuple(bool(v) for v in r.stats.get("visible_objects", ())) for r in results]
        return [resize_to(result.image, *self.inputs.shape) for result in results]
