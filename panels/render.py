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
            _draw_sources(layout, obj)
        layout.prop(scene.dh, "models_dir")


def _draw_sources(layout, obj):
    """The photo's cache and the sources a missing cache is rebuilt from, each editable: a photo
    whose files moved is pointed at them here (session/photo.py load_or_rebuild)."""
    props = obj.dh
    cache = bpy.path.abspath(props.cache_dir) if props.cache_dir else ""
    box = layout.box()
    box.prop(props, "cache_dir", text="Cache")
    from ..session.photo import split_list

    sources = [bpy.path.abspath(p) for p in (props.image_path, props.depth_path, *split_list(props.mask_path)) if p]
    if cache and os.path.isdir(cache):
        box.label(text="Cache found", icon="CHECKMARK")
    elif props.image_path and all(os.path.isfile(p) for p in sources):
        box.label(text="Cache missing: the next render rebuilds it from these files", icon="INFO")
    else:
        box.label(text="Cache and source files missing: point the photo at them", icon="ERROR")
    box.prop(props, "image_path")
    box.prop(props, "depth_path")
    box.prop(props, "mask_path")


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
