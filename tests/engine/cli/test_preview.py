"""``python -m engine preview`` run as a user would, on inputs made in tmp_path."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.camera import Camera
from engine.io import load_depth, load_image, load_mask, save_depth_exr, save_image, save_mask

REPO = Path(__file__).resolve().parents[3]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "engine", "preview", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.fixture
def scene(tmp_path):
    """A 40x30 photo: a red square 2 m away in front of a grey wall 6 m away."""
    h, w = 30, 40
    rgb = np.full((h, w, 3), 0.5, np.float32)
    depth = np.full((h, w), 6.0, np.float32)
    mask = np.zeros((h, w), bool)
    mask[10:20, 8:18] = True
    rgb[mask] = [1.0, 0.0, 0.0]
    depth[mask] = 2.0
    d = tmp_path / "in"
    d.mkdir()
    save_image(d / "image.png", rgb)
    save_depth_exr(d / "depth.exr", depth)
    save_mask(d / "mask.png", mask)
    save_image(d / "bg.png", np.full((h, w, 3), 0.5, np.float32))
    shift = 10 * 2.0 / Camera(h, w).focal  # exactly 10 px to the right
    (d / "t.json").write_text(json.dumps({"frames": [
        {"translation": [shift, 0, 0], "frame": 5},
        {"rotation_axis": [0, 0, 1], "rotation_angle": 90, "frame": 9},
    ]}))
    return d, mask


def test_preview_writes_every_frame_and_a_report(scene, tmp_path):
    d, mask = scene
    out = tmp_path / "out"
    r = run_cli("--image", d / "image.png", "--depth", d / "depth.exr", "--mask", d / "mask.png",
                "--transforms", d / "t.json", "--out", out)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{kind}_{k:04d}.{ext}" for k in (1, 2) for kind, ext in (
        ("preview", "png"), ("target_mask", "png"), ("valid_mask", "png"), ("edited_depth", "exr"))]
        + ["manifest.json", "report.json"])
    target = load_mask(out / "target_mask_0001.png")
    assert np.array_equal(target, np.roll(mask, 10, axis=1))
    valid = load_mask(out / "valid_mask_0001.png")
    assert np.array_equal(valid, ~mask | target)
    preview = load_image(out / "preview_0001.png")
    assert np.allclose(preview[target], [1, 0, 0], atol=1 / 255)  # the object, moved
    assert np.allclose(preview[~valid], [1, 0, 1], atol=1 / 255)  # the hole, marked magenta
    depth = load_depth(out / "edited_depth_0001.exr")
    np.testing.assert_allclose(depth[target], 2.0, rtol=1e-5)
    np.testing.assert_allclose(depth[~mask & ~target], 6.0, rtol=1e-5)
    report = json.loads((out / "report.json").read_text())
    assert [f["frame"] for f in report["frames"]] == [5, 9]
    assert report["frames"][0]["target_area"] == mask.sum()
    assert report["frames"][1]["target_area"] > 0 and "geometry" in report["frames"][1]["timings_s"]


def test_preview_over_a_background_and_pytorch3d(scene, tmp_path):
    d, mask = scene
    out = tmp_path / "out"
    (d / "ref.json").write_text(json.dumps({"edit_000": {
        "translation": [0, 0, 0], "rotation_axis": [0, 1, 0], "rotation_angle": 0}}))
    r = run_cli("--image", d / "image.png", "--depth", d / "depth.exr", "--mask", d / "mask.png",
                "--transforms", d / "ref.json", "--convention", "pytorch3d", "--out", out,
                "--background", d / "bg.png")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(load_mask(out / "target_mask_0001.png"), mask)
    preview = load_image(out / "preview_0001.png")
    assert np.allclose(preview[~mask], 0.5, atol=1 / 255)


@pytest.mark.parametrize("case", ["bad_transform", "depth_size", "nan_depth", "empty_mask", "missing_image"])
def test_bad_input_one_line_error_and_no_output(scene, tmp_path, case):
    d, mask = scene
    args = {"--image": d / "image.png", "--depth": d / "depth.exr", "--mask": d / "mask.png",
            "--transforms": d / "t.json"}
    if case == "bad_transform":
        # The first frame is fine; the second is broken: nothing at all may be written.
        (d / "bad.json").write_text(json.dumps({"frames": [
            {"translation": [0.1, 0, 0]}, {"matrix": [[1, 0, 0, 0], [0, 3, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}]}))
        args["--transforms"] = d / "bad.json"
    elif case == "depth_size":
        save_depth_exr(d / "small.exr", np.ones((10, 10), np.float32))
        args["--depth"] = d / "small.exr"
    elif case == "nan_depth":
        bad = np.ones((30, 40), np.float32)
        bad[3, 3] = np.nan
        np.save(d / "nan.npy", bad)
        args["--depth"] = d / "nan.npy"
    elif case == "empty_mask":
        save_mask(d / "empty.png", np.zeros((30, 40), bool))
        args["--mask"] = d / "empty.png"
    else:
        args["--image"] = d / "nope.png"
    out = tmp_path / "out"
    r = run_cli(*[x for kv in args.items() for x in kv], "--out", out)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("folder", ["objects/scene_001", "camera/scene_002"])
def test_preview_several_objects_and_camera_moves_on_rendered_scenes(folder, tmp_path):
    """Run as the checks do: per-object target masks vs gt_lifted_K_N, coverage vs gt_lifted_K."""
    src = REPO / "tests" / "data" / folder
    masks = sorted(src.glob("mask_*.png")) or [src / "mask.png"]
    out = tmp_path / "out"
    r = run_cli("--image", src / "image.png", "--depth", src / "depth.exr",
                *[x for m in masks for x in ("--mask", m)], "--transforms", src / "transforms.json",
                "--out", out)
    assert r.returncode == 0, r.stderr

    def iou(a, b):
        return (a & b).sum() / max((a | b).sum(), 1)

    report = json.loads((out / "report.json").read_text())
    for k in (1, 2, 3):
        tag = f"{k:04d}"
        per = [load_mask(out / f"target_mask_{tag}_{n}.png") for n in range(1, len(masks) + 1)] \
            if len(masks) > 1 else [load_mask(out / f"target_mask_{tag}.png")]
        assert np.array_equal(load_mask(out / f"target_mask_{tag}.png"), np.any(per, axis=0))
        assert report["frames"][k - 1]["visible_objects"] == [True] * len(masks)
        if len(masks) > 1:
            scores = [iou(p, load_mask(src / f"gt_lifted_{tag}_{n}.png")) for n, p in enumerate(per, start=1)]
            assert min(scores) >= 0.9, scores
        else:
            assert iou(load_mask(out / f"valid_mask_{tag}.png"), load_mask(src / f"gt_lifted_{tag}.png")) >= 0.99
            assert iou(per[0], load_mask(src / f"gt_true_{tag}.png")) >= 0.92
