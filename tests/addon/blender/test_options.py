"""blender/options.py: the engine's options from the add-on preferences, the scene (saved in the
.blend) and code (SESSION_OPTIONS), in that order of precedence; the weights' status line."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module  # noqa: E402


def test_preferences_then_scene_then_code(addon, tmp_path):
    options = addon_module("blender.options")
    session_options = addon_module("session.store").SESSION_OPTIONS
    prefs = addon_module("blender.addon").preferences()
    assert options.engine_options() == {"models_dir": None, "overrides": {}, "device": "auto", "dtype": "auto",
                                      "backbone": "sd2-depth"}
    try:
        _check_precedence(options, session_options, prefs, tmp_path)
    finally:  # the preferences outlive the test's scene
        prefs.device, prefs.precision, prefs.models_dir, prefs.depth_model, prefs.sam_model = "AUTO", "AUTO", "", "", ""


def _check_precedence(options, session_options, prefs, tmp_path):
    prefs.device, prefs.precision = "CPU", "FP32"
    prefs.models_dir = str(tmp_path / "prefs")
    prefs.depth_model, prefs.sam_model = "  org/depth@v2 ", "   "  # blank overrides are not overrides
    got = options.engine_options(bpy.context)
    assert got == {"models_dir": str(tmp_path / "prefs"), "overrides": {"depth": "org/depth@v2"},
                   "device": "cpu", "dtype": "fp32", "backbone": "sd2-depth"}
    scene = bpy.context.scene
    scene.dh.models_dir = str(tmp_path / "scene")
    assert options.engine_options(bpy.context, scene)["models_dir"] == str(tmp_path / "scene")
    session_options.update(models_dir=str(tmp_path / "code"), device=None)  # None: not set
    try:
        got = options.engine_options(bpy.context, scene)
        assert got["models_dir"] == str(tmp_path / "code") and got["device"] == "cpu"
    finally:
        session_options.clear()


def test_weights_status_names_the_missing_weights(addon, tmp_path):
    options = addon_module("blender.options")
    session_options = addon_module("session.store").SESSION_OPTIONS
    os.makedirs(tmp_path / "empty")
    session_options["models_dir"] = str(tmp_path / "empty")
    try:
        options.forget_weights_status()
        found, text = options.weights_status(bpy.context)
        assert not found and "not found" in text and text.endswith("Download Models")
        assert options.weights_status(bpy.context) == (found, text)  # looked up once, kept a few seconds
    finally:
        session_options.clear()
        options.forget_weights_status()
