"""A benchmark times its callables in one of two phases: one training step, or one forward
without autograd; this module sets up the models for a phase and times the callables in it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from adapterdrop.bench.devices import storage_dtype
from adapterdrop.bench.timer import Samples, Timed, measure_interleaved
from adapterdrop.bench.validate import check_choices

#: A method is timed in two phases: one training step, or one forward without autograd.
PHASES = ("training", "inference")


def time_phase(
    callables: Mapping[str, Callable[[], Any] | Timed],
    modules: Iterable[nn.Module],
    phase: str,
    *,
    device: torch.device,
    dtype: str,
    timing: Mapping[str, Any],
    peak_memory: bool = True,
) -> Samples:
    """Interleave ``callables`` with ``modules`` in train mode (dropout on, autograd, fp32
    weights under autocast) for ``training``, or in eval mode under ``no_grad`` with the
    weights stored in ``dtype`` for ``inference`` (:func:`storage_dtype`).

    Inference runs under ``no_grad``, not ``inference_mode``: on CPU with autocast, torch 2.13
    runs ``nn.Linear`` on a non-contiguous input (AdapterHub's ``Fuse`` applies its key and value
    maps to a permuted stack of adapter outputs) some 100x slower under ``inference_mode``, which
    would turn the comparison into one of that slow path.
    """
    training = check_choices("phase", [phase], PHASES) == ["training"]
    storage = storage_dtype(dtype, phase)
    for module in modules:
        module.train(training)
        # In place: an optimizer built on these parameters keeps them.
        module.to(storage)
    with contextlib.nullcontext() if training else torch.no_grad():
        return measure_interleaved(callables, device=device, peak_memory=peak_memory, **timing)
