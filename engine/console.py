"""What the command line and batch.py show while they work.

`progress(stage, step, total)` (the engine's progress contract, engine.diffusion.progress) becomes:
a tqdm bar per stage (steps, rate, time left) when stderr is a terminal; one line per finished
stage on stdout otherwise (logs, pipes); nothing with ``quiet``. `say` prints a status line
unless quiet.
"""
from __future__ import annotations

import sys
import time

_STATE = {"quiet": False}

# The engine's stage names, as a person reads them.
STAGE_NAMES = {"invert": "DDIM inversion", "null-text": "null-text inversion",
               "reconstruct": "reconstruction", "edit": "guided sampling"}


def configure(quiet: bool = False) -> None:
    _STATE["quiet"] = bool(quiet)


def quiet() -> bool:
    return _STATE["quiet"]


def say(message: str) -> None:
    if not _STATE["quiet"]:
        print(message, flush=True)


class Progress:
    """A progress callback: one bar (terminal) or one line (otherwise) per stage.

    Call `close()` (or use as a context manager) to finish the last stage."""

    def __init__(self, label: str = ""):
        self.label = label
        self._stage = None
        self._bar = None
        self._t0 = 0.0
        self._step = 0
        self._total = 0
        self._tty = sys.stderr.isatty()

    def __call__(self, stage, step, total) -> None:
        if _STATE["quiet"]:
            return
        if stage != self._stage or step < self._step:
            self._finish()
            self._start(stage, total)
        self._step, self._total = step, total
        if self._bar is not None:
            self._bar.total = total
            self._bar.n = step
            self._bar.refresh()
        if step >= total:
            self._finish()

    def set_label(self, label: str) -> None:
        self._finish()
        self.label = label

    def _start(self, stage, total) -> None:
        self._stage, self._t0 = stage, time.perf_counter()
        name = STAGE_NAMES.get(stage, stage)
        if self.label:
            name = f"{name} ({self.label})"
        if self._tty:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=name, unit="step", leave=True, file=sys.stderr,
                             dynamic_ncols=True)

    def _finish(self) -> None:
        if self._stage is None:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        else:
            name = STAGE_NAMES.get(self._stage, self._stage)
            if self.label:
                name = f"{name} ({self.label})"
            print(f"{name}: {self._step}/{self._total} steps, {time.perf_counter() - self._t0:.1f} s",
                  flush=True)
        self._stage = None
        self._step = 0

    def close(self) -> None:
        self._finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._bar is not None:  # interrupted: close the bar without the "finished" line
            self._bar.close()
            self._bar = None
        self._stage = None
        return False
