"""engine.evaluation.metrics: IoU, L1, PSNR, centroid distance; LPIPS never downloads."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.evaluation import metrics


def test_metrics():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert metrics.iou(a, b) == 1.0
    a[:2] = True
    b[1:3] = True
    assert metrics.iou(a, b) == pytest.approx(4 / 12)
    x = np.zeros((4, 4, 3))
    y = np.full((4, 4, 3), 0.1)
    assert metrics.l1(x, y) == pytest.approx(0.1)
    assert metrics.psnr(x, y) == pytest.approx(20.0)
    assert metrics.psnr(x, x) == math.inf
    m = np.zeros((4, 4), bool)
    m[0, 0] = True
    y2 = y.copy()
    y2[0, 0] = 0.5
    assert metrics.l1(x, y2, m) == pytest.approx(0.5)
    assert metrics.l1(x, y2, np.zeros((4, 4), bool)) is None
    assert metrics.centroid_distance(a, b) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        metrics.l1(x, y[:2])


def test_lpips_never_downloads():
    ok, note = metrics.lpips_status()
    assert isinstance(note, str) and note
    if not ok:
        assert metrics.lpips(np.zeros((8, 8, 3)), np.ones((8, 8, 3))) is None


def test_flicker_is_the_change_that_departs_from_the_true_change():
    rng = np.random.default_rng(0)
    g0, g1 = rng.random((2, 6, 5, 3))
    # a frame with a constant error that keeps it: the change is the true change, no flicker
    assert metrics.flicker(g1 + 0.1, g0 + 0.1, g1, g0) == pytest.approx(0.0, abs=1e-12)
    # a result that stays put while the truth moves flickers by the true change
    f = rng.random((6, 5, 3))
    assert metrics.flicker(f, f, g1, g0) == pytest.approx(float(np.abs(g1 - g0).mean()))
    # an error that appears in one frame only: its full size, whatever its sign
    bump = np.zeros((6, 5, 3))
    bump[2, 3, 0] = 0.6
    assert metrics.flicker(g1 + bump, g0, g1, g0) == pytest.approx(0.6 / bump.size)
    assert metrics.flicker(g1 - bump, g0, g1, g0) == pytest.approx(0.6 / bump.size)
    with pytest.raises(ValueError):
        metrics.flicker(g1, g0[:5], g1, g0)
