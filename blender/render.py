"""Render output in Blender: the scene's output settings checked for single frames, a result shown
in the Image Editor, and a movie encoded through the render engine and Blender's FFmpeg output."""
import os

import bpy

from ..session.errors import AddonError
from .scene import RENDER_ENGINE_IDNAME

FRAME_FORMATS = {"PNG", "JPEG", "BMP", "TIFF", "WEBP"}
RESULT_IMAGE = "DH Result"


def check_output(scene):
    if not scene.render.filepath:
        raise AddonError("set the output path (Output Properties > Output) for the frames")
    settings = scene.render.image_settings
    if settings.file_format not in FRAME_FORMATS:
        raise AddonError(f"output file format {settings.file_format} cannot hold single frames: choose PNG "
                         "(enable Movie in the render operator to also get a movie)")


def show_result(context, path):
    """Load ``path`` into the 'DH Result' image and show it in any open Image Editor."""
    image = bpy.data.images.get(RESULT_IMAGE)
    if image is None:
        image = bpy.data.images.load(path, check_existing=False)
        image.name = RESULT_IMAGE
    else:
        image.filepath = path
        image.reload()
    for window in getattr(context.window_manager, "windows", ()):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image
    return image


def write_movie(scene, movie_path, frames=()):
    """Render the scene's animation as an H.264 MP4 through the render engine and Blender's FFmpeg
    output. ``frames``: (key, path) of frames already on disk, remembered first so no edit runs
    again (frames rendered in this session are remembered anyway). Blender writes it into a
    temporary folder next to it (engine.output.temporary_folder, which the next run's clean-up of
    that folder removes if this one is killed), then it is renamed into place; the scene's output
    settings are restored."""
    from ..engine.io import load_image
    from ..engine.output import clean_temporaries, temporary_folder
    from ..session.frames import remember

    for key, path in frames:
        remember(key, load_image(path))
    render, settings = scene.render, scene.render.image_settings
    saved = (render.engine, render.filepath, render.use_file_extension, settings.file_format,
             getattr(settings, "media_type", None))
    movie_path = os.path.abspath(movie_path)
    os.makedirs(os.path.dirname(movie_path), exist_ok=True)
    clean_temporaries(os.path.dirname(movie_path))  # what a killed earlier run left
    with temporary_folder(movie_path) as folder:
        _render_movie(scene, render, settings, saved, os.path.join(folder, os.path.basename(movie_path)), movie_path)
    return movie_path


def _render_movie(scene, render, settings, saved, partial, movie_path):
    try:
        render.engine = RENDER_ENGINE_IDNAME
        if saved[4] is not None:
            settings.media_type = "VIDEO"  # Blender 5: movies are a media type of their own
        settings.file_format = "FFMPEG"
        render.ffmpeg.format, render.ffmpeg.codec = "MPEG4", "H264"
        render.filepath, render.use_file_extension = partial, True
        bpy.ops.render.render(animation=True, scene=scene.name)
        written = render.frame_path(frame=scene.frame_start)
        if not os.path.isfile(written) or not os.path.getsize(written):
            raise AddonError(f"movie '{movie_path}': Blender's FFmpeg output wrote nothing")
        os.replace(written, movie_path)
    finally:
        render.engine, render.filepath, render.use_file_extension = saved[:3]
        if saved[4] is not None:
            settings.media_type = saved[4]
        settings.file_format = saved[3]


def write_photo_movie(obj, engine_name, scene, movie_path, plan):
    """write_movie for a stop-motion run of the photo whose handle is ``obj``: rendered with
    ``engine_name`` (the photo's own engine setting is restored), its planned frames reused."""
    photo_engine, obj.dh.engine = obj.dh.engine, engine_name  # the render engine uses it
    try:
        return write_movie(scene, movie_path, [(item.key, item.path) for item in plan])
    finally:
        obj.dh.engine = photo_engine


# --- farm nodes: the render engine's per-frame claim (session/stopmotion.py) ----------------------
def claim_frame(scene, frame, should_cancel):
    """(claim file, None) when this node renders ``frame``; (None, uint8 frame) when another node did."""
    from ..session.stopmotion import claim_frame as claim

    state, value = claim(scene.render.frame_path(frame=frame), should_cancel)
    return (value, None) if state == "claimed" else (None, value)


def renew_claim(claim):
    from ..engine.output import touch_claim

    touch_claim(claim)


def release_claim(claim):
    if claim is not None:
        from ..engine.output import release_claim as release

        release(claim)


@bpy.app.handlers.persistent
def _frame_written(scene, *_):
    """After Blender wrote a frame of an animation: this node's claim on it is dropped."""
    from ..session.stopmotion import release_frame

    release_frame(scene.render.frame_path(frame=scene.frame_current))


@bpy.app.handlers.persistent
def _render_ended(scene, *_):
    """A finished, cancelled or failed animation: no claim of this process stays on its frames."""
    from ..session.stopmotion import release_frame

    for frame in range(scene.frame_start, scene.frame_end + 1):
        release_frame(scene.render.frame_path(frame=frame))


# --- Ctrl+C in a headless animation render ------------------------------------------------------
# Under the bpy module (and wherever Python owns SIGINT) Ctrl+C would raise KeyboardInterrupt inside
# whichever frame runs, which Blender prints and then renders the next frame. Instead, during a
# background animation render, Ctrl+C is held: the frame in flight finishes and is written, the next
# one ends the render (operators/render_engine.py), the finished frames stay. A second Ctrl+C acts
# at once (the handler that was there before).
_sigint = {"previous": None, "requested": False}


def interrupted():
    """Whether Ctrl+C came during this headless animation render."""
    return _sigint["requested"]


def _hold_sigint(signum, frame):
    import signal

    _sigint["requested"] = True
    signal.signal(signal.SIGINT, _sigint["previous"])
    print("Diffusion Handles: Ctrl+C: stopping after the frame in flight (press it again to stop at once)",
          flush=True)


@bpy.app.handlers.persistent
def _render_started(scene, *_):
    import signal
    import threading

    _sigint["requested"] = False
    if not bpy.app.background or threading.current_thread() is not threading.main_thread():
        return  # the interface has Esc; signals can be set only in the main thread
    if _sigint["previous"] is None:
        previous = signal.getsignal(signal.SIGINT)
        if previous is None:  # not Python's to restore (Blender's own handler stops the render itself)
            return
        _sigint["previous"] = previous
        signal.signal(signal.SIGINT, _hold_sigint)


def _restore_sigint():
    import signal
    import threading

    previous, _sigint["previous"] = _sigint["previous"], None
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, previous)


@bpy.app.handlers.persistent
def _render_finished(scene, *_):
    _render_ended(scene)
    _restore_sigint()


_HANDLERS = (("render_write", _frame_written), ("render_init", _render_started),
             ("render_cancel", _render_finished), ("render_complete", _render_finished))


def frame_claim_handlers(on: bool):
    """Add (``on``) or remove Blender's handlers that drop the frame claims."""
    for name, handler in _HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        if on and handler not in handlers:
            handlers.append(handler)
        elif not on and handler in handlers:
            handlers.remove(handler)
    if not on:
        _restore_sigint()
