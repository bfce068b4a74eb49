"""The sidebar lists the parts of the active photo (camera, background, each object in mask
order, whether each is keyed), and dh.select_part selects one of them (several objects)."""
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module, make_photo  # noqa: E402
from ui_fakes import Recorder  # noqa: E402


def _sidebar():
    layout = Recorder()
    panel = type("Drawn", (), {})()
    panel.layout = layout
    addon_module("panels.sidebar").DH_PT_handles.draw(panel, bpy.context)
    return [kw for kind, kw in layout.log if kind == "operator" and kw["idname"] == "dh.select_part"], layout


def _keyed_icons(layout):
    return [kw["icon"] for kind, kw in layout.log if kind == "label" and kw["icon"].startswith("KEYFRAME")]


def test_sidebar_lists_the_photo_parts_and_selects_them(addon, tmp_path):
    photo = make_photo(tmp_path / "photo")
    paths = photo["paths"]
    second = np.zeros_like(photo["mask"])
    second[2:6, 2:8] = True  # a second object on the wall, apart from the box
    Image.fromarray(second.astype(np.uint8) * 255).save(tmp_path / "mask_2.png")
    result = bpy.ops.dh.import_photo(filepath=str(paths["image"]), depth_path=str(paths["depth"]),
                                     mask_path=f"{paths['mask']};{tmp_path / 'mask_2.png'}",
                                     prompt="a box", cache_dir=str(tmp_path / "cache"))
    assert result == {"FINISHED"}
    first = bpy.context.view_layer.objects.active
    props = first.dh
    objects = addon_module("blender.matrices").moving_objects(first)
    assert len(objects) == 2 and objects[0] == first

    buttons, layout = _sidebar()
    expected = [props.camera.name, props.background.name, objects[0].name, objects[1].name]
    assert [b["text"].split(": ", 1)[1] for b in buttons] == expected
    assert [b["text"].split(":")[0] for b in buttons] == ["Camera", "Background", "Object 1", "Object 2"]
    assert [b["depress"] for b in buttons] == [False, False, True, False]
    assert _keyed_icons(layout) == ["KEYFRAME"] * 4

    # key the second object: the list says so; select it from the list
    objects[1].keyframe_insert("location", frame=1)
    assert bpy.ops.dh.select_part(name=objects[1].name) == {"FINISHED"}
    assert bpy.context.view_layer.objects.active == objects[1]
    assert [o.name for o in bpy.context.selected_objects] == [objects[1].name]
    buttons, layout = _sidebar()  # the same photo's list, from its second object
    assert [b["depress"] for b in buttons] == [False, False, False, True]
    assert _keyed_icons(layout) == ["KEYFRAME"] * 3 + ["KEYFRAME_HLT"]

    with pytest.raises(RuntimeError, match="not a part of an imported photo"):
        bpy.ops.dh.select_part(name="no such object")
    assert bpy.context.view_layer.objects.active == objects[1]  # nothing changed
