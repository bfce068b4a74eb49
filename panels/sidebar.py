"""The "Handles" tab of the 3D Viewport sidebar (N panel)."""
import bpy

from .base import DHPanel


class DH_PT_handles(DHPanel, bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Handles"

    def draw(self, context):
        from ..session import deps
        from ..session.jobs import current_job

        layout = self.layout
        missing = deps.missing_modules()
        if missing:
            box = layout.box()
            box.label(text=f"Missing Python packages: {', '.join(missing)}", icon="ERROR")
            box.label(text="Preferences > Add-ons > Diffusion Handles > Install Dependencies")
            box.operator("dh.install_dependencies", icon="IMPORT")
        layout.operator("dh.import_photo", icon="IMAGE_DATA")

        job = context.window_manager.dh_job
        if current_job() is not None or job.running:
            box = layout.box()
            box.label(text=job.status or "working...", icon="TIME")
            if hasattr(box, "progress"):
                box.progress(factor=job.progress, type="BAR")
            else:
                box.prop(job, "progress", text="")
            box.operator("dh.cancel_job", icon="CANCEL")
        elif job.error:
            layout.label(text=job.error, icon="ERROR")

        obj = context.active_object
        handle = obj.dh.handle if obj is not None and obj.dh.role != "NONE" else None
        if handle is None:
            others = [o for o in context.scene.objects if o.dh.role == "OBJECT"]
            if others:
                layout.label(text="Select an imported object (or its camera / background)", icon="INFO")
            return
        props = handle.dh
        col = layout.column()
        _draw_parts(col.box(), context, handle)
        _draw_candidates(col, handle)
        col.prop(props, "object_query")
        col.prop(props, "prompt")
        col.prop(props, "engine", expand=True)
        sub = col.column(align=True)
        sub.enabled = props.engine != "PREVIEW"
        sub.prop(props, "quality", expand=True)
        sub.prop(props, "fg_weight")
        sub.prop(props, "bg_weight")
        sub.prop(props, "steps")
        sub.prop(props, "seed")
        sub.prop(props, "resolution")
        sub.prop(props, "inversion")
        col.separator()
        col.operator("dh.render_edit", icon="RENDER_STILL")
        col.operator("dh.render_stop_motion", icon="RENDER_ANIMATION")
        col.label(text="Move or key any object of the photo, or the camera", icon="INFO")
        from ..blender.scene import RENDER_ENGINE_IDNAME

        if context.scene.render.engine != RENDER_ENGINE_IDNAME:
            col.label(text="F12 / Ctrl+F12: set Render Engine to Diffusion Handles", icon="RENDER_STILL")
        if props.prepared_dir:
            col.label(text="Prepared cache ready", icon="CHECKMARK")


_PART_ICONS = {"CAMERA": "CAMERA_DATA", "BACKGROUND": "IMAGE_DATA", "OBJECT": "OBJECT_DATA"}


def _draw_parts(box, context, handle):
    """The photo's parts, each a button selecting it, with whether it is keyed."""
    from ..blender.scene import photo_parts

    box.label(text=f"Photo: {handle.name}", icon="IMAGE_DATA")
    for label, obj, keyed in photo_parts(handle):
        row = box.row(align=True)
        op = row.operator("dh.select_part", text=f"{label}: {obj.name}", icon=_PART_ICONS[obj.dh.role],
                          depress=obj == context.active_object)
        op.name = obj.name
        row.label(text="", icon="KEYFRAME_HLT" if keyed else "KEYFRAME")
    box.operator("dh.pick_object", text="Pick Object (click in the photo)", icon="RESTRICT_SELECT_OFF")


def _draw_candidates(layout, handle):
    """The object query's candidates, each its overlay (the photo with it lit, from the photo's
    cache) and a button that puts it in place of the object (dh.choose_candidate)."""
    from ..session.photo import candidate_overlays, split_list

    props = handle.dh
    if len(split_list(props.object_query)) != 1 or props.mask_path or not props.cache_dir:
        return
    overlays = candidate_overlays(bpy.path.abspath(props.cache_dir))
    if len(overlays) < 2:
        return
    box = layout.box()
    box.label(text=f"Candidates for '{props.object_query}'", icon="VIEWZOOM")
    row = box.row(align=True)
    for index, path, _ in overlays:
        col = row.column(align=True)
        col.template_icon(icon_value=_preview_icon(path), scale=4.0)
        op = col.operator("dh.choose_candidate", text=str(index), depress=index == props.candidate)
        op.index = index


_previews = None


def _preview_icon(path):
    """The icon of an image file for the panel (loaded once per file version)."""
    import os

    global _previews
    if _previews is None:
        import bpy.utils.previews

        _previews = bpy.utils.previews.new()
    key = f"{path}:{os.path.getmtime(path) if os.path.exists(path) else 0}"
    item = _previews.get(key) or _previews.load(key, path, "IMAGE")
    return item.icon_id


def free_previews():
    global _previews
    if _previews is not None:
        import bpy.utils.previews

        bpy.utils.previews.remove(_previews)
        _previews = None


CLASSES = (DH_PT_handles,)
