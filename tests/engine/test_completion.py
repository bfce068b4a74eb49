"""Background completion (engine.completion) and its use by the lifted scene.

tests/data/border holds scenes rendered for this project with bpy (tools/make_border_scenes.py): a
box cut by the bottom frame edge, with the TRUE depth of the scene without the box and the true
silhouette of the box after three edits (moved back, sideways, forward).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.camera import Camera
from engine.completion import complete_background_depth, completion_region, fit_planes
from engine.geometry import rasterize
from engine.io import load_depth, load_mask
from engine.lifted import LiftedScene
from engine.transforms import load_transforms

BORDER = Path(__file__).resolve().parents[1] / "data" / "border"
SCENES = sorted(p.name for p in BORDER.iterdir() if p.is_dir())


def floor_and_wall(h=60, w=80, camera_height=1.2, wall=6.0):
    """Exact z-depth of a level camera over a floor, looking at a fronto-parallel wall."""
    cam = Camera(h, w)
    gu, gv = cam.pixel_centres()
    below = np.maximum(gv - h / 2, 1e-9)
    floor = camera_height * cam.focal / below
    return np.where((gv > h / 2) & (floor < wall), floor, wall)


def test_a_floor_running_into_a_wall_is_continued_up_to_the_frame_edge():
    d = floor_and_wall()
    m = np.zeros(d.shape, bool)
    m[25:, 30:50] = True  # an object in front of the crease, cut by the bottom edge
    obj = d.copy()
    obj[m] = 2.0
    completed = complete_background_depth(obj, m)
    region = completion_region(m)
    np.testing.assert_allclose(completed[region], d[region], rtol=1e-6)
    np.testing.assert_array_equal(completed[~region], obj[~region])
    # The harmonic fill of disparity flattens at the frame edge and sags between floor and wall.
    harmonic = complete_background_depth(obj, m, planes=False)
    assert np.abs(harmonic[region] / d[region] - 1).max() > 0.05


def test_fit_planes_finds_each_surface():
    rng = np.random.default_rng(1)
    u, v = rng.uniform(0, 100, 400), rng.uniform(0, 80, 400)
    q = np.where(u < 50, 0.01 * v + 0.1, 0.002 * u + 0.3)
    planes = fit_planes(u, v, q)
    assert len(planes) == 2
    assert any(np.allclose(p, (0.0, 0.01, 0.1), atol=1e-9) for p in planes)
    assert any(np.allclose(p, (0.002, 0.0, 0.3), atol=1e-9) for p in planes)
    assert fit_planes(u, v, rng.uniform(0.1, 1.0, 400)) == []  # rubble: no plane


@pytest.mark.parametrize("name", SCENES)
def test_border_scene_background_is_the_true_one(name):
    folder = BORDER / name
    depth, mask = load_depth(folder / "depth.exr"), load_mask(folder / "mask.png")
    assert mask[-1].any()  # the object is cut by the bottom edge
    truth = load_depth(folder / "background_depth.exr")
    region = completion_region(mask)
    error = np.abs(complete_background_depth(depth, mask)[region] / truth[region] - 1)
    baseline = np.abs(complete_background_depth(depth, mask, planes=False)[region] / truth[region] - 1)
    assert error.mean() < 0.01 and error.mean() < 0.2 * baseline.mean()


@pytest.mark.parametrize("name", SCENES)
def test_border_object_moved_is_not_hidden_by_the_completed_background(name):
    """Target mask = the moved lifted object where the TRUE static scene does not hide it."""
    folder = BORDER / name
    depth, mask = load_depth(folder / "depth.exr"), load_mask(folder / "mask.png")
    truth = np.where(mask, load_depth(folder / "background_depth.exr"), depth)
    scene = LiftedScene.build(depth, mask)
    for edit in load_transforms(folder / "transforms.json"):
        T = edit.matrix
        g = scene.frame(edit)
        u, v, z = scene.camera.project(scene.vertices @ T[:3, :3].T + T[:3, 3])
        points = np.zeros(len(scene.vertices), bool)
        points[scene.objects[0].points] = True
        moved = rasterize(u, v, z, scene.objects[0].faces, points, *depth.shape)
        truly_visible = moved.covered & (moved.depth <= truth * 1.001)
        assert (g.target_mask & truly_visible).sum() >= 0.99 * truly_visible.sum()
        assert (g.target_mask & ~truly_visible).sum() <= 0.05 * truly_visible.sum()
