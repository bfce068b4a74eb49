"""session/jobs.py: a job's work on a worker thread or synchronously, its progress, its error with
the traceback, cancelling, and one current job at a time."""
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))
from dh_synthetic import addon_module  # noqa: E402


@pytest.fixture
def jobs(addon):
    return addon_module("session.jobs")


def test_threaded_job_reports_progress_and_result(jobs):
    release = threading.Event()

    def work(progress, should_cancel):
        progress("frames", 1, 4)
        release.wait(10)
        return "done"

    state = jobs.begin("Render", work)
    assert jobs.current_job() is state  # running on its thread
    release.set()
    assert state.done.wait(10)
    assert (state.result, state.error, state.progress, state.status) == ("done", None, 0.25, "frames 1/4")
    assert jobs.current_job() is None  # finished: no job runs


def test_synchronous_job_keeps_the_error_and_its_traceback(jobs):
    def work(progress, should_cancel):
        progress("no total", 0, 0)
        raise ValueError("bad frame")

    state = jobs.begin("Import Photo", work, threaded=False)
    assert state.done.is_set() and state.result is None
    exc, formatted = state.error
    assert isinstance(exc, ValueError) and "bad frame" in formatted and "Traceback" in formatted
    assert (state.progress, state.status) == (0.0, "no total")


def test_cancel_current_stops_a_job_between_steps(jobs):
    started, steps = threading.Event(), []

    def work(progress, should_cancel):
        started.set()
        while not should_cancel():
            steps.append(1)
            threading.Event().wait(0.01)
        return "stopped"

    assert jobs.cancel_current() is False  # nothing to cancel
    state = jobs.begin("Render", work)
    assert started.wait(10)
    assert jobs.cancel_current() is True
    assert state.done.wait(10) and state.result == "stopped" and state.cancel.is_set()
