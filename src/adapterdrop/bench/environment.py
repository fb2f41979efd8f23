"""Describe the machine and software a measurement ran on, so numbers can be compared.

The static part (hardware, library versions) is collected once per process; the parts
that can change while a sweep runs (thread count, git state, clock) are read on each
call. Every probe degrades to ``None`` instead of raising: a missing GPU, package or git
binary must never cost a measurement.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import torch

from adapterdrop.bench.allocator import allocator_settings

#: Distributions whose versions are recorded (looked up by metadata, never imported).
PACKAGES = ("torch", "transformers", "adapters", "numpy", "pandas", "adapterdrop")
#: CPU feature flags that decide which matmul kernels run (x86 names, then Arm names).
CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "bf16",
    "i8mm",
)
#: Environment variables that change threading or device visibility.
ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "TOKENIZERS_PARALLELISM",
)
#: git and nvidia-smi answer instantly; a hung filesystem or driver must not stall a sweep.
SUBPROCESS_TIMEOUT_S = 5.0
#: Results are written inside the repository; they must not make the code look modified.
GIT_STATUS_EXCLUDE = ":(top,exclude)results"

_REPO_DIR = Path(__file__).resolve().parent


def _read_cpuinfo() -> dict[str, str]:
    """First occurrence of each key in /proc/cpuinfo (empty off Linux)."""
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info.setdefault(key.strip(), value.strip())
    return info


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _torch_backends() -> dict[str, Any]:
    def probe(fn: Any) -> Any:
        try:
            return fn()
        except (AttributeError, RuntimeError):
            return None

    return {
        "cpu_capability": probe(torch.backends.cpu.get_cpu_capability),
        "mkl": probe(torch.backends.mkl.is_available),
        "mkldnn": probe(torch.backends.mkldnn.is_available),
        "openmp": probe(torch.backends.openmp.is_available),
        "mkldnn_bf16": probe(lambda: bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())),
        "cuda_runtime": torch.version.cuda,
        "cudnn": probe(torch.backends.cudnn.version) if torch.cuda.is_available() else None,
    }


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if lines else None


@functools.lru_cache(maxsize=1)
def nvidia_smi_gpus() -> list[str]:
    """The GPUs ``nvidia-smi -L`` lists (empty without the tool or a driver), whatever torch
    sees: a CPU-only torch on a GPU machine shows up as GPUs here and none in torch."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.startswith("GPU")]


def _cuda_settings() -> dict[str, Any] | None:
    """TF32 and the scaled-dot-product-attention backends enabled, which decide GPU speed."""
    if not torch.cuda.is_available():
        return None
    cuda = torch.backends.cuda
    return {
        "tf32_matmul": cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "sdpa": {
            "flash": cuda.flash_sdp_enabled(),
            "mem_efficient": cuda.mem_efficient_sdp_enabled(),
            "math": cuda.math_sdp_enabled(),
            "cudnn": getattr(cuda, "cudnn_sdp_enabled", lambda: None)(),
        },
    }


def _gpus() -> list[dict[str, Any]] | None:
    if not torch.cuda.is_available():
        return None
    driver = _nvidia_driver()
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append(
            {
                "index": index,
                "name": props.name,
                "total_memory_bytes": int(props.total_memory),
                "capability": f"{props.major}.{props.minor}",
                "driver": driver,
            }
        )
    return gpus


@functools.lru_cache(maxsize=1)
def static_environment() -> dict[str, Any]:
    """Hardware and library facts that cannot change during a process (cached)."""
    cpuinfo = _read_cpuinfo()
    flags = set((cpuinfo.get("flags") or cpuinfo.get("Features") or "").split())
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "cpu": {
            "model": cpuinfo.get("model name") or platform.processor() or None,
            "machine": platform.machine(),
            "physical_cores": psutil.cpu_count(logical=False),
            "logical_cores": os.cpu_count(),
            "affinity_cores": affinity,
            "flags": {flag: flag in flags for flag in CPU_FLAGS},
        },
        "ram_bytes": int(psutil.virtual_memory().total),
        "gpus": _gpus(),
        "versions": _package_versions(),
        "torch_backends": _torch_backends(),
    }


def _git(repo_dir: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo_dir), *args],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_state(repo_dir: Path | str = _REPO_DIR) -> dict[str, Any]:
    """Commit and dirty flag of the repository containing ``repo_dir`` (nulls outside one).

    Dirty means modified *tracked* files outside ``results/``: untracked files and freshly
    written results say nothing about the code that produced a number.
    """
    commit = _git(Path(repo_dir), "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git(
        Path(repo_dir), "status", "--porcelain", "--untracked-files=no", "--", GIT_STATUS_EXCLUDE
    )
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def collect_environment(repo_dir: Path | str = _REPO_DIR) -> dict[str, Any]:
    """Full environment block for a result: cached static facts plus the volatile ones."""
    env = copy.deepcopy(static_environment())
    env["torch_threads"] = {
        "intra_op": torch.get_num_threads(),
        "inter_op": torch.get_num_interop_threads(),
    }
    env["env_vars"] = {name: os.environ.get(name) for name in ENV_VARS}
    env["allocator"] = allocator_settings()
    env["cuda"] = _cuda_settings()
    env["git"] = git_state(repo_dir)
    env["timestamp_utc"] = datetime.now(UTC).isoformat()
    return env
