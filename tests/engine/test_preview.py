"""engine.preview: the weightless geometric preview (the photo's pixels moved in 3D, no model)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.lifted import LiftedScene, compute_edit_geometry
from engine.preview import HOLE_COLOUR, preview_frame, render_preview
from engine.transforms import FrameEdit

H, W = 24, 32
# colour = A + B u + C v (u, v pixel-centre coordinates): bilinear sampling of such an image is
# exact, so the colour a moved pixel shows tells where in the photo it was taken from.
A = np.array([0.10, 0.20, 0.80])
B = np.array([0.02, 0.0, -0.01])
C = np.array([0.0, 0.025, -0.012])


def _affine_colour(u, v):
    return A + B * np.asarray(u)[..., None] + C * np.asarray(v)[..., None]


def _scene():
    """An affine-coloured photo of a box (1.5 m) in front of a wall (3 m)."""
    yy, xx = np.mgrid[0:H, 0:W]
    image = _affine_colour(xx + 0.5, yy + 0.5).astype(np.float32)
    assert image.min() > 0 and image.max() < 1
    mask = np.zeros((H, W), bool)
    mask[8:16, 10:18] = True
    depth = np.where(mask, 1.5, 3.0).astype(np.float32)
    return image, depth, mask


def _translation(dx, dy=0.0):
    T = np.eye(4)
    T[0, 3], T[1, 3] = dx, dy
    return T


def _background(image, mask):
    """A "removed object" image: the photo with the object's region a flat grey."""
    return np.where(mask[..., None], 0.5, image).astype(np.float32)


def test_identity_edit_gives_back_the_photo():
    image, depth, mask = _scene()
    rgb, geo = render_preview(image, depth, mask, np.eye(4))
    assert rgb.dtype == np.float32 and rgb.shape == (H, W, 3)
    assert not geo.hole_mask.any()
    assert np.array_equal(geo.target_mask, mask)
    np.testing.assert_allclose(rgb, image, atol=1e-5)


def test_identity_edit_with_a_background_keeps_the_object():
    """The object stays where it was (it is moved onto itself), the rest is the background."""
    image, depth, mask = _scene()
    background = _background(image, mask)
    rgb, _ = render_preview(image, depth, mask, np.eye(4), background=background)
    np.testing.assert_allclose(rgb, image, atol=1e-5)


def test_moved_object_lands_on_the_target_mask_with_the_colour_of_its_source():
    image, depth, mask = _scene()
    T = _translation(0.3)  # 0.3 m to +X at 1.5 m: several pixels to the right
    rgb, geo = render_preview(image, depth, mask, T)
    target = geo.target_mask
    assert target.any() and not np.array_equal(target, mask)
    cols = np.nonzero(target.any(0))[0]
    assert cols.mean() > np.nonzero(mask.any(0))[0].mean() + 2  # it moved right
    src = geo.source_coords[target]
    assert np.isfinite(src).all()
    # every target pixel's source point is on the object in the photo
    si = np.clip(np.floor(src[:, 1]).astype(int), 0, H - 1)
    sj = np.clip(np.floor(src[:, 0]).astype(int), 0, W - 1)
    assert mask[si, sj].mean() > 0.95
    # ... and the pixel shows the photo's colour there (bilinear, exact for an affine image)
    np.testing.assert_allclose(rgb[target], _affine_colour(src[:, 0], src[:, 1]), atol=1e-4)
    # a pure translation parallel to the image plane moves every object pixel by the same amount
    ii, jj = np.nonzero(target)
    shift_u = (jj + 0.5) - src[:, 0]
    shift_v = (ii + 0.5) - src[:, 1]
    assert np.ptp(shift_u) < 1e-3 and np.abs(shift_v).max() < 1e-3 and shift_u[0] > 2


def test_static_pixels_are_the_photo_and_holes_are_painted():
    image, depth, mask = _scene()
    rgb, geo = render_preview(image, depth, mask, _translation(0.3))
    holes = geo.hole_mask
    # the left part of the object's old place is uncovered
    assert holes.any() and not (holes & geo.target_mask).any() and (holes <= mask).all()
    assert np.array_equal(rgb[holes], np.broadcast_to(np.float32(HOLE_COLOUR), (holes.sum(), 3)))
    static = ~geo.target_mask & ~holes
    np.testing.assert_allclose(rgb[static], image[static], atol=1e-6)


def test_holes_take_the_background_image():
    image, depth, mask = _scene()
    background = _background(image, mask)
    rgb, geo = render_preview(image, depth, mask, _translation(0.3), background=background)
    holes = geo.hole_mask
    assert holes.any()
    np.testing.assert_allclose(rgb[holes], 0.5, atol=1e-6)
    rest = ~geo.target_mask
    np.testing.assert_allclose(rgb[rest], background[rest], atol=1e-6)
    # the object's pixels are still taken from the photo, not from the background
    src = geo.source_coords[geo.target_mask]
    np.testing.assert_allclose(rgb[geo.target_mask], _affine_colour(src[:, 0], src[:, 1]), atol=1e-4)


def test_camera_move_ignores_the_background_and_moves_every_covered_pixel():
    image, depth, mask = _scene()
    background = _background(image, mask) * 0.0 + 0.25  # would be visible anywhere it were used
    M = _translation(0.2)  # the whole scene moves 0.2 m to +X
    rgb, geo = render_preview(image, depth, mask, FrameEdit((np.eye(4),), M), background=background)
    assert geo.camera_moved
    moved = geo.moved_mask
    assert np.array_equal(moved, geo.valid_mask)
    src = geo.source_coords[moved]
    np.testing.assert_allclose(rgb[moved], _affine_colour(src[:, 0], src[:, 1]), atol=1e-4)
    holes = geo.hole_mask
    assert holes.any()  # the left edge and the wall behind the box are disoccluded
    assert np.array_equal(rgb[holes], np.broadcast_to(np.float32(HOLE_COLOUR), (holes.sum(), 3)))
    assert not np.isclose(rgb, 0.25).all(-1).any()


def test_preview_frame_of_a_lifted_scene_matches_render_preview():
    """Several frames of one photo: one LiftedScene, preview_frame per frame, same pictures."""
    image, depth, mask = _scene()
    background = _background(image, mask)
    scene = LiftedScene.build(depth, mask)
    for dx in (0.1, -0.2):
        T = _translation(dx, 0.05)
        expected, _ = render_preview(image, depth, mask, T, background=background)
        np.testing.assert_allclose(preview_frame(image, scene.frame(T), background), expected, atol=1e-6)


def test_render_preview_reuses_a_given_geometry():
    image, depth, mask = _scene()
    geo = compute_edit_geometry(depth, mask, _translation(0.3))
    rgb, same = render_preview(image, depth, mask, np.eye(4), geometry=geo)
    assert same is geo  # the identity transform was not used: the given geometry was
    assert not np.allclose(rgb, image)


def test_two_objects_move_independently():
    image, depth, mask = _scene()
    second = np.zeros_like(mask)
    second[2:6, 24:30] = True
    depth = np.where(second, 2.0, depth).astype(np.float32)
    masks = np.stack([mask, second])
    rgb, geo = render_preview(image, depth, masks, FrameEdit((np.eye(4), _translation(0.0, -0.15))))
    # object 1 stays: its pixels are the photo's
    np.testing.assert_allclose(rgb[mask], image[mask], atol=1e-5)
    # object 2 moved down (+Y camera up is -v: a -Y move goes down the image)
    t2 = geo.target_masks[1]
    assert np.nonzero(t2)[0].mean() > np.nonzero(second)[0].mean() + 1
    src = geo.source_coords[t2]
    np.testing.assert_allclose(rgb[t2], _affine_colour(src[:, 0], src[:, 1]), atol=1e-4)


def test_output_is_clipped_to_the_unit_range():
    image, depth, mask = _scene()
    bright = image.copy()
    bright[mask] = 1.5
    rgb, _ = render_preview(bright, depth, mask, _translation(0.3), background=image - 0.5)
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert (rgb == 1.0).any() and (rgb == 0.0).any()


def test_refusals():
    image, depth, mask = _scene()
    geo = compute_edit_geometry(depth, mask, _translation(0.3))
    with pytest.raises(ValueError, match="expected"):
        preview_frame(image[..., :2], geo)
    with pytest.raises(ValueError, match="expected"):
        render_preview(image[..., 0], depth, mask, np.eye(4))
    with pytest.raises(ValueError, match="geometry"):
        preview_frame(image[:, :-2], geo)
    with pytest.raises(ValueError, match="background"):
        preview_frame(image, geo, background=image[:-1])
