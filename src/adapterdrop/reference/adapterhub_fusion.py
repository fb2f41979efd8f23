"""AdapterHub's ``Fuse`` over the same weights as one task's AdapterFusion in our encoder.

The AdapterHub model is built by ``build_adapterhub_reference`` (same backbone, fused tasks'
Pfeiffer adapters copied in); a ``Fuse`` of those tasks is added and each layer's
``adapter_fusion_layer`` gets our query/key/value weights, dropout and current temperature.

Where our fusion has no layer (``leave_out``) or fuses fewer adapters (pruning), the
corresponding AdapterHub adapters are deleted from that layer: AdapterHub then skips the layer
(no active adapter) or the missing ``Fuse`` children. AdapterHub reads its fusion options from
the ``Fuse`` block's *last* adapter in every layer, so that adapter must be fused everywhere.
"""

from __future__ import annotations

from adapters import Fuse
from adapters.configuration import DynamicAdapterFusionConfig
from transformers import PreTrainedModel

from adapterdrop.core import Site
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods.fusion import FusionLayer, fusion_layers
from adapterdrop.reference.adapterhub import build_adapterhub_reference


def adapterhub_fusion_config(layer: FusionLayer) -> DynamicAdapterFusionConfig:
    """AdapterHub's fusion config with our layer's options."""
    return DynamicAdapterFusionConfig(
        query=layer.query is not None,
        key=layer.key is not None,
        value=layer.value is not None,
        query_before_ln=layer.query_before_ln,
        residual_before=layer.residual_before,
        temperature=layer.temperature > 1.0,
        value_before_softmax=layer.value_before_softmax,
    )


def _fuse_order(layers: dict[int, FusionLayer]) -> list[str]:
    """All fused names, with one that every layer fuses last (AdapterHub reads its config)."""
    names: list[str] = []
    for layer in layers.values():
        names += [name for name in layer.names if name not in names]
    everywhere = [n for n in names if all(n in layer.names for layer in layers.values())]
    if not everywhere:
        fused = {index: layer.names for index, layer in layers.items()}
        raise ValueError(
            f"AdapterHub's Fuse needs one adapter fused in every layer; per layer we fuse {fused}"
        )
    return [n for n in names if n != everywhere[-1]] + [everywhere[-1]]


def build_adapterhub_fusion(encoder: AdapterEncoder, task: str) -> PreTrainedModel:
    """An AdapterHub model whose active ``Fuse`` computes what ``encoder(..., tasks=task)`` does."""
    layers = fusion_layers(encoder, task)
    names = _fuse_order(layers)
    reference = build_adapterhub_reference(encoder, names)
    model = reference.model
    fuse = Fuse(*names)
    first = next(iter(layers.values()))
    model.add_adapter_fusion(fuse, config=adapterhub_fusion_config(first))
    model.set_active_adapters(fuse)
    weight = next(encoder.backbone.parameters())
    model.to(device=weight.device, dtype=weight.dtype)  # the new fusion layers
    for index in range(reference.num_layers):
        hub_layer = reference.adapter_layer(index, Site.OUTPUT)
        ours = layers.get(index)
        for name in names:
            if (ours is None or name not in ours.names) and name in hub_layer.adapters:
                del hub_layer.adapters[name]
        if ours is not None:
            hub_fusion = hub_layer.adapter_fusion_layer[fuse.name]
            for name in ("query", "key", "value"):
                projection = getattr(ours, name)
                if projection is not None:
                    getattr(hub_fusion, name).load_state_dict(projection.state_dict())
            hub_fusion.dropout.p = ours.dropout.p
            hub_fusion.T = ours.temperature
    model.train(encoder.training)
    return model
