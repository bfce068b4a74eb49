"""Blender's own verbs on a lifted object: a duplicate (Shift+D / Alt+D) is a copy of the photo's
object (not a second photo), "Disable in Renders" (keyed) takes an object out of a frame. Frames
rendered through the render engine equal `python -m engine preview` on the equivalent transform
file, and batch.py keys and saves copies and removals that a fresh Blender process renders again."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dh_synthetic import REPO_ROOT, addon_module, duplicate, import_photo, make_photo, write_keyframes  # noqa: E402


def _run(*args, timeout=300):
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, cwd=str(REPO_ROOT))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _engine_preview(photo, cache, frames, out, masks=None):
    keys = write_keyframes(out.parent / f"{out.name}.json", frames)
    mask_args = [a for m in (masks or [photo["paths"]["mask"]]) for a in ("--mask", m)]
    _run("-m", "engine", "preview", "--image", photo["paths"]["image"], "--depth", photo["paths"]["depth"],
         *mask_args, "--transforms", keys, "--out", out, "--background", cache / "background.png",
         "--background-depth", cache / "background_depth.npy")
    return out


def test_a_duplicate_and_a_keyed_hide_render_as_the_engine(addon, tmp_path):
    from blender_session import bpy
    from engine.io import load_image, load_mask
    from mathutils import Vector

    photo = make_photo(tmp_path / "photo", height=24, width=32, box=(8, 16, 4, 12))
    obj = import_photo(bpy, photo, tmp_path)
    cache = Path(bpy.path.abspath(obj.dh.cache_dir))
    scene = bpy.context.scene
    copy = duplicate(bpy, obj)
    assert copy != obj and copy.dh.role == "OBJECT"
    matrices = addon_module("blender.matrices")
    assert matrices.is_copy(copy) and not matrices.is_copy(obj)
    assert matrices.photo_handle(copy) == obj and matrices.moving_objects(obj) == [obj]
    frames_mod = addon_module("blender.frames")
    assert frames_mod.photo_for_camera(scene) == obj  # the copy is not taken for a second photo
    # the camera looks along world +Y with +Z up: world +X is the camera frame's +X
    dx = 1.0
    copy.location = copy.location + Vector((dx, 0.0, 0.0))
    copy.keyframe_insert("location", frame=1)
    obj.hide_render = False
    obj.keyframe_insert("hide_render", frame=1)
    obj.hide_render = True
    obj.keyframe_insert("hide_render", frame=2)  # the original vanishes at frame 2 (the copy stays)
    scene.frame_start, scene.frame_end = 1, 2
    scene.render.filepath = str(tmp_path / "anim" / "f_####")
    scene.render.image_settings.file_format = "PNG"
    assert bpy.ops.render.render(animation=True) == {"FINISHED"}

    T = np.eye(4)
    T[0, 3] = dx
    want = [{"copies": [{"of": 1, "matrix": T.tolist()}]},
            {"objects": [{"visible": False}], "copies": [{"of": 1, "matrix": T.tolist()}]}]
    out = _engine_preview(photo, cache, want, tmp_path / "engine")
    for k in (1, 2):
        frame = load_image(tmp_path / "anim" / f"f_{k:04d}.png")
        assert np.abs(frame - load_image(out / f"preview_{k:04d}.png")).max() < 2 / 255, k
    # the copy is where the original moved by T is, but for the original in front of it
    moved = _engine_preview(photo, cache, [{"matrix": T.tolist()}], tmp_path / "moved")
    target_moved = load_mask(moved / "target_mask_0001.png")
    copy_1 = load_mask(out / "target_mask_0001_2.png")
    assert not (copy_1 & ~target_moved).any()
    assert not ((target_moved & ~copy_1) & ~photo["mask"]).any()
    # frame 2: the hidden original leaves no trace: its place is the cache's background
    background = load_image(cache / "background.png")
    frame_2 = load_image(tmp_path / "anim" / "f_0002.png")
    assert load_image(out / "target_mask_0002_1.png").max() == 0
    free = photo["mask"] & ~copy_1
    assert free.any() and np.abs(frame_2 - background)[free].max() < 2 / 255
    assert np.abs(load_image(tmp_path / "anim" / "f_0001.png") - photo["image"])[free].max() < 2 / 255


def test_linked_duplicates_of_the_second_object_count_in_name_order(addon, tmp_path):
    from blender_session import bpy
    from engine.io import save_mask

    photo = make_photo(tmp_path / "photo", height=24, width=32, box=(6, 16, 2, 10))
    second = np.zeros((24, 32), bool)
    second[8:18, 20:28] = True
    save_mask(tmp_path / "second.png", second)
    assert bpy.ops.dh.import_photo(filepath=str(photo["paths"]["image"]), depth_path=str(photo["paths"]["depth"]),
                                   mask_path=f"{photo['paths']['mask']};{tmp_path / 'second.png'}",
                                   cache_dir=str(tmp_path / "cache")) == {"FINISHED"}
    first = bpy.context.view_layer.objects.active
    matrices, frames_mod = addon_module("blender.matrices"), addon_module("blender.frames")
    other = matrices.moving_objects(first)[1]
    a = duplicate(bpy, other, linked=True)
    b = duplicate(bpy, other, linked=True)
    assert a.data == other.data and matrices.moving_objects(first) == [first, other]
    assert [o.name for o in matrices.photo_copies(first)] == sorted([a.name, b.name])
    b.hide_render = True
    edit = frames_mod.frame_edit(first)
    assert [c.of for c in edit.copies] == [1, 1] and [c.visible for c in edit.copies] == [a.name < b.name, a.name > b.name]
    assert edit.shown() == (True, True) + tuple(c.visible for c in edit.copies)
    scene_mod = addon_module("blender.scene")
    labels = [label for label, _, _ in scene_mod.photo_parts(first)]
    assert labels[-2:] == ["Copy of Object 2", "Copy of Object 2"]
    bpy.context.view_layer.objects.active = a
    assert scene_mod.active_handle(bpy.context) == first


@pytest.mark.slow
def test_batch_keys_copies_and_removals_and_a_saved_blend_renders_them_again(tmp_path):
    from engine.io import load_image

    photo = make_photo(tmp_path / "photo", height=24, width=32, box=(8, 16, 4, 12))
    T1, T2 = np.eye(4), np.eye(4)
    T1[0, 3], T2[0, 3] = 0.6, 1.2
    frames = [{"frame": 1, "copies": [{"of": 1, "matrix": T1.tolist()}]},
              {"frame": 2, "objects": [{"visible": False}], "copies": [{"of": 1, "matrix": T2.tolist()}]},
              {"frame": 3, "objects": [{}]}]
    keys = write_keyframes(tmp_path / "k.json", frames)
    out, blend = tmp_path / "out", tmp_path / "project" / "scene.blend"
    blend.parent.mkdir()
    _run(REPO_ROOT / "batch.py", "--image", photo["paths"]["image"], "--mask", photo["paths"]["mask"],
         "--depth", photo["paths"]["depth"], "--keyframes", keys, "--out", out, "--engine", "preview",
         "--save-blend", blend)
    cache = next((out / "cache").iterdir())
    engine_out = _engine_preview(photo, cache, frames, tmp_path / "engine")
    batch_frames = [load_image(out / "frames" / f"frame_{k:04d}.png") for k in (1, 2, 3)]
    for k, frame in enumerate(batch_frames, start=1):
        assert np.abs(frame - load_image(engine_out / f"preview_{k:04d}.png")).max() < 2 / 255, k
    # frame 3 lists no copy: the copy is hidden there, and the original is back
    m = photo["mask"]
    assert np.abs(batch_frames[2] - photo["image"])[m].max() < 2 / 255
    assert np.abs(batch_frames[1] - photo["image"])[m].max() > 0.05
    # a fresh process renders the saved .blend to the same frames
    again = tmp_path / "again"
    script = (f"import sys; sys.path.insert(0, {str(REPO_ROOT / 'tests')!r}); "
              "from blender_session import bpy, enable_addon; enable_addon(); "
              f"bpy.ops.wm.open_mainfile(filepath={str(blend)!r}); "
              f"bpy.context.scene.render.filepath = {str(again / 'f_####')!r}; "
              "bpy.ops.render.render(animation=True)")
    _run("-c", script)
    for k, frame in enumerate(batch_frames, start=1):
        assert np.array_equal(load_image(again / f"f_{k:04d}.png"), frame), k
