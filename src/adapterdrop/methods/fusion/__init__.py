"""AdapterFusion (Pfeiffer et al. 2021) over frozen Pfeiffer adapters: pruning, fusion-AdapterDrop
and an exact folded fast path. Registered as ``fusion``.

Semantics are AdapterHub's ``Fuse`` over ``SeqBnConfig`` adapters with the "dynamic" fusion
config (``adapters`` 1.3, ``compose_fuse`` and ``BertFusion``). At the FFN output site, with
``x`` the projected FFN output and ``r`` the residual input, AdapterHub computes

* ``h = LN(x + r)``, the input of every fused adapter; ``up_k = U_k f(D_k h + c_k) + b_k`` is
  adapter k's ``bottleneck_up`` (its output *without* its residual);
* query ``q = Q h + bq`` (``Q x + bq`` with ``query_before_ln``);
* keys and values read ``kv_k = up_k``, or ``up_k + x`` with ``residual_before`` (one tensor
  is passed as both, and AdapterHub adds the residual to it in place);
* ``p = softmax(dropout(q . (K kv_k + bk)) / T)``, ``ctx = sum_k p_k V kv_k`` (V has no bias);
* output ``LN(ctx + x + r)``, or ``LN(ctx + r)`` with ``residual_before``.

So the term added before LayerNorm is ``delta = sum_k p_k V kv_k`` (minus ``x`` with
``residual_before``). A disabled query/key/value projection is the identity.

One job per module:

* ``fold``: the fast path's maths, fusion weights folded into the adapters' bottlenecks;
* ``layer``: ``FusionLayer`` (one layer's fusion, plain and folded) and a task's layers;
* ``pruning``: fewer fused adapters per layer (``prune_fusion``); fusion-AdapterDrop is the
  method's ``leave_out`` (no fusion below it) or the engine's ``dropped_layers``;
* ``recorder``: mean fusion weights over real tokens, the input to pruning;
* ``method``: ``FusionMethod``, the registered method that wires fusion layers in (the registry
  imports it with every other method module).

The names below are what a task's fusion is used through (training, pruning, benchmarks).
"""

from adapterdrop.methods.fusion.layer import (
    FusionLayer,
    fusion_layers,
    fusion_regularization_loss,
)
from adapterdrop.methods.fusion.pruning import prune_fusion
from adapterdrop.methods.fusion.recorder import record_fusion_activations

__all__ = [
    "FusionLayer",
    "fusion_layers",
    "fusion_regularization_loss",
    "prune_fusion",
    "record_fusion_activations",
]
