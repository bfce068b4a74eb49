"""Several objects per photo and camera moves through the add-on: two masks import as
two meshes keyed on their own, batch.py renders the keyed frames with the preview engine, and
every frame equals `python -m engine preview` on the same inputs (the add-on's cache background)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dh_synthetic import REPO_ROOT  # noqa: E402

pytestmark = pytest.mark.slow
DATA = REPO_ROOT / "tests" / "data"


def _run(*args, timeout=300):
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, cwd=str(REPO_ROOT))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _batch_and_engine(tmp_path, scene_dir, masks, frames):
    """batch.py frames and the engine preview's output folder for the same edits."""
    from engine.io import load_image

    keys = tmp_path / "k.json"
    keys.write_text(json.dumps({"frames": frames}))
    out = tmp_path / "out"
    mask_args = [a for m in masks for a in ("--mask", scene_dir / m)]
    result = _run(REPO_ROOT / "batch.py", "--image", scene_dir / "image.png", *mask_args,
                  "--depth", scene_dir / "depth.exr", "--keyframes", keys, "--out", out, "--engine", "preview")
    cache = next((out / "cache").iterdir())
    engine_out = tmp_path / "engine"
    _run("-m", "engine", "preview", "--image", scene_dir / "image.png", "--depth", scene_dir / "depth.exr",
         *mask_args, "--transforms", keys, "--out", engine_out, "--background", cache / "background.png",
         "--background-depth", cache / "background_depth.npy")
    addon_frames = [load_image(out / "frames" / f"frame_{k:04d}.png") for k in range(1, len(frames) + 1)]
    return result, addon_frames, engine_out


def _close(a, b):
    """Equal up to the float32 round trip through Blender's keyframes (a few edge pixels)."""
    diff = np.abs(a - b).max(-1)
    return (diff > 4 / 255).mean() < 0.005


def test_two_objects_keyed_independently_render_as_the_engine(tmp_path):
    from engine.io import load_image, load_mask

    scene_dir = DATA / "objects" / "scene_001"
    given = json.loads((scene_dir / "transforms.json").read_text())["frames"]
    eye = np.eye(4).tolist()
    frames = [dict(given[0], frame=1), {"objects": [{"matrix": eye}, given[1]["objects"][1]], "frame": 2}]
    result, addon_frames, engine_out = _batch_and_engine(tmp_path, scene_dir, ["mask_1.png", "mask_2.png"], frames)
    assert "of 2 object(s)" in result.stdout
    photo = load_image(scene_dir / "image.png")
    for k, frame in enumerate(addon_frames, start=1):
        engine = load_image(engine_out / f"preview_{k:04d}.png")
        assert _close(frame, engine), k
        assert np.abs(frame - photo).mean() > 0.005  # something moved
    t1, t2 = (load_mask(engine_out / f"target_mask_0001_{n}.png") for n in (1, 2))
    assert t1.any() and t2.any() and not (t1 & t2).any()  # per-object targets, each its own
    # Frame 2 moves object 2 only: object 1's pixels stay where they were (where 2 does not land).
    mask_1 = load_mask(scene_dir / "mask_1.png") & ~load_mask(engine_out / "target_mask_0002_2.png")
    assert np.abs(addon_frames[1] - photo)[mask_1].max() < 2 / 255
    assert np.abs(addon_frames[0] - photo)[mask_1].mean() > 0.01  # while frame 1 moved it


def test_camera_move_keyframe_renders_the_moved_view(tmp_path):
    from engine.io import load_image

    scene_dir = DATA / "camera" / "scene_002"
    given = json.loads((scene_dir / "transforms.json").read_text())["frames"]
    frames = [{"frame": 1, "camera": np.eye(4).tolist()}, {"frame": 2, "camera": given[0]["camera"]}]
    _, addon_frames, engine_out = _batch_and_engine(tmp_path, scene_dir, ["mask.png"], frames)
    photo = load_image(scene_dir / "image.png")
    # at rest: the photo (but for the ring around the object where the filled background shows)
    assert (np.abs(addon_frames[0] - photo).max(-1) > 2 / 255).mean() < 0.03
    assert np.abs(addon_frames[1] - photo).mean() > 0.02  # the whole view moved
    for k, frame in enumerate(addon_frames, start=1):
        assert _close(frame, load_image(engine_out / f"preview_{k:04d}.png")), k


def test_an_object_leaving_the_view_renders_without_it(tmp_path):
    from engine.io import load_image, load_mask

    scene_dir = DATA / "objects" / "scene_001"
    away = np.eye(4)
    away[0, 3] = 50.0  # 50 m to the side: out of view
    frames = [{"frame": 1, "objects": [{"matrix": np.eye(4).tolist()}, {"matrix": np.eye(4).tolist()}]},
              {"frame": 2, "objects": [{"matrix": np.eye(4).tolist()}, {"matrix": away.tolist()}]}]
    result, addon_frames, engine_out = _batch_and_engine(tmp_path, scene_dir, ["mask_1.png", "mask_2.png"], frames)
    assert "object 2 out of view" in result.stdout + result.stderr
    assert load_image(engine_out / "target_mask_0002_2.png").max() == 0  # the engine agrees: not in view
    assert _close(addon_frames[1], load_image(engine_out / "preview_0002.png"))
    # where object 2 was, the background with the objects removed shows
    background = load_image(next((tmp_path / "out" / "cache").iterdir()) / "background.png")
    mask_2 = load_mask(scene_dir / "mask_2.png")
    assert np.abs(addon_frames[1] - background)[mask_2].max() < 2 / 255


def test_import_with_two_masks_makes_two_objects_keyed_on_their_own(addon, tmp_path):
    """In-process: one mesh per mask (a pixel in both goes to the first); moving object 2 is
    object 2's edit only; moving the camera alone is a camera move; the whole photo moved
    together is no edit."""
    from blender_session import bpy
    from dh_synthetic import addon_module, make_photo
    from mathutils import Matrix

    photo = make_photo(tmp_path / "photo", height=24, width=32, box=(6, 16, 4, 14))
    second = np.zeros((24, 32), bool)
    second[8:18, 12:26] = True  # overlaps the first box at columns 12-13
    from engine.io import save_mask

    save_mask(tmp_path / "second.png", second)
    masks = f"{photo['paths']['mask']};{tmp_path / 'second.png'}"
    assert bpy.ops.dh.import_photo(filepath=str(photo["paths"]["image"]), depth_path=str(photo["paths"]["depth"]),
                                   mask_path=masks, cache_dir=str(tmp_path / "cache")) == {"FINISHED"}
    objects = sorted((o for o in bpy.context.scene.objects if o.dh.role == "OBJECT"), key=lambda o: o.dh.object_index)
    assert [o.dh.object_index for o in objects] == [0, 1]
    first, other = objects
    assert other.dh.handle == first and first.dh.handle == first
    assert len(first.data.vertices) == photo["mask"].sum()
    assert len(other.data.vertices) == (second & ~photo["mask"]).sum()

    frames = addon_module("blender.frames")
    edit = frames.frame_edit(first)
    assert len(edit.objects) == 2 and edit.camera is None
    np.testing.assert_allclose(edit.objects, [np.eye(4)] * 2, atol=1e-6)

    other.location.x += 0.3
    bpy.context.view_layer.update()
    edit = frames.frame_edit(first)
    np.testing.assert_allclose(edit.objects[0], np.eye(4), atol=1e-6)
    assert abs(edit.objects[1][0, 3] - 0.3) < 1e-5 and edit.camera is None  # camera x = world x

    camera = first.dh.camera
    camera.location.z += 0.2
    bpy.context.view_layer.update()
    edit = frames.frame_edit(first)
    assert edit.camera is not None and abs(edit.camera[1, 3] + 0.2) < 1e-5  # the scene moves down
    np.testing.assert_allclose(edit.objects[0], np.eye(4), atol=1e-6)

    before = frames.frame_edit(first)
    rig = bpy.data.objects.new("rig", None)
    bpy.context.scene.collection.objects.link(rig)
    for child in (camera, first, other, first.dh.background):
        child.parent = rig
    rig.matrix_world = Matrix.Translation((1.0, 2.0, 0.5)) @ Matrix.Rotation(0.4, 4, "Z")
    bpy.context.view_layer.update()
    after = frames.frame_edit(first)
    np.testing.assert_allclose(after.objects, before.objects, atol=1e-5)
    np.testing.assert_allclose(after.camera, before.camera, atol=1e-5)
