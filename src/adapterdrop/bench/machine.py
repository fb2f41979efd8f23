"""Which machine a benchmark point ran on: a hardware fingerprint and a short readable tag.

A timing belongs to the hardware that measured it, so the fingerprint is part of every point's
identity (its config) and the tag names the folder its results live in
(``results/<tag>/raw``, ``results/<tag>/tables``). A fresh clone on another machine then finds
no results of its own and measures, instead of reporting the committed reference machine's.

The fingerprint holds only what decides speed and stays put on one machine: the resolved device
type, the CPU model with its widest matmul ISA and torch's thread count, or the GPU name and
count. Hostnames are left out (a cluster's identical nodes share results); software versions
are recorded with every result instead and checked by :func:`version_changes`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from adapterdrop.bench.environment import static_environment

#: CPU matmul ISAs, widest first: the first one the CPU has names its speed class. bf16 is fast
#: only with the native instructions (AMX or avx512_bf16; Arm's bf16); AVX2 emulates it ~9x slower.
ISA_LEVELS = (
    ("amx_bf16", "amx"),
    ("avx512_bf16", "avx512bf16"),
    ("avx512f", "avx512"),
    ("avx2", "avx2"),
    ("bf16", "armbf16"),
    ("asimd", "neon"),
)
#: Packages whose version change makes a stored timing stale on the same machine.
TIMED_PACKAGES = ("python", "torch", "transformers", "adapters")


def cpu_isa(flags: Mapping[str, bool]) -> str:
    """The widest matmul ISA among the CPU's flags (``generic`` when none is known)."""
    return next((name for flag, name in ISA_LEVELS if flags.get(flag)), "generic")


def native_bf16(flags: Mapping[str, bool]) -> bool:
    """True when the CPU runs bf16 matmuls natively (AMX, avx512_bf16 or Arm bf16)."""
    return cpu_isa(flags) in ("amx", "avx512bf16", "armbf16")


def fingerprint(device: torch.device, threads: int) -> dict[str, Any]:
    """What identifies the hardware of a point on ``device`` with ``threads`` torch threads."""
    env = static_environment()
    if device.type == "cuda":
        gpus = env["gpus"] or []
        names = sorted({gpu["name"] for gpu in gpus})
        return {"device": "cuda", "gpu": "+".join(names) or None, "gpu_count": len(gpus)}
    cpu = env["cpu"]
    return {
        "device": device.type,
        "cpu": cpu["model"],
        "isa": cpu_isa(cpu["flags"]),
        "threads": int(threads),
    }


def _slug(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (text or "unknown").lower()).strip("-") or "unknown"


def tag(print_: Mapping[str, Any]) -> str:
    """A short folder name for a fingerprint: ``cpu-amd-epyc-avx2-2t``, ``cuda-nvidia-h200-x1``."""
    if print_["device"] == "cuda":
        return f"cuda-{_slug(print_['gpu'])}-x{print_['gpu_count']}"
    return f"{print_['device']}-{_slug(print_['cpu'])}-{print_['isa']}-{print_['threads']}t"


def check_tag(name: str) -> str:
    """A machine tag names one folder: lowercase letters, digits, ``-``, ``_`` and ``.``."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name or ""):
        raise ValueError(
            f"machine tag {name!r} must be one folder name of lowercase letters, digits, '-', "
            "'_' or '.' (or 'auto' for the hardware's own tag)"
        )
    return name


def version_changes(environment: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{package: (stored, now)}`` for every timed package whose version differs from this
    process's, given a stored result's environment block."""
    stored = environment.get("versions") or {}
    now = static_environment()["versions"]
    return {
        name: (stored.get(name), now.get(name))
        for name in TIMED_PACKAGES
        if stored.get(name) != now.get(name)
    }
