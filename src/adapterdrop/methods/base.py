"""What every method plugs into: a per-layer "site" where a task adds a term before LayerNorm.

A BERT/RoBERTa sub-layer ends in ``LayerNorm(x + r)``, with ``x`` the sub-layer's projected
output and ``r`` its residual input. Bottleneck adapters (Pfeiffer, Houlsby), AdapterBias and
AdapterFusion all become ``LayerNorm(x + r + delta)``; they differ only in how ``delta`` is
computed. The engine owns the layer loop, so it alone decides where a batch is replicated for
several tasks and where autograd starts; a method only computes its ``delta``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import torch
from torch import nn


class Site(IntEnum):
    """Where in a layer a method acts; the order is the order of computation."""

    ATTENTION = 0  # after the attention output projection (Houlsby's first adapter)
    OUTPUT = 1  # after the FFN output projection (Pfeiffer, Houlsby's second, AdapterBias)


def site_key(layer: int, site: Site) -> str:
    """Key of a site in a task's ModuleDict (ModuleDict keys must be strings)."""
    return f"{layer}_{site.name.lower()}"


def site_position(layer: int, site: Site) -> int:
    """Total order over sites: the engine branches a task's stream at its first position."""
    return 2 * layer + int(site)


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


class SiteModule(nn.Module):
    """A task's module at one site. Subclasses return the term added before LayerNorm."""

    def delta(self, inputs: SiteInputs) -> torch.Tensor:
        raise NotImplementedError

    def batch_signature(self) -> tuple | None:
        """Modules with equal non-None signatures may be run as one batched op (see engine)."""
        return None


class LayerModule(nn.Module):
    """A task's module that replaces a whole layer's computation (CoDA routes tokens)."""

    def layer_forward(
        self, layer: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        raise NotImplementedError
