"""engine.images: the one float -> uint8 conversion and the resizes every module uses."""
from __future__ import annotations

import numpy as np

from engine import io
from engine.images import nearest_index, resize_image, resize_nearest, to_uint8


def test_to_uint8_rounds_to_nearest_and_clips():
    img = np.array([[[0.0, 1.0, 0.5], [-0.2, 1.7, 127.4 / 255]]], np.float32)
    out = to_uint8(img)
    assert out.dtype == np.uint8 and out.tolist() == [[[0, 255, 128], [0, 255, 127]]]


def test_to_uint8_passes_bytes_through_and_maps_masks_to_0_255():
    b = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert to_uint8(b) is b
    assert to_uint8(np.array([[True, False]])).tolist() == [[255, 0]]


def test_saved_png_holds_the_same_bytes(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.random((5, 7, 3), dtype=np.float32)
    io.save_image(tmp_path / "a.png", img)
    assert np.array_equal(np.round(io.load_image(tmp_path / "a.png") * 255).astype(np.uint8), to_uint8(img))


def test_resize_image_shrinks_by_block_means_and_keeps_shape_when_enlarging():
    rng = np.random.default_rng(1)
    img = rng.random((8, 12, 3), dtype=np.float32)
    small = resize_image(img, (4, 6))
    np.testing.assert_allclose(small, img.reshape(4, 2, 6, 2, 3).mean((1, 3)), atol=1e-6)
    big = resize_image(img, (16, 24))
    assert big.shape == (16, 24, 3) and big.min() >= 0 and big.max() <= 1  # bicubic, clipped
    flat = resize_image(img[..., 0] * 5.0, (4, 6), clip=False)  # a depth-like map: no clipping
    np.testing.assert_allclose(flat, (img[..., 0] * 5.0).reshape(4, 2, 6, 2).mean((1, 3)), rtol=1e-6)


def test_resize_nearest_takes_the_pixel_holding_each_centre():
    a = np.arange(6 * 9).reshape(6, 9)
    out = resize_nearest(a, (2, 3))
    assert out.tolist() == [[a[1, 1], a[1, 4], a[1, 7]], [a[4, 1], a[4, 4], a[4, 7]]]
    assert set(np.unique(resize_nearest(a, (13, 5)))) <= set(a.ravel())  # never a mixed value
    assert nearest_index(3, 3).tolist() == [0, 1, 2] and nearest_index(4, 2).tolist() == [0, 0, 1, 1]


def test_depth_to_photo_samples_a_larger_map_and_keeps_a_smooth_one_smooth():
    from engine.images import depth_to_photo, resize_nearest

    image = np.full((30, 40, 3), 0.5, np.float32)
    large = np.random.default_rng(0).uniform(1, 5, (60, 80)).astype(np.float32)
    assert np.array_equal(depth_to_photo(large, image), resize_nearest(large, (30, 40)))  # no mixed depths
    # a plane seen in a plain photo: the guided upsampling is a smooth interpolation of it
    yy = np.linspace(2.0, 3.0, 15)[:, None] * np.ones((1, 20), np.float32)
    up = depth_to_photo(yy.astype(np.float32), image)
    assert up.shape == (30, 40) and np.all(np.diff(up, axis=0) >= -1e-6)  # still increasing down the rows
    assert np.abs(up[:, 0] - up[:, -1]).max() < 1e-5 and 2.0 - 1e-5 <= up.min() and up.max() <= 3.0 + 1e-5
