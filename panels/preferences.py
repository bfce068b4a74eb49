"""Add-on preferences: device, precision, models, cache folder, dependencies, memory."""
import os
import sys

import bpy
from bpy.props import EnumProperty, StringProperty

from ..engine.diffusion.backbones import BACKBONES as _BACKBONES  # no torch at import

ADDON_PACKAGE = __package__.rpartition(".")[0]

DEVICES = (("AUTO", "Auto", "CUDA, then Apple MPS, then CPU"), ("CUDA", "CUDA", ""), ("MPS", "Apple MPS", ""),
           ("CPU", "CPU", ""))
PRECISIONS = (("AUTO", "Auto", "fp16 on a GPU, fp32 on the CPU"), ("FP32", "fp32", ""), ("FP16", "fp16", ""),
              ("BF16", "bf16", ""))
# the model families the method runs on
BACKBONES = tuple((b.name, b.name, b.description) for b in _BACKBONES.values())


def _on_python_path(self, context):
    from ..blender.addon import add_paths

    add_paths(context)


class DH_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    device: EnumProperty(name="Device", items=DEVICES, default="AUTO")
    precision: EnumProperty(name="Precision", items=PRECISIONS, default="AUTO")
    backbone: EnumProperty(name="Model", items=BACKBONES, default="sd2-depth",
                           description="The depth-conditioned model family the method runs on "
                                       "(engine.diffusion.backbones); a photo prepared on one is re-prepared on another")
    models_dir: StringProperty(name="Models Folder", subtype="DIR_PATH",
                               description="A folder with one sub-folder per model role (diffusion, depth, ...); "
                                           "empty: the Hugging Face cache")
    diffusion_model: StringProperty(name="Diffusion", description="Override: Hugging Face id (org/name@rev) "
                                    "or local folder of the depth-to-image model")
    depth_model: StringProperty(name="Depth", description="Override for the depth estimator")
    detector_model: StringProperty(name="Detector", description="Override for the open-vocabulary detector")
    sam_model: StringProperty(name="SAM", description="Override for the segmenter (SAM folder or checkpoint)")
    inpaint_model: StringProperty(name="Inpainting", description="Override for the optional object-removal inpainter "
                                  "(also its original 512-inpainting-ema.safetensors / .ckpt file)")
    model_file: StringProperty(name="Model file", subtype="FILE_PATH",
                               description="The original SD2-depth checkpoint you may already have "
                                           "(512-depth-ema.safetensors or .ckpt, as Automatic1111 and ComfyUI use "
                                           "it): converted once, used instead of a download")
    cache_dir: StringProperty(name="Cache Folder", subtype="DIR_PATH",
                              description="Per-photo caches (inputs and prepared inversions); empty: beside "
                                          "the .blend (<blend name>_dh_cache)")
    wheels_dir: StringProperty(name="Wheels Folder", subtype="DIR_PATH",
                               description="Install Dependencies from the wheel files in this folder only "
                                           "(offline, e.g. a studio's mirror); empty: the package index")
    python_path: StringProperty(name="Python Packages", subtype="DIR_PATH", update=_on_python_path,
                                description="A folder of Python packages for this Blender's Python (3.11 in "
                                            "Blender 4.2-5.0, 3.13 in 5.1+): the site-packages of an environment "
                                            "with torch, or a short folder Install Dependencies installs into "
                                            "instead of the extension's own (Windows' path limit)")

    def draw(self, context):
        from ..blender.addon import install_disabled_reason, install_target, python_packages
        from ..blender.options import weights_status
        from ..session import deps
        from ..session.store import engine_loaded

        layout = self.layout
        box = layout.box()
        box.label(text="Dependencies", icon="SCRIPTPLUGINS")
        missing = deps.missing_modules()
        if missing:
            box.label(text=f"Missing: {', '.join(missing)}", icon="ERROR")
            box.label(text="Blender's Python lacks torch: install the packages (several GB) or point to an environment.")
            row = box.row()
            row.operator("dh.install_dependencies", icon="IMPORT")
            reason = install_disabled_reason(context)
            if reason:  # the button is greyed out: say why, here
                box.label(text=reason, icon="INFO")
            box.prop(self, "wheels_dir")
            target = install_target(context)
            if target:
                box.label(text=f"Installs into: {target}")
        else:
            box.label(text="All Python packages found", icon="CHECKMARK")
        box.prop(self, "python_path")
        packages = python_packages(context)
        if packages and not os.path.isdir(packages):
            box.label(text=f"Python Packages folder not found: {packages}"
                           + (" (Install Dependencies creates it)" if missing else ""), icon="ERROR")
        elif packages and deps.foreign_python(packages):
            box.label(text=f"Python Packages holds packages for Python {deps.foreign_python(packages)}, this Blender "
                           f"runs {sys.version_info[0]}.{sys.version_info[1]}: install them again", icon="ERROR")

        box = layout.box()
        box.label(text="Models", icon="FILE_3D")
        box.prop(self, "device")
        box.prop(self, "precision")
        box.prop(self, "backbone")
        box.prop(self, "models_dir")
        col = box.column(align=True)
        for role in ("diffusion", "depth", "detector", "sam", "inpaint"):
            col.prop(self, f"{role}_model")
        box.prop(self, "model_file")
        found, text = weights_status(context)
        box.label(text=text, icon="CHECKMARK" if found else "ERROR")
        _draw_sources(box, context)
        row = box.row()
        row.operator("dh.download_models", icon="URL")
        if not bpy.app.online_access:
            box.label(text="Downloads need online access (Preferences > System > Network)", icon="INFO")
        row = box.row()
        row.enabled = engine_loaded()
        row.operator("dh.free_memory", icon="TRASH")

        layout.prop(self, "cache_dir")


def _draw_sources(layout, context):
    """Every Hugging Face source of the diffusion role, in the order tried, and the one in use
    (the same rows as `python -m engine models list`)."""
    from ..blender.options import model_sources

    col = layout.column(align=True)
    for text, in_use in model_sources(context):
        col.label(text=text, icon="RADIOBUT_ON" if in_use else "RADIOBUT_OFF")


CLASSES = (DH_AddonPreferences,)
