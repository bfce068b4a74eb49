"""The one code path for a frame, its session half (no bpy: worker threads and the render thread).

Shared by the render engine (F12, Ctrl+F12, ``blender -b scene.blend -a``), Render Edit and
Render Stop-Motion, so every way of rendering a frame gives the same pixels. The Blender half
(blender/frames.py) reads the scene: ``frame_edit`` gives a frame's edit as the engine's own
`engine.transforms.FrameEdit` (one camera-frame transform per object of the photo, in mask order,
which render, the copies, and the camera's move: None when the camera stays) and ``frame_source`` a ``FrameSource`` naming everything a renderer needs and the
part of a frame's key that is not the edit. Here:

- ``FrameSource.renderer(progress, should_cancel)`` (any thread): the session's ``FrameRenderer``,
  built once and kept; it returns uint8 (H, W, 3) frames at the photo's size;
- ``pass_pixels``: a frame as the render engine's float pass holds it;
- ``render_passes`` / ``FrameRenderer.passes``: the render engine's other passes (Depth, the
  masks, the covered pixels, the preview) and their pixels for a frame.

Frames are uint8 from here on: the PNG a stop-motion run writes and the float pass the render
engine hands Blender hold the same values (the engine's sRGB -> linear conversion round-trips
every 8-bit value exactly under the Standard view transform).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from . import store
from ..engine.images import resize_nearest, to_uint8
from ..engine.transforms import FrameEdit, distinct
from .errors import AddonError
from .renderers import Renderer


def as_edit(edit) -> FrameEdit:
    """A frame's edit as the engine's own type: a FrameEdit as it is, a bare 4x4 matrix as a move
    of object 1 (no camera move)."""
    return edit if isinstance(edit, FrameEdit) else FrameEdit((np.asarray(edit, np.float64),))


def frame_key(edit, context_key):
    """Identifies a frame's content: the edit and everything else that decides its pixels."""
    # the engine's one rule for "the same edit" (engine.transforms.FrameEdit.key)
    return hashlib.sha1((context_key + as_edit(edit).key()).encode()).hexdigest()[:16]


def fit(frame, height, width):
    """A uint8 frame resized to height x width (e.g. a render at 50 %) with the engine's one smooth
    resize (area averaging when shrinking, bicubic when enlarging); unchanged if it fits."""
    if frame.shape[:2] == (height, width):
        return frame
    from ..engine.images import resize_image

    return to_uint8(resize_image(np.asarray(frame, np.float32) / 255.0, (height, width)))


def srgb_to_linear(rgb):
    rgb = np.asarray(rgb, dtype=np.float64)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def pass_pixels(frame, view_transform="Standard"):
    """uint8 (H, W, 3) frame, top row first -> float32 RGBA rows bottom-up, as a render pass holds them.
    Through a 256-entry table of the float64 conversion: the same values, and no full-size float64
    copy of a 12-megapixel frame."""
    table = np.arange(256, dtype=np.float64) / 255.0
    if view_transform != "Raw":
        table = srgb_to_linear(table)
    rgba = np.ones(frame.shape[:2] + (4,), np.float32)
    rgba[..., :3] = table.astype(np.float32)[np.asarray(frame, np.uint8)[::-1]]
    return rgba


# The render engine's passes besides Combined (operators/render_engine.py registers them): Blender's
# own Depth and the add-on's, named as the compositor's Render Layers node shows them.
PASS_DEPTH, PASS_TARGET, PASS_VALID, PASS_PREVIEW = "Depth", "DH Target", "DH Valid", "DH Preview"


def mask_pass(n):
    """The pass of part n (1-based: the objects in mask order, then the copies)."""
    return f"DH Mask {n}"


def render_passes(z=False, target=False, objects=False, valid=False, preview=False, n_parts=0):
    """(name, channels, channel ids, type) of each pass the flags ask for (``register_pass``)."""
    out = [(PASS_DEPTH, 1, "Z", "VALUE")] if z else []
    out += [(PASS_TARGET, 1, "X", "VALUE")] if target else []
    out += [(mask_pass(n), 1, "X", "VALUE") for n in range(1, n_parts + 1)] if objects else []
    out += [(PASS_VALID, 1, "X", "VALUE")] if valid else []
    out += [(PASS_PREVIEW, 4, "RGBA", "COLOR")] if preview else []
    return out


def frame_passes(inputs, edit, names, height, width, view_transform="Standard"):
    """The passes ``names`` of one frame, each float32 rows bottom-up as a render pass holds them
    (one value per pixel, or RGBA for the preview), at height x width. They come from the photo's
    one lifted scene at its own size (``inputs.scene`` of its `PhotoInputs`; what `engine preview`
    writes for the same edit): Depth is the edited depth in metres (camera z), the masks are 1 / 0,
    the preview as the Combined pass of a preview render. A name the frame cannot give (a mask of a part it does not have) is an error."""
    from ..engine.preview import preview_frame

    geo = inputs.scene.frame(as_edit(edit), edited_depth=PASS_DEPTH in names)
    out = {}
    for name in names:
        if name == PASS_DEPTH:
            value = geo.edited_depth
        elif name == PASS_TARGET:
            value = geo.target_mask
        elif name == PASS_VALID:
            value = geo.valid_mask
        elif name == PASS_PREVIEW:
            rgb = fit(to_uint8(preview_frame(inputs.image, geo, inputs.background_image)), height, width)
            out[name] = pass_pixels(rgb, view_transform)
            continue
        elif name.startswith(mask_pass("")) and name[len(mask_pass("")):].isdigit():
            n = int(name[len(mask_pass("")):])
            if not 1 <= n <= len(geo.target_masks):
                raise AddonError(f"render pass '{name}': this frame has {len(geo.target_masks)} object(s) and "
                                 f"copies; update the view layer's passes (the photo's copies changed)")
            value = geo.target_masks[n - 1]
        else:
            raise AddonError(f"render pass '{name}': not a pass of the Diffusion Handles engine")
        # nearest pixel: a mask stays a mask, a depth edge is not blended
        out[name] = resize_nearest(np.asarray(value, np.float32), (height, width))[::-1].copy()
    return out


@dataclass(frozen=True)
class FrameSource:
    engine: str  # "PREVIEW" | "DIFFUSION"
    cache_dir: str  # absolute: the photo's cache folder
    prompt: str
    shape: tuple  # the photo's (height, width)
    context_key: str  # JSON: what, besides the edit, decides a frame's pixels
    options: dict | None = field(default=None, compare=False)
    settings: object = field(default=None, compare=False)
    chosen: str = field(default="", compare=False)  # the artist's engine choice (e.g. "DIFFUSION_OR_PREVIEW")
    quality: str = field(default="", compare=False)  # the photo's quality preset
    sources: dict | None = field(default=None, compare=False)  # Import Photo's inputs: a missing cache's rebuild
    n_objects: int | None = field(default=None, compare=False)  # the photo's objects (mask order)

    def key(self, edit):
        return frame_key(edit, self.context_key)

    def metadata(self, renderer):
        """What made a frame, written into the frame file itself (`METADATA_FIELDS`: PNG text
        chunks, EXR header fields), so frames of a sequence rendered by different engines or
        models can be found: the engine that rendered it, the artist's choice, the quality and
        the diffusion model with its revision."""
        diffusion = self.engine == "DIFFUSION"
        prepared = getattr(getattr(renderer, "base", renderer), "prepared", None)
        model = f"{prepared.model_id}@{prepared.revision}" if diffusion and prepared is not None else "none"
        values = (self.engine.lower(), (self.chosen or self.engine).lower(), self.quality if diffusion else "none",
                  model)
        return dict(zip(METADATA_FIELDS, values))

    def renderer(self, progress=None, should_cancel=None):
        """The session's FrameRenderer for this source (the photo, models and prepared state load
        once per Blender session)."""
        with store.session_lock:
            cached = store.session_store("renderers").get(self.context_key)
        if cached is not None:
            return cached
        from .photo import load_or_rebuild
        from .renderers import DiffusionRenderer, PreviewRenderer

        inputs, rebuilt = load_or_rebuild(self.cache_dir, self.sources, self.options,
                                          self.n_objects)
        if inputs.shape != tuple(self.shape):
            raise AddonError(f"photo cache '{self.cache_dir}' holds a {inputs.shape[1]}x{inputs.shape[0]} photo, "
                             f"the scene a {self.shape[1]}x{self.shape[0]} one: import the photo again")
        prepared_dir = None
        if self.engine == "PREVIEW":
            base = PreviewRenderer(inputs)
        else:
            if progress:
                progress("loading models", 0, 1)
            engine = store.get_engine(self.options, self.settings)
            prepared, prepared_dir = store.get_prepared(engine, inputs, self.prompt, self.settings, self.cache_dir,
                                                  progress=progress, should_cancel=should_cancel)
            base = DiffusionRenderer(inputs, engine, prepared, engine.runtime.frame_batch_size, self.settings)
        renderer = FrameRenderer(base, self, prepared_dir)
        renderer.note = rebuilt  # said once, by whoever rendered with it first (FrameRenderer.take_note)
        with store.session_lock:
            store.session_store("renderers")[self.context_key] = renderer
        return renderer


class FrameRenderer:
    """``renderer(edits, progress, should_cancel) -> list of uint8 (H, W, 3) frames`` at the photo's
    size; remembers recent frames by key, so an unchanged pose (or a second pass, e.g. a movie
    after its frames) costs nothing."""

    def __init__(self, base: Renderer, source: FrameSource, prepared_dir=None):
        self.base, self.source, self.prepared_dir = base, source, prepared_dir
        self.name = base.name
        self.batch_size = getattr(base, "batch_size", 1)
        self.notes = {}  # frame key -> the engine's visibility lines (EditGeometry.notes) when it rendered
        self.note = ""

    def take_note(self):
        """The line about how this renderer's photo was loaded (a rebuilt cache), once; then ''."""
        note, self.note = self.note, ""
        return note

    def __call__(self, edits, progress=None, should_cancel=None):
        edits = [as_edit(e) for e in edits]
        keys = [self.source.key(e) for e in edits]
        frames = {k: _memo_get(k) for k in keys}
        # each key once (the engine's one rule for equal frames), unless remembered
        todo = [(keys[n], edits[n]) for n in distinct(keys) if frames[keys[n]] is None]
        if todo:
            images = self.base([e for _, e in todo], progress=progress, should_cancel=should_cancel)
            notes = list(getattr(self.base, "last_notes", ()))
            for n, ((k, _), rgb) in enumerate(zip(todo, images)):
                frames[k] = to_uint8(rgb)
                _memo_put(k, frames[k])
                if n < len(notes):
                    self.notes[k] = tuple(notes[n])
        return [frames[k] for k in keys]

    def passes(self, edit, names, height, width, view_transform="Standard"):
        """The render passes ``names`` of ``edit`` (`frame_passes`), from the photo's one lifted
        scene (`engine.inputs.PhotoInputs.scene`)."""
        return frame_passes(self.base.inputs, edit, names, height, width, view_transform)

    def out_of_view(self, edit):
        """What a rendered frame says about parts (objects, then copies) it does not show as
        placed, one line each in the engine's one wording (`engine.geometry.EditGeometry.notes`:
        out of view, hidden behind object N, too small to see, filling the frame)."""
        return list(self.notes.get(self.source.key(edit), ()))


# The fields of a frame's own metadata (FrameSource.metadata), as Blender's Image Editor
# (Sidebar > Metadata), exiftool or PIL's ``Image.open(path).text`` show them.
METADATA_FIELDS = ("DH Engine", "DH Engine Choice", "DH Quality", "DH Model")


def write_frame(path, rgb, metadata=None):
    """A frame file written atomically (temporary name, then renamed), as Blender writes the
    render engine's frames: PNG with ``metadata`` as text chunks; other formats without it."""
    from ..engine.io import atomic_output, save_image

    if not metadata or not str(path).lower().endswith(".png"):
        return save_image(path, rgb)
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for name, value in metadata.items():
        info.add_text(name, str(value))
    with atomic_output(path) as tmp:
        Image.fromarray(to_uint8(rgb)).save(tmp, format="PNG", pnginfo=info)


def read_metadata(path):
    """The ``METADATA_FIELDS`` a frame file carries ({} when none or unreadable): PNG text chunks
    (PIL) or OpenEXR header string attributes (read here: no OpenEXR module needed)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return {}
    if head[:4] == b"\x76\x2f\x31\x01":  # OpenEXR: magic, version, then name\0type\0size value ...
        fields, at = {}, 8
        while at < len(head) and head[at] != 0:
            name_end = head.find(b"\0", at)
            type_end = head.find(b"\0", name_end + 1)
            if name_end < 0 or type_end < 0 or type_end + 5 > len(head):
                break
            size = int.from_bytes(head[type_end + 1:type_end + 5], "little")
            value = head[type_end + 5:type_end + 5 + size]
            name = head[at:name_end].decode("latin-1")
            if head[name_end + 1:type_end] == b"string" and name in METADATA_FIELDS:
                fields[name] = value.decode("utf-8", "replace")
            at = type_end + 5 + size
        return fields
    try:
        from PIL import Image

        with Image.open(path) as image:
            text = getattr(image, "text", None) or {}
    except Exception:  # noqa: BLE001 - not an image PIL reads: no metadata
        return {}
    return {k: v for k, v in text.items() if k in METADATA_FIELDS}


def out_of_view_note(notes):
    """The report line for a frame's visibility notes ('' when it has none)."""
    return "; ".join(notes)


MEMO_BYTES = 256 << 20  # recent frames kept in memory (a few hundred photo-size frames)


def _memo_get(key):
    with store.session_lock:
        memo = store.session_store("frames")
        frame = memo.get(key)
        if frame is not None:
            memo.move_to_end(key)
        return frame


def _memo_put(key, frame):
    with store.session_lock:
        memo = store.session_store("frames")
        memo[key] = frame
        total = sum(f.nbytes for f in memo.values())
        while total > MEMO_BYTES and len(memo) > 1:
            _, dropped = memo.popitem(last=False)
            total -= dropped.nbytes


def remember(key, frame):
    """Keep a frame already made (e.g. read back from a finished stop-motion run) under its key."""
    _memo_put(key, to_uint8(frame))


def forget():
    """Drop the session's renderers, prepared photos and remembered frames (e.g. after the photo's
    files changed: a prepared photo is loaded again from its folder, where the engine checks it
    against the photo's inputs)."""
    with store.session_lock:
        for name in ("renderers", "frames", "prepared"):
            store.session_store(name).clear()
