"""Render Properties > Diffusion Handles: what the render engine will render, and its scene settings."""
import os

import bpy

from .base import DHPanel


class DH_PT_render(DHPanel, bpy.types.Panel):
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"

    @classmethod
    def poll(cls, context):
        from ..blender.scene import RENDER_ENGINE_IDNAME

        return context.engine == RENDER_ENGINE_IDNAME

    def draw(self, context):
        from ..blender.frames import photo_for_camera
        from ..session.errors import AddonError

        layout = self.layout
        layout.use_property_split = True
        scene = context.scene
        try:
            obj = photo_for_camera(scene)
        except AddonError as exc:
            layout.label(text=str(exc), icon="ERROR")
        else:
            col = layout.column(align=True)
            col.label(text=f"Photo: {obj.name} ({obj.dh.width}x{obj.dh.height})", icon="IMAGE_DATA")
            col.prop(obj.dh, "engine", text="Engine")
            cache = bpy.path.abspath(obj.dh.cache_dir) if obj.dh.cache_dir else ""
            found = bool(cache) and os.path.isdir(cache)
            col.label(text=f"Cache: {obj.dh.cache_dir or '(none)'}", icon="CHECKMARK" if found else "ERROR")
        layout.prop(scene.dh, "models_dir")
        layout.prop(scene.dh, "require_weights")


CLASSES = (DH_PT_render,)
