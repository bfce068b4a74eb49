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


class DH_PT_passes(DH_PT_render):
    """View Layer Properties > Diffusion Handles Passes: Blender's Depth and the engine's own passes
    (the compositor's Render Layers node and multilayer EXR get each one enabled here); shown,
    as the render panel, with the Diffusion Handles engine."""
    bl_context = "view_layer"
    bl_label = "Diffusion Handles Passes"

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        view_layer = context.view_layer
        col = layout.column(heading="Include", align=True)
        col.prop(view_layer, "use_pass_z", text="Depth")
        flags = view_layer.diffusion_handles
        for name in ("use_pass_target", "use_pass_objects", "use_pass_valid", "use_pass_preview"):
            col.prop(flags, name)


CLASSES = (DH_PT_render, DH_PT_passes)
