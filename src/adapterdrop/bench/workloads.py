"""Build the models and inputs that benchmark callables run on, from plain config dicts.

The runner and timer know nothing about adapters; experiments turn a point's config into
callables with these helpers, so ours and AdapterHub are built from the same weights and fed
the same tensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method
from adapterdrop.models import load_backbone

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one fails with the reason."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; choose one of {DEVICES}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda requested but torch sees no CUDA device; use device=cpu")
    return torch.device(name)


def check_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose one of {sorted(DTYPES)}")
    return DTYPES[name]


@contextlib.contextmanager
def precision(dtype: str, device: torch.device) -> Iterator[None]:
    """Autocast for bf16/fp16 (the paper's GPUs ran mixed precision); nothing for fp32."""
    if dtype == "fp32":
        yield
        return
    with torch.autocast(device.type, dtype=check_dtype(dtype)):
        yield


#: The budget keys of :func:`adapterdrop.bench.timer.measure_interleaved`.
TIMING_KEYS = ("warmup", "min_reps", "min_seconds", "max_reps")


def resolve_timing(cfg: Mapping[str, Any], phase: str | None = None) -> dict[str, Any]:
    """The grid's timing budget (``bench.timing``, sized for its callables; a ``training`` or
    ``inference`` entry in it adjusts that phase) under any value set in the global ``timing``
    block, so ``timing.min_reps=20`` on the command line wins.

    A key left ``null`` everywhere is refused: a budget must be explicit to be recorded.
    """
    grid = cfg["bench"].get("timing", {})
    explicit = {key: value for key, value in cfg["timing"].items() if value is not None}
    timing = {**grid, **(grid.get(phase) or {}), **explicit}
    missing = sorted(key for key in TIMING_KEYS if timing.get(key) is None)
    if missing:
        raise ValueError(
            f"timing {missing} unset: give them in bench.timing of the grid or as timing.<key>"
        )
    return {key: timing[key] for key in TIMING_KEYS}


def point_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The global settings every benchmark point records, validated before any model exists."""
    check_dtype(cfg["dtype"])
    return {
        "model": dict(cfg["model"]),
        "dtype": cfg["dtype"],
        "device": cfg["device"],
        "threads": torch.get_num_threads(),
        "timing": resolve_timing(cfg),
        "seed": cfg["seed"],
    }


def random_inputs(
    vocab_size: int, batch: int, seq_len: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and an all-ones mask: speed depends on shapes, not on the words."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (batch, seq_len), generator=generator)
    return ids.to(device), torch.ones_like(ids)


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
    the most recent key is kept.
    """

    def __init__(self) -> None:
        self._key: str | None = None
        self._value: Any = None

    def get(self, key: str, build: Callable[[], Any]) -> Any:
        if key != self._key:
            self._key, self._value = None, None
            self._value, self._key = build(), key
        return self._value
