"""The evaluation on scenes whose frames are one move (`python -m engine eval`, tiny models): each
frame's flicker against the previous one, reported per frame and in the summary."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main


def test_flicker_of_consecutive_frames_of_one_move(tiny_models_dir, tmp_path):
    from PIL import Image

    from engine.evaluation import metrics
    from engine.evaluation.scenes import load_scene

    scenes = Path(__file__).resolve().parents[2] / "data" / "toy_trajectory"
    out = tmp_path / "eval"
    assert main(["eval", "--scenes", str(scenes), "--out", str(out), "--models", str(tiny_models_dir),
                 "--steps", "2", "--resolution", "32", "--inversion", "negative-prompt", "--segmenter",
                 "colour", "--frames", "3",
                 "--no-cycle"]) == 0
    report = json.loads((out / "report.json").read_text())
    (row,) = report["scenes"]
    scene = load_scene(scenes / row["name"])
    frames = row["frames"]
    assert [f["frame"] for f in frames] == ["0001", "0002", "0003"]
    # the first frame has no previous one
    assert all(m["flicker"] is None for m in frames[0]["methods"].values())

    def read(name):
        return np.asarray(Image.open(out / row["name"] / name).convert("RGB"), np.float32) / 255.0

    for k in (1, 2):
        g, gp = scene.frames[k].gt_image, scene.frames[k - 1].gt_image
        m = frames[k]["methods"]
        # nothing moved: the input in every frame, so its flicker is the true change itself
        assert m["nothing_moved"]["flicker"] == pytest.approx(float(np.abs(g - gp).mean()), rel=1e-6)
        for method in ("edit", "no_guidance"):
            f, fp = read(f"{method}_{k + 1:04d}.png"), read(f"{method}_{k:04d}.png")
            # the saved frames are rounded to 8 bits: four roundings of at most half a level each
            assert m[method]["flicker"] == pytest.approx(metrics.flicker(f, fp, g, gp), abs=2 / 255)
    summary = report["summary"]["methods"]
    assert summary["edit"]["flicker"] == pytest.approx(np.mean([f["methods"]["edit"]["flicker"] for f in frames[1:]]))
    assert "flicker vs truth" in (out / "report.md").read_text()
