"""The add-on's Quality (Final / Draft) is the engine's preset (that a renderer's settings reach each
edit: tests/addon/session/test_renderers.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module  # noqa: E402


def test_quality_choices_and_defaults_come_from_the_engine_settings(addon):
    settings = addon_module("engine.settings")
    props = addon_module("blender.properties")
    assert [q[0] for q in props.QUALITIES] == list(settings.PRESETS)
    assert dict((q[0], q[1]) for q in props.QUALITIES) == {"default": "Final", "fast": "Draft",
                                                              "quick": "Sketch", "instant": "Instant"}
    obj = bpy.data.objects.new("photo object", None)
    assert obj.dh.quality == "default" and obj.dh.seed == settings.EditSettings.seed


def test_draft_quality_gives_the_fast_preset_with_the_photos_choices(addon):
    settings = addon_module("engine.settings")
    options = addon_module("blender.options")
    obj = bpy.data.objects.new("photo object", None)
    assert options.edit_settings(obj.dh) == settings.EditSettings.preset("default")
    obj.dh.quality = "fast"
    obj.dh.fg_weight = 2.0
    fast = options.edit_settings(obj.dh)
    assert fast == settings.EditSettings.preset("fast", fg_weight=2.0)
    obj.dh.steps, obj.dh.inversion = 10, "ddim"
    s = options.edit_settings(obj.dh)
    assert (s.steps, s.guided_steps, s.inversion, s.opt_iterations) == (10, fast.with_steps(10).guided_steps,
                                                                       "ddim", fast.opt_iterations)
    obj.dh.steps, obj.dh.inversion = 0, "PRESET"
    obj.dh.quality = "quick"
    assert options.edit_settings(obj.dh) == settings.EditSettings.preset("quick", fg_weight=2.0)
    obj.dh.quality = "instant"  # the gradient-free handles
    instant = options.edit_settings(obj.dh)
    assert instant == settings.EditSettings.preset("instant", fg_weight=2.0) and instant.injects

