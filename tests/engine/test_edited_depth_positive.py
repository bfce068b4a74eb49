"""The edited depth stays a depth: the gradient-domain composite of a moved object can overshoot
below zero where a thin target part carries a large seam jump (seen on a toy scene at 64x64, where
the diffusion edit then refused the frame); such pixels take the naive composite instead."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import io
from engine.lifted import LiftedScene
from engine.transforms import load_transforms, object_centroid

SCENE = Path(__file__).resolve().parents[1] / "data" / "identity_ring"


def test_every_frame_of_the_toy_ring_has_a_positive_finite_edited_depth():
    depth = np.load(SCENE / "depth.npy")
    mask = io.load_mask(SCENE / "mask.png", expected_shape=depth.shape)
    scene = LiftedScene.build(depth, mask[None])
    edits = load_transforms(SCENE / "transforms.json", centroid=object_centroid(depth, mask[None]))
    assert len(edits) >= 2
    for edit in edits:
        d = scene.frame(edit).edited_depth
        assert np.isfinite(d).all() and (d > 0).all()
