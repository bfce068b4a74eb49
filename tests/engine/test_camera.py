"""engine.camera: the project's camera conventions (docs/design.md section 3) checked from their
definitions: 55 degrees across the LARGER side, principal point at the centre, pixel (i, j) centred
at (j + 0.5, i + 0.5) with row 0 at the top, Blender's frame (+X right, +Y up, looking down -Z)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.camera import DEFAULT_FOV_DEG, Camera


def test_default_field_of_view_is_55_degrees_across_the_larger_side():
    assert DEFAULT_FOV_DEG == 55.0
    half = math.tan(math.radians(55.0) / 2)
    for h, w in [(480, 640), (640, 480), (512, 512), (1, 7)]:
        cam = Camera(h, w)
        assert cam.focal == pytest.approx(max(h, w) / 2 / half)
    # landscape and portrait of the same sizes have the same focal length: the larger side rules
    assert Camera(480, 640).focal == Camera(640, 480).focal
    assert Camera(480, 640, fov_deg=90.0).focal == pytest.approx(320.0)


@pytest.mark.parametrize("h,w", [(480, 640), (640, 480), (64, 64)])
def test_the_larger_sides_edges_are_at_half_the_field_of_view(h, w):
    """A point on the frame's edge along the larger side, one metre deep, is tan(27.5 deg) off the axis."""
    cam = Camera(h, w)
    depth = np.ones(1)
    half = math.tan(math.radians(DEFAULT_FOV_DEG) / 2)
    if w >= h:  # right edge, middle row
        p = cam.lift(depth, u=np.array([float(w)]), v=np.array([h / 2.0]))[0]
        assert p == pytest.approx([half, 0.0, -1.0])
    if h >= w:  # top edge, middle column: +Y is up
        p = cam.lift(depth, u=np.array([w / 2.0]), v=np.array([0.0]))[0]
        assert p == pytest.approx([0.0, half, -1.0])


def test_principal_point_and_pixel_centres():
    cam = Camera(3, 5)
    assert cam.centre == (2.5, 1.5)
    u, v = cam.pixel_centres()
    assert u.shape == v.shape == (3, 5)
    assert u[0].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5] and (u == u[0]).all()
    assert v[:, 0].tolist() == [0.5, 1.5, 2.5] and (v.T == v[:, 0]).all()


def test_lift_follows_blenders_camera_frame():
    cam = Camera(3, 5)
    depth = np.full((3, 5), 2.0)
    p = cam.lift(depth)
    assert p.shape == (3, 5, 3)
    assert (p[..., 2] == -2.0).all()  # looking down -Z: depth = -z
    assert p[1, 2, :2].tolist() == [0.0, 0.0]  # the centre pixel of an odd-sized image is on the axis
    top_left, bottom_right = p[0, 0], p[2, 4]
    assert top_left[0] < 0 < bottom_right[0]  # +X right
    assert top_left[1] > 0 > bottom_right[1]  # +Y up, row 0 at the top
    # one pixel step at depth 2 is 2 / focal metres
    assert p[1, 3, 0] - p[1, 2, 0] == pytest.approx(2.0 / cam.focal)


@pytest.mark.parametrize("h,w", [(48, 64), (64, 48), (37, 53)])
def test_pixel_ray_round_trip_numpy_and_torch_with_batch_dimensions(h, w):
    cam = Camera(h, w)
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 20.0, size=(2, h, w))
    u0, v0 = cam.pixel_centres()
    u, v, d = cam.project(cam.lift(depth))
    assert u.shape == v.shape == d.shape == (2, h, w)
    np.testing.assert_allclose(u, np.broadcast_to(u0, u.shape), atol=1e-9)
    np.testing.assert_allclose(v, np.broadcast_to(v0, v.shape), atol=1e-9)
    np.testing.assert_allclose(d, depth, rtol=1e-12)

    t = torch.as_tensor(depth, dtype=torch.float32)
    pt = cam.lift(t)
    assert isinstance(pt, torch.Tensor) and pt.dtype == torch.float32 and pt.shape == (2, h, w, 3)
    np.testing.assert_allclose(pt.numpy(), cam.lift(depth), rtol=1e-5, atol=1e-5)
    ut, vt, dt = cam.project(pt)
    np.testing.assert_allclose(ut.numpy(), u, atol=1e-3)
    np.testing.assert_allclose(vt.numpy(), v, atol=1e-3)
    np.testing.assert_allclose(dt.numpy(), depth, rtol=1e-6)


def test_lift_at_arbitrary_coordinates_and_back():
    cam = Camera(40, 60, fov_deg=40.0)
    u = np.array([0.0, 12.25, 60.0])
    v = np.array([40.0, 3.5, 0.0])
    depth = np.array([1.0, 3.0, 7.5])
    pu, pv, pd = cam.project(cam.lift(depth, u=u, v=v))
    np.testing.assert_allclose(pu, u, atol=1e-9)
    np.testing.assert_allclose(pv, v, atol=1e-9)
    np.testing.assert_allclose(pd, depth)


def test_points_at_or_behind_the_camera_project_to_nan_not_the_border():
    cam = Camera(10, 10)
    pts = np.array([[0.1, 0.2, 1.0], [0.0, 0.0, 0.0], [0.3, -0.1, -2.0]])
    u, v, d = cam.project(pts)
    assert d.tolist() == [-1.0, -0.0, 2.0]
    assert np.isnan(u[:2]).all() and np.isnan(v[:2]).all()
    assert np.isfinite([u[2], v[2]]).all()
    ut, vt, _ = cam.project(torch.as_tensor(pts))
    assert torch.isnan(ut[:2]).all() and torch.isnan(vt[:2]).all() and torch.isfinite(ut[2])
