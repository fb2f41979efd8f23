"""Peak memory of one call, measured in an untimed pass beside the timings.

On CUDA it is ``torch.cuda.max_memory_allocated`` after resetting the peak: the tensors the call
held at its peak, models included. On Linux CPUs it is the process's peak resident set
(``VmHWM``) after returning freed heap memory to the system (``malloc_trim``, since the
benchmarks keep freed memory mapped) and resetting the peak through ``/proc/self/clear_refs``:
the models, the interpreter and what the call itself touched. Where neither is available it is
``None``, never a guess.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
#: Writing this to clear_refs resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0).
_RESET_PEAK_RSS = "5"


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def _release_freed_heap() -> None:
    """Give freed heap pages back (glibc), so the peak that follows is this call's own."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _peak_rss_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        _CLEAR_REFS.write_text(_RESET_PEAK_RSS)
    except OSError:
        return False
    return True


def peak_memory(
    fn: Callable[[], Any],
    device: str | torch.device | None,
    *,
    setup: Callable[[], Any] | None = None,
) -> int | None:
    """Run ``setup`` then ``fn`` once; return the peak memory in bytes ``fn`` reached (see the
    module doc)."""
    if setup is not None:
        setup()
    if device is not None and torch.device(device).type == "cuda":
        dev = torch.device(device)
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        fn()
        torch.cuda.synchronize(dev)
        return int(torch.cuda.max_memory_allocated(dev))
    _release_freed_heap()
    if not _reset_peak_rss():
        fn()
        return None
    fn()
    return _peak_rss_bytes()
