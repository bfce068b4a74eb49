"""The interactive paths, under the bpy module: a job operator's modal loop driven by TIMER and ESC
events (worker thread, progress, cancel, the result in the Image Editor, nothing half-written), and
every panel and the preferences drawn in each state."""
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from blender_session import bpy  # noqa: E402
from dh_synthetic import addon_module, import_photo, make_photo  # noqa: E402
from ui_fakes import FakeContext, Recorder, event  # noqa: E402


@pytest.fixture
def modal(monkeypatch, addon):
    """Call it (after the scene is built) to make jobs take their interactive path (worker thread +
    modal timer), as with a window."""
    jobs = addon_module("operators.jobs")

    def go():
        monkeypatch.setattr(jobs, "interactive", lambda context: True)
        return jobs

    return go


def _scene(tmp_path, frames=4):
    photo = make_photo(tmp_path / "photo")
    obj = import_photo(bpy, photo, tmp_path)
    from engine.transforms import frame_to_matrix

    centroid = np.array(obj.dh.centroid)
    keyed = [(1, np.eye(4)), (frames, frame_to_matrix({"translation": [0.2, 0.0, 0.0]}, centroid))]
    addon_module("blender.keyframes").key_transforms(obj, keyed, bpy.context.scene)
    scene = bpy.context.scene
    scene.render.filepath = str(tmp_path / "frames" / "f_####")
    scene.render.image_settings.file_format = "PNG"
    return obj, scene


def _driver(label="Render Stop-Motion"):
    """The stop-motion operator's own methods on a plain object (bpy operators are only made by
    Blender's operator calls, which take the synchronous path in background mode)."""
    render = addon_module("operators.render")

    class Driver(render._RenderBase):
        bl_label = label
        engine, movie, movie_path = "PREVIEW", False, ""
        frames = render.DH_OT_render_stop_motion.frames
        finish = render.DH_OT_render_stop_motion.finish

        def __init__(self):
            self.reports = []

        def report(self, kinds, message):
            self.reports.append((next(iter(kinds)), message))

    return Driver()


def _drive(op, context, events=(), timeout=60):
    """Send TIMER events (and ``events(op)`` -> extra events) until the operator finishes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for extra in events(op) if callable(events) else ():
            result = op.modal(context, extra)
            assert result == {"PASS_THROUGH"}, result
        result = op.modal(context, event("TIMER"))
        if result != {"PASS_THROUGH"}:
            return result
        time.sleep(0.02)
    raise AssertionError("the job did not finish")


def _files(folder):
    return sorted(p.name for p in Path(folder).iterdir()) if Path(folder).is_dir() else []


def test_modal_job_runs_in_a_worker_and_lands_in_the_image_editor(modal, tmp_path):
    _scene(tmp_path)
    modal = modal()
    context = FakeContext(bpy.context)
    op = _driver()
    assert op.execute(context) == {"RUNNING_MODAL"}
    wm = context.window_manager
    assert wm.handlers == [op] and len(wm.timers) == 1 and modal.current_job() is not None
    assert bpy.context.window_manager.dh_job.running
    assert op.modal(context, event("MOUSEMOVE")) == {"PASS_THROUGH"}  # the interface stays live
    worker = [t for t in threading.enumerate() if t.name == "dh: Render Stop-Motion"]
    assert worker, "the work runs in its own thread"
    assert _drive(op, context) == {"FINISHED"}
    assert _files(tmp_path / "frames") == [".dh_frames.json", "f_0001.png", "f_0002.png", "f_0003.png", "f_0004.png"]
    updates = [p[1] for p in wm.progress if p[0] == "update"]
    assert wm.progress[0][0] == "begin" and wm.progress[-1] == ("end",) and updates[-1] == 1000
    assert updates == sorted(updates)
    assert wm.timers[0].removed and modal.current_job() is None
    job = bpy.context.window_manager.dh_job
    assert not job.running and job.error == ""
    assert context.image_space.image is not None and context.image_space.image.name == "DH Result"
    assert context.image_space.image.filepath.endswith("f_0004.png")
    assert op.reports[-1][0] == "INFO" and "4 frames" in op.reports[-1][1]


def test_escape_cancels_between_frames_and_nothing_is_half_written(modal, tmp_path, monkeypatch):
    _scene(tmp_path, frames=6)
    modal = modal()
    addon_module("session.frames").forget()
    renderers = addon_module("session.renderers")
    original = renderers.PreviewRenderer.__call__

    def slow(self, transforms, progress=None, should_cancel=None):
        time.sleep(0.3)
        return original(self, transforms, progress, should_cancel)

    monkeypatch.setattr(renderers.PreviewRenderer, "__call__", slow)
    context = FakeContext(bpy.context)
    op = _driver()
    assert op.execute(context) == {"RUNNING_MODAL"}
    sent = []

    def escape_after_two_frames(op):
        if not sent and len([n for n in _files(tmp_path / "frames") if n.endswith(".png")]) >= 2:
            sent.append(True)
            return [event("ESC")]
        return []

    assert _drive(op, context, escape_after_two_frames) == {"CANCELLED"}
    assert sent
    pngs = [n for n in _files(tmp_path / "frames") if n.endswith(".png")]
    assert 2 <= len(pngs) < 6
    assert [n for n in _files(tmp_path / "frames") if n.startswith(".") and n != ".dh_frames.json"] == []
    from engine.io import load_image

    for name in pngs:  # every file is a whole frame
        assert load_image(tmp_path / "frames" / name).shape == (24, 32, 3)
    assert op.reports[-1][0] == "WARNING" and "cancelled" in op.reports[-1][1]
    assert not bpy.context.window_manager.dh_job.running and modal.current_job() is None


def test_a_failing_job_reports_once_and_the_sidebar_says_why(modal, tmp_path):
    obj, _ = _scene(tmp_path)
    modal()
    addon_module("session.frames").forget()
    context = FakeContext(bpy.context)
    op = _driver()
    import shutil

    real_start = op.start

    def start_then_lose_the_cache(context):
        work = real_start(context)
        shutil.rmtree(bpy.path.abspath(obj.dh.cache_dir))  # gone before the worker reads it,
        os.remove(obj.dh.image_path)  # and the photo it could be rebuilt from
        return work

    op.start = start_then_lose_the_cache
    assert op.execute(context) == {"RUNNING_MODAL"}
    assert _drive(op, context) == {"CANCELLED"}
    gone = "sources are gone too"
    assert [kind for kind, _ in op.reports] == ["ERROR"] and gone in op.reports[0][1]
    assert gone in bpy.context.window_manager.dh_job.error
    assert _files(tmp_path / "frames") in ([], [".dh_frames.json"])
    layout = _draw_sidebar(bpy.context)
    assert any(gone in text for text in layout.texts())


# --- panels and preferences, drawn in every state ----------------------------------------------

def _draw(panel_cls, context, instance=None):
    layout = Recorder()
    panel = instance or type("Drawn", (), {})()
    panel.layout = layout
    panel_cls.draw(panel, context)
    return layout


def _draw_sidebar(context):
    return _draw(addon_module("panels.sidebar").DH_PT_handles, context)


class _Prefs:
    """The real preferences with a recording layout."""

    def __init__(self, real):
        object.__setattr__(self, "_real", real)

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)


def _draw_prefs(context):
    real = addon_module("blender.addon").preferences(context)
    assert real is not None
    return _draw(addon_module("panels.preferences").DH_AddonPreferences, context, _Prefs(real))


def _draw_render(context):
    cls = addon_module("panels.render").DH_PT_render
    return _draw(cls, context)


def test_panels_draw_in_every_state(addon, tmp_path, monkeypatch):
    deps = addon_module("session.deps")
    jobs = addon_module("session.jobs")
    context = bpy.context

    # no dependencies
    monkeypatch.setattr(deps, "missing_modules", lambda names=None: ["torch", "diffusers"])
    side, prefs = _draw_sidebar(context), _draw_prefs(context)
    assert any("Missing" in t and "torch" in t for t in side.texts())
    assert "dh.install_dependencies" in side.operators() and "dh.install_dependencies" in prefs.operators()
    assert "dh.import_photo" in side.operators()
    monkeypatch.undo()

    # no models (an empty models folder), no photo
    store = addon_module("session.store")
    monkeypatch.setitem(store.SESSION_OPTIONS, "models_dir", str(tmp_path / "empty"))
    addon_module("blender.options").forget_weights_status()
    prefs = _draw_prefs(context)
    assert any("not found" in t for t in prefs.texts()) and "dh.download_models" in prefs.operators()
    assert {"device", "precision", "models_dir", "python_path", "cache_dir"} <= set(prefs.props())
    render = _draw_render(context)
    assert any("no camera" in t for t in render.texts())

    # a photo imported
    obj, scene = _scene(tmp_path)
    side = _draw_sidebar(context)
    assert {"prompt", "engine", "steps", "seed", "inversion"} <= set(side.props())
    assert {"dh.render_edit", "dh.render_stop_motion"} <= set(side.operators())
    assert not any("set Render Engine" in t for t in side.texts())  # Import Photo selected it
    scene.render.engine = "CYCLES"
    assert any("set Render Engine" in t for t in _draw_sidebar(context).texts())
    assert not addon_module("panels.render").DH_PT_render.poll(context)
    scene.render.engine = "DIFFUSION_HANDLES"
    assert addon_module("panels.render").DH_PT_render.poll(context)
    render = _draw_render(context)
    assert any(t.startswith("Photo: ") for t in render.texts()) and "models_dir" in render.props()

    # a job running
    state = jobs.JobState("Render Stop-Motion")
    monkeypatch.setattr(jobs, "_current", state)
    context.window_manager.dh_job.status, context.window_manager.dh_job.progress = "frames 2/4", 0.5
    side = _draw_sidebar(context)
    assert "dh.cancel_job" in side.operators() and "frames 2/4" in side.texts()
    assert ("progress", {"factor": 0.5}) in side.log or "progress" in side.props()
    state.done.set()

    # a job failed
    context.window_manager.dh_job.error = "Render Stop-Motion: the photo cache is gone"
    side = _draw_sidebar(context)
    assert "dh.cancel_job" not in side.operators()
    assert "Render Stop-Motion: the photo cache is gone" in side.texts()
    context.window_manager.dh_job.error = ""
