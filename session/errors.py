"""Exceptions -> one-line operator reports (docs/design.md: never a traceback in the UI).

Imports nothing of the add-on: every other module may import it."""
from __future__ import annotations


INSTALL_HINT = ("Install the dependencies: Edit > Preferences > Add-ons > Diffusion Handles > "
                "'Install Dependencies' (pip installs torch and friends into the extension's user "
                "folder), or set 'Python Packages' to the site-packages of an environment that has them "
                "(pip install -r requirements.txt)")


class AddonError(Exception):
    """A user-facing problem found on the Blender side (bad selection, missing cache, ...)."""


def user_message(exc):
    """The message to report for ``exc``, or None when it is a bug (keep its traceback)."""
    from ..engine.errors import EngineError

    if isinstance(exc, (AddonError, EngineError)):
        if getattr(exc, "role", None):  # ModelNotFoundError: weights not on disk
            return f"{exc} (Edit > Preferences > Add-ons > Diffusion Handles > 'Download Models', or a 'Models Folder')"
        return str(exc)
    if isinstance(exc, ImportError):
        missing = getattr(exc, "name", None) or str(exc)
        return f"missing Python package {missing!r}. {INSTALL_HINT}"
    if isinstance(exc, OSError):
        from ..engine.output import is_disk_full

        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        if is_disk_full(exc):  # the same rule as the command line's (engine.output.is_disk_full)
            return (f"disk full writing{where} ({exc.strerror or exc}): free some space and render again; "
                    "finished frames are kept")
        return f"file error{where}: {exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return "out of memory: lower the working resolution, or free memory in the add-on preferences"
    return None
