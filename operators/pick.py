"""Pick Object: one more object of the active photo by clicks, with SAM (the engine's point prompt).

A modal tool in the 3D Viewport looking through the photo's camera, or in the Image Editor showing
the photo: click adds a point on the object, Shift+click a point outside it, Ctrl+click removes the
nearest point, Backspace the last one; the SAM mask of the points is drawn over the photo as it
changes. Enter lifts the mask as the photo's next object (and fills the background again without
it); Esc (or right-click) cancels and changes nothing. Pick again for another object. The session
half (session/pick.py) holds the points and SAM; view navigation passes through.
"""
import bpy

from ..session.errors import user_message


class DH_OT_pick_object(bpy.types.Operator):
    bl_idname = "dh.pick_object"
    bl_label = "Pick Object"
    bl_description = ("Click on an object of the photo (Shift+click: not the object) to lift it as one more "
                      "object with SAM; Enter accepts, Esc cancels")
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return getattr(context.area, "type", None) in {"VIEW_3D", "IMAGE_EDITOR"}

    def invoke(self, context, event):
        from ..blender.options import engine_options
        from ..blender.scene import active_handle, photo_rect
        from ..session import deps
        from ..session.pick import Pick

        try:
            handle = active_handle(context)
            photo_rect(context, handle)  # the view shows the photo
            deps.require(("numpy", "torch", "segment_anything"))
            self.pick = Pick(bpy.path.abspath(handle.dh.cache_dir), engine_options(context, context.scene)).start()
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback
            self.report({"ERROR"}, user_message(exc) or f"{type(exc).__name__}: {exc}")
            return {"CANCELLED"}
        self.handle_name = handle.name
        self._draw = None
        space = getattr(context, "space_data", None)
        if space is not None and not bpy.app.background:
            kind = bpy.types.SpaceImageEditor if context.area.type == "IMAGE_EDITOR" else bpy.types.SpaceView3D
            self._draw = (kind, kind.draw_handler_add(self.draw_overlay, (context,), "WINDOW", "POST_PIXEL"))
        context.window_manager.modal_handler_add(self)
        self.status(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        from ..blender.scene import photo_rect, region_to_photo

        if event.value != "PRESS":
            return {"PASS_THROUGH"}
        try:
            if event.type == "LEFTMOUSE":
                handle = bpy.data.objects[self.handle_name]
                pixel = region_to_photo(photo_rect(context, handle), event.mouse_region_x, event.mouse_region_y,
                                        handle)
                if pixel is None:
                    self.report({"WARNING"}, "Pick Object: click inside the photo")
                elif event.ctrl:
                    self.pick.remove_nearest(*pixel)
                else:
                    self.pick.add(*pixel, inside=not event.shift)
                if self.pick.warning:
                    self.report({"WARNING"}, self.pick.warning)
            elif event.type in {"BACK_SPACE", "DEL"}:
                self.pick.remove_last()
            elif event.type in {"RET", "NUMPAD_ENTER"}:
                return self.accept(context)
            elif event.type in {"ESC", "RIGHTMOUSE"}:
                self.finish(context)
                self.report({"INFO"}, "Pick Object: cancelled, nothing changed")
                return {"CANCELLED"}
            else:
                return {"PASS_THROUGH"}
        except Exception as exc:  # noqa: BLE001 - reported; the pick goes on
            self.report({"ERROR"}, user_message(exc) or f"{type(exc).__name__}: {exc}")
        self.status(context)
        return {"RUNNING_MODAL"}

    def accept(self, context):
        from ..blender.scene import add_photo_object

        handle = bpy.data.objects[self.handle_name]
        try:
            inputs = self.pick.accept()
        except Exception as exc:  # noqa: BLE001 - reported; the pick goes on (Esc leaves)
            self.report({"ERROR"}, user_message(exc) or f"{type(exc).__name__}: {exc}")
            return {"RUNNING_MODAL"}
        item = add_photo_object(handle, inputs)
        self.finish(context)
        for other in context.view_layer.objects:
            other.select_set(False)
        item.select_set(True)
        context.view_layer.objects.active = item
        self.report({"INFO"}, f"Pick Object: '{item.name}' lifted ({int(inputs.masks[-1].sum())} pixels); "
                              "pick again for another")
        return {"FINISHED"}

    def finish(self, context):
        if getattr(self, "_draw", None) is not None:
            kind, handler = self._draw
            kind.draw_handler_remove(handler, "WINDOW")
            self._draw = None
        if context.area is not None and hasattr(context.area, "header_text_set"):
            context.area.header_text_set(None)
            context.area.tag_redraw()

    def status(self, context):
        points = self.pick.points
        inside = sum(label for _, _, label in points)
        text = (f"Pick Object: {inside} point(s) on the object, {len(points) - inside} outside | click: on, "
                "Shift+click: outside, Ctrl+click / Backspace: remove, Enter: accept, Esc: cancel")
        if context.area is not None and hasattr(context.area, "header_text_set"):
            context.area.header_text_set(text)
            context.area.tag_redraw()

    def draw_overlay(self, context):
        """The mask (translucent) and the points over the photo, in region pixels."""
        import gpu
        import numpy as np
        from gpu_extras.batch import batch_for_shader
        from gpu_extras.presets import draw_texture_2d

        from ..blender.scene import photo_rect

        try:
            handle = bpy.data.objects[self.handle_name]
            x0, y0, x1, y1 = photo_rect(context, handle)
        except Exception:  # noqa: BLE001 - another region of the same kind: nothing to draw there
            return
        gpu.state.blend_set("ALPHA")
        mask = self.pick.mask
        if mask is not None:
            rgba = np.zeros(mask.shape + (4,), np.float32)
            rgba[mask] = (1.0, 0.55, 0.0, 0.45)
            buffer = gpu.types.Buffer("FLOAT", rgba.size, rgba[::-1].ravel())
            texture = gpu.types.GPUTexture((mask.shape[1], mask.shape[0]), format="RGBA16F", data=buffer)
            draw_texture_2d(texture, (x0, y0), x1 - x0, y1 - y0)
        w, h = handle.dh.width, handle.dh.height
        shader = gpu.shader.from_builtin("POINT_UNIFORM_COLOR")
        gpu.state.point_size_set(8.0)
        for label, colour in ((1, (0.1, 0.9, 0.2, 1.0)), (0, (0.9, 0.1, 0.1, 1.0))):
            where = [(x0 + (x + 0.0) / w * (x1 - x0), y1 - y / h * (y1 - y0)) for x, y, lab in self.pick.points
                     if lab == label]
            if where:
                batch = batch_for_shader(shader, "POINTS", {"pos": where})
                shader.uniform_float("color", colour)
                batch.draw(shader)
        gpu.state.blend_set("NONE")


CLASSES = (DH_OT_pick_object,)
