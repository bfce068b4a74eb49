"""The one code path for a frame: what the scene says at a frame -> edited photo pixels.

Shared by the render engine (F12, Ctrl+F12, ``blender -b scene.blend -a``), Render Edit and
Render Stop-Motion, so every way of rendering a frame gives the same pixels:

- ``frame_edit(obj, depsgraph)``: the frame's edit, one camera-frame transform per moving object
  of the photo (mask order) and the camera's move (None: the camera stays; operators/matrices.py);
- ``frame_source(...)`` (main thread, reads Blender data): a ``FrameSource`` naming everything a
  renderer needs and the part of a frame's key that is not the edit;
- ``FrameSource.renderer(progress, should_cancel)`` (any thread, no bpy): the session's renderer,
  built once and kept; it returns uint8 (H, W, 3) frames at the photo's size.

Frames are uint8 from here on: the PNG a stop-motion run writes and the float pass the render
engine hands Blender hold the same values (the engine's sRGB -> linear conversion round-trips
every 8-bit value exactly under the Standard view transform).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np

from . import models
from .errors import AddonError


@dataclass(frozen=True)
class Edit:
    """One frame's edit: per moving object a (4, 4) camera-frame transform, and the camera's move
    M (p_new = M p_old for the whole scene) or None."""

    objects: tuple
    camera: object = None

    def for_engine(self):
        """What ``Engine.edit`` / the preview take: an `engine.transforms.FrameEdit`."""
        from ..engine.transforms import FrameEdit

        return FrameEdit(objects=tuple(np.asarray(m, np.float64) for m in self.objects),
                         camera=None if self.camera is None else np.asarray(self.camera, np.float64))

    def key_bytes(self):
        """Rounded matrices (no -0.0): equal edits give equal bytes."""
        mats = list(self.objects) + ([] if self.camera is None else [self.camera])
        return b"".join((np.round(np.asarray(m, np.float64), 6) + 0.0).tobytes() for m in mats)


def frame_key(edit, context_key):
    """Identifies a frame's content: the edit and everything else that decides its pixels."""
    if not isinstance(edit, Edit):
        edit = Edit((edit,))
    return hashlib.sha1(context_key.encode() + edit.key_bytes()).hexdigest()[:16]


def to_uint8(rgb):
    """Float [0, 1] -> uint8 with the rounding engine.io.save_image uses (uint8 passes through)."""
    arr = np.asarray(rgb)
    if arr.dtype == np.uint8:
        return arr
    return (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def fit(frame, height, width):
    """A uint8 frame resized (bicubic) to height x width (e.g. a render at 50 %); unchanged if it fits."""
    if frame.shape[:2] == (height, width):
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((width, height), Image.BICUBIC))


# --- Blender side (main thread or the render thread: reads Blender data) -------------------------

def frame_edit(obj, depsgraph=None):
    """The edit of the photo whose handle is ``obj`` at the depsgraph's frame (else now): each of
    its objects' move within the photo, in mask order, and the scene camera's move."""
    from .matrices import camera_move, moving_objects, object_edit, photo_frame

    photo_world = photo_frame(obj, depsgraph)
    found = moving_objects(obj)
    # by mask number: an object deleted from the scene stays where it was (identity)
    objects = [np.eye(4)] * (1 + max(o.dh.object_index for o in found))
    for o in found:
        objects[o.dh.object_index] = object_edit(o, photo_world, depsgraph)
    return Edit(tuple(objects), camera_move(obj, depsgraph))


def photo_for_camera(scene):
    """The imported object seen through ``scene``'s camera (what the render engine renders)."""
    camera = scene.camera
    camera = getattr(camera, "original", camera)
    if camera is None:
        raise AddonError("the scene has no camera: import a photo (its camera becomes the scene camera)")
    scene = getattr(scene, "original", scene)
    handles = [o for o in scene.objects if o.dh.role == "OBJECT" and o.dh.camera == camera
               and o.dh.handle in (None, o)]
    if not handles:
        raise AddonError(f"the scene camera '{camera.name}' is not an imported photo's camera: make the "
                         "photo's camera active (or import a photo)")
    if len(handles) > 1:
        raise AddonError(f"{len(handles)} photos share the scene camera '{camera.name}': import each photo "
                         "with its own camera")
    return handles[0]


def frame_source(obj, engine_name, scene=None, context=None, require=True):
    """Main thread (or the render thread): a FrameSource for the photo whose moving object is ``obj``.

    The diffusion engine's options come from the preferences and the scene (models.py), its
    EditSettings from the photo's properties. require: check the Python dependencies first.
    """
    import bpy

    from . import deps

    props = obj.dh
    if props.camera is None:
        raise AddonError(f"'{obj.name}' lost its camera: import the photo again")
    if not props.cache_dir:
        raise AddonError(f"'{obj.name}' has no photo cache: import the photo again")
    if require:
        deps.require(deps.PREVIEW_MODULES if engine_name == "PREVIEW" else tuple(deps.MODULES))
    cache_dir = os.path.normpath(bpy.path.abspath(props.cache_dir))
    key = {"engine": engine_name, "cache": os.path.basename(cache_dir), "size": [props.height, props.width]}
    options = settings = None
    if engine_name == "DIFFUSION":
        options = models.engine_options(context, scene)
        settings = models.edit_settings(props, options)
        if not props.prompt.strip():
            raise AddonError("the diffusion engine needs a prompt: describe the photo in the sidebar")
        # the models too: other weights are other pixels (and another session renderer)
        key.update(prompt=props.prompt, settings=settings.to_dict(), models=options)
    return FrameSource(engine_name, cache_dir, props.prompt, (props.height, props.width),
                       json.dumps(key, sort_keys=True), options, settings)


# --- no bpy below: worker threads and the render thread ------------------------------------------

@dataclass(frozen=True)
class FrameSource:
    engine: str  # "PREVIEW" | "DIFFUSION"
    cache_dir: str  # absolute: the photo's cache folder
    prompt: str
    shape: tuple  # the photo's (height, width)
    context_key: str  # JSON: what, besides the edit, decides a frame's pixels
    options: dict | None = field(default=None, compare=False)
    settings: object = field(default=None, compare=False)

    def key(self, edit):
        return frame_key(edit, self.context_key)

    def renderer(self, progress=None, should_cancel=None):
        """The session's FrameRenderer for this source (the photo, models and prepared state load
        once per Blender session)."""
        with models.session_lock:
            cached = models.session_store("renderers").get(self.context_key)
        if cached is not None:
            return cached
        from .photo import load_cache
        from .renderers import DiffusionRenderer, PreviewRenderer

        inputs = load_cache(self.cache_dir)
        if inputs.shape != tuple(self.shape):
            raise AddonError(f"photo cache '{self.cache_dir}' holds a {inputs.shape[1]}x{inputs.shape[0]} photo, "
                             f"the scene a {self.shape[1]}x{self.shape[0]} one: import the photo again")
        prepared_dir = None
        if self.engine == "PREVIEW":
            base = PreviewRenderer(inputs)
        else:
            if progress:
                progress("loading models", 0, 1)
            engine = models.get_engine(self.options, self.settings)
            prepared, prepared_dir = models.get_prepared(engine, inputs, self.prompt, self.settings, self.cache_dir,
                                                  progress=progress, should_cancel=should_cancel)
            base = DiffusionRenderer(inputs, engine, prepared, engine.runtime.frame_batch_size, self.settings)
        renderer = FrameRenderer(base, self, prepared_dir)
        with models.session_lock:
            models.session_store("renderers")[self.context_key] = renderer
        return renderer


class FrameRenderer:
    """``renderer(edits, progress, should_cancel) -> list of uint8 (H, W, 3) frames`` at the photo's
    size; remembers recent frames by key, so an unchanged pose (or a second pass, e.g. a movie
    after its frames) costs nothing."""

    def __init__(self, base, source, prepared_dir=None):
        self.base, self.source, self.prepared_dir = base, source, prepared_dir
        self.name = base.name
        self.batch_size = getattr(base, "batch_size", 1)
        self.visible = {}  # frame key -> one bool per object (what the engine said when it rendered)

    def __call__(self, edits, progress=None, should_cancel=None):
        edits = [e if isinstance(e, Edit) else Edit((e,)) for e in edits]
        keys = [self.source.key(e) for e in edits]
        frames = {k: _memo_get(k) for k in keys}
        todo = [(k, e) for k, e in dict(zip(keys, edits)).items() if frames[k] is None]
        if todo:
            images = self.base([e.for_engine() for _, e in todo], progress=progress, should_cancel=should_cancel)
            visible = list(getattr(self.base, "last_visible", ()))
            for n, ((k, _), rgb) in enumerate(zip(todo, images)):
                frames[k] = to_uint8(rgb)
                _memo_put(k, frames[k])
                if n < len(visible):
                    self.visible[k] = visible[n]
        return [frames[k] for k in keys]

    def out_of_view(self, edit):
        """1-based numbers of the objects a rendered frame shows nowhere (it renders without them)."""
        seen = self.visible.get(self.source.key(edit if isinstance(edit, Edit) else Edit((edit,))), ())
        return [n + 1 for n, v in enumerate(seen) if not v]


def out_of_view_note(numbers):
    """The report line for objects that left the view ('' when none did)."""
    if not numbers:
        return ""
    which = ", ".join(str(n) for n in numbers)
    return f"object{'s' if len(numbers) > 1 else ''} {which} out of view: rendered without"


MEMO_BYTES = 256 << 20  # recent frames kept in memory (a few hundred photo-size frames)


def _memo_get(key):
    with models.session_lock:
        memo = models.session_store("frames")
        frame = memo.get(key)
        if frame is not None:
            memo.move_to_end(key)
        return frame


def _memo_put(key, frame):
    with models.session_lock:
        memo = models.session_store("frames")
        memo[key] = frame
        total = sum(f.nbytes for f in memo.values())
        while total > MEMO_BYTES and len(memo) > 1:
            _, dropped = memo.popitem(last=False)
            total -= dropped.nbytes


def remember(key, frame):
    """Keep a frame already made (e.g. read back from a finished stop-motion run) under its key."""
    _memo_put(key, to_uint8(frame))


def forget():
    """Drop the session's renderers and remembered frames (e.g. after the photo's files changed)."""
    with models.session_lock:
        models.session_store("renderers").clear()
        models.session_store("frames").clear()
