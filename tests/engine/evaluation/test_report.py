"""engine.evaluation.report: summary, strict JSON, markdown and the contact sheet."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from engine.evaluation.report import contact_sheet, markdown, summarise, write_json


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
