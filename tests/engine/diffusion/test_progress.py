"""engine.diffusion.progress: the progress contract of the long loops. progress(stage, step, total)
after each step when a callback is given; should_cancel() checked before a step raises CancelledError
(an EngineError, so every boundary shows it as one line)."""
from __future__ import annotations

import pytest

from engine.diffusion.progress import check_cancel, report
from engine.errors import CancelledError, EngineError


def test_cancel_only_when_asked():
    check_cancel(lambda: False)
    with pytest.raises(CancelledError) as info:
        check_cancel(lambda: True)
    assert isinstance(info.value, EngineError)


def test_cancel_is_asked_each_time():
    answers = iter([False, False, True])
    calls = []

    def should_cancel():
        calls.append(1)
        return next(answers)

    check_cancel(should_cancel)
    check_cancel(should_cancel)
    with pytest.raises(CancelledError):
        check_cancel(should_cancel)
    assert len(calls) == 3


def test_report_passes_stage_step_and_total():
    seen = []
    for step in range(1, 4):
        report(lambda *a: seen.append(a), "sampling", step, 3)
    assert seen == [("sampling", 1, 3), ("sampling", 2, 3), ("sampling", 3, 3)]
