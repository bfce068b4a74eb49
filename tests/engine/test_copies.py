"""Copies of an object and removals (``"copies"`` and ``"visible": false`` in a frame's edit):
parsing, the lifted scene's masks and sources, the preview, the guidance's parts and the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.camera import Camera
from engine.errors import InputError
from engine.lifted import LiftedScene
from engine.preview import preview_frame
from edit_scene import px, translation, two_boxes
from engine.transforms import Copy, FrameEdit, parse_transforms

REPO = Path(__file__).resolve().parents[2]


# --- the file format -----------------------------------------------------------------------------
def test_copies_and_visible_parse_and_round_trip():
    T = translation(x=0.5).tolist()
    frames = parse_transforms({"frames": [
        {"objects": [{}, {"visible": False}], "copies": [{"of": 2, "matrix": T}, {"of": 1, "visible": False}]},
        {"translation": [0.1, 0, 0], "visible": False},
        {"copies": [{"of": 1, "translation": [0.5, 0, 0]}]},
    ]}, centroid=[[0, 0, -3], [1, 0, -5]])
    e = frames[0]
    assert e.shown() == (True, False, True, False)
    assert e.part_sources() == (0, 1, 1, 0)
    np.testing.assert_allclose(e.copies[0].matrix, T)
    again = parse_transforms({"frames": [e.to_dict()]}, centroid=[[0, 0, -3], [1, 0, -5]])[0]
    assert again.to_dict() == e.to_dict()
    assert frames[1].shown() == (False,) and not frames[1].is_identity()
    # a frame of copies alone: object 1 stays, the copy is the matrix of the translation
    assert len(frames[2].objects) == 1 and np.allclose(frames[2].objects[0], np.eye(4))
    np.testing.assert_allclose(frames[2].copies[0].matrix, translation(x=0.5))
    assert not frames[2].is_identity()
    # an edit without copies or removals keeps the dict it always had (the keys of old caches)
    plain = FrameEdit.of(translation(x=1.0), 2)
    assert plain.to_dict() == {"objects": [{"matrix": translation(x=1.0).tolist()}, {"matrix": np.eye(4).tolist()}]}


@pytest.mark.parametrize("frame, message", [
    ({"copies": [{"of": 3}]}, "copy 1: a copy of object 3, the photo has 2 objects"),
    ({"copies": [{"of": 0}]}, "'of' must be 1 or more"),
    ({"copies": [{"of": "1"}]}, "'of' must be the number"),
    ({"copies": [{"matrix": np.eye(4).tolist()}]}, "'of' must be the number"),
    ({"copies": [{"of": 1, "colour": 1}]}, "unknown key(s) colour"),
    ({"copies": {"of": 1}}, "'copies' must be a list"),
    ({"objects": [{"visible": 0}]}, "'visible' must be true or false"),
])
def test_bad_copies_and_flags_are_refused_in_one_line(frame, message):
    with pytest.raises(InputError) as exc:
        parse_transforms({"frames": [frame]}, centroid=[[0, 0, -3], [1, 0, -5]])
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_copy_of_a_missing_object_is_refused_by_the_scene():
    d, m = two_boxes()
    scene = LiftedScene.build(d, m[:1])
    with pytest.raises(InputError, match="copy 1: a copy of object 2, the photo has 1 object$"):
        scene.frame(FrameEdit((np.eye(4),), copies=(Copy(1, np.eye(4)),)))


# --- geometry -------------------------------------------------------------------------------------
def test_a_copy_is_the_original_moved_except_where_the_original_or_the_scene_hides_it():
    d, m = two_boxes()
    scene = LiftedScene.build(d, m)
    # object 1 copied 2 m further back (now at 5 m) and a little to the left, half behind the
    # original (3 m), which hides that half
    T = translation(x=-px(5, 5.0), z=-2.0)
    copy = scene.frame(FrameEdit((np.eye(4), np.eye(4)), copies=(Copy(0, T),)))
    moved = scene.frame(FrameEdit((T, np.eye(4))))
    assert copy.target_masks.shape[0] == 3 and copy.visible == (True, True, True)
    c = copy.target_masks[2]
    assert c.any() and not (c & ~moved.target_masks[0]).any()  # never where the moved original is not
    lost = moved.target_masks[0] & ~c
    assert lost.any() and not (lost & ~m[0]).any()  # only where the original (at rest) is in front
    assert np.array_equal(copy.target_masks[0], m[0])  # the original stays as it was
    np.testing.assert_allclose(copy.source_coords[c], moved.source_coords[c], atol=1e-4)
    np.testing.assert_allclose(copy.object_depth[c], moved.object_depth[c], atol=1e-5)
    # the hole the moved original leaves is not there: the original still covers its place
    assert np.array_equal(copy.valid_mask, np.ones_like(copy.valid_mask))


def test_a_copy_behind_a_static_surface_is_hidden_by_it():
    h, w = 40, 60
    d = np.full((h, w), 10.0, np.float32)
    m = np.zeros((h, w), bool)
    m[10:20, 5:15] = True
    d[m] = 6.0
    d[:, 30:34] = 2.0  # a pole in front
    scene = LiftedScene.build(d, m)
    T = translation(x=px(22, 6.0))  # the copy slides behind the pole
    g = scene.frame(FrameEdit((np.eye(4),), copies=(Copy(0, T),)))
    moved = np.roll(m, 22, axis=1)
    assert np.array_equal(g.target_masks[1], moved & ~(np.arange(w) >= 30)[None] | moved & (np.arange(w) >= 34)[None])
    assert np.array_equal(g.target_masks[0], m)


def test_a_removed_object_leaves_a_hole_over_the_background_depth():
    d, m = two_boxes()
    scene = LiftedScene.build(d, m)
    g = scene.frame(FrameEdit((np.eye(4), translation(x=px(3, 5.0))), visible=(False, True)))
    assert g.shown == (False, True) and g.visible == (False, True)
    assert not g.target_masks[0].any() and g.out_of_view == ()
    assert not (g.valid_mask & m[0]).any()  # its place is a hole for the guidance
    np.testing.assert_allclose(g.edited_depth[m[0]], scene.background_depth[m[0]], rtol=1e-6)
    assert g.edits_anything
    # removed and nothing else moving: still an edit (not the identity), with no object in view
    only = scene.frame(FrameEdit((np.eye(4), np.eye(4)), visible=(False, False)))
    assert only.edits_anything and not only.target_mask.any()
    # the preview shows the background there, nothing of the object
    rgb = np.zeros(d.shape + (3,), np.float32)
    rgb[m[0]] = [1, 0, 0]
    bg = np.full_like(rgb, 0.25)
    out = preview_frame(rgb, g, bg)
    assert np.allclose(out[m[0]], 0.25)
    # a removed copy draws nothing either
    gc = scene.frame(FrameEdit((np.eye(4), np.eye(4)), copies=(Copy(1, translation(x=px(-8, 5.0)), False),)))
    assert not gc.target_masks[2].any() and gc.shown == (True, True, False)
    assert np.array_equal(gc.target_mask, m.any(0))


def test_copy_pixels_take_the_colour_of_the_original_in_the_preview():
    d, m = two_boxes()
    rgb = np.zeros(d.shape + (3,), np.float32)
    rgb[m[0]] = [1, 0, 0]
    rgb[m[1]] = [0, 1, 0]
    scene = LiftedScene.build(d, m)
    g = scene.frame(FrameEdit((np.eye(4), np.eye(4)), copies=(Copy(0, translation(x=px(12, 3.0))),)))
    out = preview_frame(rgb, g)
    copy = g.target_masks[2]
    assert copy.sum() == m[0].sum()
    assert np.allclose(out[copy], [1, 0, 0], atol=1e-5) and np.allclose(out[m[0]], [1, 0, 0])


def test_the_guidance_has_one_part_per_copy_sourced_on_the_original():
    from engine.diffusion.guidance import layer_targets

    d, m = two_boxes()
    scene = LiftedScene.build(d, m)
    edit = FrameEdit((np.eye(4), np.eye(4)), copies=(Copy(1, translation(x=px(-12, 5.0))),))
    g = scene.frame(edit, grid=(20, 30), edited_depth=False)
    t = layer_targets([g], "cpu")
    parts = t.fg_masks.numpy()[0]
    assert parts.shape[0] == 4  # two objects, one copy, the (unused) camera part
    assert np.array_equal(parts[2] > 0, g.target_masks[2] & g.valid_mask)
    src = g.source_coords[g.target_masks[2]]
    small_m1 = scene.frame(FrameEdit((np.eye(4), np.eye(4))), grid=(20, 30), edited_depth=False).target_masks[1]
    rows, cols = np.floor(src[:, 1]).astype(int), np.floor(src[:, 0]).astype(int)
    assert small_m1[rows, cols].all()  # every copy pixel's source lies on object 2


# --- command line ---------------------------------------------------------------------------------
def _inputs(tmp_path, frames):
    from engine.io import save_depth_exr, save_image, save_mask

    d, m = two_boxes()
    rgb = np.full(d.shape + (3,), 0.5, np.float32)
    rgb[m[0]] = [1, 0, 0]
    save_image(tmp_path / "image.png", rgb)
    save_depth_exr(tmp_path / "depth.exr", d)
    save_mask(tmp_path / "m1.png", m[0])
    save_mask(tmp_path / "m2.png", m[1])
    (tmp_path / "t.json").write_text(json.dumps({"frames": frames}))
    return d, m


def _preview(tmp_path, out):
    return subprocess.run([sys.executable, "-m", "engine", "preview", "--image", tmp_path / "image.png",
                           "--depth", tmp_path / "depth.exr", "--mask", tmp_path / "m1.png",
                           "--mask", tmp_path / "m2.png", "--transforms", tmp_path / "t.json", "--out", out],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_preview_numbers_objects_then_copies_and_takes_removals(tmp_path):
    from engine.io import load_depth, load_image, load_mask

    T = translation(x=px(12, 3.0))
    d, m = _inputs(tmp_path, [{"copies": [{"of": 1, "matrix": T.tolist()}]},
                              {"objects": [{"visible": False}]}])
    out = tmp_path / "out"
    r = _preview(tmp_path, out)
    assert r.returncode == 0, r.stderr
    scene = LiftedScene.build(d, m)
    want = scene.frame(FrameEdit((np.eye(4), np.eye(4)), copies=(Copy(0, T),)))
    for n in (1, 2, 3):
        assert np.array_equal(load_mask(out / f"target_mask_0001_{n}.png"), want.target_masks[n - 1])
    assert not (out / "target_mask_0002_3.png").exists()  # frame 2 has no copy
    assert load_image(out / "target_mask_0002_1.png").max() == 0
    bg = load_depth(out / "edited_depth_0002.exr")
    np.testing.assert_allclose(bg[m[0]], scene.background_depth[m[0]], rtol=1e-5)
    report = json.loads((out / "report.json").read_text())
    assert report["frames"][1]["removed"] == [1]
    assert "out of view" not in r.stdout  # a removal is not an object lost from view


def test_preview_refuses_a_copy_of_an_object_that_does_not_exist(tmp_path):
    _inputs(tmp_path, [{"copies": [{"of": 3, "matrix": np.eye(4).tolist()}]}])
    out = tmp_path / "out"
    r = _preview(tmp_path, out)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "copy 1: a copy of object 3, the photo has 2 objects" in r.stderr
    assert not out.exists()


# --- the diffusion edit (tiny random-weight model) ----------------------------------------------
def test_the_edit_guides_copies_and_removals_like_objects(tiny_models_dir):
    from engine.pipeline import Engine
    from engine.settings import EditSettings, RuntimeOptions

    from edit_scene import scene

    size = 32
    image, depth, mask = scene(size)
    engine = Engine(models_dir=tiny_models_dir, settings=EditSettings(resolution=32, steps=4, guided_steps=3,
                                                                      inversion="negative-prompt"),
                    runtime=RuntimeOptions(device="cpu", dtype="fp32", frame_batch_size=2))
    prepared = engine.prepare(image, "a red box", depth, mask)
    T = translation(x=12 * 1.5 / Camera(size, size).focal)
    copy, removed, moved = engine.edit(prepared, [FrameEdit((np.eye(4),), copies=(Copy(0, T),)),
                                                  FrameEdit((np.eye(4),), visible=(False,)),
                                                  FrameEdit((T,))])
    assert len(copy.target_masks) == 2 and np.array_equal(copy.target_masks[0], prepared.object_masks[0])
    assert np.array_equal(copy.target_masks[1], moved.target_masks[0] & ~prepared.object_masks[0])
    assert copy.stats.reused is None and copy.stats.energy  # sampled with guidance
    assert not removed.target_mask.any() and not (removed.valid_mask & prepared.object_masks[0]).any()
    assert removed.stats.reused is None  # a removal is not the identity
    assert removed.stats.out_of_view == [] and copy.stats.visible_objects == [True, True]


def test_preview_says_a_hidden_copy_is_behind_its_occluder_and_names_extreme_scales(tmp_path):
    """`engine preview` prints each frame's visibility lines: a copy of box 2 moved exactly behind
    box 1 is hidden behind object 1 (not out of view); box 1 scaled by 1e-6 about its centroid is
    too small to see, and by 1e6 fills the frame."""
    def about_box_1(scale):
        centroid = LiftedScene.build(*two_boxes()).centroids()[0]
        T = np.eye(4)
        T[:3, :3] *= scale
        T[:3, 3] = centroid - scale * centroid
        return T.tolist()

    _inputs(tmp_path, [{"copies": [{"of": 2, "matrix": translation(x=px(-30, 5.0)).tolist()}]},
                       {"objects": [{"matrix": about_box_1(1e-6)}]},
                       {"objects": [{"matrix": about_box_1(1e6)}]}])
    r = _preview(tmp_path, tmp_path / "out")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("frame ")]
    assert lines[0] == "frame 1: object 3 hidden behind object 1"
    assert lines[1] == "frame 2: object 1 too small to see (under a pixel), scaled by 1e-06"
    assert lines[2].startswith("frame 3: object 1 fills the frame, scaled by 1e+06")
    assert "out of view" not in r.stdout
