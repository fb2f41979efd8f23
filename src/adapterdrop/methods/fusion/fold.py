"""The fast path's maths: fusion weights folded into the fused adapters' bottlenecks.

Everything after ``f`` is linear in ``z_k = f(D_k h + c_k)`` (width ``r``), so the ``d x d``
maps fold into the ``d x r`` up-projections once per weight change:
``q . K U_k z_k = h^T (Q^T K U_k) z_k + (U_k^T K^T bq) . z_k`` and
``sum_k p_k V U_k z_k = [V U_1 .. V U_K] (p_k z_k)_k``. Cost per token and layer in
multiply-adds, for K adapters of width r and hidden size d:

* plain (AdapterHub): ``2Krd`` (adapters) + ``(2K + 1) d^2`` (query, K keys, K values);
* folded: ``Krd`` (batched down-projections) + ``(Kr + K) d`` (scores) + ``(Kr + K) d``
  (values), plus ``2 d^2`` only with ``residual_before``.

On bert-base (d=768, r=48) with K=8 that is about 10.6M vs 0.9M per token. The fold itself
costs about ``2Krd^2``; ``FusionLayer`` caches it whenever no autograd graph is needed (eval,
no_grad) and recomputes it in the graph when fusion weights train, so gradients are exact too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from adapterdrop.methods.bottleneck import BottleneckAdapter


class Folded(NamedTuple):
    """Fusion weights folded into the fused adapters' bottlenecks (R = sum of widths)."""

    down_weight: torch.Tensor  # (R, d): all down-projections as one matmul
    down_bias: torch.Tensor  # (R,)
    key_weight: torch.Tensor  # (R + K, d): [Q^T K U_k]_k and [Q^T (K b_k + bk)]_k, transposed
    key_bias: torch.Tensor  # (R + K,): [U_k^T K^T bq]_k and [bq . (K b_k + bk)]_k
    value_weight: torch.Tensor  # (d, R + K): [V U_k]_k and [V b_k]_k
    segments: torch.Tensor  # (R, K): 1 where bottleneck unit j belongs to adapter k
    residual_weight: torch.Tensor | None  # (d, d): K^T Q, for q . K x with residual_before
    residual_bias: torch.Tensor | None  # (d,): K^T bq


def left(linear: nn.Linear | None, matrix: torch.Tensor) -> torch.Tensor:
    """``W @ matrix`` for a projection, ``matrix`` when it is disabled (the identity)."""
    return matrix if linear is None else linear.weight @ matrix


def left_t(linear: nn.Linear | None, matrix: torch.Tensor) -> torch.Tensor:
    """``W^T @ matrix``, or ``matrix`` for a disabled projection."""
    return matrix if linear is None else linear.weight.T @ matrix


def bias_of(linear: nn.Linear | None, like: torch.Tensor) -> torch.Tensor:
    if linear is None or linear.bias is None:
        return like.new_zeros(like.shape[0])
    return linear.bias


def project(linear: nn.Linear | None, tensor: torch.Tensor) -> torch.Tensor:
    return tensor if linear is None else linear(tensor)


def fold(
    adapters: Sequence[BottleneckAdapter],
    query: nn.Linear | None,
    key: nn.Linear | None,
    value: nn.Linear | None,
    residual_before: bool,
) -> Folded:
    """Fold the query/key/value projections into ``adapters``' up-projections."""
    up_weight = torch.cat([a.up.weight for a in adapters], dim=1)  # (d, R)
    up_bias = torch.stack([a.up.bias for a in adapters], dim=1)  # (d, K)
    key_up = left(key, up_weight)  # K U_k
    key_const = left(key, up_bias) + bias_of(key, up_bias)[:, None]  # K b_k + bk
    query_bias = bias_of(query, up_bias)
    eye = torch.eye(len(adapters), dtype=up_weight.dtype, device=up_weight.device)
    residual_weight = residual_bias = None
    if residual_before:
        query_weight = (
            torch.eye(up_weight.shape[0], dtype=up_weight.dtype, device=eye.device)
            if query is None
            else query.weight
        )
        residual_weight = left_t(key, query_weight)
        residual_bias = left_t(key, query_bias)
    return Folded(
        down_weight=torch.cat([a.down.weight for a in adapters]),
        down_bias=torch.cat([a.down.bias for a in adapters]),
        key_weight=torch.cat([left_t(query, key_up), left_t(query, key_const)], dim=1).T,
        key_bias=torch.cat([key_up.T @ query_bias, query_bias @ key_const]),
        value_weight=torch.cat([left(value, up_weight), left(value, up_bias)], 1),
        segments=segments(eye, [a.down.out_features for a in adapters]),
        residual_weight=residual_weight,
        residual_bias=residual_bias,
    )


def segments(eye: torch.Tensor, widths: list[int]) -> torch.Tensor:
    """``(R, K)``: row ``j`` is ``eye[k]`` for each bottleneck unit ``j`` of adapter ``k``.

    ``eye.repeat_interleave(widths, dim=0)`` from Python ints: a tensor of widths would be
    made on the host and copied over, and tensor repeats make the host wait for the device
    to learn the output size, in every layer of every training forward.
    """
    return torch.cat([eye[k : k + 1].expand(width, -1) for k, width in enumerate(widths)])
