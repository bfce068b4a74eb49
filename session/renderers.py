"""Frame renderers: a frame's edit (an `engine.transforms.FrameEdit`: one transform per object,
the camera's move) -> edited photo (H, W, 3) float at photo size.

No bpy: they run in worker threads. ``PreviewRenderer`` needs no weights (the engine's geometric
preview, at the photo's size); ``DiffusionRenderer`` runs the Diffusion Handles edit on a prepared
photo and puts each result back onto the photo with `engine.composite.to_photo_size` (pixels the
edit does not change are the photo's own).
Both follow the ``Renderer`` contract: ``renderer(edits, progress, should_cancel) -> list of
images``, a ``name``, how many frames one call renders well (``batch_size``), and ``last_visible``
left by the last call: per frame one bool per part, objects then copies (False: it left the view
and the frame renders without it; a part the frame removes counts as True), and ``last_notes``: per
frame the geometry's visibility lines (`engine.geometry.EditGeometry.notes`). session/frames.py's ``FrameRenderer`` wraps one (keys, memory, uint8).
Both render the photo's `engine.inputs.PhotoInputs` (``inputs``, its background included) as
the engine checked it: its arrays are used as they are.
"""
from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

Progress = Callable[[str, int, int], None]  # (stage, step, total)
ShouldCancel = Callable[[], bool]


@runtime_checkable
class Renderer(Protocol):
    """A frame renderer: frame edits (`engine.transforms.FrameEdit`) -> (H, W, 3) images at the
    photo's size, float in [0, 1] (or uint8), one per edit, in order."""

    name: str
    batch_size: int
    last_visible: list  # per frame of the last call: one bool per object (in view or not)

    def __call__(self, edits: Sequence, progress: Progress | None = None,
                 should_cancel: ShouldCancel | None = None) -> list[np.ndarray]: ...


class PreviewRenderer(Renderer):
    """The engine's geometric preview for every frame: no model weights, fast."""

    name = "preview"
    batch_size = 1

    def __init__(self, inputs):
        self.inputs = inputs
        self.last_visible, self.last_notes = [], []

    def __call__(self, edits, progress=None, should_cancel=None):
        from ..engine.preview import preview_frame

        inputs = self.inputs
        out, self.last_visible, self.last_notes = [], [], []
        for edit in edits:
            # the photo's one lifted scene (PhotoInputs.scene); a preview draws no edited depth
            geometry = inputs.scene.frame(edit, edited_depth=False)
            out.append(preview_frame(inputs.image, geometry, inputs.background_image))
            lost = geometry.out_of_view  # a part the frame removes is not lost from view
            self.last_visible.append(tuple(n not in lost for n in range(len(geometry.visible))))
            self.last_notes.append(geometry.notes)
        return out


class DiffusionRenderer(Renderer):
    """Diffusion Handles edits of a prepared photo (several frames per engine call)."""

    name = "diffusion"

    def __init__(self, inputs, engine, prepared, batch_size=1, settings=None):
        self.inputs, self.engine, self.prepared, self.settings = inputs, engine, prepared, settings
        self.batch_size = max(1, int(batch_size))
        self.last_visible, self.last_notes = [], []

    def __call__(self, edits, progress=None, should_cancel=None):
        from ..engine.composite import to_photo_size

        results = self.engine.edit(self.prepared, list(edits), progress=progress, should_cancel=should_cancel,
                                   settings=self.settings)
        self.last_visible = [tuple(n + 1 not in r.stats.out_of_view for n in range(len(r.stats.visible_objects)))
                             for r in results]
        self.last_notes = [tuple(r.stats.notes) for r in results]
        return [to_photo_size(self.prepared, result) for result in results]
