"""Everything that writes user-visible outputs: atomic files, output-folder checks, frame manifests.

- `atomic_output`: the one write-then-rename utility (a temporary file in the destination folder,
  renamed onto the final name only when the writer succeeded; removed on any exception,
  KeyboardInterrupt included). A kill leaves at most a dot-named ``*.tmp*`` file, which
  `clean_temporaries` removes on the next run into the same folder.
- `check_output_dir`: an output folder is checked (not a file, not below a file, no symlink loop,
  writable, would not overwrite an input) before anything is created or any model is loaded.
- `FrameManifest`: the one resumable frame manifest (the command line's ``manifest.json``, the
  add-on's stop-motion ``.dh_frames.json``) ties each finished frame to a key of everything that
  made it (inputs, settings, model, its own transform); a rerun skips the frames whose files are
  still there and unchanged and redoes stale ones; in a folder of its own it also removes frames
  a shorter run no longer lists.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from .errors import InputError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "diffusion-handles-frames"

# Names `atomic_output` (and `temporary_folder`) give their temporaries: ".<stem>.<random>.tmp<suffix>".
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp(\.[A-Za-z0-9]+)?$")

# A write that failed because the disk (or the user's quota, or the file size limit) is full.
DISK_FULL_ERRNOS = frozenset(e for e in (getattr(errno, n, None) for n in ("ENOSPC", "EFBIG", "EDQUOT"))
                             if e is not None)


def is_disk_full(exc) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def _read_umask() -> int:
    # Read once at import: os.umask is process-global, and setting it from a worker thread
    # later would race with other threads creating files.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
NORMAL_FILE_MODE = 0o666 & ~_UMASK  # what open() would give a new file


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the suffix (some writers pick the format from it) and starts with a
    dot so a listing of finished outputs does not show it. It gets the normal file mode (0666
    less the umask), not mkstemp's 0600, so every output has the same permissions. On any
    exception the temporary file is removed and the exception propagates; ``path`` is untouched.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=directory)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # after the writer: some (safetensors) replace the file and would leave mkstemp's 0600
        os.chmod(tmp, NORMAL_FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if is_disk_full(exc) and exc.filename != str(path):
            # name the output (a writer's own error names its temporary, or nothing)
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from None
        raise


@contextlib.contextmanager
def temporary_folder(path):
    """Yield a new dot-named folder next to ``path`` for a writer that picks its own file names
    (Blender's movie output); it is removed afterwards, and a killed run's is removed by the next
    `clean_temporaries` of that folder (its name is an `atomic_output` temporary's)."""
    import shutil

    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    folder = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", suffix=".tmp", dir=directory))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def deferred_interrupt():
    """Hold Ctrl+C / SIGTERM until the block is done, then raise KeyboardInterrupt. The block
    gets a state whose ``requested`` turns True when a signal came, so it can stop at a point of
    its choosing (a frame's files and its manifest entry are written together or not at all).
    Only in the main thread, and only where Python owns the signals; elsewhere (a worker thread,
    a host such as Blender whose own handler Python could not put back) the block runs
    unprotected."""
    import signal
    import threading
    from types import SimpleNamespace

    state = SimpleNamespace(requested=False)
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    if None in previous.values():  # a handler not installed from Python: signal.signal cannot restore it
        yield state
        return

    def hold(signum, frame):
        state.requested = True

    for sig in previous:
        signal.signal(sig, hold)
    try:
        yield state
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if state.requested:
        raise KeyboardInterrupt


def write_text(path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, data) -> None:
    write_text(path, json.dumps(data, indent=1) + "\n")


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's content (streamed by hashlib, never read whole into memory)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def clean_temporaries(directory) -> list:
    """Remove the temporaries a killed writer left in ``directory`` (names of `atomic_output`)."""
    removed = []
    d = Path(directory)
    if not d.is_dir():
        return removed
    import shutil

    for p in d.iterdir():
        if not _TEMP_NAME.match(p.name) or p.is_symlink():
            continue
        with contextlib.suppress(OSError):
            if p.is_file():
                p.unlink()
                removed.append(p)
            elif p.is_dir():  # a `temporary_folder`
                shutil.rmtree(p)
                removed.append(p)
    return removed


# --------------------------------------------------------------------------------------------
# output location


def check_output_dir(path, what: str = "--out") -> Path:
    """Check an output folder before anything is written or loaded; create nothing.

    Refuses, with one line naming ``what``: an existing non-folder, a path below a regular file,
    a symlink loop, a dangling symlink, a location whose nearest existing folder is not writable.
    (Outputs that would overwrite inputs: `check_inputs_not_in`.) Returns the path.
    """
    p = Path(path).expanduser()
    label = f"{what} '{path}'"
    if not str(path).strip():
        raise InputError(f"{what}: empty path")
    try:
        p.resolve(strict=False)
    except RuntimeError:  # Python < 3.13 raises RuntimeError on a symlink loop
        raise InputError(f"{label}: symlink loop") from None
    except OSError as exc:
        raise InputError(f"{label}: {exc.strerror or exc}") from None
    # Walk up to the nearest existing entry: it must be a folder we can write into.
    probe = p
    while True:
        try:
            st = os.stat(probe)
        except FileNotFoundError:
            if probe.is_symlink():
                raise InputError(f"{label}: '{probe}' is a dangling symlink")
            if probe.parent == probe:
                raise InputError(f"{label}: no existing folder above it")
            probe = probe.parent
            continue
        except OSError as exc:  # ELOOP, ENOTDIR, EACCES
            if exc.errno == errno.ELOOP:
                raise InputError(f"{label}: symlink loop") from None
            if exc.errno == errno.ENOTDIR:
                raise InputError(f"{label}: a part of the path is a file, not a folder") from None
            raise InputError(f"{label}: cannot be used ({exc.strerror})") from None
        break
    import stat as stat_mod

    if not stat_mod.S_ISDIR(st.st_mode):
        if probe == p:
            raise InputError(f"{label}: exists and is not a folder")
        raise InputError(f"{label}: '{probe}' is a file, so no folder can be made below it")
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "" if probe == p else f" (nearest existing folder '{probe}')"
        raise InputError(f"{label}: not writable{where}; choose another output folder")
    return p


def check_inputs_not_in(folder, inputs, what: str = "--out", patterns=()) -> None:
    """Refuse when an input file sits in ``folder`` under a name matching one of ``patterns``
    (regular expressions of the names this command writes there)."""
    folder = Path(folder).expanduser().resolve(strict=False)
    for source in inputs:
        if not source:
            continue
        s = Path(source).expanduser().resolve(strict=False)
        if s.parent == folder and any(re.fullmatch(pat, s.name) for pat in patterns):
            raise InputError(f"{what} '{folder}': the input '{source}' has the name of an output "
                             f"written there ({s.name}); choose another output folder")


# --------------------------------------------------------------------------------------------
# frame manifests


def digest_json(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class FrameManifest:
    """A frame folder's manifest (``manifest.json``): which frames are finished, for which inputs.

    ``key`` covers what every frame shares (inputs, settings, model); each frame adds the key of
    its own transform. A frame counts as done only when the manifest's key matches, its own key
    matches, and every file it lists is still there with the recorded SHA-256.

    ``frame_keys`` is a list (frames numbered 1, 2, ... in order: the command line's frames) or a
    dict {label: key} (frames named by their labels, e.g. the add-on's frame file names, which
    Blender numbers and places as the scene says).

    ``owns_folder``: the folder holds only this command's outputs, so a `resume` deletes the files
    of stale frames and of frames this run no longer lists (a rerun never leaves unlisted frames
    behind). False (the add-on's frames, written into a folder the user chose and may share with
    other frames): a resume deletes nothing; a stale frame's file stays until it is written again,
    and the entries of frames outside this run (a shrunk frame range, another file name in the
    same folder) are kept as they are, so a later run that lists them again keeps their files.
    """

    def __init__(self, directory, key: str, frame_keys, name: str = MANIFEST, owns_folder: bool = True):
        self.directory = Path(directory)
        self.path = self.directory / name
        self.key = key
        self.numbered = not isinstance(frame_keys, dict)
        self.frame_keys = dict(enumerate(frame_keys, start=1)) if self.numbered else dict(frame_keys)
        self.owns_folder = owns_folder
        self.frames: dict = {}  # frame (number or label) -> {"key", "files": {name: sha256}}

    def _previous(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT \
                or not isinstance(data.get("frames"), dict):
            return {}
        return data

    def _listed(self, frames) -> list:
        """``frames`` in this run's order."""
        return [f for f in self.frame_keys if f in frames]

    def finished(self) -> list:
        """The frames (1-based numbers, or labels) a `resume` would keep, in this run's order;
        reads only, changes nothing."""
        return self._listed(self._sort()[0])

    def resume(self) -> list:
        """Read the previous manifest: keep its valid frames, remove stale temporaries, and (when
        the folder is this command's own) delete the files of stale and extra frames. Returns the
        frames already finished, in this run's order."""
        clean_temporaries(self.directory)
        keep, stale, others = self._sort()
        if self.owns_folder:
            for files in stale:
                for name in files:
                    self._remove(name)
        self.frames = {**keep, **({} if self.owns_folder else others)}
        self._write()
        return self._listed(keep)

    def _frame(self, label):
        """A previous manifest's frame label as this manifest names frames (None: unreadable)."""
        if not self.numbered:
            return label
        try:
            return int(label)
        except ValueError:
            return None

    def _sort(self):
        """(valid frames {frame: entry}, [file lists of stale or extra frames], {frame: entry} of
        the same run's frames this run does not list) of the previous manifest."""
        old = self._previous()
        same_run = old.get("key") == self.key
        keep, stale, others = {}, [], {}
        for label, entry in old.get("frames", {}).items():
            files = entry.get("files") if isinstance(entry, dict) else None
            frame = self._frame(label)
            if not isinstance(files, dict) or frame is None:
                continue
            if same_run and frame not in self.frame_keys:
                others[frame] = {"key": entry.get("key"), "files": dict(files)}
            valid = (same_run and frame in self.frame_keys and entry.get("key") == self.frame_keys[frame]
                     and all(self._unchanged(name, digest) for name, digest in files.items()))
            if valid:
                keep[frame] = {"key": entry["key"], "files": dict(files)}
            else:
                stale.append(list(files))
        return keep, stale, others

    def _file(self, name) -> Path:
        p = self.directory / str(name)
        if p.parent != self.directory:  # a hand-edited manifest must not reach outside the folder
            raise InputError(f"frame manifest '{self.path}': file name {name!r} is not in the folder")
        return p

    def _unchanged(self, name, digest) -> bool:
        try:
            p = self._file(name)
            return p.is_file() and not p.is_symlink() and file_digest(p) == digest
        except (OSError, InputError):
            return False

    def _remove(self, name) -> None:
        with contextlib.suppress(OSError, InputError):
            p = self._file(name)
            if p.is_file() and not p.is_symlink():
                p.unlink()

    def commit(self, frame, writers) -> None:
        """Write ``frame``'s files (``writers``: (name, write(path)) pairs, the last one is the
        frame image) and record it, as one step: an interruption before the last file is renamed
        into place removes the frame's other files; after it, the manifest entry is written too.
        Either way the interruption is raised afterwards. A write that fails (a full disk) removes
        the frame's files written so far, and a manifest that cannot be written removes the
        frame's files too: the folder never holds a frame its manifest does not list."""
        with deferred_interrupt() as stop:
            written = []
            try:
                for i, (name, write) in enumerate(writers):
                    if stop.requested and i == len(writers) - 1:
                        for done in written:
                            self._remove(done)
                        return  # deferred_interrupt raises KeyboardInterrupt on the way out
                    write(self.directory / name)
                    written.append(name)
                self.add(frame, written)
            except BaseException:
                self.frames.pop(frame, None)
                for done in written:
                    self._remove(done)
                raise

    def add(self, frame, names) -> None:
        """Record ``frame`` (its 1-based number, or its label) as finished with the files ``names``
        (already written)."""
        self.frames[frame] = {"key": self.frame_keys[frame],
                              "files": {n: file_digest(self.directory / n) for n in names}}
        self._write()

    def _write(self) -> None:
        order = self._listed(self.frames) + [f for f in self.frames if f not in self.frame_keys]
        write_json(self.path, {"format": MANIFEST_FORMAT, "key": self.key, "total": len(self.frame_keys),
                               "frames": {str(f): self.frames[f] for f in order}})

    @property
    def complete(self) -> bool:
        return all(f in self.frames for f in self.frame_keys)


# --------------------------------------------------------------------------------------------
# claims: one writer per folder, per frame, per prepared cache


CLAIM_STALE_SECONDS = 6 * 3600  # a claim by another host this old is abandoned (a crashed node)


def _host() -> str:
    import socket

    return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (never signals it: os.kill on Windows
    would terminate it)."""
    import sys

    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, int(pid))  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


def claim_owner(path) -> dict | None:
    """The owner recorded in a claim file ({"pid", "host", "time", "token"}), None when there is none
    (an unreadable claim, e.g. one being written, counts as owned by nobody known: {})."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def claim_is_stale(path, stale_after: float = CLAIM_STALE_SECONDS) -> bool:
    """A claim whose owner is gone: a process of this host that no longer runs, or (another host's,
    or unreadable) older than ``stale_after`` seconds."""
    import time

    owner = claim_owner(path)
    if owner is None:
        return True
    if owner.get("host") == _host() and isinstance(owner.get("pid"), int):
        return not _pid_alive(owner["pid"])
    try:
        age = time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return True
    if not owner:  # unreadable: being written (microseconds), or left by a writer that died
        return age > 10.0
    return age > stale_after


def try_claim(path, what: str = "", stale_after: float = CLAIM_STALE_SECONDS) -> bool:
    """Atomically claim ``path`` (a file created with O_CREAT | O_EXCL naming this process, host and
    time); a stale claim (`claim_is_stale`) is taken over. True when this process holds it now."""
    import secrets
    import time

    path = Path(path)
    token = secrets.token_hex(8)
    body = json.dumps({"pid": os.getpid(), "host": _host(), "time": time.time(), "token": token,
                       "what": what}).encode()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            owner = claim_owner(path)
            if owner and owner.get("pid") == os.getpid() and owner.get("host") == _host():
                return True  # ours already
            if not claim_is_stale(path, stale_after):
                return False
            # take over: move the stale claim aside (only one contender's rename succeeds)
            aside = path.with_name(f"{path.name}.{token}.stale")
            try:
                os.replace(path, aside)
            except FileNotFoundError:
                continue
            with contextlib.suppress(OSError):
                os.unlink(aside)
            continue
        try:
            os.write(fd, body)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)  # never an empty claim left behind (a full disk)
            raise
        os.close(fd)
        return (claim_owner(path) or {}).get("token") == token
    return False


def touch_claim(path) -> None:
    """Renew a claim this process holds (its age is what other hosts judge staleness by)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def release_claim(path) -> None:
    """Remove ``path`` if this process holds it."""
    owner = claim_owner(path)
    if owner and owner.get("pid") == os.getpid() and owner.get("host") == _host():
        with contextlib.suppress(OSError):
            os.unlink(path)


WRITER_CLAIM = ".dh-writer.claim"


@contextlib.contextmanager
def folder_writer(directory, what: str = "--out"):
    """Hold the one-writer claim of an output folder (created if missing) while the block runs: a
    second run into the same folder is refused in one line while the first one lives (a killed
    run's claim is taken over), so two runs never interleave their frames."""
    from .errors import EngineError

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / WRITER_CLAIM
    if not try_claim(path, what=f"writing {d}"):
        owner = claim_owner(path) or {}
        who = f"process {owner.get('pid', '?')} on {owner.get('host', '?')}"
        raise EngineError(f"{what} '{d}': another run ({who}) is writing this folder; wait for it to "
                          f"finish (rerun then resumes) or choose another folder")
    try:
        yield path
    finally:
        release_claim(path)
