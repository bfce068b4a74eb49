"""engine.evaluation.segmenters: CIELAB colours, connected components, the colour segmenter."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.evaluation import metrics
from engine.evaluation.scenes import load_scene
from engine.evaluation.segmenters import ColourSegmenter, keep_components, make_segmenter, srgb_to_lab

DATA = Path(__file__).resolve().parents[2] / "data"
SCENE = DATA / "toy" / "scene_003"


def test_lab_reference_values():
    lab = srgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    assert lab[0] == pytest.approx([100.0, 0.0, 0.0], abs=0.05)
    assert lab[1] == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert lab[2] == pytest.approx([53.24, 80.09, 67.20], abs=0.1)


def test_keep_components():
    m = np.zeros((10, 10), bool)
    m[0:4, 0:4] = True  # 16
    m[6:9, 6:9] = True  # 9: kept (>= 25% of 16)
    m[0, 9] = True  # 1: dropped
    k = keep_components(m)
    assert k[0, 0] and k[7, 7] and not k[0, 9]


def test_colour_segmenter_ceiling_and_baseline():
    """On the true edited render the colour segmenter finds the true silhouette (its ceiling),
    and the unedited input scores far lower against the moved object."""
    s = load_scene(SCENE)
    seg, note = make_segmenter("colour", s.image, s.mask)
    assert isinstance(seg, ColourSegmenter) and note.startswith("colour")
    assert metrics.iou(seg.segment(s.image, s.prompt), s.mask) > 0.9
    for f in s.frames:
        ceiling = metrics.iou(seg.segment(f.gt_image, s.prompt), f.gt_true)
        nothing = metrics.iou(seg.segment(s.image, s.prompt), f.gt_true)
        assert ceiling > 0.9
        assert nothing < ceiling - 0.3


def test_auto_segmenter_falls_back_to_colour():
    s = load_scene(SCENE)
    seg, note = make_segmenter("auto", s.image, s.mask)
    # no perception weights on test machines: the note says why it fell back
    if seg.name == "colour":
        assert "perception unavailable" in note
