"""Stand-ins for what the bpy module lacks in background mode: a window (an Image Editor), the
window manager's timer / modal / progress calls, events, and a layout that records what draw()
puts in it while checking every property and operator it names exists.
"""
from __future__ import annotations

from types import SimpleNamespace


class Recorder:
    """A UILayout that records calls. ``prop`` / ``operator`` fail like Blender's draw would on a
    missing property or operator (Blender only prints those; a test must fail)."""

    def __init__(self, log=None):
        self.log = [] if log is None else log
        self.enabled = True
        self.use_property_split = False
        self.alert = False

    def _child(self, kind, **kw):
        self.log.append((kind, kw))
        return Recorder(self.log)

    def box(self):
        return self._child("box")

    def row(self, **kw):
        return self._child("row")

    def column(self, **kw):
        return self._child("column")

    def split(self, **kw):
        return self._child("split")

    def separator(self, **kw):
        self.log.append(("separator", {}))

    def label(self, text="", icon="NONE", **kw):
        assert isinstance(text, str)
        self.log.append(("label", {"text": text, "icon": icon}))

    def prop(self, data, name, **kw):
        rna = getattr(data, "bl_rna", None)
        assert rna is not None and name in rna.properties, f"draw: no property {name!r} on {data!r}"
        self.log.append(("prop", {"name": name, **kw}))

    def operator(self, idname, **kw):
        import bpy

        group, _, name = idname.partition(".")
        assert hasattr(getattr(bpy.ops, group), name), f"draw: no operator {idname!r}"
        self.log.append(("operator", {"idname": idname, **kw}))
        return SimpleNamespace()

    def template_icon(self, icon_value=0, scale=1.0):
        assert isinstance(icon_value, int)
        self.log.append(("icon", {"icon_value": icon_value}))

    def progress(self, factor=0.0, type="BAR", text=""):
        assert 0.0 <= factor <= 1.0
        self.log.append(("progress", {"factor": factor}))

    # what a test asks
    def texts(self):
        return [kw["text"] for kind, kw in self.log if kind == "label"]

    def operators(self):
        return [kw["idname"] for kind, kw in self.log if kind == "operator"]

    def props(self):
        return [kw["name"] for kind, kw in self.log if kind == "prop"]

    def icons(self):
        return [kw["icon_value"] for kind, kw in self.log if kind == "icon"]


class FakeWindowManager:
    """Delegates to the real window manager (its dh_job properties), records the modal machinery."""

    def __init__(self, real, window):
        self._real, self.windows = real, [window]
        self.timers, self.handlers, self.progress = [], [], []

    def __getattr__(self, name):
        return getattr(self._real, name)

    def event_timer_add(self, step, window=None):
        timer = SimpleNamespace(step=step, removed=False)
        self.timers.append(timer)
        return timer

    def event_timer_remove(self, timer):
        timer.removed = True

    def modal_handler_add(self, operator):
        self.handlers.append(operator)
        return True

    def progress_begin(self, lo, hi):
        self.progress.append(("begin", lo, hi))

    def progress_update(self, value):
        self.progress.append(("update", value))

    def progress_end(self):
        self.progress.append(("end",))


def fake_window():
    space = SimpleNamespace(image=None)
    area = SimpleNamespace(type="IMAGE_EDITOR", spaces=SimpleNamespace(active=space), redraws=0)
    area.tag_redraw = lambda: setattr(area, "redraws", area.redraws + 1)
    return SimpleNamespace(screen=SimpleNamespace(areas=[area])), space


class FakeContext:
    """bpy.context with a window and a recording window manager (as in an interactive Blender)."""

    def __init__(self, real):
        self._real = real
        self.window, self.image_space = fake_window()
        self.window_manager = FakeWindowManager(real.window_manager, self.window)

    def __getattr__(self, name):
        return getattr(self._real, name)


def event(kind, value="PRESS"):
    return SimpleNamespace(type=kind, value=value)
