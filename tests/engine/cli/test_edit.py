"""`python -m engine edit` (from a prepared photo and from photo arguments) on inputs made in
tmp_path, with the tiny models; refusals are one clear line."""
from __future__ import annotations

import json

from cli_photo import FAST
from engine import io
from engine.cli import main


def test_prepare_then_edit(photo, tiny_models_dir, tmp_path, capsys):
    prep = tmp_path / "prep"
    rc = main(["prepare", "--image", str(photo / "image.png"), "--prompt", "a blue box",
               "--depth", str(photo / "depth.npy"), "--mask", str(photo / "mask.png"),
               "--out", str(prep), "--models", str(tiny_models_dir), *FAST])
    assert rc == 0, capsys.readouterr().err
    assert (prep / "prepared.json").is_file() and (prep / "prepared.safetensors").is_file()
    out = tmp_path / "out"
    rc = main(["edit", "--prepared", str(prep), "--transforms", str(photo / "transforms.json"),
               "--out", str(out), "--models", str(tiny_models_dir), "--device", "cpu", "--dtype", "fp32"])
    assert rc == 0, capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["edited_depth_0001.exr", "edited_depth_0002.exr", "frame_0001.png", "frame_0002.png",
                     "manifest.json", "report.json", "target_mask_0001.png", "target_mask_0002.png"]
    frame = io.load_image(out / "frame_0002.png")
    assert frame.shape == (40, 48, 3)  # the photo's size by default
    report = json.loads((out / "report.json").read_text())
    assert report["frames"] == 2
    assert report["edit_unet_forward"] > 0 and report["edit_unet_backward"] > 0
    assert {"prepare", "edit", "write", "total"} <= set(report["seconds"])
    assert report["peak_memory_bytes"] > 0


def test_edit_from_photo_arguments(photo, tiny_models_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["edit", "--image", str(photo / "image.png"), "--prompt", "a blue box",
               "--depth", str(photo / "depth.npy"), "--mask", str(photo / "mask.png"),
               "--transforms", str(photo / "transforms.json"), "--out", str(out),
               "--models", str(tiny_models_dir), "--guided-steps", "2", "--output-size", "working", *FAST,
               "--resolution", "96"])
    assert rc == 0, capsys.readouterr().err
    assert (out / "frame_0002.png").is_file() and (out / "report.json").is_file()
    report = json.loads((out / "report.json").read_text())
    # the working size: the longer side at 96, the photo's 40:48 kept (80 and 96 are multiples of 16)
    assert report["size"] == [80, 96]
    assert io.load_image(out / "frame_0002.png").shape[:2] == (80, 96)


def test_clear_errors(photo, tiny_models_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))  # no real model found by chance
    base = ["prepare", "--image", str(photo / "image.png"), "--prompt", "a box", "--out", str(tmp_path / "p")]
    assert main([*base, "--depth", str(photo / "depth.npy"), "--models", str(tiny_models_dir), *FAST]) == 2
    assert "--mask or --object" in capsys.readouterr().err
    # No --depth: estimating it needs the depth model; a models directory without it says so.
    (tmp_path / "empty-models").mkdir()
    assert main([*base, "--mask", str(photo / "mask.png"), "--models", str(tmp_path / "empty-models"), *FAST]) == 2
    assert "'depth'" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert main([*base, "--depth", str(photo / "depth.npy"), "--mask", str(photo / "mask.png"),
                 "--models", str(tmp_path / "no-models"), *FAST]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["edit", "--prepared", str(tmp_path / "nothing"), "--transforms",
                 str(photo / "transforms.json"), "--out", str(tmp_path / "o"),
                 "--models", str(tiny_models_dir), "--device", "cpu"]) == 2
    assert "not a prepared photo" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_rest_and_held_frames_are_not_sampled(photo, tiny_models_dir, tmp_path, capsys):
    """A trajectory starting at rest with a held pose: report.json says which frames were reused,
    the UNet ran for one frame only, and the held frame's file equals the frame it holds."""
    import numpy as np

    moved = np.eye(4)
    moved[0, 3] = 0.1
    (tmp_path / "t.json").write_text(json.dumps({"frames": [{"matrix": np.eye(4).tolist()},
                                                            {"matrix": moved.tolist()},
                                                            {"matrix": moved.tolist()}]}))
    out = tmp_path / "out"
    rc = main(["edit", "--image", str(photo / "image.png"), "--prompt", "a blue box",
               "--depth", str(photo / "depth.npy"), "--mask", str(photo / "mask.png"),
               "--transforms", str(tmp_path / "t.json"), "--out", str(out), "--models", str(tiny_models_dir),
               "--guided-steps", "2", "--frame-batch-size", "3", *FAST])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert [f["reused"] for f in report["per_frame"]] == ["reconstruction", None, "frame 2"]
    assert [f["unet_forward"] > 0 for f in report["per_frame"]] == [False, True, False]
    assert report["edit_unet_forward"] == report["per_frame"][1]["unet_forward"]
    assert (out / "frame_0003.png").read_bytes() == (out / "frame_0002.png").read_bytes()
