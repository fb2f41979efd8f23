"""CoDA, Conditional Adapters (Lei et al., NeurIPS 2023): the frozen layer only runs on k tokens.

Per layer, for input ``h`` of shape ``(B, S, d)`` (``h`` is the previous layer's output):

* router scores ``s = h w_r`` (one linear map ``d -> 1``, no bias: soft top-k is shift-invariant);
* ``k = ceil(S / r)`` with ``r = token_ratio`` and ``S`` the padded length, so every sequence
  of a batch sends the same number of tokens through the frozen layer;
* hard selection ``I``: the top-k of ``s`` with position 0 ([CLS]) forced in and padding forced
  behind every real token (padding is only taken when a sequence has fewer than k real tokens);
* soft weights ``lam``: ``lam_0 = 1`` for [CLS]; the other real tokens get the entropy-regularised
  soft top-(k - 1) of their scores (``soft_top_k``); padding gets 0. So ``sum(lam) = min(k,
  real length)`` (up to the solver's convergence, see ``soft_top_k``);
* ``F`` is the frozen post-LN BERT layer run on the gathered ``h[I]`` with the gathered mask:
  ``u = LN_att(Att(h[I]) + h[I])``, ``F(h[I]) = LN_out(FFN(u) + u)``, so attention is among the
  selected tokens only and padding stays masked;
* output, with ``A`` a parallel bottleneck adapter ``up(f(down(h)))`` on every token::

      out_i = h_i + lam_i (F(h[I])_i - h_i) + A(h)_i    for i in I
      out_i = h_i                          + A(h)_i    otherwise

  (computed as ``lerp(h_i, F_i, lam_i)``, which is exactly ``F_i`` when ``lam_i = 1``).

With ``r = 1`` every token is selected with weight 1 (``k`` equals the number of candidates, and
then all-ones is the only feasible point, returned exactly), so the layer is the dense
parallel-adapter layer ``F(h) + A(h)`` on all real tokens. The router learns through ``lam``.

Training and inference compute the same function: the gather is used in both (it is what makes
inference cheaper, and it is differentiable), and the soft top-k iterations also run at
inference because ``lam`` scales the output; they cost ``O(iterations * S)`` next to the
layer's ``O(S * d^2)``. Only HF dropout differs between ``train()`` and ``eval()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import ACT2FN

from adapterdrop.core import Encoder, LayerModule, Method, Site, attention_sublayer, ffn_sublayer
from adapterdrop.methods.bottleneck import INITS, bottleneck_size
from adapterdrop.methods.registry import register

ROUTER_INITS = ("normal", "zeros")


@dataclass(frozen=True)
class EpsilonSchedule:
    """ε-scaling for the soft top-k: iteration ``t`` uses ``max(epsilon, epsilon_init * decay^t)``.

    A large ε early makes the first iterations cheap to converge (near-uniform weights); the
    last iterations run at the target ``epsilon``, which sets how sharp the weights are relative
    to the router's score scale.
    """

    iterations: int = 20
    epsilon: float = 0.3
    epsilon_init: float = 4.0
    epsilon_decay: float = 0.7

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"soft top-k iterations must be >= 1, got {self.iterations}")
        if self.epsilon <= 0:
            raise ValueError(f"soft top-k epsilon must be > 0, got {self.epsilon}")
        if self.epsilon_init < self.epsilon:
            raise ValueError(
                f"epsilon_init {self.epsilon_init} is below the final epsilon {self.epsilon}; "
                "ε-scaling starts high and decays, so choose epsilon_init >= epsilon"
            )
        if not 0 < self.epsilon_decay <= 1:
            raise ValueError(f"epsilon_decay must be in (0, 1], got {self.epsilon_decay}")

    def values(self) -> list[float]:
        return [
            max(self.epsilon, self.epsilon_init * self.epsilon_decay**t)
            for t in range(self.iterations)
        ]


def soft_top_k(
    scores: torch.Tensor, k: torch.Tensor, mask: torch.Tensor, schedule: EpsilonSchedule
) -> torch.Tensor:
    """Weights in ``[0, 1]`` over each row's candidates (``mask``) that sum to ``k`` per row.

    Solves ``max_lam s.lam + ε H(lam)`` s.t. ``sum(lam) = k``, ``0 <= lam <= 1`` (``H`` the
    generalised entropy ``sum(lam - lam log lam)``) by coordinate descent on its dual, as in
    CoDA: ``a = ε (log k - logsumexp((s + b) / ε))``, ``b = -relu(s + a)``, then
    ``lam = exp((s + a + b) / ε) = min(1, exp((s + a) / ε))``. Each ``a`` step restores the sum
    exactly and each ``b`` step caps at 1, so the returned sum is ``<= k`` and converges to ``k``
    geometrically with rate ``(#weights capped at 1) / k``: slow when ε is small next to the
    spread of the scores, hence the ε-scaling. Rows with ``k >= #candidates`` get all ones (the
    solution when ``k`` equals the count: every candidate is taken) and rows with ``k <= 0``
    all zeros, both exactly. Differentiable by
    unrolling. ``scores``, ``mask``: ``(B, n)``; ``k``: ``(B,)`` integers.
    """
    work = scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores
    full = (k >= mask.sum(-1))[:, None]
    empty = (k <= 0)[:, None]
    solve = mask | full | empty  # trivial rows are overwritten below; keep their solve finite
    log_k = torch.log(k.clamp(min=1).to(work.dtype))[:, None]
    b = torch.zeros_like(work)
    for epsilon in schedule.values():
        logits = ((work + b) / epsilon).masked_fill(~solve, -math.inf)
        a = epsilon * (log_k - logits.logsumexp(-1, keepdim=True))
        b = -torch.relu(work + a)
    weights = torch.exp(torch.clamp(work + a, max=0) / epsilon)
    weights = torch.where(mask & ~empty, weights, torch.zeros_like(weights))
    weights = torch.where(full & ~empty, mask.to(weights.dtype), weights)
    return weights.to(scores.dtype)


def selected_count(seq_len: int, token_ratio: float) -> int:
    """``k = ceil(S / r)``: tokens per sequence that go through the frozen layer."""
    return math.ceil(seq_len / token_ratio)


def check_token_ratio(token_ratio: float) -> float:
    if not token_ratio >= 1:
        raise ValueError(
            f"token_ratio must be >= 1 (r = 1 routes every token, r = 3 one in three), "
            f"got {token_ratio}"
        )
    return token_ratio


def token_keep(
    mask: torch.Tensor | None,
    batch: int,
    seq_len: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``(B, S)`` bool, True for real tokens, from the engine's ``(B, 1, 1, S)`` mask.

    The engine passes a bool keep-mask (SDPA), an additive float mask (eager: 0 keeps, the
    dtype's minimum masks), or ``None`` when nothing is padded; then all tokens are kept, on
    ``device`` (the hidden states' device, so no host tensor is copied over in every layer).
    """
    if mask is None:
        return torch.ones(batch, seq_len, dtype=torch.bool, device=device)
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[2] != 1:
        raise ValueError(
            f"CoDA needs a (batch, 1, 1, seq) key mask from the engine, got {tuple(mask.shape)}"
        )
    row = mask[:, 0, 0, :].expand(batch, seq_len)
    if row.dtype == torch.bool:
        return row
    return row > torch.finfo(row.dtype).min / 2


def frozen_layer(layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The HF post-LN BERT/RoBERTa layer, written with the core's sub-layer helpers."""
    attended = layer.attention.output.LayerNorm(attention_sublayer(layer, hidden, mask) + hidden)
    _, projected = ffn_sublayer(layer, attended)
    return layer.output.LayerNorm(projected + attended)


@dataclass
class Routing:
    """One layer's routing decision."""

    indices: torch.Tensor  # (B, k) positions sent through the frozen layer, ascending
    weights: torch.Tensor  # (B, S) soft top-k weights: [CLS] 1, padding 0


class ParallelAdapter(nn.Module):
    """``up(f(down(h)))`` on the layer input, added to the layer output (He et al. 2022).

    ``init="zero_up"`` makes a fresh adapter add exactly zero.
    """

    def __init__(self, hidden_size: int, bottleneck: int, activation: str, init: str) -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck)
        self.up = nn.Linear(bottleneck, hidden_size)
        self.activation = ACT2FN[activation]
        for linear in (self.down, self.up):
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)
        if init == "zero_up":
            nn.init.zeros_(self.up.weight)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.up(self.activation(self.down(hidden)))


class CodaLayer(LayerModule):
    """Router + soft top-k + parallel adapter for one layer (formulation: module docstring)."""

    def __init__(
        self,
        hidden_size: int,
        bottleneck: int,
        token_ratio: float,
        schedule: EpsilonSchedule,
        activation: str = "relu",
        init: str = "zero_up",
        router_init: str = "normal",
    ) -> None:
        super().__init__()
        check_options(activation, init, router_init)
        self.token_ratio = check_token_ratio(token_ratio)
        self.schedule = schedule
        self.router = nn.Linear(hidden_size, 1, bias=False)
        if router_init == "zeros":
            nn.init.zeros_(self.router.weight)
        else:
            nn.init.normal_(self.router.weight, std=0.02)
        self.adapter = ParallelAdapter(hidden_size, bottleneck, activation, init)

    def route(self, hidden: torch.Tensor, keep: torch.Tensor) -> Routing:
        """Hard top-k positions and soft weights; ``keep`` is ``(B, S)``, True for real tokens."""
        batch, seq_len, _ = hidden.shape
        k = selected_count(seq_len, self.token_ratio)
        keep = keep.to(hidden.device)
        scores = self.router(hidden).squeeze(-1)
        rest = torch.full((batch,), k - 1, dtype=torch.long, device=hidden.device)
        soft = soft_top_k(scores[:, 1:], rest, keep[:, 1:], self.schedule)
        weights = torch.cat([torch.ones_like(scores[:, :1]), soft], dim=1)
        rank = scores.detach().masked_fill(~keep, -math.inf)
        rank[:, 0] = math.inf
        indices = rank.topk(k, dim=1).indices.sort(dim=1).values
        return Routing(indices=indices, weights=weights)

    def layer_forward(
        self, layer: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        batch, seq_len, width = hidden.shape
        routing = self.route(hidden, token_keep(attention_mask, batch, seq_len, hidden.device))
        index = routing.indices
        rows = index[..., None].expand(-1, -1, width)
        selected = hidden.gather(1, rows)
        mask = None
        if attention_mask is not None:
            mask = attention_mask.expand(batch, -1, -1, -1).gather(3, index[:, None, None, :])
        weight = routing.weights.gather(1, index)[..., None].to(hidden.dtype)
        mixed = torch.lerp(selected, frozen_layer(layer, selected, mask), weight)
        return hidden.scatter(1, rows, mixed) + self.adapter(hidden)


def check_options(activation: str, init: str, router_init: str) -> None:
    """Refuse an activation, adapter init or router init CoDA does not know."""
    if activation not in ACT2FN:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACT2FN)}")
    if init not in INITS:
        raise ValueError(f"unknown adapter init {init!r}; choose one of {INITS}")
    if router_init not in ROUTER_INITS:
        raise ValueError(f"unknown router_init {router_init!r}; choose one of {ROUTER_INITS}")


@register("coda")
@dataclass
class CodaMethod(Method):
    """A ``CodaLayer`` in every layer ``>= leave_out``; layers below run dense and frozen.

    ``token_ratio`` is CoDA's ``r`` (k = ceil(seq / r) tokens per layer); ``reduction_factor``
    sets the parallel adapter's width ``hidden // reduction_factor``.
    """

    token_ratio: float = 3
    reduction_factor: float = 16
    activation: str = "relu"
    init: str = "zero_up"
    router_init: str = "normal"
    iterations: int = 20
    epsilon: float = 0.3
    epsilon_init: float = 4.0
    epsilon_decay: float = 0.7
    leave_out: int = 0

    def __post_init__(self) -> None:
        check_token_ratio(self.token_ratio)
        check_options(self.activation, self.init, self.router_init)
        self.schedule()

    def schedule(self) -> EpsilonSchedule:
        return EpsilonSchedule(self.iterations, self.epsilon, self.epsilon_init, self.epsilon_decay)

    def apply(self, encoder: Encoder, task: str) -> None:
        encoder.check_dropped(self.leave_out)
        width = bottleneck_size(encoder.hidden_size, self.reduction_factor)
        encoder.add_task(task, self)
        for layer in range(self.leave_out, encoder.num_layers):
            module = CodaLayer(
                encoder.hidden_size,
                width,
                self.token_ratio,
                self.schedule(),
                self.activation,
                self.init,
                self.router_init,
            )
            encoder.add_module_at(task, layer, Site.LAYER, module)
