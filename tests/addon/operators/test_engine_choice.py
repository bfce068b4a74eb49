"""The engine the artist chose is the engine that renders (issue 29, item 1): a Diffusion photo on a
node without the weights fails the frame with one line, in a separate Blender process that opens the
hand-saved .blend as a farm node does; only "Diffusion, else Preview" falls back, warning for each
frame, and every frame file records its engine (PNG text chunks, EXR header)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import REPO_ROOT, addon_module, import_photo, make_photo  # noqa: E402

# A node: a fresh Blender process (the bpy module, the add-on enabled, no Hugging Face cache, no
# models folder) renders the saved .blend's animation as `blender -b FILE -a` does.
NODE = r'''
import sys
sys.path.insert(0, {tests!r})
from blender_session import bpy, enable_addon
enable_addon()
bpy.ops.wm.open_mainfile(filepath={blend!r})
try:
    bpy.ops.render.render(animation=True)
except RuntimeError as exc:
    print("FAILED:", " ".join(str(exc).split()), flush=True)
    sys.exit(1)
print("RENDERED", flush=True)
'''


def _photo_scene(tmp_path, engine, frames=3):
    obj = import_photo(bpy, make_photo(tmp_path / "photo"), tmp_path)
    obj.dh.engine = engine
    keyframes = addon_module("blender.keyframes")
    from engine.transforms import frame_to_matrix

    keyed = [(1, np.eye(4)), (frames, frame_to_matrix({"translation": [0.2, 0.0, 0.0]}, np.array(obj.dh.centroid)))]
    keyframes.key_transforms(obj, keyed, bpy.context.scene)
    scene = bpy.context.scene
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(tmp_path / "frames" / "f_####")
    return obj, scene


def _node(tmp_path, blend):
    env = dict(os.environ, HF_HOME=str(tmp_path / "empty-hf"), HF_HUB_OFFLINE="1")
    env.pop("HF_HUB_CACHE", None)
    script = NODE.format(tests=str(REPO_ROOT / "tests"), blend=str(blend))
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=str(tmp_path), env=env)


def test_a_hand_saved_diffusion_blend_fails_on_a_node_without_weights(addon, tmp_path):
    obj, scene = _photo_scene(tmp_path, "DIFFUSION")
    scene.render.use_placeholder = True  # as farm nodes render: Blender's placeholder must go again
    blend = tmp_path / "project" / "scene.blend"
    blend.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))  # by hand: nothing but the engine choice set
    node = _node(tmp_path, blend)
    log = node.stdout + node.stderr
    assert node.returncode != 0 and "RENDERED" not in log, log
    failed = [line for line in log.splitlines() if line.startswith("FAILED:")]
    assert failed and "cannot run the diffusion engine" in failed[0] and "diffusion" in failed[0], log
    assert "Traceback" not in log, log
    frames = tmp_path / "frames"
    assert not frames.exists() or list(frames.iterdir()) == [], list(frames.iterdir())  # no frame, no placeholder


def test_diffusion_else_preview_warns_each_frame_and_records_the_engine(addon, tmp_path, monkeypatch):
    obj, scene = _photo_scene(tmp_path, "DIFFUSION_OR_PREVIEW")
    obj.dh.prompt = "a box"
    store = addon_module("session.store")
    store.SESSION_OPTIONS.update(models_dir=str(tmp_path / "no-models"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    cls = addon_module("operators.render_engine").DiffusionHandlesRenderEngine
    warnings = []  # the engine's warning reports (Blender's own report is made too)
    original = cls.warn
    monkeypatch.setattr(cls, "warn", lambda self, text: (warnings.append(text), original(self, text)))
    frames_module = addon_module("session.frames")
    try:
        assert bpy.ops.render.render(animation=True) == {"FINISHED"}
        assert [w.split(":")[0] for w in warnings] == [f"Diffusion Handles, frame {k}" for k in (1, 2, 3)], warnings
        assert all("rendered with the preview engine (Diffusion, else Preview)" in w for w in warnings)
        preview = {"DH Engine": "preview", "DH Engine Choice": "diffusion_or_preview", "DH Quality": "none",
                   "DH Model": "none"}
        for k in (1, 2, 3):
            from PIL import Image

            path = tmp_path / "frames" / f"f_{k:04d}.png"
            assert {n: v for n, v in Image.open(path).text.items() if n.startswith("DH ")} == preview
            assert frames_module.read_metadata(path) == preview

        # the same frames as the preview engine's: the fallback renders what Preview renders
        obj.dh.engine = "PREVIEW"
        frames_module.forget()
        scene.render.filepath = str(tmp_path / "preview" / "f_####")
        assert bpy.ops.render.render(animation=True) == {"FINISHED"}
        for k in (1, 2, 3):
            from PIL import Image

            a = np.asarray(Image.open(tmp_path / "preview" / f"f_{k:04d}.png"))
            assert np.array_equal(a, np.asarray(Image.open(tmp_path / "frames" / f"f_{k:04d}.png")))
            assert frames_module.read_metadata(tmp_path / "preview" / f"f_{k:04d}.png")["DH Engine Choice"] == "preview"

        # an EXR frame carries it in its header, whatever Blender's own stamp settings say
        obj.dh.engine = "DIFFUSION_OR_PREVIEW"
        for name in [n for n in dir(scene.render) if n.startswith("use_stamp")]:
            setattr(scene.render, name, False)
        scene.render.image_settings.file_format = "OPEN_EXR"
        scene.render.filepath = str(tmp_path / "still.exr")
        assert bpy.ops.render.render(write_still=True) == {"FINISHED"}
        assert frames_module.read_metadata(tmp_path / "still.exr") == preview
        import OpenEXR

        header = OpenEXR.InputFile(str(tmp_path / "still.exr")).header()
        assert header["DH Engine"] in (b"preview", "preview")

        # the stop-motion operator: the same fallback, said once, and the same record in its PNGs
        scene.render.image_settings.file_format = "PNG"
        scene.render.filepath = str(tmp_path / "stop" / "f_####")
        assert bpy.ops.dh.render_stop_motion() == {"FINISHED"}
        assert frames_module.read_metadata(tmp_path / "stop" / "f_0002.png") == preview

        # Diffusion chosen: the same node fails the frame (and writes none)
        obj.dh.engine = "DIFFUSION"
        scene.render.filepath = str(tmp_path / "strict" / "f_####")
        with pytest.raises(RuntimeError, match="cannot run the diffusion engine"):
            bpy.ops.render.render(animation=True)
        assert not (tmp_path / "strict").exists() or not list((tmp_path / "strict").iterdir())
        with pytest.raises(RuntimeError, match="cannot run the diffusion engine"):
            bpy.ops.dh.render_stop_motion()
    finally:
        store.SESSION_OPTIONS.clear()
