"""The depth-ControlNet backbones through the add-on: batch.py --backbone and the render engine
with a scene's Model set, on the tiny models (real loading code); a photo prepared on one backbone
is prepared again, not reused, on another."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dh_synthetic import make_photo, run_batch, write_keyframes  # noqa: E402

pytestmark = pytest.mark.slow


def test_batch_sd15_depth_renders_and_an_unknown_backbone_is_one_line(tmp_path, tiny_models_dir):
    photo = make_photo(tmp_path / "photo")
    p = photo["paths"]
    keys = write_keyframes(tmp_path / "k.json", [{"frame": 1}, {"frame": 2, "translation": [0.3, 0.0, 0.0]}])
    common = ["--image", p["image"], "--prompt", "a box", "--mask", p["mask"], "--depth", p["depth"],
              "--keyframes", keys, "--engine", "diffusion", "--models", tiny_models_dir, "--steps", "2",
              "--resolution", "32", "--inversion", "ddim", "--device", "cpu"]
    bad = run_batch(*common, "--out", tmp_path / "bad", "--backbone", "sd3")
    err = bad.stderr.strip()
    assert bad.returncode == 2 and len(err.splitlines()) == 1 and "backbone 'sd3'" in err, err
    assert not (tmp_path / "bad").exists()
    result = run_batch(*common, "--out", tmp_path / "out", "--backbone", "sd15-depth")
    assert result.returncode == 0, result.stdout + result.stderr
    from engine.io import load_image

    frames = [load_image(tmp_path / "out" / "frames" / f"frame_{k:04d}.png") for k in (1, 2)]
    assert frames[0].shape == photo["image"].shape and np.abs(frames[1] - frames[0]).mean() > 0
    prepared = list((tmp_path / "out" / "cache").rglob("prepared.json"))
    import json

    assert prepared and all(json.loads(f.read_text())["backbone"] == "sd15-depth" for f in prepared)


def test_render_engine_follows_the_scene_model(addon, tmp_path, tiny_models_dir):
    from blender_session import bpy
    from dh_synthetic import addon_module, import_photo

    photo = make_photo(tmp_path / "photo")
    obj = import_photo(bpy, photo, tmp_path)
    scene = bpy.context.scene
    scene.render.engine = addon_module("operators.render_engine").IDNAME
    scene.render.image_settings.file_format = "PNG"
    obj.dh.engine, obj.dh.steps, obj.dh.resolution, obj.dh.inversion = "DIFFUSION", 2, 32, "ddim"
    scene.dh.models_dir = str(tiny_models_dir)
    store = addon_module("session.store")
    frames = addon_module("session.frames")
    try:
        store.free_engine()
        records = {}
        for backbone in ("sdxl-depth", "PREFERENCES"):
            scene.dh.backbone = backbone
            scene.render.filepath = str(tmp_path / f"{backbone}.png")
            assert bpy.ops.render.render(write_still=True) == {"FINISHED"}
            records[backbone] = frames.read_metadata(tmp_path / f"{backbone}.png")
            assert store.session_store("prepared") and all(
                p.backbone == (backbone if backbone != "PREFERENCES" else "sd2-depth")
                for p in store.session_store("prepared").values())
        assert "+" in records["sdxl-depth"]["DH Model"]  # the SDXL base and its ControlNet
        assert "+" not in records["PREFERENCES"]["DH Model"]  # the preferences' default: SD2-depth
    finally:
        scene.dh.backbone = "PREFERENCES"
        store.free_engine()
