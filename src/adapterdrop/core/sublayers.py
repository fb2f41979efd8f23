"""The HF BERT/RoBERTa layer's pieces, called as the engine and whole-layer methods need them.

They call the layer's own sub-modules, so the weights and attention kernels are HF's.
"""

from __future__ import annotations

import torch
from torch import nn

from adapterdrop.core.sites import Site


def attention_sublayer(layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None):
    """Self-attention and its output projection + dropout: ``x`` of the attention site."""
    context = layer.attention.self(hidden, attention_mask=mask)[0]
    out = layer.attention.output
    return out.dropout(out.dense(context))


def ffn_sublayer(layer: nn.Module, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FFN: returns the intermediate activation and the projected output ``x`` of the site."""
    intermediate = layer.intermediate(hidden)
    return intermediate, layer.output.dropout(layer.output.dense(intermediate))


def site_norm(layer: nn.Module, site: Site) -> nn.LayerNorm:
    """The LayerNorm that ends the sub-layer of an attention or output site."""
    if site is Site.ATTENTION:
        return layer.attention.output.LayerNorm
    if site is Site.OUTPUT:
        return layer.output.LayerNorm
    raise ValueError(f"{site!r} is a whole layer, not a sub-layer with a LayerNorm")
