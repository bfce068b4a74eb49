"""Large photos in Blender (bpy module): the lifted meshes keep to the scene's vertex budget, with
every vertex an exact lifted pixel, and a .blend stores them empty and makes them again from the
photo's cache when it is opened. The 12 MP case (4000x3000 with a smaller depth map, a .blend under
50 MB) is marked slow."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module, import_photo, make_photo  # noqa: E402


def _co(mesh):
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def _uv(mesh):
    uv = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers["Photo"].data.foreach_get("uv", uv)
    return uv.reshape(-1, 2)


def test_meshes_keep_to_the_vertex_budget_and_sample_exact_pixels(addon, tmp_path):
    mesh_mod = addon_module("blender.mesh")
    photo = make_photo(tmp_path / "photo", height=150, width=200, box=(40, 110, 50, 150))
    bpy.context.scene.dh_mesh_vertices = 10_000  # 30 000 pixels: a grid of about a third of them
    obj = import_photo(bpy, photo, tmp_path)
    background = obj.dh.background
    rows, cols = mesh_mod.sample_grid((150, 200), 10_000)
    assert len(rows) * len(cols) <= 10_000 and len(rows) * len(cols) > 9_000
    assert abs(len(cols) / len(rows) - 200 / 150) < 0.02  # the photo's aspect ratio
    assert len(background.data.vertices) == len(rows) * len(cols)
    assert len(obj.data.vertices) == int(photo["mask"][np.ix_(rows, cols)].sum())
    # each background vertex is the lifted point of its photo pixel (camera frame: the mesh's own)
    from engine.camera import Camera
    from engine.inputs import load_photo_folder

    cached = load_photo_folder(obj.dh.cache_dir)
    r, c = np.meshgrid(rows, cols, indexing="ij")
    lifted = Camera(150, 200).lift(cached.background_depth[r, c].astype(np.float64), c + 0.5, r + 0.5)
    np.testing.assert_allclose(_co(background.data), lifted.reshape(-1, 3), atol=1e-5)
    uv = _uv(background.data)
    assert uv.min() > 0 and uv.max() < 1  # pixel centres
    # the default keeps a small photo whole
    assert [len(a) for a in mesh_mod.sample_grid((150, 200))] == [150, 200]


def test_a_saved_blend_stores_the_meshes_empty_and_makes_them_again_on_load(addon, tmp_path):
    from dh_synthetic import duplicate

    photo = make_photo(tmp_path / "photo", height=120, width=160, box=(30, 90, 40, 120))
    obj = import_photo(bpy, photo, tmp_path)
    background = obj.dh.background
    obj_name = obj.name
    linked, copied = duplicate(bpy, obj, linked=True).name, duplicate(bpy, obj).name  # Alt+D, Shift+D
    names = {o.name: o.data.name for o in (obj, background)}
    before = {o.name: (_co(o.data), _uv(o.data), len(o.data.polygons)) for o in (obj, background)}
    materials = {o.name: [m.name for m in o.data.materials] for o in (obj, background)}
    blend = tmp_path / "scene.blend"
    assert bpy.ops.wm.save_as_mainfile(filepath=str(blend)) == {"FINISHED"}
    # the session goes on with the whole meshes, under their own names
    for o in (obj, background):
        assert o.data.name == names[o.name] and np.array_equal(_co(o.data), before[o.name][0])
    assert not [m for m in bpy.data.meshes if m.name.endswith("(lifted)")]
    # the file holds no geometry: far smaller than the vertices and UVs alone would be
    stored = sum(len(v[0]) * 12 + len(v[1]) * 8 for v in before.values())
    assert os.path.getsize(blend) < stored
    assert bpy.ops.wm.open_mainfile(filepath=str(blend)) == {"FINISHED"}
    for name, (co, uv, faces) in before.items():
        loaded = bpy.data.objects[name]
        assert loaded.data.name == names[name] and [m.name for m in loaded.data.materials] == materials[name]
        assert len(loaded.data.polygons) == faces
        np.testing.assert_array_equal(_co(loaded.data), co)
        np.testing.assert_array_equal(_uv(loaded.data), uv)
    # the duplicates: Alt+D still shares the object's mesh, Shift+D has its own, made again too
    assert bpy.data.objects[linked].data == bpy.data.objects[obj_name].data
    assert bpy.data.objects[copied].data != bpy.data.objects[obj_name].data
    np.testing.assert_array_equal(_co(bpy.data.objects[copied].data), before[obj_name][0])


def test_a_blend_whose_cache_is_gone_opens_with_empty_meshes_and_says_so(addon, tmp_path, capfd):
    import shutil

    photo = make_photo(tmp_path / "photo")
    obj = import_photo(bpy, photo, tmp_path)
    name, cache = obj.name, obj.dh.cache_dir
    blend = tmp_path / "scene.blend"
    assert bpy.ops.wm.save_as_mainfile(filepath=str(blend)) == {"FINISHED"}
    shutil.rmtree(bpy.path.abspath(cache))
    capfd.readouterr()
    assert bpy.ops.wm.open_mainfile(filepath=str(blend)) == {"FINISHED"}
    err = capfd.readouterr().err
    assert len(bpy.data.objects[name].data.vertices) == 0
    assert "Diffusion Handles: the lifted meshes of the photo cached in" in err and "are not shown" in err


@pytest.mark.slow
def test_a_12_megapixel_photo_with_a_smaller_depth_map_saves_a_small_blend(addon, tmp_path):
    from PIL import Image

    H, W = 3000, 4000
    photo = make_photo(tmp_path / "photo", height=H // 4, width=W // 4, box=(200, 550, 300, 700))
    paths = photo["paths"]
    big = Image.open(paths["image"]).resize((W, H), Image.BICUBIC)  # the photo at 12 MP; depth and mask stay 1 MP
    big.save(paths["image"])
    obj = import_photo(bpy, photo, tmp_path)
    assert (obj.dh.width, obj.dh.height) == (W, H)
    assert len(obj.dh.background.data.vertices) <= 1_000_000
    blend = tmp_path / "large.blend"
    assert bpy.ops.wm.save_as_mainfile(filepath=str(blend)) == {"FINISHED"}
    assert os.path.getsize(blend) < 50 << 20


def test_a_mesh_the_artist_edited_is_saved_whole(addon, tmp_path):
    photo = make_photo(tmp_path / "photo")
    obj = import_photo(bpy, photo, tmp_path)
    name = obj.name
    obj.data.vertices[0].co.z += 0.25  # an edit of the lifted surface
    edited = _co(obj.data)
    blend = tmp_path / "scene.blend"
    assert bpy.ops.wm.save_as_mainfile(filepath=str(blend)) == {"FINISHED"}
    assert bpy.ops.wm.open_mainfile(filepath=str(blend)) == {"FINISHED"}
    np.testing.assert_array_equal(_co(bpy.data.objects[name].data), edited)


def test_import_photo_takes_a_smaller_depth_map_and_says_so_in_its_report(addon, tmp_path, capfd):
    photo = make_photo(tmp_path / "photo", height=96, width=128, box=(24, 72, 32, 96))
    paths = photo["paths"]
    np.save(paths["depth"], photo["depth"][::4, ::4])  # 32x24, as a depth model gives it
    capfd.readouterr()
    obj = import_photo(bpy, photo, tmp_path)
    out = capfd.readouterr().out
    assert "resized to the photo's 128x96: depth" in out and "from 32x24 (guided by the photo's edges)" in out
    assert (obj.dh.width, obj.dh.height) == (128, 96) and len(obj.dh.background.data.vertices) == 96 * 128
