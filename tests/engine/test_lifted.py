"""The lifted scene (engine.lifted): several objects, camera moves, any grid, built once.

Exact properties on synthetic depth; the copied Blender scenes (tests/data/objects, camera,
toy_objects, toy_camera) catch convention errors against their lifted ground truth.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.camera import Camera
from engine.errors import InputError
from engine.evaluation.scenes import load_scene
from engine.lifted import LiftedScene
from edit_scene import px, translation, two_boxes
from engine.transforms import FrameEdit

DATA = Path(__file__).resolve().parents[1] / "data"


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_each_object_moves_by_its_own_transform():
    d, m = two_boxes()
    scene = LiftedScene.build(d, m)
    g = scene.frame(FrameEdit((translation(x=px(4, 3.0)), translation(x=px(-6, 5.0)))))
    assert np.array_equal(g.target_masks[0], np.roll(m[0], 4, axis=1))
    assert np.array_equal(g.target_masks[1], np.roll(m[1], -6, axis=1))
    assert np.array_equal(g.target_mask, g.target_masks.any(0))
    assert np.array_equal(g.valid_mask, ~m.any(0) | g.target_mask)
    assert g.visible == (True, True)
    # Each target pixel's source lies on its own object, shifted back by its own move.
    t0, t1 = g.target_masks
    gu, _ = Camera(40, 60).pixel_centres()
    np.testing.assert_allclose(g.source_coords[t0][:, 0], gu[t0] - 4, atol=1e-4)
    np.testing.assert_allclose(g.source_coords[t1][:, 0], gu[t1] + 6, atol=1e-4)
    # A bare matrix moves object 1; the other stays where it was.
    g = scene.frame(translation(x=px(4, 3.0)))
    assert np.array_equal(g.target_masks[1], m[1])


def test_objects_occlude_each_other_and_an_object_can_leave_the_frame():
    d, m = two_boxes()
    scene = LiftedScene.build(d, m)
    # Box 1 (nearer) slides onto box 2: it hides box 2 where they overlap.
    g = scene.frame(FrameEdit((translation(x=px(34, 3.0)), np.eye(4))))
    overlap = np.roll(m[0], 34, axis=1) & m[1]
    assert overlap.any()
    assert g.target_masks[0][overlap].all() and not g.target_masks[1][overlap].any()
    assert not (g.target_masks[0] & g.target_masks[1]).any()
    # Box 2 pushed far right leaves the frame: reported as not visible, box 1 unaffected.
    g = scene.frame(FrameEdit((np.eye(4), translation(x=px(40, 5.0)))))
    assert g.visible == (True, False)
    assert np.array_equal(g.target_masks[0], m[0])


def test_completed_background_never_hides_a_moved_object():
    """The vacated region is a hole for occlusion: an object moved back behind where another
    object stood stays visible (the completed background there is a guess, not evidence)."""
    d, m = two_boxes(wall=4.0)  # wall nearer than box 2 is after the move, but box 2 was in front
    scene = LiftedScene.build(d, m[1:])
    g = scene.frame(translation(z=-3.0))  # box 2 at 8 m, behind the 4 m wall, inside its old hole
    assert g.target_mask.any()
    assert not (g.target_mask & ~m[1]).any()  # outside the hole the real wall still hides it


def test_camera_move_moves_everything():
    h, w, z = 40, 60, 10.0
    d, m = two_boxes(h, w, wall=z)
    scene = LiftedScene.build(d, m)
    cam = Camera(h, w)
    # Identity camera move = no move at all.
    g = scene.frame(FrameEdit((np.eye(4), np.eye(4)), np.eye(4)))
    assert np.array_equal(g.target_mask, m.any(0)) and g.valid_mask.all()
    # The camera slides left by 3 px at the wall's depth: the wall shifts 3 px right, the nearer
    # boxes further (parallax); the strip at the left edge is disoccluded.
    M = translation(x=px(3, z, h, w))
    g = scene.frame(FrameEdit((np.eye(4), np.eye(4)), M))
    assert g.camera_moved
    assert not g.valid_mask[:, :3].any() and g.valid_mask[:, 3:].mean() > 0.9
    box1 = np.roll(m[0], 10, axis=1)  # 3 m: 10 px
    assert np.array_equal(g.target_masks[0], box1)
    gu, _ = cam.pixel_centres()
    wall = g.valid_mask & ~g.target_mask
    np.testing.assert_allclose(g.source_coords[wall][:, 0], gu[wall] - 3, atol=1e-4)
    assert np.isnan(g.source_coords[~g.valid_mask]).all()
    assert np.all(np.isfinite(g.edited_depth)) and g.edited_depth.min() > 0
    np.testing.assert_allclose(g.edited_depth[box1], 3.0, rtol=1e-6)


def test_camera_move_keeps_contacts_closed():
    """An object standing on a floor with no depth jump between them: seams join the two meshes,
    so a camera move opens no crack along the contact."""
    h, w = 48, 64
    cam = Camera(h, w)
    gu, gv = cam.pixel_centres()
    floor = (1.5 * cam.focal / np.maximum(gv - h / 2, 0.5)).astype(np.float32)
    m = (gv > 30) & (gv < 40) & (gu > 20) & (gu < 40)
    d = np.where(gv < h / 2 + 1, 50.0, floor).astype(np.float32)
    d[m] = floor[39, 30]  # an upright plaque whose bottom row touches the floor
    scene = LiftedScene.build(d, m)
    M = np.eye(4)
    a = np.radians(2.0)
    M[:3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
    g = scene.frame(FrameEdit((np.eye(4),), M))
    rows = np.nonzero(g.target_mask.any(1))[0]
    below = g.valid_mask[rows.max() + 1, g.target_mask[rows.max()]]
    assert below.all()


def test_coarse_grid_targets_match_the_fine_grid():
    d, m = two_boxes(64, 96)
    scene = LiftedScene.build(d, m)
    edit = FrameEdit((translation(x=px(8, 3.0, 64, 96)), np.eye(4)))
    fine = scene.frame(edit)
    coarse = scene.frame(edit, grid=(16, 24), edited_depth=False)
    assert coarse.edited_depth is None and coarse.shape == (16, 24)
    assert np.array_equal(fine.target_masks[0], np.roll(m[0], 8, axis=1))
    # Coarse centres sit at fine coordinates 4k + 2: box 1 (fine rows 10-19, cols 5-14, moved 8
    # px = 2 coarse px) covers coarse rows 3-4, cols 3-5; box 2 (cols 35-44) coarse cols 9-10.
    expected = np.zeros((2, 16, 24), bool)
    expected[0, 3:5, 3:6] = True
    expected[1, 3:5, 9:11] = True
    assert np.array_equal(coarse.target_masks, expected)
    assert np.array_equal(coarse.object_mask, np.roll(expected[0], -2, axis=1) | expected[1])
    t = coarse.target_masks[0]
    gu, _ = np.meshgrid(np.arange(24) + 0.5, np.arange(16) + 0.5)
    np.testing.assert_allclose(coarse.source_coords[t][:, 0], gu[t] - 2, atol=1e-4)
    # the edited depth on a coarser grid is the fine one area-averaged (engine.images.resize_image)
    coarse_depth = scene.frame(edit, grid=(16, 24)).edited_depth
    np.testing.assert_allclose(coarse_depth, fine.edited_depth.reshape(16, 4, 24, 4).mean((1, 3)), rtol=1e-5)


def test_build_validates_once_with_named_errors():
    d, m = two_boxes()
    with pytest.raises(InputError, match="mask 2"):
        LiftedScene.build(d, np.stack([m[0], np.zeros_like(m[0])]))
    with pytest.raises(InputError, match="whole image"):
        LiftedScene.build(d, np.ones((1,) + d.shape, bool))
    with pytest.raises(InputError, match="objects"):
        LiftedScene.build(d, m).frame(FrameEdit((np.eye(4),) * 3))
    bad = d.copy()
    bad[0, 0] = -1
    with pytest.raises(InputError, match="depth"):
        LiftedScene.build(bad, m)


@pytest.mark.parametrize("folder,mean_min,each_min", [
    ("objects/scene_001", 0.93, 0.90), ("toy_objects/scene_000", 0.70, 0.55)])
def test_several_objects_match_blender_lifted_silhouettes(folder, mean_min, each_min):
    sc = load_scene(DATA / folder)
    assert len(sc.masks) == 2
    scene = LiftedScene.build(sc.depth, sc.masks)
    scores = []
    for fr in sc.frames:
        g = scene.frame(fr.transform)
        scores += [iou(g.target_masks[n], gt) for n, gt in enumerate(fr.gt_lifted_objects)]
    assert np.mean(scores) >= mean_min and min(scores) >= each_min, scores


@pytest.mark.parametrize("folder,coverage_min,true_min", [
    ("camera/scene_002", 0.99, 0.92), ("toy_camera/scene_000", 0.85, 0.65)])
def test_camera_moves_match_blender_coverage_and_silhouette(folder, coverage_min, true_min):
    sc = load_scene(DATA / folder)
    scene = LiftedScene.build(sc.depth, sc.masks)
    for fr in sc.frames:
        assert fr.transform.moves_camera
        g = scene.frame(fr.transform)
        assert iou(g.valid_mask, fr.gt_lifted) >= coverage_min
        assert iou(g.target_mask, fr.gt_true) >= true_min


def test_build_makes_masks_disjoint_with_the_checks_rule():
    """LiftedScene.build uses engine.checks.disjoint_masks: overlap goes to the first object, an
    object left empty is refused with its message."""
    from engine.checks import disjoint_masks

    depth = np.full((12, 16), 3.0, np.float32)
    a = np.zeros((12, 16), bool)
    a[2:7, 2:9] = True
    b = np.zeros((12, 16), bool)
    b[4:10, 6:13] = True
    scene = LiftedScene.build(depth, np.stack([a, b]))
    assert (scene.object_masks == disjoint_masks([a, b])).all()
    with pytest.raises(InputError, match=r"mask 2: empty \(or entirely inside an earlier mask\)"):
        LiftedScene.build(depth, np.stack([a, a]))


# --- what a frame says about its parts' visibility (EditGeometry.notes, the one wording) --------------


def _about_centroid(scene, n, scale):
    c = scene.centroids()[n]
    T = np.eye(4)
    T[:3, :3] *= scale
    T[:3, 3] = c - scale * c
    return T


def test_an_occluded_copy_is_hidden_behind_not_out_of_view():
    from engine.transforms import Copy

    d, m = two_boxes()
    scene = LiftedScene.build(d, m)
    # a copy of box 2 (depth 5) moved exactly behind box 1 (depth 3, the same size): nothing of it shows
    copy = FrameEdit((np.eye(4), np.eye(4)), copies=(Copy(1, translation(x=px(-30, 5.0))),))
    g = scene.frame(copy)
    assert g.visible == (True, True, False)
    assert g.notes == ("object 3 hidden behind object 1",)
    # box 2 pushed off the right edge: out of view (it left the frame), nothing said of box 1
    assert scene.frame(FrameEdit((np.eye(4), translation(x=px(40, 5.0))))).notes == ("object 2 out of view",)
    assert scene.frame(FrameEdit((np.eye(4), translation(z=20.0)))).notes == ("object 2 out of view",)  # behind us
    # box 1 behind the wall (10 m) it stood in front of: hidden behind the background
    assert scene.frame(translation(z=-8.0)).notes == ("object 1 hidden behind the background",)
    assert scene.frame(np.eye(4)).notes == ()


def test_a_scale_that_makes_an_object_vanish_or_fill_the_frame_is_said():
    d, m = two_boxes()
    scene = LiftedScene.build(d, m)
    tiny = scene.frame(FrameEdit((_about_centroid(scene, 0, 1e-6), np.eye(4))))
    assert not tiny.visible[0] and tiny.notes == ("object 1 too small to see (under a pixel), scaled by 1e-06",)
    huge = scene.frame(FrameEdit((_about_centroid(scene, 0, 1e6), np.eye(4))))
    assert huge.notes[0] == "object 1 fills the frame, scaled by 1e+06"
    big = scene.frame(FrameEdit((_about_centroid(scene, 0, 2.0), np.eye(4))))  # twice the size: nothing to say
    assert big.visible == (True, True) and big.notes == ()
    # a trajectory whose only frame shows nothing is refused with the reason
    with pytest.raises(InputError, match=r"^transforms: no object is seen in any frame \(frame 1: object 1 too "
                                         r"small to see \(under a pixel\), scaled by 1e-06; object 2 hidden "
                                         r"behind the background\)$"):
        scene.hidden_frames([FrameEdit((_about_centroid(scene, 0, 1e-6), translation(y=-2.0, z=-8.0)))])
