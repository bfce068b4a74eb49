"""session.errors.user_message: what an operator reports for an exception (one line, never a
traceback for a known cause)."""
import errno
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dh_synthetic import addon_module  # noqa: E402


def test_a_full_disk_is_named_as_one_and_other_file_errors_are_not():
    errors = addon_module("session.errors")
    full = errors.user_message(OSError(errno.ENOSPC, "No space left on device", "/farm/frames/f_0001.png"))
    assert full.startswith("disk full writing '/farm/frames/f_0001.png'") and "\n" not in full
    too_big = errors.user_message(OSError(errno.EFBIG, "File too large", "f.exr"))
    assert too_big.startswith("disk full writing 'f.exr'")
    other = errors.user_message(OSError(errno.EACCES, "Permission denied", "f.png"))
    assert other == "file error 'f.png': Permission denied"
    assert errors.user_message(ValueError("a bug")) is None  # unknown: keeps its traceback
