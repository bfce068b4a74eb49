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


CLASSES = (DH_PT_handles,)
