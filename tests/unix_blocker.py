"""Run Python as on Windows, as far as the standard library goes: a ``sitecustomize`` that makes the
Unix-only modules unimportable (an ImportError, as Windows' Python raises), written into a folder
that goes first on PYTHONPATH of a subprocess. Windows always sets USERNAME (getpass reads it
before it would try ``pwd``), so the environment sets it too.

Third-party packages with a backend per platform (psutil's ``_pslinux`` here, ``_pswindows`` on
Windows) keep their Linux backend's imports: Windows would load another file, not fail."""
from __future__ import annotations

import os
from pathlib import Path

UNIX_ONLY = ("resource", "fcntl", "pwd", "grp", "termios")
PLATFORM_BACKENDS = ("psutil/_pslinux.py", "psutil/_psposix.py", "psutil/_psosx.py")

SITECUSTOMIZE = '''
import sys

UNIX_ONLY = {names!r}
# the per-platform backends of third-party packages (Windows loads a sibling file instead)
PLATFORM_BACKENDS = {backends!r}


def _importer():
    frame = sys._getframe(2)
    while frame is not None and "importlib" in frame.f_code.co_filename:
        frame = frame.f_back
    return "" if frame is None else frame.f_code.co_filename.replace(chr(92), "/")


class _UnixOnly:
    """A meta-path finder that refuses the Unix-only modules."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in UNIX_ONLY:
            if not _importer().endswith(PLATFORM_BACKENDS):
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


for _name in UNIX_ONLY:
    sys.modules.pop(_name, None)
sys.meta_path.insert(0, _UnixOnly())
'''


def environment(folder, *paths) -> dict:
    """os.environ for a subprocess with the Unix-only modules blocked; ``paths`` follow on PYTHONPATH."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(names=UNIX_ONLY, backends=PLATFORM_BACKENDS), encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), *map(str, paths)])
    env.setdefault("USERNAME", "artist")
    env["PYTHONIOENCODING"] = "utf-8"
    return env
