"""dh.import_photo builds the camera, the lifted meshes and the unlit materials."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module, import_photo, make_photo  # noqa: E402


def _world_vertices(obj):
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3).astype(np.float64)
    m = np.array(obj.matrix_world)
    return co @ m[:3, :3].T + m[:3, 3]


def test_import_builds_camera_meshes_and_materials(addon, tmp_path):
    photo = make_photo(tmp_path / "photo")
    obj = import_photo(bpy, photo, tmp_path)
    scene = bpy.context.scene
    props = obj.dh
    camera, background = props.camera, props.background
    height, width = photo["depth"].shape

    # one collection per photo holding the three objects
    collection = obj.users_collection[0]
    assert set(collection.objects) == {obj, camera, background}
    # camera: 55 degrees on the larger side, render resolution = photo size
    assert camera.type == "CAMERA" and scene.camera == camera
    assert camera.data.sensor_fit == "AUTO"
    assert math.degrees(camera.data.angle) == pytest.approx(55.0, abs=1e-4)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (width, height)
    assert scene.render.resolution_percentage == 100
    # meshes: one vertex per object pixel / per background pixel
    assert len(obj.data.vertices) == photo["mask"].sum()
    assert len(background.data.vertices) == height * width
    assert len(obj.data.polygons) > 0 and len(background.data.polygons) > 0
    # the object's origin is the centroid of its lifted pixels (engine camera, mapped to world)
    from engine.camera import Camera

    cam = Camera(height, width)
    centroid_cam = cam.lift(photo["depth"].astype(np.float64))[photo["mask"]].mean(axis=0)
    c = np.array(camera.matrix_world)
    centroid_world = c[:3, :3] @ centroid_cam + c[:3, 3]
    np.testing.assert_allclose(np.array(obj.matrix_world.translation), centroid_world, atol=1e-5)
    np.testing.assert_allclose(_world_vertices(obj).mean(axis=0), centroid_world, atol=1e-4)
    np.testing.assert_allclose(props.centroid, centroid_cam, atol=1e-5)
    # vertices are the engine's lift: camera-frame points mapped by the camera's matrix_world
    lifted = cam.lift(photo["depth"].astype(np.float64))[photo["mask"]]
    np.testing.assert_allclose(_world_vertices(obj), lifted @ c[:3, :3].T + c[:3, 3], atol=1e-4)
    # materials show the photo unlit: image texture -> emission -> output
    for item, image_name in ((obj, "Photo"), (background, "Background")):
        material = item.data.materials[0]
        kinds = {n.type for n in material.node_tree.nodes}
        assert {"TEX_IMAGE", "EMISSION", "OUTPUT_MATERIAL"} <= kinds and "BSDF_PRINCIPLED" not in kinds
        texture = next(n for n in material.node_tree.nodes if n.type == "TEX_IMAGE")
        assert texture.image is not None and texture.image.size[:] == (width, height)
        assert image_name in texture.image.name
    assert scene.view_settings.view_transform == "Standard"
    # settings and cache stored on the object for a saved .blend
    assert props.prompt.startswith("an orange box")
    assert Path(props.cache_dir, "depth.npy").is_file() and Path(props.cache_dir, "background.png").is_file()
    assert (props.width, props.height) == (width, height)
    # the cache reads back as the photo it was imported from (what a later render uses)
    cached = addon_module("session.photo").load_cache(props.cache_dir)
    assert np.array_equal(cached.depth, photo["depth"]) and np.array_equal(cached.masks, photo["mask"][None])
    assert cached.background_depth.shape == (height, width)


def test_meshes_are_cut_at_depth_discontinuities(addon, tmp_path):
    photo = make_photo(tmp_path / "photo")
    obj = import_photo(bpy, photo, tmp_path)
    mesh_mod = addon_module("blender.mesh")
    # the object's own triangles (the engine's: two per quad) are all inside the mask
    r0, r1, c0, c1 = 6, 16, 9, 21
    assert len(obj.data.polygons) == 2 * (r1 - r0 - 1) * (c1 - c0 - 1)
    assert all(len(p.vertices) == 3 for p in obj.data.polygons)
    # a depth step inside a grid cuts the triangles that straddle it
    depth = np.ones((4, 5), np.float32)
    depth[:, 3:] = 2.0
    triangles = mesh_mod.grid_faces(depth, np.ones((4, 5), bool))
    assert len(triangles) == 2 * 3 * 3  # columns 0-1, 1-2, 3-4 kept; 2-3 cut


def test_reimport_reuses_cache_and_bad_files_are_operator_errors(addon, tmp_path):
    photo = make_photo(tmp_path / "photo")
    paths = photo["paths"]
    bad_depth = tmp_path / "bad_depth.npy"
    d = photo["depth"].copy()
    d[0, 0] = np.nan
    np.save(bad_depth, d)
    wrong_size = tmp_path / "small_mask.png"
    from PIL import Image

    Image.fromarray(np.tile(np.uint8([0, 255]), (5, 5))[:, :9]).save(wrong_size)  # another aspect (a smaller one is resized)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    cases = [
        (dict(filepath=str(tmp_path / "missing.png")), "not found"),
        (dict(filepath=str(not_an_image)), "notes.png"),
        (dict(depth_path=str(bad_depth)), "NaN"),
        (dict(mask_path=str(wrong_size)), "does not match"),
    ]
    for overrides, expected in cases:
        kwargs = dict(filepath=str(paths["image"]), depth_path=str(paths["depth"]), mask_path=str(paths["mask"]),
                      cache_dir=str(tmp_path / "cache"))
        kwargs.update(overrides)
        with pytest.raises(RuntimeError, match=expected):
            bpy.ops.dh.import_photo(**kwargs)
    assert not [o for o in bpy.context.scene.objects]  # nothing half-built


def _cached_files(cache):
    return [p for p in Path(cache).rglob("*") if p.is_file()] if Path(cache).exists() else []


def test_bad_inputs_name_the_import_fields(addon, tmp_path):
    """The engine's input boundary checks Import Photo's fields, its messages naming them as the
    operator labels them; nothing is written to the cache."""
    photo = make_photo(tmp_path / "photo")
    paths = photo["paths"]
    inside = tmp_path / "inside.png"  # a second object entirely inside the first
    small = np.zeros_like(photo["mask"])
    small[np.argwhere(photo["mask"])[0][0], np.argwhere(photo["mask"])[0][1]] = True
    from PIL import Image

    Image.fromarray(small.astype(np.uint8) * 255).save(inside)
    metres = tmp_path / "metres.png"  # a 16-bit depth in metres (the add-on reads PNG depth in mm)
    Image.fromarray(np.full(photo["mask"].shape, 3, np.uint16)).save(metres)
    cache = tmp_path / "cache"
    cases = [
        (dict(mask_path=""), r"Mask File or Object: say which object to edit"),
        (dict(object_query="the box"), r"give either Mask File or Object, not both"),
        (dict(mask_path=str(tmp_path / "nope.png")), r"Mask File: mask '.*nope\.png': file not found"),
        (dict(mask_path=f"{paths['mask']}; {tmp_path / 'nope.png'}"), r"Mask File: .*nope\.png'?: file not found"),
        (dict(mask_path=f"{paths['mask']}; {inside}"), r"Mask File: mask 2: empty \(or entirely inside"),
        (dict(filepath=str(tmp_path / "missing.png")), r"Photo: image '.*missing\.png': file not found"),
        (dict(depth_path=str(tmp_path / "missing.npy")), r"Depth File: depth '.*missing\.npy'?: file not found"),
        (dict(depth_path=str(metres)), r"Depth File: depth '.*metres\.png'?: .* save the depth in metres as \.exr"),
    ]
    for overrides, expected in cases:
        kwargs = dict(filepath=str(paths["image"]), depth_path=str(paths["depth"]), mask_path=str(paths["mask"]),
                      cache_dir=str(cache))
        kwargs.update(overrides)
        with pytest.raises(RuntimeError, match=expected) as caught:
            bpy.ops.dh.import_photo(**kwargs)
        assert "--" not in str(caught.value)  # never the command line's option names
    assert not _cached_files(cache) and not list(bpy.context.scene.objects)


@pytest.mark.slow
def test_import_by_object_query_with_estimated_depth(addon, tmp_path, tiny_models_dir):
    """No depth and no mask: perception (tiny random-weight models) estimates depth and finds the
    object; the scene is built the same way."""
    photo = make_photo(tmp_path / "photo", height=64, width=64, box=(16, 48, 16, 48))
    store = addon_module("session.store")
    store.SESSION_OPTIONS.update(models_dir=str(tiny_models_dir), device="cpu")
    try:
        result = bpy.ops.dh.import_photo(filepath=str(photo["paths"]["image"]), object_query="the box",
                                         prompt="a box", cache_dir=str(tmp_path / "cache"))
    finally:
        store.SESSION_OPTIONS.clear()
    assert result == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    assert obj.dh.role == "OBJECT" and obj.dh.object_query == "the box"
    assert 0 < len(obj.data.vertices) < 64 * 64
    assert len(obj.dh.background.data.vertices) == 64 * 64


@pytest.mark.slow
def test_import_several_objects_by_text_queries(addon, tmp_path, tiny_models_dir):
    """Two ';'-separated queries: one mesh per object, keyable on its own, in query order, with
    disjoint pixels (tiny random-weight perception models, so only the structure is checked)."""
    photo = make_photo(tmp_path / "photo", height=64, width=64, box=(16, 48, 16, 48))
    store = addon_module("session.store")
    store.SESSION_OPTIONS.update(models_dir=str(tiny_models_dir), device="cpu")
    try:
        result = bpy.ops.dh.import_photo(filepath=str(photo["paths"]["image"]), object_query="the box; the wall",
                                         depth_path=str(photo["paths"]["depth"]), prompt="a box",
                                         cache_dir=str(tmp_path / "cache"))
    finally:
        store.SESSION_OPTIONS.clear()
    assert result == {"FINISHED"}
    first = bpy.context.view_layer.objects.active
    objects = addon_module("blender.matrices").moving_objects(first)
    assert [o.dh.object_index for o in objects] == [0, 1] and objects[0] == first
    assert all(o.dh.handle == first and len(o.data.vertices) > 0 for o in objects)
    masks = np.load(Path(first.dh.cache_dir) / addon_module("engine.inputs").MASKS_FILE)
    assert masks.shape == (2, 64, 64) and masks.any(axis=(1, 2)).all()
    assert not (masks[0] & masks[1]).any()  # a pixel belongs to one object
    assert sum(len(o.data.vertices) for o in objects) == int(masks.sum())  # one vertex per pixel
    objects[1].location.x += 0.1  # each moves on its own
    assert tuple(objects[0].matrix_world.translation) != tuple(objects[1].matrix_world.translation)


@pytest.mark.slow
def test_candidate_out_of_range_names_the_field(addon, tmp_path, tiny_models_dir):
    """A query's Candidate beyond the candidates found (tiny random-weight perception models find
    at most 5): the message names the add-on's field, and nothing is cached."""
    photo = make_photo(tmp_path / "photo", height=64, width=64, box=(16, 48, 16, 48))
    store = addon_module("session.store")
    store.SESSION_OPTIONS.update(models_dir=str(tiny_models_dir), device="cpu")
    try:
        with pytest.raises(RuntimeError, match=r"Candidate: candidate 7: only \d candidate\(s\) found for 'the box'"):
            bpy.ops.dh.import_photo(filepath=str(photo["paths"]["image"]), object_query="the box", candidate=7,
                                    depth_path=str(photo["paths"]["depth"]), cache_dir=str(tmp_path / "cache"))
    finally:
        store.SESSION_OPTIONS.clear()
    assert not _cached_files(tmp_path / "cache") and not list(bpy.context.scene.objects)
