"""engine.composite: frames at the photo's own size from working-resolution edits."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from engine.composite import changed_region, to_photo_size
from engine.images import resize_image, resize_nearest, to_uint8
from engine.lifted import compute_edit_geometry
from engine.preview import render_preview

SCALE = 5  # photo pixels per working pixel
WORK = (24, 32)
PHOTO = (WORK[0] * SCALE, WORK[1] * SCALE)


def _scene():
    """A textured photo (fine stripes on the object, grain everywhere) of a box on a slanted floor."""
    H, W = PHOTO
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    image = np.stack([0.3 + 0.3 * xx / W, 0.5 + 0.2 * yy / H, 0.45 + 0 * xx], -1)
    image += rng.uniform(-0.03, 0.03, image.shape)
    mask = np.zeros((H, W), bool)
    mask[8 * SCALE:16 * SCALE + 2, 6 * SCALE + 3:14 * SCALE] = True
    stripes = 0.5 + 0.4 * np.sign(np.sin(xx * 1.3 + yy * 0.7))
    image[mask] = np.stack([stripes, 0.2 * stripes, 1 - stripes], -1)[mask]
    depth = np.where(mask, 1.5, 3.0 - yy / H).astype(np.float32)
    photo = to_uint8(image)
    return photo, depth, mask


def _translation(dx):
    T = np.eye(4)
    T[0, 3] = dx
    return T


def _prepared(photo, depth, mask):
    """What to_photo_size reads from a Prepared, with a 'reconstruction' that is the downsampled photo."""
    recon = resize_image(photo.astype(np.float32) / 255.0, WORK)
    return SimpleNamespace(photo=photo, photo_mask=mask, object_mask=resize_nearest(mask, WORK),
                           reconstruction=recon, size=WORK, depth=resize_nearest(depth, WORK))


def _result(prepared, T):
    """An ideal working-size edit: the reconstruction with the object moved by the geometry."""
    g = compute_edit_geometry(prepared.depth, prepared.object_mask, T)
    image, _ = render_preview(prepared.reconstruction, prepared.depth, prepared.object_mask, T, geometry=g,
                              background=np.where(prepared.object_mask[..., None], 0.4, prepared.reconstruction))
    coords = np.where(g.target_mask[..., None], g.source_coords, np.nan).astype(np.float32)
    return SimpleNamespace(image=image, target_mask=g.target_mask, valid_mask=g.valid_mask,
                           source_coords=coords), g


def _high_frequency(img, region):
    """Energy of the 3x3 Laplacian over the region (the detail an upscale cannot bring back)."""
    from scipy import ndimage

    lap = np.stack([ndimage.laplace(img[..., c].astype(np.float64)) for c in range(3)], -1)
    return float((lap[region] ** 2).mean())


@pytest.fixture(scope="module")
def scene():
    photo, depth, mask = _scene()
    prepared = _prepared(photo, depth, mask)
    result, geometry = _result(prepared, _translation(0.35))
    return photo, depth, mask, prepared, result, geometry


def _far(prepared, result, margin_photo_px):
    from scipy import ndimage

    near = resize_nearest(prepared.object_mask | result.target_mask, PHOTO)
    return ~ndimage.binary_dilation(near, iterations=margin_photo_px)


def test_photo_size_and_far_pixels_are_the_photos_own(scene):
    photo, _, _, prepared, result, _ = scene
    frame = to_photo_size(prepared, result)
    assert frame.shape == (*PHOTO, 3) and frame.dtype == np.float32
    far = _far(prepared, result, 3 * SCALE)
    assert far.mean() > 0.3
    written = to_uint8(frame)  # as io.save_image writes it
    assert np.array_equal(written[far], photo[far])
    # the object moved: its old place is no longer the photo, its new place shows it
    old_only = resize_nearest(prepared.object_mask & ~result.target_mask, PHOTO)
    assert np.abs(frame[old_only] - photo[old_only] / 255.0).mean() > 0.1


def test_unchanged_edit_gives_back_the_photo(scene):
    """Where the edit equals the reconstruction, the photo comes back (its detail included)."""
    photo, _, _, prepared, _, _ = scene
    T = np.eye(4)
    g = compute_edit_geometry(prepared.depth, prepared.object_mask, T)
    result = SimpleNamespace(image=prepared.reconstruction.copy(), target_mask=g.target_mask,
                             valid_mask=g.valid_mask, source_coords=np.full((*WORK, 2), np.nan, np.float32))
    frame = to_photo_size(prepared, result)
    written = to_uint8(frame)
    assert np.abs(written.astype(int) - photo).max() <= 1


def test_feather_is_continuous():
    """A change over the whole region fades out pixel by pixel: no step at the seam."""
    photo = np.full((*PHOTO, 3), 128, np.uint8)
    mask = np.zeros(PHOTO, bool)
    mask[10 * SCALE:14 * SCALE, 10 * SCALE:16 * SCALE] = True
    photo[mask] = 80
    depth = np.where(mask, 1.5, 3.0).astype(np.float32)
    prepared = _prepared(photo, depth, mask)
    result, _ = _result(prepared, _translation(0.2))
    base = to_photo_size(prepared, result)
    brighter = to_photo_size(prepared, SimpleNamespace(**{**vars(result), "image": result.image + 0.2}))
    delta = (brighter - base).mean(-1)  # 0.2 * alpha
    assert delta.max() == pytest.approx(0.2, abs=1e-5) and delta.min() >= -1e-6
    steps = max(np.abs(np.diff(delta, axis=0)).max(), np.abs(np.diff(delta, axis=1)).max())
    assert steps < 0.2 * 0.6  # spread over at least two pixels, with no jump
    band = (delta > 0) & (delta < 0.198)
    core = delta >= 0.198
    assert band.sum() > 2 * 4 * np.sqrt(core.sum())  # a band around the region, not a line


def test_moved_object_is_sharper_than_an_upscale(scene):
    photo, depth, mask, prepared, result, _ = scene
    frame = to_photo_size(prepared, result)
    upscaled = resize_image(result.image, PHOTO)
    truth, g_full = render_preview(photo.astype(np.float32) / 255.0, depth, mask, _translation(0.35))
    from scipy import ndimage

    inner = ndimage.binary_erosion(g_full.target_mask & resize_nearest(result.target_mask, PHOTO), iterations=3)
    assert inner.sum() > 200
    hf_truth = _high_frequency(truth, inner)
    hf_frame = _high_frequency(frame, inner)
    hf_up = _high_frequency(upscaled, inner)
    assert hf_frame > 4 * hf_up
    assert 0.5 * hf_truth < hf_frame < 1.5 * hf_truth
    # and it is the photo's detail in the right place, not just noise
    assert np.abs(frame[inner] - truth[inner]).mean() < 0.5 * np.abs(upscaled[inner] - truth[inner]).mean()


def test_measured_change_next_to_the_object_is_kept_far_drift_is_not(scene):
    photo, _, _, prepared, result, _ = scene
    image = result.image.copy()
    target = result.target_mask
    rows = np.nonzero(target.any(1))[0]
    cols = np.nonzero(target.any(0))[0]
    shadow = np.zeros(WORK, bool)
    shadow[rows.max() + 1:rows.max() + 4, cols.min():cols.max() + 1] = True  # under the object
    image[shadow] *= 0.5
    image[:, :3] = np.clip(image[:, :3] + 0.01, 0, 1)  # slight drift along the left edge
    edited = SimpleNamespace(**{**vars(result), "image": image})
    region = changed_region(prepared, edited)
    assert region[shadow].all()
    assert not region[:, :2].any()
    frame = to_photo_size(prepared, edited)
    under = resize_nearest(shadow, PHOTO)
    assert (frame[under].mean() < 0.8 * photo[under].mean() / 255.0)


def test_tiny_models_end_to_end(tiny_models_dir):
    """Engine.edit with the tiny random models on a photo five times the working size."""
    from engine.pipeline import Engine
    from engine.settings import EditSettings

    photo, depth, mask = _scene()
    engine = Engine(models_dir=tiny_models_dir, device="cpu", dtype="fp32",
                    settings=EditSettings(resolution=32, steps=3, guided_steps=2, inversion="negative-prompt"))
    prepared = engine.prepare(photo, "a box", depth, mask)
    assert prepared.photo.shape == (*PHOTO, 3) and np.array_equal(prepared.photo, photo)
    result = engine.edit(prepared, [_translation(0.35)])[0]
    frame = to_photo_size(prepared, result)
    assert frame.shape == (*PHOTO, 3)
    region = resize_nearest(changed_region(prepared, result), PHOTO)
    from scipy import ndimage

    far = ~ndimage.binary_dilation(region, iterations=2 * SCALE)
    written = to_uint8(frame)
    assert far.any() and np.array_equal(written[far], photo[far])


def test_preview_renders_at_photo_size_with_the_photos_pixels():
    """The weightless preview (the add-on's PreviewRenderer) works at the photo's size directly."""
    from engine.perception.removal import fill_background

    photo, depth, mask = _scene()
    image = photo.astype(np.float32) / 255.0
    background, background_depth = fill_background(image, depth, mask)
    rgb, g = render_preview(image, depth, mask, _translation(0.35), background=background,
                            background_depth=background_depth)
    assert rgb.shape == (*PHOTO, 3)
    from scipy import ndimage

    far = ~ndimage.binary_dilation(mask | g.target_mask, iterations=3 * SCALE)
    assert np.array_equal(to_uint8(rgb[far]), photo[far])
