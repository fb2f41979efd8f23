"""Keep freed memory in the benchmark process, so a call's cost does not depend on its history.

glibc hands large freed blocks back to the kernel (blocks above the mmap threshold, and the top
of the heap above the trim threshold), and both thresholds adapt to what the process did
before. A tensor allocated afresh on every call then pays page faults on first touch in one
run and not in another: under bf16 autocast the full fine-tuning model (weights that require
grad, whose casts autocast keeps for the whole call) measured 67 ms per inference call in a
process that had only run inference, and 44 ms in one that had trained first. Pinning both
thresholds (the effect of running under jemalloc or tcmalloc, as CPU inference guides advise)
makes every allocation after warm-up reuse memory the process already touched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

# mallopt parameters from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: glibc caps the mmap threshold at 32 MiB on 64-bit; the largest weight cast of bert-base
#: (3072 x 768 in bf16) is 4.5 MiB, of roberta-large 8 MiB.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Never trim the heap top (mallopt takes a C int).
TRIM_THRESHOLD = 2**31 - 1

_settings: dict[str, Any] = {"allocator": "default", "pinned_thresholds": False}


def allocator_settings() -> dict[str, Any]:
    """What :func:`retain_freed_memory` did in this process (recorded with every result)."""
    return dict(_settings)


def retain_freed_memory() -> dict[str, Any]:
    """Pin glibc's mmap and trim thresholds; return what was done, for the environment record.

    Elsewhere than Linux/glibc nothing changes and the record says so.
    """
    if not sys.platform.startswith("linux"):
        _settings.update(allocator="system", pinned_thresholds=False)
        return allocator_settings()
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        _settings.update(allocator="unknown libc", pinned_thresholds=False)
        return allocator_settings()
    pinned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    _settings.update(
        allocator="glibc",
        pinned_thresholds=pinned,
        mmap_threshold=MMAP_THRESHOLD,
        trim_threshold=TRIM_THRESHOLD,
    )
    return allocator_settings()
