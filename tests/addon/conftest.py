"""Fixtures for add-on tests under the real bpy module (see tests/blender_session.py)."""
import pytest

from blender_session import bpy, disable_addon, enable_addon


@pytest.fixture
def addon():
    """A fresh empty scene with the add-on registered; unregistered afterwards."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    module = enable_addon()
    try:
        yield module
    finally:
        disable_addon()
