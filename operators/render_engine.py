"""The "Diffusion Handles" render engine (``scene.render.engine = "DIFFUSION_HANDLES"``).

F12 renders the current frame's edit of the photo seen through the scene camera; Ctrl+F12 and
``blender -b scene.blend -a`` render the animation with Blender's own output machinery (path with
``#``, file formats, FFmpeg movies, frame range and step, placeholders, no-overwrite), so render
farms that split frames among nodes (Flamenco's stock job types) work unchanged. Every frame goes
through frames.py, the code path Render Edit and Render Stop-Motion use too.

The photo's cache folder is found from the .blend (stored relative to it when saved), so a node
with the cache on shared storage renders without preparing; a missing or stale prepared cache is
prepared once per Blender session. Problems end the frame with an error report (nothing written,
Blender removes its placeholder) instead of a wrong frame.

Colours: the pass holds scene-linear values; under the Standard view transform (Import Photo sets
it, and dither 0) Blender's 8-bit output equals the frame exactly. Under "Raw" the sRGB values go
in unchanged.
"""
import bpy
import numpy as np

from .errors import AddonError, user_message

IDNAME = "DIFFUSION_HANDLES"

# Blender's own panels that apply to this engine: output, format, frame range, colour management, camera.
_PANEL_PREFIXES = ("RENDER_PT_format", "RENDER_PT_frame_range", "RENDER_PT_time_stretching",
                   "RENDER_PT_post_processing", "RENDER_PT_stamp", "RENDER_PT_output", "RENDER_PT_encoding",
                   "RENDER_PT_color_management", "DATA_PT_lens", "DATA_PT_camera")


def srgb_to_linear(rgb):
    rgb = np.asarray(rgb, dtype=np.float64)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def pass_pixels(frame, view_transform="Standard"):
    """uint8 (H, W, 3) frame, top row first -> float32 RGBA rows bottom-up, as a render pass holds them."""
    rgb = frame.astype(np.float64) / 255.0
    if view_transform != "Raw":
        rgb = srgb_to_linear(rgb)
    rgba = np.ones(frame.shape[:2] + (4,), np.float32)
    rgba[..., :3] = rgb[::-1]
    return rgba


def _engine_for(obj, scene):
    """(engine name, note for the stats line): the photo's engine, or the preview when the
    diffusion weights are missing and the scene does not require them."""
    name = obj.dh.engine
    if name != "DIFFUSION":
        return name, "preview engine"
    from . import deps

    try:
        deps.require(tuple(deps.MODULES))
        from ..engine import registry
        from .models import engine_options

        options = engine_options(None, scene)
        registry.resolve("diffusion", options["overrides"].get("diffusion"), models_dir=options["models_dir"])
    except Exception as exc:  # noqa: BLE001 - any reason the diffusion engine cannot run here
        why = user_message(exc) or str(exc)
        if scene.dh.require_weights:
            raise AddonError(f"this node cannot run the diffusion engine: {why}") from None
        return "PREVIEW", f"preview engine: no diffusion weights ({why.split(';')[0]})"
    return name, "diffusion engine"


class DiffusionHandlesRenderEngine(bpy.types.RenderEngine):
    bl_idname = IDNAME
    bl_label = "Diffusion Handles"
    bl_use_preview = False  # material / world previews: nothing to edit
    bl_use_eevee_viewport = True  # Material Preview in the viewport keeps working
    bl_use_postprocess = True

    def render(self, depsgraph):
        from ..engine.errors import CancelledError
        from .frames import fit, frame_edit, frame_source, out_of_view_note, photo_for_camera

        if self.is_preview:
            return
        scene = depsgraph.scene
        frame = scene.frame_current
        try:
            obj = photo_for_camera(scene)
            engine_name, note = _engine_for(obj, scene.original)
            self.stats(f"Diffusion Handles | frame {frame} | {note}")
            source = frame_source(obj, engine_name, scene=scene.original)
            edit = frame_edit(obj, depsgraph)

            def progress(stage, step, total):
                if total:
                    self.progress(step / total)
                self.stats(f"Diffusion Handles | frame {frame} | {note} | {stage} {step}/{total}")

            renderer = source.renderer(progress, self.test_break)
            image = renderer([edit], progress=progress, should_cancel=self.test_break)[0]
            image = fit(image, self.resolution_y, self.resolution_x)
            hidden = out_of_view_note(renderer.out_of_view(edit))
            if hidden:  # not a failure: the frame renders without the object, and says so
                self.report({"WARNING"}, f"Diffusion Handles, frame {frame}: {hidden}")
                self.stats(f"Diffusion Handles | frame {frame} | {hidden}")
        except CancelledError:
            return  # Esc: Blender stops; no result, nothing written
        except Exception as exc:  # noqa: BLE001 - reported: Blender writes no frame for it
            message = user_message(exc)
            if message is None:
                import traceback

                traceback.print_exc()
                message = f"{type(exc).__name__}: {exc}"
            self.report({"ERROR"}, f"Diffusion Handles, frame {frame}: {message}")
            return
        result = self.begin_result(0, 0, self.resolution_x, self.resolution_y)
        pixels = pass_pixels(image, scene.view_settings.view_transform)
        result.layers[0].passes["Combined"].rect.foreach_set(pixels.ravel())
        self.end_result(result)
        self.progress(1.0)

    # Blender's render progress and stats line (one place, so tests can watch them)
    def stats(self, text):
        self.update_stats("", text)

    def progress(self, fraction):
        self.update_progress(fraction)


def _panels():
    for panel in bpy.types.Panel.__subclasses__():
        if panel.__name__.startswith(_PANEL_PREFIXES) and "BLENDER_RENDER" in getattr(panel, "COMPAT_ENGINES", ()):
            yield panel


CLASSES = (DiffusionHandlesRenderEngine,)


def register():
    for panel in _panels():
        panel.COMPAT_ENGINES.add(IDNAME)


def unregister():
    for panel in _panels():
        panel.COMPAT_ENGINES.discard(IDNAME)
