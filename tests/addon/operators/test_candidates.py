"""Object-query candidates (issue 29, item 5): each candidate's overlay is in the photo's cache and
in the sidebar; choosing another replaces the object in place: the same object (name, keys), its
mesh and cache from the new candidate, each key still moving it as far and turning it about its
own centre, and no new import (no `image Camera.001`)."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module, make_photo  # noqa: E402
from ui_fakes import Recorder  # noqa: E402

pytestmark = pytest.mark.slow


def _edits(obj, frames):
    matrices = addon_module("blender.matrices")
    scene, out = bpy.context.scene, []
    for frame in frames:
        scene.frame_set(frame)
        out.append(matrices.object_edit(obj, matrices.photo_frame(obj)))
    return out


def test_choosing_another_candidate_replaces_the_object_in_place(addon, tmp_path, tiny_models_dir):
    from PIL import Image

    photo = make_photo(tmp_path / "photo", height=64, width=64, box=(16, 48, 16, 48))
    store = addon_module("session.store")
    store.SESSION_OPTIONS.update(models_dir=str(tiny_models_dir), device="cpu")
    try:
        assert bpy.ops.dh.import_photo(filepath=str(photo["paths"]["image"]), object_query="the box",
                                       depth_path=str(photo["paths"]["depth"]), prompt="a box",
                                       cache_dir=str(tmp_path / "cache")) == {"FINISHED"}
        obj = bpy.context.view_layer.objects.active
        cache = Path(bpy.path.abspath(obj.dh.cache_dir))
        overlays = addon_module("session.photo").candidate_overlays(str(cache))
        assert len(overlays) >= 2, "the tiny models find several candidates for a 64x64 photo"
        for index, path, chosen in overlays:
            assert Image.open(path).size == (64, 64) and chosen == (index == 0)
        masks = [np.asarray(Image.open(cache / "candidates" / f"candidate_{i}.png")) > 127 for i, _, _ in overlays]
        other = next(i for i in range(1, len(masks)) if not np.array_equal(masks[i], masks[0]))

        # the sidebar shows each overlay with a button choosing it
        layout = Recorder()
        panel = type("Drawn", (), {})()
        panel.layout = layout
        addon_module("panels.sidebar").DH_PT_handles.draw(panel, bpy.context)
        assert len(layout.icons()) == len(overlays) and layout.operators().count("dh.choose_candidate") == len(overlays)

        from engine.transforms import frame_to_matrix

        centroid = np.array(obj.dh.centroid)
        addon_module("blender.keyframes").key_transforms(obj, [
            (1, np.eye(4)),
            (3, frame_to_matrix({"translation": [0.3, 0.1, 0.0], "rotation_axis": [0, 1, 0], "rotation_angle": 35,
                                 "scale": 1.2}, centroid))], bpy.context.scene)
        before = _edits(obj, (1, 2, 3))
        names = sorted(o.name for o in bpy.data.objects)
        old_centroid = centroid
        keyed_frames = sorted({k.co.x for c in addon_module("blender.scene")._location_curves(obj)
                               for k in c.keyframe_points})

        assert bpy.ops.dh.choose_candidate(index=other) == {"FINISHED"}
        assert sorted(o.name for o in bpy.data.objects) == names  # no new import, no '.001'
        assert bpy.context.view_layer.objects.active == obj and obj.dh.candidate == other
        assert len(obj.data.vertices) == int(masks[other].sum())  # the new candidate's pixels
        cached = addon_module("session.photo").load_cache(str(cache))
        assert np.array_equal(cached.masks[0], masks[other])
        assert sorted({k.co.x for c in addon_module("blender.scene")._location_curves(obj)
                       for k in c.keyframe_points}) == keyed_frames  # every key kept

        # each key's move: the new centre goes as far as the old one went, turned and scaled alike
        new_centroid = np.array(obj.dh.centroid)
        assert not np.allclose(new_centroid, old_centroid)
        for T, T2 in zip(before, _edits(obj, (1, 2, 3))):
            assert np.allclose(T[:3, :3], T2[:3, :3], atol=1e-5)
            moved = (T @ np.append(old_centroid, 1))[:3] - old_centroid
            moved2 = (T2 @ np.append(new_centroid, 1))[:3] - new_centroid
            assert np.allclose(moved, moved2, atol=1e-4)

        # a render shows the new candidate: frame 1 is the photo itself
        scene = bpy.context.scene
        scene.frame_set(1)
        scene.render.filepath = str(tmp_path / "f1.png")
        assert bpy.ops.render.render(write_still=True) == {"FINISHED"}
        rendered = np.asarray(Image.open(tmp_path / "f1.png").convert("RGB")) / 255.0
        assert np.abs(rendered - photo["image"]).mean() < 0.02
    finally:
        store.SESSION_OPTIONS.clear()
