"""Jobs: long work off Blender's main thread (no bpy). A job's ``work(progress, should_cancel)``
runs on a worker thread (or synchronously where no event loop runs, ``blender -b``); its state is
shared with the main thread, which polls it (operators/jobs.py). One job runs at a time."""
from __future__ import annotations

import threading
import traceback


class JobState:
    """Shared between the worker and the main thread (plain Python: no bpy in the worker)."""

    def __init__(self, name):
        self.name = name
        self.cancel = threading.Event()
        self.progress = 0.0
        self.status = ""
        self.result = None
        self.error = None  # (exception, formatted traceback)
        self.done = threading.Event()

    def report_progress(self, stage, step, total):
        self.progress = (step / total) if total else 0.0
        self.status = f"{stage} {step}/{total}" if total else str(stage)

    def should_cancel(self):
        return self.cancel.is_set()

    def run(self, work):
        try:
            self.result = work(self.report_progress, self.should_cancel)
        except BaseException as exc:  # handed to the main thread, reported there
            self.error = (exc, traceback.format_exc())
        finally:
            self.done.set()


_current: JobState | None = None


def current_job():
    return _current if _current is not None and not _current.done.is_set() else None


def cancel_current():
    job = current_job()
    if job is not None:
        job.cancel.set()
    return job is not None


def begin(name, work, threaded=True):
    """Make a job of ``work`` the current one and run it: on a daemon worker thread (returns at
    once), or here and now when not ``threaded`` (no event loop to poll a thread). Returns its state."""
    global _current
    state = _current = JobState(name)
    if threaded:
        threading.Thread(target=state.run, args=(work,), name=f"dh: {name}", daemon=True).start()
    else:
        state.run(work)
    return state
