"""Wall time and peak memory of the engine's stages, on every platform.

Peak memory is the accelerator's peak allocation on CUDA; elsewhere it is the process's peak
resident memory: ``resource.getrusage`` on Unix (kilobytes on Linux, bytes on macOS), the peak
working set from ``GetProcessMemoryInfo`` on Windows (ctypes, standard library), psutil when
neither works and it is installed; None when nothing can tell (never an import error:
``resource`` does not exist on Windows).
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager


@contextmanager
def timer(seconds: dict, name):
    """Add the block's wall time to ``seconds[name]``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0


def reset_peak_memory(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device) -> int:
    """Peak GPU memory allocated on CUDA; the process's peak resident memory elsewhere (bytes);
    0 where the platform cannot tell (reports add these numbers up and compare them)."""
    import torch

    if torch.device(device).type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return process_peak_memory() or 0


def process_peak_memory() -> int | None:
    """The process's peak resident memory in bytes, or None where the platform cannot say."""
    try:
        import resource
    except ImportError:  # Windows
        resource = None
    if resource is not None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss if sys.platform == "darwin" else rss * 1024)
    peak = _windows_peak_working_set()
    if peak is not None:
        return peak
    try:
        import psutil
    except ImportError:
        return None
    peak = getattr(psutil.Process().memory_info(), "peak_wset", None)  # Windows only
    return None if peak is None else int(peak)  # the current size is not a peak


def _windows_peak_working_set() -> int | None:
    """PeakWorkingSetSize of this process (psapi's GetProcessMemoryInfo), None off Windows."""
    if sys.platform != "win32":
        return None
    try:
        import ctypes
        from ctypes import wintypes

        class Counters(ctypes.Structure):
            _fields_ = [("cb", wintypes.DWORD), ("PageFaultCount", wintypes.DWORD),
                        ("PeakWorkingSetSize", ctypes.c_size_t), ("WorkingSetSize", ctypes.c_size_t),
                        ("QuotaPeakPagedPoolUsage", ctypes.c_size_t), ("QuotaPagedPoolUsage", ctypes.c_size_t),
                        ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t),
                        ("QuotaNonPagedPoolUsage", ctypes.c_size_t), ("PagefileUsage", ctypes.c_size_t),
                        ("PeakPagefileUsage", ctypes.c_size_t)]

        counters = Counters()
        counters.cb = ctypes.sizeof(Counters)
        process = ctypes.windll.kernel32.GetCurrentProcess()
        if not ctypes.windll.psapi.GetProcessMemoryInfo(process, ctypes.byref(counters), counters.cb):
            return None
        return int(counters.PeakWorkingSetSize)
    except (OSError, AttributeError, ValueError):
        return None
