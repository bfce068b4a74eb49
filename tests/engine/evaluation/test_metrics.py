"""Evaluation building blocks that need no model: scene loading, metrics, segmenters, report."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2] / "data"
from engine.errors import InputError
from engine.evaluation import metrics
from engine.evaluation.report import contact_sheet, markdown, summarise, write_json
from engine.evaluation.scenes import find_scenes, load_scene, object_query
from engine.evaluation.segmenters import ColourSegmenter, keep_components, make_segmenter, srgb_to_lab

SCENE = DATA / "toy" / "scene_003"


def test_load_scene():
    s = load_scene(SCENE)
    assert s.image.shape == (64, 64, 3) and s.image.dtype == np.float32
    assert 0.0 <= s.image.min() and s.image.max() <= 1.0
    assert s.depth.shape == (64, 64) and np.all(s.depth > 0)
    assert s.mask.dtype == bool and s.mask.any()
    assert s.prompt == "a ring on a floor"
    assert [f.index for f in s.frames] == [1, 2]
    for f in s.frames:
        assert f.transform.matrix.shape == (4, 4) and not f.transform.moves_camera
        assert f.gt_image.shape == (64, 64, 3) and f.gt_true.any() and f.gt_lifted.any()
    assert find_scenes(SCENE) == [SCENE]
    assert find_scenes(SCENE.parent) == [SCENE]


def test_bad_scene_inputs(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        find_scenes(tmp_path / "nope")
    with pytest.raises(InputError, match="no scene folders"):
        find_scenes(tmp_path)
    bad = tmp_path / "scene"
    bad.mkdir()
    for name in ("image.png", "mask.png", "prompt.txt", "depth.npy"):
        (bad / name).write_bytes((SCENE / name).read_bytes())
    (bad / "transforms.json").write_text('{"frames": [{"matrix": [[1, 0, 0], [0, 1, 0]]}]}')
    with pytest.raises(InputError, match="transforms"):
        load_scene(bad)
    (bad / "transforms.json").write_text((SCENE / "transforms.json").read_text())
    d = np.load(SCENE / "depth.npy")
    d[3, 3] = np.nan
    np.save(bad / "depth.npy", d)
    with pytest.raises(InputError, match="NaN"):
        load_scene(bad)


def test_object_query():
    assert object_query("a toy car on a floor") == "toy car"
    assert object_query("A ring on a floor.") == "ring"
    assert object_query("the cone") == "cone"


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


def _fake_report():
    rows = []
    for name in ("a", "b"):
        frames = []
        for k in (1, 2):
            methods = {m: {"adherence_iou": v, "centroid_error_px": 1.0, "cycle_l1": 0.01 * k, "cycle_lpips": None,
                           "gt_l1": 0.05, "gt_psnr": 25.0, "gt_l1_object": 0.1, "gt_psnr_object": math.inf}
                       for m, v in (("edit", 0.7), ("no_guidance", 0.4), ("nothing_moved", 0.3))}
            frames.append({"frame": f"{k:04d}", "methods": methods, "segmenter_ceiling_iou": 0.95,
                           "target_mask_iou_lifted": 0.8})
        rows.append({"name": name, "frames": frames, "reconstruction": {"l1": 0.01, "psnr": 35.0},
                     "costs": {"prepare": {"calls": 1, "seconds": 2.0, "unet_forward": 100, "unet_backward": None}}})
    return {"config": {"scenes": "x", "steps": 4}, "segmenter": "colour", "lpips": {"available": False, "note": "absent"},
            "scenes": rows, "summary": summarise(rows), "seconds": 1.0}


def test_report_writers(tmp_path):
    rep = _fake_report()
    s = rep["summary"]
    assert s["frames"] == 4
    assert s["methods"]["edit"]["adherence_iou"] == pytest.approx(0.7)
    assert s["methods"]["edit"]["cycle_l1"] == pytest.approx(0.015)
    assert s["costs"]["prepare"]["unet_forward"] == 100
    write_json(rep, tmp_path / "r.json")
    back = json.loads((tmp_path / "r.json").read_text())  # strict JSON: no Infinity
    assert back["summary"]["methods"]["edit"]["gt_psnr_object"] is None
    md = markdown(rep)
    assert "| edit (guided) | 0.700" in md and "nothing moved" in md and "no guidance" in md
    img = np.zeros((8, 8, 3))
    sheet = contact_sheet([("a", [img, img, img, img, None])], scale=2, path=tmp_path / "sheet.png")
    assert (tmp_path / "sheet.png").is_file() and sheet.size[1] > 16
