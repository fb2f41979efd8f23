"""The module types the engine runs: a term at a site, or a whole layer.

The engine knows these two types and nothing of any method. A module type that can compute
several tasks' terms as one op says so with ``batch_signature`` and ``batched_delta``; the
engine calls the hook for same-typed modules with equal signatures.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from adapterdrop.core.sites import SiteBatch, SiteInputs


class SiteModule(nn.Module):
    """A task's module at an attention or output site: the term added before LayerNorm."""

    def delta(self, inputs: SiteInputs) -> torch.Tensor:
        """This module's term for one stream, ``(B, S, d)``."""
        raise NotImplementedError

    def batch_signature(self) -> tuple | None:
        """Same-typed modules with equal non-None signatures run as one ``batched_delta``."""
        return None

    @classmethod
    def batched_delta(
        cls, modules: Sequence[SiteModule], batch: SiteBatch, streams: Sequence[int]
    ) -> torch.Tensor:
        """Terms of ``modules`` (equal signatures), module ``k`` reading stream ``streams[k]``
        of ``batch``, as ``(N, B, S, d)``; must equal stacking each module's ``delta``."""
        raise NotImplementedError(f"{cls.__name__} has a batch_signature but no batched_delta")


class LayerModule(nn.Module):
    """A task's module that replaces a whole layer's computation (CoDA routes tokens)."""

    def layer_forward(
        self, layer: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        raise NotImplementedError
