"""Build the models and inputs that benchmark callables run on, from plain config dicts.

The runner and timer know nothing about adapters; experiments turn a point's config into
callables with these helpers, so ours and AdapterHub are built from the same weights and fed
the same tensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import torch

from adapterdrop.bench.environment import nvidia_smi_gpus, static_environment
from adapterdrop.bench.machine import fingerprint, native_bf16
from adapterdrop.bench.validate import check_timing
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method
from adapterdrop.models import load_backbone

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
    for fp32. Inference stores the weights in ``dtype`` instead (:func:`inference_weights`)."""
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


#: The budget keys of :func:`adapterdrop.bench.timer.measure_interleaved`.
TIMING_KEYS = ("warmup", "warmup_seconds", "min_reps", "min_seconds", "max_reps")


def resolve_timing(cfg: Mapping[str, Any], phase: str | None = None) -> dict[str, Any]:
    """The grid's timing budget (``bench.timing``, sized for its callables; a ``training`` or
    ``inference`` entry in it adjusts that phase) under any value set in the global ``timing``
    block, so ``timing.min_reps=20`` on the command line wins.

    A key left ``null`` everywhere is refused: a budget must be explicit to be recorded.
    """
    where = "bench.timing and timing" + (f", {phase} phase" if phase else "")
    grid = cfg["bench"].get("timing", {})
    explicit = {key: value for key, value in cfg["timing"].items() if value is not None}
    timing = {**grid, **(grid.get(phase) or {}), **explicit}
    missing = sorted(key for key in TIMING_KEYS if timing.get(key) is None)
    if missing:
        raise ValueError(
            f"timing {missing} unset: give them in bench.timing of the grid or as timing.<key>"
        )
    return check_timing({key: timing[key] for key in TIMING_KEYS}, f"timing ({where})")


def point_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The global settings every benchmark point records, validated before any model exists.

    Device and dtype are recorded resolved (never ``auto``), with the machine's fingerprint:
    a point's identity says which hardware and precision its numbers belong to.
    """
    device = resolve_device(cfg["device"])
    threads = torch.get_num_threads()
    return {
        "model": dict(cfg["model"]),
        "dtype": resolve_dtype(cfg["dtype"], device),
        "device": device.type,
        "machine": fingerprint(device, threads),
        "threads": threads,
        "tf32": cfg["tf32"],
        "timing": resolve_timing(cfg),
        "seed": cfg["seed"],
    }


def random_inputs(
    vocab_size: int, batch: int, seq_len: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, None]:
    """Token ids made on the host once and moved, and no attention mask: speed runs are
    unpadded, and every implementation then takes its mask-free path (no mask to build or
    check on the device in each forward)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (batch, seq_len), generator=generator)
    return ids.to(device), None


def task_names(count: int) -> list[str]:
    if count < 1:
        raise ValueError(f"num_tasks must be >= 1, got {count}")
    return [f"task{index}" for index in range(count)]


def build_encoder(
    model_cfg: Mapping[str, Any],
    method_cfg: Mapping[str, Any] | None,
    num_tasks: int,
    device: torch.device,
    seed: int = 0,
) -> AdapterEncoder:
    """A frozen backbone with ``num_tasks`` adapters of one method (random, non-identity)."""
    encoder = AdapterEncoder(load_backbone(model_cfg, seed=seed).model)
    encoder.freeze_backbone()
    torch.manual_seed(seed)
    if method_cfg is not None:
        for task in task_names(num_tasks):
            build_method(method_cfg).apply(encoder, task)
    return encoder.to(device).eval()


class ModelCache:
    """Keep the last built models: consecutive points of a sweep share their model.

    Building bert-base takes seconds and two copies (ours, AdapterHub) use memory, so only
    the most recent key is kept. :meth:`clear_all` empties every cache (before spawning
    processes that build their own).
    """

    _instances: ClassVar[list[ModelCache]] = []

    def __init__(self) -> None:
        self._key: str | None = None
        self._value: Any = None
        ModelCache._instances.append(self)

    @classmethod
    def clear_all(cls) -> None:
        for cache in cls._instances:
            cache._key, cache._value = None, None

    def get(self, key: str, build: Callable[[], Any]) -> Any:
        if key != self._key:
            self._key, self._value = None, None
            self._value, self._key = build(), key
        return self._value
