"""Engine.prepare / edit with several objects and camera moves (tiny random-weight model)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.camera import Camera
from engine.errors import InputError
from engine.pipeline import Engine
from engine.prepared import Prepared
from engine.settings import EditSettings, RuntimeOptions
from engine.transforms import FrameEdit

SETTINGS = EditSettings(resolution=32, steps=4, guided_steps=3, inversion="negative-prompt")


def two_objects(size=32):
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.3 + 0.4 * xx, 0.4 + 0.2 * yy, 0.5 + 0.2 * np.sin(8 * xx)], -1)
    depth = np.full((size, size), 3.0, np.float32) - 0.5 * yy
    masks = np.zeros((2, size, size), bool)
    masks[0, 10:20, 4:12] = True
    masks[1, 12:22, 20:28] = True
    image[masks[0]] = [0.9, 0.2, 0.1]
    image[masks[1]] = [0.1, 0.8, 0.2]
    depth[masks[0]], depth[masks[1]] = 1.5, 2.0
    return image.astype(np.float32), depth.astype(np.float32), masks


def shift(px, z, size=32):
    T = np.eye(4)
    T[0, 3] = px * z / Camera(size, size).focal
    return T


@pytest.fixture(scope="module")
def engine(tiny_models_dir):
    return Engine(models_dir=tiny_models_dir, settings=SETTINGS,
                  runtime=RuntimeOptions(device="cpu", dtype="fp32", frame_batch_size=1))


@pytest.fixture(scope="module")
def prepared(engine):
    image, depth, masks = two_objects()
    return engine.prepare(image, "a red box and a green box", depth, masks)


def test_several_objects_and_a_camera_move(engine, prepared, tmp_path):
    assert prepared.object_masks.shape == (2, 32, 32)
    assert np.array_equal(prepared.object_mask, prepared.object_masks.any(0))
    still = FrameEdit((np.eye(4), np.eye(4)))
    both = FrameEdit((shift(3, 1.5), shift(-2, 2.0)))
    gone = FrameEdit((shift(2, 1.5), shift(60, 2.0)))  # object 2 leaves the frame
    orbit = FrameEdit((np.eye(4), np.eye(4)), shift(-1, 3.0))
    r_still, r_both, r_gone, r_orbit = engine.edit(prepared, [still, both, gone, orbit])
    # Nothing moved: the reconstruction, not sampled (test_pipeline checks that sampling gives it too).
    assert r_still.stats.reused == "reconstruction" and r_still.stats.unet_forward == 0
    np.testing.assert_array_equal(r_still.image, prepared.reconstruction)
    assert np.isnan(r_still.source_coords[~r_still.target_mask]).all()
    # Each object moved by its own transform.
    assert len(r_both.target_masks) == 2
    assert np.array_equal(r_both.target_masks[0], np.roll(prepared.object_masks[0], 3, axis=1))
    assert np.array_equal(r_both.target_masks[1], np.roll(prepared.object_masks[1], -2, axis=1))
    assert r_both.stats.visible_objects == [True, True]
    assert r_both.stats.energy[0]["energy"] > 0
    # An object out of view in one frame: rendered without it, and said so.
    assert r_gone.stats.visible_objects == [True, False] and not r_gone.target_masks[1].any()
    # A camera move: every covered pixel has a source, the left strip is disoccluded.
    assert r_orbit.stats.camera_moved
    moved = np.isfinite(r_orbit.source_coords).all(-1)
    assert np.array_equal(moved, r_orbit.valid_mask) and not r_orbit.valid_mask.all()
    assert np.isfinite(r_orbit.image).all()
    # The prepared cache keeps the masks and the completed background (the lifted scene's input).
    prepared.save(tmp_path / "p")
    back = Prepared.load(tmp_path / "p")
    assert np.array_equal(back.object_masks, prepared.object_masks)
    np.testing.assert_array_equal(back.scene.background_depth, prepared.scene.background_depth)
    with pytest.raises(InputError, match="out of view in every frame"):
        engine.edit(prepared, [FrameEdit((shift(80, 1.5), shift(80, 2.0)))])
    with pytest.raises(InputError, match="3 objects"):
        engine.edit(prepared, [FrameEdit((np.eye(4),) * 3)])
