"""dh.render_stop_motion / dh.render_edit: files, both engines, resume, reuse, cancel."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module, import_photo, make_photo  # noqa: E402


def _keyed_scene(tmp_path, n=3, still_frames=()):
    """Import a synthetic photo and key ``n`` frames (frames in ``still_frames`` repeat the previous pose)."""
    photo = make_photo(tmp_path / "photo")
    obj = import_photo(bpy, photo, tmp_path)
    keyframes = addon_module("blender.keyframes")
    from engine.transforms import frame_to_matrix

    centroid = np.array(obj.dh.centroid)
    keyed, step = [], 0
    for frame in range(1, n + 1):
        if frame not in still_frames:
            step += 1
        keyed.append((frame, frame_to_matrix({"translation": [0.08 * step, 0.0, 0.0], "rotation_axis": [0, 1, 0],
                                              "rotation_angle": 10.0 * step}, centroid)))
    keyframes.key_transforms(obj, keyed, bpy.context.scene)
    # constant interpolation: a repeated pose stays exactly still between its keys
    for fcurve in _fcurves(obj):
        for point in fcurve.keyframe_points:
            point.interpolation = "CONSTANT"
    scene = bpy.context.scene
    scene.render.filepath = str(tmp_path / "frames" / "edit_####")
    scene.render.image_settings.file_format = "PNG"
    return obj, scene


def _fcurves(obj):
    action = obj.animation_data.action
    if hasattr(action, "fcurves"):
        return list(action.fcurves)
    # Blender 5: layered actions
    curves = []
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                curves.extend(bag.fcurves)
    return curves


def _frames(tmp_path):
    return sorted(p.name for p in (tmp_path / "frames").iterdir() if not p.name.startswith("."))


def _hidden(tmp_path):
    return sorted(p.name for p in (tmp_path / "frames").iterdir() if p.name.startswith(".") and p.name != ".dh_frames.json")


def test_preview_writes_three_frames_and_resumes(addon, tmp_path):
    obj, scene = _keyed_scene(tmp_path)
    assert bpy.ops.dh.render_stop_motion(engine="PREVIEW") == {"FINISHED"}
    assert _frames(tmp_path) == ["edit_0001.png", "edit_0002.png", "edit_0003.png"]
    from engine.io import load_image

    images = [load_image(tmp_path / "frames" / name) for name in _frames(tmp_path)]
    assert all(im.shape == (24, 32, 3) for im in images)
    assert np.abs(images[0] - images[2]).max() > 0.1  # the object moved
    assert bpy.data.images.get("DH Result") is not None

    # An interrupted run: frame 3 lost. Re-running renders only frame 3.
    mtimes = {n: os.stat(tmp_path / "frames" / n).st_mtime_ns for n in _frames(tmp_path)}
    os.remove(tmp_path / "frames" / "edit_0003.png")
    stopmotion = addon_module("session.stopmotion")
    calls = []
    original = stopmotion.run_frames

    def spy(plan, renderer, *args, **kwargs):
        def counting(transforms, **kw):
            calls.append(len(transforms))
            return renderer(transforms, **kw)
        counting.batch_size = renderer.batch_size
        return original(plan, counting, *args, **kwargs)

    stopmotion.run_frames = spy
    try:
        assert bpy.ops.dh.render_stop_motion(engine="PREVIEW") == {"FINISHED"}
    finally:
        stopmotion.run_frames = original
    assert calls == [1]
    assert _frames(tmp_path) == ["edit_0001.png", "edit_0002.png", "edit_0003.png"]
    for name in ("edit_0001.png", "edit_0002.png"):
        assert os.stat(tmp_path / "frames" / name).st_mtime_ns == mtimes[name]
    # a changed trajectory re-renders what changed
    scene.frame_set(2)
    obj.location.x += 0.05
    obj.keyframe_insert("location", frame=2)
    manifest = json.loads((tmp_path / "frames" / ".dh_frames.json").read_text())["frames"]
    assert bpy.ops.dh.render_stop_motion(engine="PREVIEW") == {"FINISHED"}
    after = json.loads((tmp_path / "frames" / ".dh_frames.json").read_text())["frames"]
    assert after["edit_0002.png"] != manifest["edit_0002.png"]
    assert after["edit_0001.png"] == manifest["edit_0001.png"]
    assert _hidden(tmp_path) == []


def test_a_shorter_range_another_output_name_or_one_frame_keeps_every_other_frame(addon, tmp_path):
    obj, scene = _keyed_scene(tmp_path)
    assert bpy.ops.dh.render_stop_motion(engine="PREVIEW") == {"FINISHED"}
    folder = tmp_path / "frames"
    before = {n: (folder / n).read_bytes() for n in _frames(tmp_path)}
    scene.frame_end = 2  # the range shrinks: frame 3's file is the user's still
    assert bpy.ops.dh.render_stop_motion(engine="PREVIEW") == {"FINISHED"}
    scene.frame_set(1)  # Render Edit of one frame
    assert bpy.ops.dh.render_edit(engine="PREVIEW") == {"FINISHED"}
    scene.render.filepath = str(folder / "take2_####")  # another name in the same folder
    assert bpy.ops.dh.render_stop_motion(engine="PREVIEW") == {"FINISHED"}
    assert {n: (folder / n).read_bytes() for n in before} == before
    assert _frames(tmp_path) == sorted([*before, "take2_0001.png", "take2_0002.png"])
    # back to the first name and the whole range: nothing is rendered again
    scene.render.filepath = str(folder / "edit_####")
    scene.frame_end = 3
    stopmotion = addon_module("session.stopmotion")
    summaries = []
    original = stopmotion.run_frames

    def spy(*args, **kwargs):
        summaries.append(original(*args, **kwargs))
        return summaries[-1]

    stopmotion.run_frames = spy
    try:
        assert bpy.ops.dh.render_stop_motion(engine="PREVIEW") == {"FINISHED"}
    finally:
        stopmotion.run_frames = original
    assert summaries[0].kept == [1, 2, 3] and summaries[0].rendered == []


def test_identical_matrices_reuse_the_frame(addon, tmp_path):
    _keyed_scene(tmp_path, n=3, still_frames=(2,))
    stopmotion = addon_module("session.stopmotion")
    plan = addon_module("blender.frames").plan_frames(bpy.context.scene, bpy.context.view_layer.objects.active, "k")
    assert plan[0].key == plan[1].key != plan[2].key
    calls = []

    def renderer(transforms, progress=None, should_cancel=None):
        calls.append(len(transforms))
        return [np.full((24, 32, 3), 0.5, np.float32) for _ in transforms]

    summary = stopmotion.run_frames(plan, renderer)
    assert summary.rendered == [1, 3] and summary.reused == [2] and sum(calls) == 2
    assert (tmp_path / "frames" / "edit_0002.png").read_bytes() == (tmp_path / "frames" / "edit_0001.png").read_bytes()


def test_cancel_leaves_no_partial_file(addon, tmp_path):
    _keyed_scene(tmp_path)
    stopmotion = addon_module("session.stopmotion")
    from engine.errors import CancelledError

    plan = addon_module("blender.frames").plan_frames(bpy.context.scene, bpy.context.view_layer.objects.active, "k")
    state = {"frames": 0}

    def renderer(transforms, progress=None, should_cancel=None):
        return [np.full((24, 32, 3), 0.25, np.float32) for _ in transforms]

    def write(path, rgb):  # a cancel arriving while frame 2 is being written
        from engine.io import atomic_output, save_image

        state["frames"] += 1
        if state["frames"] == 2:
            with atomic_output(path) as tmp:
                Path(tmp).write_bytes(b"half a PNG")
                raise CancelledError("cancelled while writing")
        save_image(path, rgb)

    with pytest.raises(CancelledError):
        stopmotion.run_frames(plan, renderer, write=write)
    assert _frames(tmp_path) == ["edit_0001.png"] and _hidden(tmp_path) == []

    # a cancel between frames (Esc / Cancel button) through the operator: the job's flag
    jobs = addon_module("session.jobs")
    original = jobs.JobState.should_cancel
    jobs.JobState.should_cancel = lambda self: len(_frames(tmp_path)) >= 2
    try:
        assert bpy.ops.dh.render_stop_motion(engine="PREVIEW") == {"CANCELLED"}
    finally:
        jobs.JobState.should_cancel = original
    assert _frames(tmp_path) == ["edit_0001.png", "edit_0002.png"] and _hidden(tmp_path) == []
    # ... and the next run resumes after the last finished frame
    assert bpy.ops.dh.render_stop_motion(engine="PREVIEW") == {"FINISHED"}
    assert _frames(tmp_path) == ["edit_0001.png", "edit_0002.png", "edit_0003.png"]


@pytest.mark.slow
def test_diffusion_engine_with_tiny_models(addon, tmp_path, tiny_models_dir):
    obj, scene = _keyed_scene(tmp_path)
    store = addon_module("session.store")
    store.SESSION_OPTIONS.update(models_dir=str(tiny_models_dir), device="cpu")
    try:
        obj.dh.engine = "DIFFUSION"
        obj.dh.steps, obj.dh.resolution, obj.dh.inversion = 3, 32, "ddim"
        assert bpy.ops.dh.render_stop_motion() == {"FINISHED"}
        assert _frames(tmp_path) == ["edit_0001.png", "edit_0002.png", "edit_0003.png"]
        from engine.io import load_image

        assert load_image(tmp_path / "frames" / "edit_0002.png").shape == (24, 32, 3)  # photo size
        assert obj.dh.prepared_dir and os.path.isdir(obj.dh.prepared_dir)  # the prepared cache is kept
        assert store.engine_loaded()
        # render edit of the current frame (already rendered: kept, shown in the Image Editor)
        scene.frame_set(2)
        assert bpy.ops.dh.render_edit() == {"FINISHED"}
        assert bpy.data.images["DH Result"].filepath.endswith("edit_0002.png")
        assert bpy.ops.dh.free_memory() == {"FINISHED"} and not store.engine_loaded()
    finally:
        store.SESSION_OPTIONS.clear()
        store.free_engine()


def test_render_errors_are_reports(addon, tmp_path):
    with pytest.raises(RuntimeError, match="Import a photo first"):
        bpy.ops.dh.render_stop_motion()
    obj, scene = _keyed_scene(tmp_path)
    obj.dh.engine = "DIFFUSION"
    obj.dh.prompt = ""
    with pytest.raises(RuntimeError, match="needs a prompt"):
        bpy.ops.dh.render_stop_motion()
    obj.dh.engine = "PREVIEW"
    scene.render.image_settings.file_format = "OPEN_EXR"
    with pytest.raises(RuntimeError, match="file format"):
        bpy.ops.dh.render_stop_motion()
    scene.render.image_settings.file_format = "PNG"
    import shutil

    shutil.rmtree(obj.dh.cache_dir)
    shutil.rmtree(tmp_path / "photo")  # its sources too (a missing cache alone is rebuilt: test_caches.py)
    with pytest.raises(RuntimeError, match="sources are gone too"):
        bpy.ops.dh.render_stop_motion()
    assert not (tmp_path / "frames").exists() or _frames(tmp_path) == []
