"""Long work off the main thread: a worker thread (session/jobs.py), a modal timer for progress,
Esc / Cancel to stop.

A job is split in three: ``start`` (main thread: read Blender data), ``work(progress,
should_cancel)`` (worker thread: engine and files only, never bpy), ``finish(result)`` (main thread:
write Blender data, report). Timers and modal operators do not run with ``blender -b``: there the
same job runs synchronously on the main thread (docs/design.md).
"""
from __future__ import annotations

import logging

import bpy

from ..session import jobs as session_jobs
from ..session.errors import user_message
from ..session.jobs import JobState, current_job

log = logging.getLogger(__name__)


def _set_ui(context, running, progress=0.0, status="", error=None):
    wm = context.window_manager
    if not hasattr(wm, "dh_job"):
        return
    wm.dh_job.running = running
    wm.dh_job.progress = progress
    wm.dh_job.status = status
    if error is not None:
        wm.dh_job.error = error
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PROPERTIES", "IMAGE_EDITOR"}:
                area.tag_redraw()


def interactive(context):
    """A window with an event loop, where timers and modal handlers run (never with ``blender -b``)."""
    return not bpy.app.background and context.window is not None


class JobOperator:
    """Mix-in for operators that run a job. Subclasses define

    - ``start(context)`` -> ``work(progress, should_cancel)`` callable, or None when it already
      reported an error (main thread);
    - ``finish(context, result)`` -> set of operator return flags (main thread);
    - ``failed(context, exc)`` -> a one-line message for an exception from the work.
    """

    _timer = None
    _state: JobState | None = None

    def start(self, context):  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(self, context, result):  # pragma: no cover - abstract
        return {"FINISHED"}

    def failed(self, context, exc):
        return user_message(exc)

    def execute(self, context):
        running = current_job()
        if running is not None:
            self.report({"ERROR"}, f"{running.name} is still running: wait for it or press Cancel")
            return {"CANCELLED"}
        _set_ui(context, False, error="")
        work = self.start(context)
        if work is None:
            return {"CANCELLED"}
        if not interactive(context):  # synchronous: no event loop to drive a modal timer
            return self._complete(context, session_jobs.begin(self.bl_label, work, threaded=False))
        self._state = session_jobs.begin(self.bl_label, work)
        self._timer = context.window_manager.event_timer_add(0.2, window=context.window)
        context.window_manager.modal_handler_add(self)
        context.window_manager.progress_begin(0, 1000)
        _set_ui(context, True, 0.0, f"{self.bl_label}: starting")
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        state = self._state
        if event.type == "ESC" and event.value == "PRESS":
            state.cancel.set()
        if event.type != "TIMER" and not state.done.is_set():
            return {"PASS_THROUGH"}
        context.window_manager.progress_update(int(state.progress * 1000))
        _set_ui(context, True, state.progress,
                f"{self.bl_label}: {state.status}" + (" (cancelling)" if state.cancel.is_set() else ""))
        if not state.done.is_set():
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        context.window_manager.progress_end()
        _set_ui(context, False)
        return self._complete(context, state)

    def cancel(self, context):  # Blender calls this when the modal operator is aborted
        if self._state is not None:
            self._state.cancel.set()

    def _complete(self, context, state):
        from ..engine.errors import CancelledError

        if state.error is not None:
            exc, formatted = state.error
            if isinstance(exc, CancelledError):
                self.report({"WARNING"}, f"{self.bl_label}: cancelled; {self.cancelled_note()}")
                return {"CANCELLED"}
            message = self.failed(context, exc)
            if message is None:  # not a user error: a bug, keep its traceback in the log
                log.error("%s failed:\n%s", self.bl_label, formatted)
                message = f"{self.bl_label} failed: {type(exc).__name__}: {exc} (details in the console)"
            _set_ui(context, False, error=message)  # the sidebar keeps it until the next job
            self.report({"ERROR"}, message)
            return {"CANCELLED"}
        return self.finish(context, state.result)

    def cancelled_note(self):
        return "nothing half-written was left"


class DH_OT_cancel_job(bpy.types.Operator):
    """Stop the running Diffusion Handles job (finished frames are kept)"""

    bl_idname = "dh.cancel_job"
    bl_label = "Cancel"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        if current_job() is None:
            cls.poll_message_set("No Diffusion Handles job is running")
            return False
        return True

    def execute(self, context):
        session_jobs.cancel_current()
        return {"FINISHED"}


CLASSES = (DH_OT_cancel_job,)
