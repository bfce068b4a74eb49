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
