"""The engine's progress contract, shared by the long loops (inversion, sampling):
``progress(stage, step, total)`` after each step, ``should_cancel()`` checked before it."""
from __future__ import annotations

from ..errors import CancelledError


def check_cancel(should_cancel) -> None:
    """Raise `CancelledError` between steps when the caller asked to stop."""
    if should_cancel is not None and should_cancel():
        raise CancelledError("cancelled")


def report(progress, stage: str, step: int, total: int) -> None:
    if progress is not None:
        progress(stage, step, total)
