"""The add-on registers and unregisters cleanly under the bpy module."""
import addon_utils
import bpy

from blender_session import ADDON_MODULE, disable_addon, enable_addon


def _dh_operator_names():
    return sorted(name for name in dir(bpy.ops.dh)) if hasattr(bpy.ops, "dh") else []


def test_register_unregister_twice():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    for _ in range(2):
        enable_addon()
        assert addon_utils.check(ADDON_MODULE) == (True, True)
        disable_addon()
        assert addon_utils.check(ADDON_MODULE) == (False, False)
        # Nothing of ours stays registered after unregister.
        leftovers = [c.__name__ for c in bpy.types.Operator.__subclasses__()
                     if getattr(c, "bl_idname", "").startswith("dh.")]
        assert leftovers == []


def test_fixture_registers(addon):
    assert addon.__name__ == ADDON_MODULE
    assert addon_utils.check(ADDON_MODULE)[1]


def test_every_operator_is_searchable(addon):
    """Every dh.* operator shows in F3 search (has a label, is not INTERNAL)."""
    ops = [c for c in bpy.types.Operator.__subclasses__() if getattr(c, "bl_idname", "").startswith("dh.")]
    names = {c.bl_idname for c in ops}
    assert {"dh.import_photo", "dh.render_edit", "dh.render_stop_motion"} <= names
    for cls in ops:
        assert cls.bl_label, cls.bl_idname
        assert "INTERNAL" not in getattr(cls, "bl_options", set()), cls.bl_idname
