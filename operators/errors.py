"""Exceptions -> one-line operator reports (DESIGN.md section 7: never a traceback in the UI)."""
from __future__ import annotations


class AddonError(Exception):
    """A user-facing problem found on the Blender side (bad selection, missing cache, ...)."""


def user_message(exc):
    """The message to report for ``exc``, or None when it is a bug (keep its traceback)."""
    from ..engine.errors import EngineError

    if isinstance(exc, (AddonError, EngineError)):
        return str(exc)
    if isinstance(exc, ImportError):
        from .deps import install_hint

        missing = getattr(exc, "name", None) or str(exc)
        return f"missing Python package {missing!r}. {install_hint()}"
    if isinstance(exc, OSError):
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        return f"file error{where}: {exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return "out of memory: lower the working resolution, or free memory in the add-on preferences"
    return None
