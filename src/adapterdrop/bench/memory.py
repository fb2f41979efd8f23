"""Peak memory of one call, measured in an untimed pass beside the timings.

On CUDA it is ``torch.cuda.max_memory_allocated`` after resetting the peak: the tensors the call
held at its peak, models included. On Linux CPUs it is the process's peak resident set
(``VmHWM``) after resetting it through ``/proc/self/clear_refs``: everything the process held,
models, allocator caches and the interpreter included, so compare it between callables of one
process. Where neither is available it is ``None``, never a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")
#: Writing this to clear_refs resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0).
_RESET_PEAK_RSS = "5"


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


T = TypeVar("T")


def peak_memory(fn: Callable[[], T], device: str | torch.device | None) -> tuple[T, int | None]:
    """Run ``fn`` once; return its result and the peak memory in bytes it reached (see the
    module doc). The reset and the read happen before and after ``fn``, so a clock inside
    ``fn`` does not see them."""
    if device is not None and torch.device(device).type == "cuda":
        dev = torch.device(device)
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        result = fn()
        torch.cuda.synchronize(dev)
        return result, int(torch.cuda.max_memory_allocated(dev))
    if not _reset_peak_rss():
        return fn(), None
    result = fn()
    return result, _peak_rss_bytes()
