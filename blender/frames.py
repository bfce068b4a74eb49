"""The one code path for a frame, its Blender half (main thread or the render thread: reads
Blender data); the session half (session/frames.py) renders without bpy.

- ``frame_edit(obj, depsgraph)``: the frame's edit, one camera-frame transform per moving object
  of the photo (mask order), which of them render (``hide_render``), the copies (duplicates) and
  the camera's move (None: the camera stays; blender/matrices.py);
- ``photo_for_camera(scene)``: the photo the scene camera sees (what the render engine renders);
- ``engine_for(obj, scene)``: the engine a render uses (diffusion fails where it cannot run, unless
  the artist chose "Diffusion, else Preview");
- ``frame_source(...)``: a ``FrameSource`` naming everything a renderer needs;
- ``plan_frames(...)``: a stop-motion run's frames (session/stopmotion.py renders them);
- ``view_layer_passes(scene, view_layer)``: the render passes a view layer asks for.
"""
from __future__ import annotations

import json
import os

import bpy
import numpy as np

from ..session import deps
from ..session.errors import AddonError, user_message
from ..engine.transforms import Copy, FrameEdit
from ..session.frames import FrameSource, frame_key
from ..session.photo import split_list
from ..session.stopmotion import FramePlan
from .matrices import camera_move, is_copy, moving_objects, object_edit, photo_copies, photo_frame
from .options import edit_settings, engine_options


def frame_edit(obj, depsgraph=None):
    """The edit of the photo whose handle is ``obj`` at the depsgraph's frame (else now): each of
    its objects' move within the photo, in mask order, whether it renders ("Disable in Renders",
    keyable, is the engine's ``"visible": false``), its copies (duplicates of its objects, in the
    order of their names) and the scene camera's move."""
    photo_world = photo_frame(obj, depsgraph)
    found = moving_objects(obj)
    # by mask number: an object deleted from the scene stays where it was (identity)
    objects = [np.eye(4)] * (1 + max(o.dh.object_index for o in found))
    visible = [True] * len(objects)
    for o in found:
        objects[o.dh.object_index] = object_edit(o, photo_world, depsgraph)
        visible[o.dh.object_index] = not renders_hidden(o, depsgraph)
    copies = tuple(Copy(o.dh.object_index, _float64(object_edit(o, photo_world, depsgraph)),
                        not renders_hidden(o, depsgraph))
                   for o in photo_copies(obj) if o.dh.object_index < len(objects))
    camera = camera_move(obj, depsgraph)
    return FrameEdit(tuple(_float64(m) for m in objects), None if camera is None else _float64(camera),
                     () if all(visible) else tuple(visible), copies)


def _float64(matrix):
    return np.asarray(matrix, np.float64)


def renders_hidden(obj, depsgraph=None):
    """The object's "Disable in Renders" (``hide_render``) at the depsgraph's frame (else now)."""
    if depsgraph is not None:
        try:
            return bool(obj.evaluated_get(depsgraph).hide_render)
        except (ReferenceError, RuntimeError):  # not in that depsgraph
            pass
    return bool(obj.hide_render)


def photo_for_camera(scene):
    """The imported object seen through ``scene``'s camera (what the render engine renders)."""
    camera = scene.camera
    camera = getattr(camera, "original", camera)
    if camera is None:
        raise AddonError("the scene has no camera: import a photo (its camera becomes the scene camera)")
    scene = getattr(scene, "original", scene)
    handles = [o for o in scene.objects if o.dh.role == "OBJECT" and o.dh.camera == camera
               and o.dh.handle in (None, o) and not is_copy(o)]  # a duplicate is a copy, not a photo
    if not handles:
        raise AddonError(f"the scene camera '{camera.name}' is not an imported photo's camera: make the "
                         "photo's camera active (or import a photo)")
    if len(handles) > 1:
        raise AddonError(f"{len(handles)} photos share the scene camera '{camera.name}': import each photo "
                         "with its own camera")
    return handles[0]


def frame_source(obj, engine_name, scene=None, context=None, require=True, chosen=""):
    """Main thread (or the render thread): a FrameSource for the photo whose moving object is ``obj``.

    The diffusion engine's options come from the preferences and the scene (options.py), its
    EditSettings from the photo's properties. require: check the Python dependencies first.
    chosen: the engine the artist chose (``engine_name`` is the one that renders; see engine_for).
    """
    props = obj.dh
    if props.camera is None:
        raise AddonError(f"'{obj.name}' lost its camera: import the photo again")
    if not props.cache_dir:
        raise AddonError(f"'{obj.name}' has no photo cache: import the photo again")
    if require:
        deps.require(deps.PREVIEW_MODULES if engine_name == "PREVIEW" else tuple(deps.MODULES))
    cache_dir = os.path.normpath(bpy.path.abspath(props.cache_dir))
    key = {"engine": engine_name, "cache": os.path.basename(cache_dir), "size": [props.height, props.width]}
    options, settings = engine_options(context, scene), None  # the models: a missing cache's rebuild too
    if engine_name == "DIFFUSION":
        settings = edit_settings(props, options)
        # the models too: other weights are other pixels (and another session renderer)
        key.update(prompt=props.prompt, settings=settings.to_dict(), models=options)
    return FrameSource(engine_name, cache_dir, props.prompt, (props.height, props.width),
                       json.dumps(key, sort_keys=True), options, settings, chosen or engine_name, props.quality,
                       photo_sources(obj), len(props.camera.dh.parts) or None)


def photo_sources(obj):
    """What Import Photo was given for the photo whose handle is ``obj`` (absolute paths), from
    which a missing cache is made again (session/photo.py load_or_rebuild)."""
    props = obj.dh
    absolute = lambda path: os.path.normpath(bpy.path.abspath(path)) if path else ""  # noqa: E731
    return {"image": absolute(props.image_path), "depth": absolute(props.depth_path),
            "mask": ";".join(absolute(p) for p in split_list(props.mask_path)),
            "object_query": props.object_query, "candidate": props.candidate}


def engine_for(obj, scene, choice=None):
    """(engine that renders, note for the stats line, warning or ''): the artist's ``choice`` (else
    the photo's engine setting) on this node. "DIFFUSION" without its weights or packages fails
    with the one-line reason (a farm manager retries the frame elsewhere; a sequence never mixes
    engines unasked); only "DIFFUSION_OR_PREVIEW" falls back to the preview, with a warning."""
    choice = choice or obj.dh.engine
    if choice == "PREVIEW":
        return "PREVIEW", "preview engine", ""
    if not obj.dh.prompt.strip():  # the scene's problem first: it fails on every node alike
        raise AddonError("the diffusion engine needs a prompt: describe the photo in the sidebar")
    try:
        deps.require(tuple(deps.MODULES))
        from ..engine import registry

        options = engine_options(None, scene)
        registry.resolve("diffusion", options["overrides"].get("diffusion"), models_dir=options["models_dir"])
    except Exception as exc:  # noqa: BLE001 - any reason the diffusion engine cannot run here
        why = " ".join((user_message(exc) or str(exc)).split())
        if choice != "DIFFUSION_OR_PREVIEW":
            raise AddonError(f"this node cannot run the diffusion engine: {why} (the engine 'Diffusion, else "
                             "Preview' renders the preview instead)") from None
        return ("PREVIEW", "preview engine: no diffusion weights",
                f"rendered with the preview engine (Diffusion, else Preview): {why.split(';')[0]}")
    return "DIFFUSION", "diffusion engine", ""


def plan_frames(scene, obj, context_key, frames=None):
    """Main thread: the frames to render, with their transforms and output paths."""
    if frames is None:
        frames = range(scene.frame_start, scene.frame_end + 1, max(1, scene.frame_step))
    current = scene.frame_current
    plan = []
    try:
        for frame in frames:
            scene.frame_set(frame)
            edit = frame_edit(obj)
            plan.append(FramePlan(frame, edit, scene.render.frame_path(frame=frame), frame_key(edit, context_key)))
    finally:
        scene.frame_set(current)
    return plan


def view_layer_passes(scene, view_layer):
    """The passes the view layer asks for (`session.frames.render_passes`): one mask per object
    and copy of the photo the scene camera sees."""
    from ..session.frames import render_passes

    flags = getattr(view_layer, "diffusion_handles", None)
    if flags is None:
        return render_passes(z=view_layer.use_pass_z)
    n_parts = 0
    if flags.use_pass_objects:
        try:
            handle = photo_for_camera(scene)
        except AddonError:  # no photo here: no mask passes (a render says why)
            handle = None
        if handle is not None:  # as frame_edit counts them: objects by number, then copies
            n_objects = 1 + max(o.dh.object_index for o in moving_objects(handle))
            n_parts = n_objects + sum(o.dh.object_index < n_objects for o in photo_copies(handle))
    return render_passes(z=view_layer.use_pass_z, target=flags.use_pass_target, objects=flags.use_pass_objects,
                         valid=flags.use_pass_valid, preview=flags.use_pass_preview, n_parts=n_parts)
