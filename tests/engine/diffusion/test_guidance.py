"""engine.diffusion.guidance: the energy G = G_o + G_b of paper section 5.2 computed by hand on small
synthetic activations. G_o: per moved part the mean distance over its target pixels, parts averaged;
G_b: the distance between the mean reference activation over the original background and the mean
current activation over the new background; each weighted by the settings' layer weights and
iteration multipliers."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.camera import Camera
from engine.diffusion.guidance import Guidance, LayerTargets, layer_targets, noise_floor
from engine.settings import EditSettings

H, W, C = 6, 8, 3
LAYER = 2


def targets(parts, new_bg, orig_bg):
    """LayerTargets for one frame from bool (K, H, W) parts and (H, W) background masks."""
    u, v = Camera(H, W).pixel_centres()
    coords = np.stack([u, v], -1)[None].astype(np.float32)
    f = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    return LayerTargets(f(coords), f(parts)[None], f(new_bg)[None, None], f(orig_bg)[None, None])


def guidance(tg, ref, loss="l1"):
    settings = EditSettings(loss=loss)
    return Guidance({(0, LAYER): ref}, {(H, W): tg}, settings, "cpu"), settings


def put(t, mask, value):
    """t[0, :, mask] = value: a scalar, or one value per channel."""
    value = torch.as_tensor(value, dtype=t.dtype)
    t[0, :, torch.as_tensor(mask)] = value.reshape(-1, 1) if value.ndim else value


def box(i0, i1, j0, j1):
    m = np.zeros((H, W), bool)
    m[i0:i1, j0:j1] = True
    return m


def test_identity_edit_has_zero_energy_through_the_warped_references():
    obj = box(1, 3, 1, 4)
    tg = targets(obj[None], ~obj, ~obj)
    ref = torch.randn(1, C, H, W)
    g, _ = guidance(tg, ref)
    warped = g.warped_references(0, [LAYER])  # sources at the pixel centres: the reference itself
    torch.testing.assert_close(warped[LAYER], ref, atol=1e-5, rtol=0)
    total, plain, parts = g.energy(0, {LAYER: ref.clone()}, warped, iteration=0)
    assert total.shape == (1,) and total.item() == pytest.approx(0.0, abs=1e-5)
    assert plain.item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("loss,delta,expected", [("l1", 2.0, 2.0), ("l2", 2.0, 4.0)])
def test_foreground_energy_is_the_mean_distance_over_the_part(loss, delta, expected):
    obj = box(1, 3, 1, 4)
    tg = targets(obj[None], np.ones((H, W), bool), np.ones((H, W), bool))
    ref = torch.zeros(1, C, H, W)
    g, s = guidance(tg, ref, loss)
    cur = torch.zeros(1, C, H, W)
    put(cur, obj, delta)  # every channel off by delta on the part, nothing elsewhere
    put(cur, ~obj, 100.0)  # ... and anything at all outside the part does not count in G_o
    _, _, parts = g.energy(0, {LAYER: cur}, {LAYER: torch.zeros(1, C, H, W)}, iteration=0)
    g_o, _ = parts[LAYER]
    assert g_o.item() == pytest.approx(expected)


def test_parts_count_the_same_whatever_their_size():
    small, large = box(0, 1, 0, 1), box(2, 6, 2, 8)
    tg = targets(np.stack([small, large]), np.ones((H, W), bool), np.ones((H, W), bool))
    ref = torch.zeros(1, C, H, W)
    g, _ = guidance(tg, ref)
    cur = torch.zeros(1, C, H, W)
    put(cur, small, 1.0)
    put(cur, large, 3.0)
    _, _, parts = g.energy(0, {LAYER: cur}, {LAYER: torch.zeros(1, C, H, W)}, iteration=0)
    assert parts[LAYER][0].item() == pytest.approx((1.0 + 3.0) / 2)  # not the pixel-weighted 2.9...


def test_background_energy_compares_the_means_over_old_and_new_background():
    obj, moved = box(1, 3, 1, 3), box(1, 3, 5, 7)
    tg = targets(moved[None], ~moved, ~obj)
    ref = torch.zeros(1, C, H, W)
    put(ref, ~obj, [1.0, 2.0, 3.0])  # the original background's mean: (1, 2, 3)
    put(ref, obj, 50.0)  # the original object is not background
    cur = torch.zeros(1, C, H, W)
    put(cur, ~moved, [1.5, 2.0, 2.0])  # mean over the new background
    put(cur, moved, -70.0)  # the moved object is not background
    g, _ = guidance(tg, ref)
    _, _, parts = g.energy(0, {LAYER: cur}, {LAYER: cur.clone()}, iteration=0)
    g_o, g_b = parts[LAYER]
    assert g_o.item() == 0.0
    # L1 mean over the channels of |new - orig|, less the arithmetic-noise floor on each
    floor, scale = noise_floor(torch.float32), ref.abs().mean().item()
    per_channel = [max(d - floor * (b + scale), 0.0) for d, b in ((0.5, 1.0), (0.0, 2.0), (1.0, 3.0))]
    assert g_b.item() == pytest.approx(sum(per_channel) / 3)
    assert g_b.item() == pytest.approx((0.5 + 0.0 + 1.0) / 3, rel=1e-2)  # the floor is a tiny part


def test_weights_and_iteration_multipliers():
    obj = box(1, 3, 1, 4)
    tg = targets(obj[None], ~obj, ~obj)
    ref = torch.zeros(1, C, H, W)
    cur = torch.zeros(1, C, H, W)
    put(cur, obj, 1.0)  # G_o = 1
    put(cur, ~obj, 0.25)  # G_b = 0.25
    g, s = guidance(tg, ref)
    w_o, w_b = s.layer_weights(LAYER)
    for iteration in (0, 1):
        m_fg, m_bg = s.multipliers_at(iteration)
        total, plain, _ = g.energy(0, {LAYER: cur}, {LAYER: torch.zeros(1, C, H, W)}, iteration)
        assert total.item() == pytest.approx(w_o * m_fg * 1.0 + w_b * m_bg * 0.25)
        assert plain.item() == pytest.approx(w_o * 1.0 + w_b * 0.25)


def geometry(target, obj, camera_moved=False):
    u, v = Camera(H, W).pixel_centres()
    return SimpleNamespace(shape=(H, W), source_coords=np.stack([u, v], -1), valid_mask=np.ones((H, W), bool),
                           target_masks=[target], target_mask=target, object_mask=obj, camera_moved=camera_moved)


def test_layer_targets_from_geometries():
    obj, moved = box(1, 3, 1, 3), box(1, 3, 5, 7)
    tg = layer_targets([geometry(moved, obj), geometry(obj, obj)], "cpu")
    assert tg.source_coords.shape == (2, H, W, 2) and tg.fg_masks.shape == (2, 2, H, W)
    assert torch.equal(tg.fg_mask[0, 0].bool(), torch.as_tensor(moved))
    assert tg.fg_masks[:, 1].sum() == 0  # no camera move: no scene part
    assert torch.equal(tg.new_bg_mask[0, 0].bool(), torch.as_tensor(~moved))
    assert torch.equal(tg.orig_bg_mask[0, 0].bool(), torch.as_tensor(~obj))
    # in a camera move the static scene is one more guided part
    cam = layer_targets([geometry(moved, obj, camera_moved=True)], "cpu")
    assert torch.equal(cam.fg_masks[0, 1].bool(), torch.as_tensor(~moved))
    with pytest.raises(ValueError, match="different grids"):
        layer_targets([geometry(moved, obj), SimpleNamespace(**{**vars(geometry(moved, obj)), "shape": (3, 4)})], "cpu")
