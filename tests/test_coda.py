"""CoDA: exact soft top-k, r = 1 is the dense parallel adapter, the frozen layer sees k tokens."""

from __future__ import annotations

import math

import pytest
import torch
import yaml

from adapterdrop.engine import AdapterEncoder, encoder_mask
from adapterdrop.methods import build_method
from adapterdrop.methods.coda import (
    CodaLayer,
    CodaMethod,
    EpsilonSchedule,
    soft_top_k,
    token_keep,
)
from adapterdrop.models import load_backbone
from conftest import CONF, model_cfg

TASK = "t"


def tiny_encoder(attn: str = "sdpa", dropout: float | None = None, **method) -> AdapterEncoder:
    cfg = model_cfg("tiny")
    cfg["attn_implementation"] = attn
    if dropout is not None:
        cfg["architecture"] = {
            **cfg["architecture"],
            "hidden_dropout_prob": dropout,
            "attention_probs_dropout_prob": dropout,
        }
    encoder = AdapterEncoder(load_backbone(cfg).model)
    torch.manual_seed(1)
    CodaMethod(**method).apply(encoder, TASK)
    encoder.freeze_backbone()
    return encoder


def batch(seq_len: int = 12, padded: bool = True, size: int = 3):
    torch.manual_seed(2)
    ids = torch.randint(1000, 2000, (size, seq_len))
    ids[:, 0] = 101  # [CLS]
    mask = torch.ones(size, seq_len, dtype=torch.long)
    if padded:
        mask[1, seq_len - 4 :] = 0
        mask[2, 3:] = 0  # fewer real tokens than k at r = 3
        ids[mask == 0] = 0
    return ids, mask


def coda_layers(encoder: AdapterEncoder) -> dict[int, CodaLayer]:
    return {key.layer: m for key, m in encoder.modules_of(TASK).items()}


def exact_soft_top_k(scores, k, mask, epsilon):
    """The entropic soft top-k by bisection on the dual variable (float64 reference)."""
    s = scores.double()
    low = torch.full((s.shape[0], 1), -1e3, dtype=torch.float64)
    high = torch.full_like(low, 1e3)
    for _ in range(200):
        mid = (low + high) / 2
        total = (torch.clamp((s + mid) / epsilon, max=0).exp() * mask).sum(-1, keepdim=True)
        low = torch.where(total < k[:, None], mid, low)
        high = torch.where(total < k[:, None], high, mid)
    return torch.clamp((s + low) / epsilon, max=0).exp() * mask


# ----------------------------------------------------------------------------- soft top-k
def test_soft_top_k_converges_to_the_exact_entropic_solution():
    torch.manual_seed(0)
    scores = torch.randn(4, 40) * 0.5
    mask = torch.ones(4, 40, dtype=torch.bool)
    mask[1, 30:] = False
    k = torch.tensor([13, 9, 1, 20])
    schedule = EpsilonSchedule(iterations=60, epsilon=0.3)
    weights = soft_top_k(scores, k, mask, schedule)
    expected = exact_soft_top_k(scores, k, mask, 0.3).float()
    torch.testing.assert_close(weights, expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(weights.sum(-1), k.float(), atol=1e-3, rtol=0)
    assert weights.min() >= 0 and weights.max() <= 1
    assert (weights[~mask] == 0).all()


def test_soft_top_k_undershoots_k_and_closes_the_gap_with_iterations():
    """Capping at 1 after each dual step leaves ``sum <= k``; more iterations shrink the gap."""
    torch.manual_seed(0)
    scores = torch.randn(8, 100)
    mask = torch.ones_like(scores, dtype=torch.bool)
    k = torch.full((8,), 33)
    gaps = []
    for iterations in (5, 20, 80):
        weights = soft_top_k(scores, k, mask, EpsilonSchedule(iterations, epsilon=0.3))
        gap = k.float() - weights.sum(-1)
        assert (gap > -1e-4).all()
        gaps.append(gap.max().item())
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-3


def test_soft_top_k_weights_follow_the_scores():
    torch.manual_seed(0)
    scores = torch.randn(2, 30)
    weights = soft_top_k(
        scores, torch.tensor([10, 10]), torch.ones(2, 30, dtype=torch.bool), EpsilonSchedule()
    )
    order = scores.argsort(-1)
    assert (weights.gather(-1, order).diff(dim=-1) >= -1e-6).all()


def test_soft_top_k_trivial_rows_are_exact_and_have_finite_gradients():
    scores = torch.randn(3, 6, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]]).bool()
    weights = soft_top_k(scores, torch.tensor([3, 2, 0]), mask, EpsilonSchedule())
    assert torch.equal(weights, torch.tensor([[1.0, 1, 1, 0, 0, 0], [0] * 6, [0] * 6]))
    (weights * torch.randn(3, 6)).sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_epsilon_schedule_decays_from_init_to_target():
    values = EpsilonSchedule(
        iterations=12, epsilon=0.3, epsilon_init=4.0, epsilon_decay=0.7
    ).values()
    assert values[0] == 4.0 and values[-1] == 0.3
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"iterations": 0}, "iterations must be >= 1, got 0"),
        ({"epsilon": 0.0}, "epsilon must be > 0, got 0.0"),
        ({"epsilon": 1.0, "epsilon_init": 0.5}, "epsilon_init 0.5 is below"),
        ({"epsilon_decay": 1.5}, r"epsilon_decay must be in \(0, 1\], got 1.5"),
    ],
)
def test_bad_schedule_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EpsilonSchedule(**kwargs)


# ----------------------------------------------------------------------------- routing
def test_cls_always_selected_and_weights_sum_to_k():
    encoder = tiny_encoder(token_ratio=3)
    layer = coda_layers(encoder)[0]
    torch.manual_seed(3)
    hidden = torch.randn(4, 20, 64)
    with torch.no_grad():
        direction = layer.router.weight[0] / layer.router.weight.norm()
        hidden[:, 0] = -5 * direction  # [CLS] scores lowest of all
        routing = layer.route(hidden, torch.ones(4, 20, dtype=torch.bool))
    k = math.ceil(20 / 3)
    assert routing.indices.shape == (4, k)
    assert (routing.indices[:, 0] == 0).all()
    assert (routing.weights[:, 0] == 1).all()
    torch.testing.assert_close(
        routing.weights.sum(-1), torch.full((4,), float(k)), atol=1e-3, rtol=0
    )


def test_padding_never_beats_real_tokens():
    encoder = tiny_encoder(token_ratio=3)
    layer = coda_layers(encoder)[0]
    seq = 12
    keep = torch.ones(3, seq, dtype=torch.bool)
    keep[1, 8:] = False  # 8 real >= k = 4
    keep[2, 2:] = False  # 2 real < k
    hidden = torch.randn(3, seq, 64)
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[0, 0] = 1.0
        hidden[:, :, 0] = torch.arange(seq, dtype=torch.float)  # later tokens score higher
        routing = layer.route(hidden, keep)
    selected = torch.zeros_like(keep).scatter(1, routing.indices, True)
    assert not (selected[1] & ~keep[1]).any()
    assert selected[2, :2].all()  # every real token before any padding
    assert (routing.weights[~keep] == 0).all()
    torch.testing.assert_close(routing.weights[2].sum(), torch.tensor(2.0))
    assert routing.indices[0].tolist() == [0, 9, 10, 11]  # top scores, ascending, [CLS] kept


def test_token_keep_reads_both_mask_forms():
    attention_mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    for impl in ("sdpa", "eager"):
        mask = encoder_mask(attention_mask, torch.float32, impl)
        assert torch.equal(token_keep(mask, 2, 3), attention_mask.bool())
    assert token_keep(None, 2, 3).all()
    with pytest.raises(ValueError, match=r"\(batch, 1, 1, seq\) key mask.*\(2, 3\)"):
        token_keep(torch.ones(2, 3), 2, 3)


# ----------------------------------------------------------------------------- equivalences
def dense_parallel_adapter(encoder: AdapterEncoder, ids, attention_mask):
    """Reference: every HF layer on all tokens, plus the CoDA layer's adapter on its input."""
    backbone = encoder.backbone
    hidden = backbone.embeddings(input_ids=ids)
    mask = encoder_mask(attention_mask, hidden.dtype, backbone.config._attn_implementation)
    for i, layer in enumerate(encoder.layers):
        module = coda_layers(encoder)[i]
        hidden = layer(hidden, attention_mask=mask)[0] + module.adapter(hidden)
    return hidden


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("padded", [False, True])
def test_ratio_one_equals_dense_parallel_adapter(attn, padded):
    encoder = tiny_encoder(attn, token_ratio=1, init="bert").eval()
    ids, attention_mask = batch(padded=padded)
    with torch.no_grad():
        out = encoder(ids, attention_mask)[TASK]
        expected = dense_parallel_adapter(encoder, ids, attention_mask)
    real = attention_mask.bool()  # padded outputs are never read
    torch.testing.assert_close(out[real], expected[real])
    assert out.abs().sum() > 0 and (coda_layers(encoder)[0].adapter.up.weight != 0).any()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_gathered_layer_equals_dense_masked_layer(attn):
    """The gathered k-token layer equals the full layer with keys restricted to the selection."""
    encoder = tiny_encoder(attn, token_ratio=3, init="bert").eval()
    ids, attention_mask = batch()
    module, layer = coda_layers(encoder)[1], encoder.layers[1]
    with torch.no_grad():
        module.router.weight.normal_(std=0.3)
        hidden = encoder.backbone.embeddings(input_ids=ids)
        mask = encoder_mask(attention_mask, hidden.dtype, attn)
        out = module.layer_forward(layer, hidden, mask)

        keep = attention_mask.bool()
        routing = module.route(hidden, keep)
        selected = torch.zeros_like(keep).scatter(1, routing.indices, True)
        keys = (selected & keep)[:, None, None, :]
        dense_mask = keys if attn == "sdpa" else (~keys).float() * torch.finfo(torch.float).min
        frozen = layer(hidden, attention_mask=dense_mask)[0]
        weight = routing.weights[..., None]
        mixed = torch.where(selected[..., None], hidden + weight * (frozen - hidden), hidden)
        expected = mixed + module.adapter(hidden)
    assert not selected.all() and selected[:, 0].all()
    torch.testing.assert_close(out, expected)


def test_frozen_layer_sees_exactly_k_tokens():
    encoder = tiny_encoder(token_ratio=3, leave_out=1).eval()
    seen: dict[str, list[int]] = {"attention": [], "ffn": []}
    hooks = []
    for layer in encoder.layers:
        hooks.append(
            layer.attention.self.register_forward_pre_hook(
                lambda _m, args: seen["attention"].append(args[0].shape[1])
            )
        )
        hooks.append(
            layer.intermediate.register_forward_pre_hook(
                lambda _m, args: seen["ffn"].append(args[0].shape[1])
            )
        )
    ids, attention_mask = batch(seq_len=13)
    with torch.no_grad():
        encoder(ids, attention_mask)
    for hook in hooks:
        hook.remove()
    k = math.ceil(13 / 3)
    assert seen["attention"] == [13, k, k, k]  # layer 0 is left out: dense
    assert seen["ffn"] == [13, k, k, k]


def test_training_forward_equals_inference_without_dropout():
    encoder = tiny_encoder(dropout=0.0, token_ratio=3, init="bert")
    ids, attention_mask = batch()
    with torch.no_grad():
        for module in coda_layers(encoder).values():
            module.router.weight.normal_(std=0.3)
        trained = encoder.train()(ids, attention_mask)[TASK]
        inferred = encoder.eval()(ids, attention_mask)[TASK]
    torch.testing.assert_close(trained, inferred, rtol=0, atol=0)


def test_gradients_reach_the_router_in_training():
    encoder = tiny_encoder(token_ratio=3).train()
    ids, attention_mask = batch()
    out = encoder(ids, attention_mask)[TASK]
    (out * torch.randn_like(out)).sum().backward()
    for i, module in coda_layers(encoder).items():
        grad = module.router.weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, i
        assert module.adapter.up.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.backbone.parameters())


# ----------------------------------------------------------------------------- configuration
def test_preset_builds_a_coda_layer_per_layer():
    cfg = yaml.safe_load((CONF / "method" / "coda.yaml").read_text())
    method = build_method(cfg)
    assert isinstance(method, CodaMethod) and method.token_ratio == 3
    encoder = AdapterEncoder(load_backbone(model_cfg("tiny")).model)
    method.apply(encoder, TASK)
    layers = coda_layers(encoder)
    assert sorted(layers) == [0, 1, 2, 3]
    assert layers[0].adapter.down.out_features == 64 // 16
    assert layers[0].schedule == EpsilonSchedule(20, 0.3, 4.0, 0.7)


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"token_ratio": 0.5}, "token_ratio must be >= 1.*got 0.5"),
        ({"router_init": "uniform"}, r"unknown router_init 'uniform'; choose one of \('normal'"),
        ({"init": "xavier"}, "unknown adapter init 'xavier'"),
        ({"activation": "nope"}, "unknown activation 'nope'"),
        ({"epsilon": -1.0}, "epsilon must be > 0"),
    ],
)
def test_bad_options_are_refused(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_method({"name": "coda", **cfg})


def test_ratio_below_one_refused_by_the_layer_too():
    with pytest.raises(ValueError, match="token_ratio must be >= 1"):
        CodaLayer(64, 4, 0.9, EpsilonSchedule())


def test_leave_out_beyond_the_encoder_is_refused():
    encoder = AdapterEncoder(load_backbone(model_cfg("tiny")).model)
    with pytest.raises(ValueError, match="cannot drop 4 of 4 layers"):
        CodaMethod(leave_out=4).apply(encoder, TASK)


# ----------------------------------------------------------------------------- benchmark-facing
@pytest.mark.slow
def test_bert_base_at_ratio_three_does_a_third_of_the_token_work():
    """Token counts only (timing is the benchmark harness's job): seq 512, r = 3."""
    encoder = AdapterEncoder(load_backbone(model_cfg("bert-base")).model)
    CodaMethod(token_ratio=3).apply(encoder, TASK)
    encoder.eval()
    tokens = {"attention": 0, "ffn": 0, "scores": 0}

    def count_attention(_m, args):
        tokens["attention"] += args[0].shape[0] * args[0].shape[1]
        tokens["scores"] += args[0].shape[0] * args[0].shape[1] ** 2

    def count_ffn(_m, args):
        tokens["ffn"] += args[0].shape[0] * args[0].shape[1]

    for layer in encoder.layers:
        layer.attention.self.register_forward_pre_hook(count_attention)
        layer.intermediate.register_forward_pre_hook(count_ffn)
    ids = torch.randint(1000, 2000, (1, 512))
    with torch.no_grad():
        encoder(ids, torch.ones_like(ids))
    dense = 12 * 512
    assert tokens["attention"] == tokens["ffn"] == 12 * 171
    assert dense / tokens["ffn"] >= 2.99
    assert 12 * 512**2 / tokens["scores"] >= 8.9  # attention scores shrink r^2 times
