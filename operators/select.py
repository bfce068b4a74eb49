"""Select one part of an imported photo (its camera, background or one of its objects) from the
sidebar's list, as clicking it in the viewport or the outliner would."""
import bpy
from bpy.props import StringProperty


class DH_OT_select_part(bpy.types.Operator):
    bl_idname = "dh.select_part"
    bl_label = "Select"
    bl_description = "Select this part of the photo and make it active (move, rotate, scale or key it)"
    bl_options = {"REGISTER", "UNDO"}

    name: StringProperty(name="Object", description="Name of the object to select")

    def execute(self, context):
        obj = context.scene.objects.get(self.name)
        if obj is None or obj.dh.role == "NONE":
            self.report({"ERROR"}, f"'{self.name}' is not a part of an imported photo in this scene")
            return {"CANCELLED"}
        if obj.name not in context.view_layer.objects or obj.hide_get():
            self.report({"ERROR"}, f"'{self.name}' is hidden or excluded from the view layer: show it first")
            return {"CANCELLED"}
        for other in context.view_layer.objects:
            other.select_set(False)
        obj.select_set(True)
        context.view_layer.objects.active = obj
        return {"FINISHED"}


CLASSES = (DH_OT_select_part,)
