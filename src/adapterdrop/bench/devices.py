"""Which device and precision a benchmark runs in: the device asked for (``auto``: CUDA when
present), the dtype (``auto``: what is fast there), TF32, autocast for training steps and the
dtype weights are stored in per phase."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from adapterdrop.bench.environment import nvidia_smi_gpus, static_environment
from adapterdrop.bench.machine import native_bf16

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one fails with the reason.

    A GPU that ``nvidia-smi`` lists but torch cannot use (a CPU-only torch wheel) fails too,
    unless ``device=cpu`` says the CPU is meant: timing the CPU by accident is worse than no run.
    """
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of {DEVICES}")
    if name != "cpu" and not torch.cuda.is_available():
        gpus = nvidia_smi_gpus()
        if gpus:
            raise RuntimeError(
                f"nvidia-smi lists {len(gpus)} GPU(s) ({gpus[0]}) but torch {torch.__version__} "
                f"has no CUDA (torch.version.cuda={torch.version.cuda}): install a CUDA build "
                "(make install TORCH_INDEX=... TORCH_SPEC=..., see the README) or pass device=cpu"
            )
        if name == "cuda":
            raise ValueError("device=cuda requested but torch sees no CUDA device; use device=cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def check_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose one of {sorted(DTYPES)} or 'auto'")
    return DTYPES[name]


def resolve_dtype(name: str, device: torch.device) -> str:
    """``auto``: what is fast on ``device``. bf16 on a CPU with native bf16 (AMX, avx512_bf16,
    Arm bf16) and fp32 on other CPUs, where bf16 is emulated (about 9x slower than fp32 on an
    AVX2 EPYC); on CUDA bf16 where the GPU supports it, else fp16."""
    if name != "auto":
        check_dtype(name)
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if native_bf16(static_environment()["cpu"]["flags"]) else "fp32"


def set_tf32(enabled: bool) -> None:
    """TF32 matmuls and convolutions on Ampere+ GPUs (a no-op elsewhere); a point records it."""
    if not isinstance(enabled, bool):
        raise ValueError(f"tf32 must be true or false, got {enabled!r}")
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


@contextlib.contextmanager
def precision(dtype: str, device: torch.device) -> Iterator[None]:
    """Autocast for bf16/fp16 training steps (the paper's GPUs ran mixed precision); nothing
    for fp32. Inference stores the weights in ``dtype`` instead (:func:`storage_dtype`)."""
    if dtype == "fp32":
        yield
        return
    with torch.autocast(device.type, dtype=check_dtype(dtype)):
        yield


def storage_dtype(dtype: str, phase: str) -> torch.dtype:
    """The dtype weights are stored in for ``phase``: fp32 for training (autocast does the
    rest, as mixed-precision training keeps fp32 master weights), ``dtype`` for inference, as
    a deployment stores them; autocast at inference would re-cast every weight on every call,
    a per-layer constant added to every implementation alike that pulls ratios toward 1."""
    return check_dtype(dtype) if phase == "inference" else torch.float32
