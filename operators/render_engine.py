"""The "Diffusion Handles" render engine (``scene.render.engine = "DIFFUSION_HANDLES"``).

F12 renders the current frame's edit of the photo seen through the scene camera; Ctrl+F12 and
``blender -b scene.blend -a`` render the animation with Blender's own output machinery (path with
``#``, file formats, FFmpeg movies, frame range and step, placeholders, no-overwrite), so render
farms that split frames among nodes (Flamenco's stock job types) work unchanged. Every frame goes
through the frame code (blender/frames.py, session/frames.py), the code path Render Edit and
Render Stop-Motion use too.

The photo's cache folder is found from the .blend (stored relative to it when saved), so a node
with the cache on shared storage renders without preparing; a missing or stale prepared cache is
prepared once per Blender session. Problems end the frame with an error report (nothing written,
Blender removes its placeholder) instead of a wrong frame.

Passes: besides Combined, Blender's Depth (``view_layer.use_pass_z``: the edited depth in metres)
and the add-on's masks, covered pixels and preview (``view_layer.diffusion_handles.use_pass_*``),
registered in ``update_render_passes`` so View Layer Properties, the compositor and multilayer EXR
see them (session/frames.py computes them from the photo's lifted scene).

Colours: the pass holds scene-linear values; under the Standard view transform (Import Photo sets
it, and dither 0) Blender's 8-bit output equals the frame exactly. Under "Raw" the sRGB values go
in unchanged.
"""
import bpy

from ..blender.scene import RENDER_ENGINE_IDNAME as IDNAME
from ..session.errors import user_message

# Blender's own panels that apply to this engine: output, format, frame range, colour management, camera.
_PANEL_PREFIXES = ("RENDER_PT_format", "RENDER_PT_frame_range", "RENDER_PT_time_stretching",
                   "RENDER_PT_post_processing", "RENDER_PT_stamp", "RENDER_PT_output", "RENDER_PT_encoding",
                   "RENDER_PT_color_management", "DATA_PT_lens", "DATA_PT_camera")


class DiffusionHandlesRenderEngine(bpy.types.RenderEngine):
    bl_idname = IDNAME
    bl_label = "Diffusion Handles"
    bl_use_preview = False  # material / world previews: nothing to edit
    bl_use_eevee_viewport = True  # Material Preview in the viewport keeps working
    bl_use_postprocess = True

    def render(self, depsgraph):
        from ..blender.frames import engine_for, frame_edit, frame_source, photo_for_camera
        from ..blender.render import claim_frame as _claim, interrupted, release_claim as _release, \
            renew_claim as _renew
        from ..engine.errors import CancelledError
        from ..session.frames import out_of_view_note, read_metadata

        if self.is_preview:
            return
        scene = depsgraph.scene
        frame = scene.frame_current
        claim = None
        if self.is_animation and interrupted():  # Ctrl+C in a headless render: the frames done are kept
            # an error report is what ends Blender's animation loop (no frame written for it)
            self.report({"ERROR"}, f"Diffusion Handles: interrupted (Ctrl+C) before frame {frame}; the frames "
                                   "rendered before it are kept")
            return
        try:
            if self.is_animation and not scene.render.use_overwrite and not scene.render.is_movie_format:
                # a farm node (frames, no overwrite): one node renders each frame
                claim, image = _claim(scene, frame, self.test_break)
                if claim is None:  # another node finished it: its pixels (and record), not a second edit
                    self._result(image, scene, metadata=read_metadata(scene.render.frame_path(frame=frame)))
                    return
            obj = photo_for_camera(scene)
            engine_name, note, fallback = engine_for(obj, scene.original)
            if fallback:  # the artist's explicit choice; each such frame says so (and its metadata)
                self.warn(f"Diffusion Handles, frame {frame}: {fallback}")
            self.stats(f"Diffusion Handles | frame {frame} | {note}")
            source = frame_source(obj, engine_name, scene=scene.original, chosen=obj.dh.engine)
            edit = frame_edit(obj, depsgraph)

            def progress(stage, step, total):
                if claim is not None:
                    _renew(claim)
                if total:
                    self.progress(step / total)
                self.stats(f"Diffusion Handles | frame {frame} | {note} | {stage} {step}/{total}")

            renderer = source.renderer(progress, self.test_break)
            rebuilt = renderer.take_note()
            if rebuilt:  # a .blend moved without its cache: made again from the photo's sources
                self.warn(f"Diffusion Handles: {rebuilt}")
            image = renderer([edit], progress=progress, should_cancel=self.test_break)[0]
            passes = self._pass_pixels(renderer, edit, depsgraph)
            hidden = out_of_view_note(renderer.out_of_view(edit))
            if hidden:  # not a failure: the frame renders without the object, and says so
                self.report({"WARNING"}, f"Diffusion Handles, frame {frame}: {hidden}")
                self.stats(f"Diffusion Handles | frame {frame} | {hidden}")
        except CancelledError:
            _release(claim)
            return  # Esc: Blender stops; no result, nothing written
        except Exception as exc:  # noqa: BLE001 - reported: Blender writes no frame for it
            _release(claim)
            message = user_message(exc)
            if message is None:
                import traceback

                traceback.print_exc()
                message = f"{type(exc).__name__}: {exc}"
            self.report({"ERROR"}, f"Diffusion Handles, frame {frame}: {message}")
            return
        # a claim is released once Blender has written the frame
        self._result(image, scene, passes, source.metadata(renderer))

    def _result(self, image, scene, passes=None, metadata=None):
        from ..session.frames import fit, pass_pixels

        image = fit(image, self.resolution_y, self.resolution_x)
        result = self.begin_result(0, 0, self.resolution_x, self.resolution_y)
        pixels = pass_pixels(image, scene.view_settings.view_transform)
        result.layers[0].passes["Combined"].rect.foreach_set(pixels.ravel())
        for name, values in (passes or {}).items():  # registered by update_render_passes when the result was made
            found = result.layers[0].passes.get(name)
            if found is not None:
                found.rect.foreach_set(values.ravel())
        self.end_result(result)
        # the frame's own record (PNG text chunks, EXR header), written whatever the stamp settings:
        # fields added to the result Blender keeps after end_result (begin_result's are not kept)
        final = self.get_result()
        for name, value in (metadata or {}).items():
            final.stamp_data_add_field(name, str(value))
        self.progress(1.0)

    # --- render passes (View Layer Properties > Passes; the compositor's Render Layers node) ---
    def update_render_passes(self, scene=None, renderlayer=None):
        from ..blender.frames import view_layer_passes

        self.register_pass(scene, renderlayer, "Combined", 4, "RGBA", "COLOR")
        for name, channels, chanid, kind in view_layer_passes(scene, renderlayer):
            self.register_pass(scene, renderlayer, name, channels, chanid, kind)

    def _pass_pixels(self, renderer, edit, depsgraph):
        """{pass name: pixels} of the view layer's enabled passes for this frame (none: {})."""
        from ..blender.frames import view_layer_passes

        wanted = [name for name, *_ in view_layer_passes(depsgraph.scene, depsgraph.view_layer)]
        if not wanted:
            return {}
        return renderer.passes(edit, wanted, self.resolution_y, self.resolution_x,
                               depsgraph.scene.view_settings.view_transform)

    # Blender's render progress and stats line (one place, so tests can watch them)
    def stats(self, text):
        self.update_stats("", text)

    def progress(self, fraction):
        self.update_progress(fraction)

    def warn(self, text):
        self.report({"WARNING"}, text)


def _panels():
    for panel in bpy.types.Panel.__subclasses__():
        if panel.__name__.startswith(_PANEL_PREFIXES) and "BLENDER_RENDER" in getattr(panel, "COMPAT_ENGINES", ()):
            yield panel


CLASSES = (DiffusionHandlesRenderEngine,)


def register():
    from ..blender.render import frame_claim_handlers

    for panel in _panels():
        panel.COMPAT_ENGINES.add(IDNAME)
    frame_claim_handlers(True)


def unregister():
    from ..blender.render import frame_claim_handlers

    for panel in _panels():
        panel.COMPAT_ENGINES.discard(IDNAME)
    frame_claim_handlers(False)
