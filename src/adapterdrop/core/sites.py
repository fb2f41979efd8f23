"""Where a task's module acts in a layer, its typed key, and the tensors it may read there.

A BERT/RoBERTa sub-layer ends in ``LayerNorm(x + r)``, with ``x`` the sub-layer's projected
output and ``r`` its residual input. Bottleneck adapters (Pfeiffer, Houlsby), AdapterBias and
AdapterFusion all become ``LayerNorm(x + r + delta)``; they differ only in how ``delta`` is
computed. A module may instead replace a whole layer's computation (CoDA routes tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple, Protocol

import torch
from torch import nn


class Site(IntEnum):
    """Where in a layer a module acts; the order is the order of computation."""

    ATTENTION = 0  # after the attention output projection (Houlsby's first adapter)
    OUTPUT = 1  # after the FFN output projection (Pfeiffer, Houlsby's second, AdapterBias)
    LAYER = 2  # the whole layer: a ``LayerModule`` computes it instead (CoDA)


class SiteKey(NamedTuple):
    """A task's module place: ``(layer, site)``, ordered by layer then site.

    ``str(key)`` (``"3_output"``) is the key in the task's ``nn.ModuleDict`` (whose keys must
    be strings, and which names the parameters in a ``state_dict``); ``SiteKey.parse`` reads it
    back. These two are the only place a key is written or read as a string.
    """

    layer: int
    site: Site

    def __str__(self) -> str:
        return f"{self.layer}_{self.site.name.lower()}"

    @classmethod
    def parse(cls, text: str) -> SiteKey:
        layer, site = text.split("_", 1)
        return cls(int(layer), Site[site.upper()])


@dataclass
class SiteInputs:
    """Everything a method may read at a site, for one stream (shape ``(B, S, d)``).

    ``pre_norm`` (``x + r``) is computed once, here or by the caller that already has it: the
    engine and a Pfeiffer adapter both need it, and a second add over the whole hidden state
    cost about 1 % of a bert-base forward.
    """

    projected: torch.Tensor  # x: the sub-layer's output after its projection and dropout
    residual: torch.Tensor  # r: the sub-layer's input
    layer_norm: nn.LayerNorm  # the sub-layer's own LayerNorm (frozen)
    intermediate: torch.Tensor | None  # FFN activation (OUTPUT site only), for AdapterBias
    pre_norm: torch.Tensor = None  # type: ignore[assignment]  # x + r, filled in if not given

    def __post_init__(self) -> None:
        if self.pre_norm is None:
            self.pre_norm = self.projected + self.residual


class SiteBatch(Protocol):
    """One site's inputs for all streams of a pass, as a batched hook reads them.

    A pass holds ``G`` streams of ``B`` rows stacked on the batch axis (one shared stream until
    tasks branch, then one per task); a batched hook computes the terms of ``N`` modules, module
    ``k`` reading stream ``streams[k]`` (several modules may read one stream where they branch).
    """

    @property
    def all(self) -> SiteInputs:
        """Every stream at once: tensors of shape ``(G * B, S, ...)``."""
        ...

    def inputs(self, stream: int) -> SiteInputs:
        """One stream's inputs, ``(B, S, ...)``."""
        ...

    def per_stream(
        self, read: Callable[[SiteInputs], torch.Tensor], streams: Sequence[int]
    ) -> torch.Tensor:
        """``read`` of each listed stream in one op: ``(B, S, ...)`` when all list one stream,
        else ``(N, B, S, ...)``. ``read`` must act row by row (a LayerNorm, a projection)."""
        ...
