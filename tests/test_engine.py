"""The engine against plain paths: HF's own forward, single-task passes, loops, static drops.

The reference for a task is HF's own ``backbone(...)`` forward with the task's modules patched
into HF's sub-layer output blocks, so it shares no code with the engine's layer loop, masks,
stream replication or batched adapters. Adapters are random (not identity) and inputs padded.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Iterator, Mapping

import pytest
import torch
from torch import nn

from adapterdrop.core import Site, SiteInputs, SiteKey, SiteModule
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method
from adapterdrop.methods.bottleneck import BottleneckAdapter, batched_bottleneck_delta
from adapterdrop.models import load_backbone
from adapterdrop.params import count_parameters, task_parameter_count
from conftest import model_cfg

HIDDEN = 64


@functools.cache
def _backbone(layers: int, family: str, attn: str) -> nn.Module:
    cfg = {**model_cfg("tiny"), "tokenizer": None, "attn_implementation": attn}
    arch = {**cfg["architecture"], "num_hidden_layers": layers}
    if family == "roberta":
        cfg["family"] = "roberta"
        arch.update(pad_token_id=1, max_position_embeddings=514, type_vocab_size=1)
    cfg["architecture"] = arch
    return load_backbone(cfg).model


def encoder(layers: int = 4, family: str = "bert", attn: str = "sdpa") -> AdapterEncoder:
    """The tiny random model (or a deeper / RoBERTa / eager variant), frozen, in eval mode."""
    enc = AdapterEncoder(copy.deepcopy(_backbone(layers, family, attn)))
    enc.freeze_backbone()
    return enc.eval()


def batch(pad_id: int = 0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three sequences of lengths 9, 5 and 2, padded with ``pad_id``."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 1000, (3, 9), generator=gen)
    mask = (torch.arange(9) < torch.tensor([[9], [5], [2]])).long()
    return torch.where(mask.bool(), ids, pad_id), mask


def add(enc: AdapterEncoder, task: str, seed: int, std: float = 0.3, **cfg) -> None:
    """Add ``task`` and make every one of its parameters random, so nothing is an identity."""
    torch.manual_seed(seed)
    build_method(cfg).apply(enc, task)
    with torch.no_grad():
        for param in enc.trainable(task):
            nn.init.normal_(param, std=std)


@contextlib.contextmanager
def sites_patched(backbone: nn.Module, modules: Mapping[SiteKey, SiteModule]) -> Iterator[None]:
    """HF's sub-layer output blocks compute ``LN(x + r + delta)`` with the given modules."""
    patched = []
    for i, layer in enumerate(backbone.encoder.layer):
        for site, block in ((Site.ATTENTION, layer.attention.output), (Site.OUTPUT, layer.output)):
            module = modules.get(SiteKey(i, site))
            if module is None:
                continue

            def forward(hidden_states, input_tensor, block=block, module=module, site=site):
                x = block.dropout(block.dense(hidden_states))
                inter = hidden_states if site is Site.OUTPUT else None
                delta = module.delta(SiteInputs(x, input_tensor, block.LayerNorm, inter))
                return block.LayerNorm(x + input_tensor + delta)

            block.forward = forward
            patched.append(block)
    try:
        yield
    finally:
        for block in patched:
            del block.forward


def reference(enc: AdapterEncoder, task: str, ids, mask, dropped: int = 0) -> torch.Tensor:
    """HF's forward with ``task``'s modules in layers ``>= dropped``."""
    active = {key: module for key, module in enc.modules_of(task).items() if key.layer >= dropped}
    with sites_patched(enc.backbone, active):
        return enc.backbone(ids, attention_mask=mask).last_hidden_state


def hf_forward(enc: AdapterEncoder, ids, mask) -> torch.Tensor:
    return enc.backbone(ids, attention_mask=mask).last_hidden_state


def assert_matches_references(enc, ids, mask, dropped: Mapping[str, int]) -> None:
    """One multi-task pass equals, per task, a single-task pass and HF's patched forward."""
    together = enc(ids, mask, tasks=list(dropped), dropped_layers=dict(dropped))
    backwards = enc(ids, mask, tasks=list(dropped)[::-1], dropped_layers=dict(dropped))
    base = hf_forward(enc, ids, mask)
    for task, n in dropped.items():
        alone = enc(ids, mask, tasks=task, dropped_layers=n)[task]
        torch.testing.assert_close(together[task], alone, msg=task)
        torch.testing.assert_close(backwards[task], alone, msg=task)
        torch.testing.assert_close(together[task], reference(enc, task, ids, mask, n), msg=task)
        assert (together[task] - base).abs().max() > 1e-2, f"{task} is an identity: vacuous"


# ---------------------------------------------------------------- identity and HF parity
@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_engine_without_active_modules_is_the_hf_forward(family):
    enc = encoder(family=family)
    enc.add_task("plain")
    ids, mask = batch(pad_id=enc.backbone.config.pad_token_id)
    torch.testing.assert_close(enc(ids, mask)["plain"], hf_forward(enc, ids, mask))
    if family == "bert":
        types = (torch.arange(9) >= 4).long().expand(3, 9)
        with_types = enc(ids, mask, token_type_ids=types)["plain"]
        hf = enc.backbone(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        torch.testing.assert_close(with_types, hf)
        assert (with_types - hf_forward(enc, ids, mask)).abs().max() > 1e-2
    unpadded = enc(ids[:1], mask[:1])["plain"]
    torch.testing.assert_close(unpadded, hf_forward(enc, ids[:1], mask[:1]))


@pytest.mark.parametrize(
    "cfg",
    [
        {"name": "pfeiffer", "init": "zero_up"},
        {"name": "houlsby", "init": "zero_up"},
        {"name": "pfeiffer", "init": "zero_up", "shared": True},
        {"name": "adapterbias"},
        {"name": "adapterbias", "share_alpha": True},
    ],
)
@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_fresh_modules_reproduce_the_frozen_model_exactly(cfg, family):
    enc = encoder(family=family)
    build_method(cfg).apply(enc, "t")
    ids, mask = batch(pad_id=enc.backbone.config.pad_token_id)
    assert torch.equal(enc(ids, mask, tasks="t")["t"], hf_forward(enc, ids, mask))


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_random_adapters_match_hf_forward_with_patched_sites(family):
    enc = encoder(family=family)
    add(enc, "p", seed=1, name="pfeiffer", init="bert")
    add(enc, "h", seed=2, name="houlsby", init="bert")
    ids, mask = batch(pad_id=enc.backbone.config.pad_token_id)
    assert_matches_references(enc, ids, mask, {"p": 0, "h": 1})


# ---------------------------------------------------------------- parallel = separate
@pytest.mark.parametrize("n", [0, 3, 5])
@pytest.mark.parametrize("method", ["pfeiffer", "houlsby"])
def test_parallel_tasks_equal_separate_passes(method, n):
    enc = encoder(layers=6)
    for seed, task in enumerate("abc"):
        add(enc, task, seed=seed, name=method, init="bert")
    ids, mask = batch()
    assert_matches_references(enc, ids, mask, dict.fromkeys("abc", n))


@pytest.mark.parametrize("method", ["pfeiffer", "houlsby"])
def test_parallel_tasks_with_mixed_drop_depths(method):
    enc = encoder(layers=6)
    for seed, task in enumerate("abcd"):
        add(enc, task, seed=seed, name=method, init="bert")
    ids, mask = batch()
    assert_matches_references(enc, ids, mask, {"a": 0, "b": 3, "c": 5, "d": 3})


def test_mixed_method_types_in_one_pass():
    """Bottleneck groups of two shapes, AdapterBias (no batching) and a task with no module."""
    enc = encoder(layers=6)
    add(enc, "pf16", seed=1, name="pfeiffer", init="bert")
    add(enc, "pf16b", seed=2, name="pfeiffer", init="bert")
    add(enc, "pf8", seed=3, name="pfeiffer", init="bert", reduction_factor=8)
    add(enc, "bias", seed=4, name="adapterbias")
    add(enc, "bias_shared", seed=5, name="adapterbias", share_alpha=True, leave_out=2)
    add(enc, "houlsby", seed=6, name="houlsby", init="bert", shared=True)
    enc.add_task("plain")
    ids, mask = batch()
    dropped = {"pf16": 0, "pf16b": 2, "pf8": 2, "bias": 0, "bias_shared": 1, "houlsby": 4}
    assert_matches_references(enc, ids, mask, dropped)
    tasks = [*dropped, "plain"]
    out = enc(ids, mask, tasks=tasks, dropped_layers={**dropped, "plain": 0})
    torch.testing.assert_close(out["plain"], hf_forward(enc, ids, mask))


@pytest.mark.parametrize("grad_off", [torch.no_grad, torch.inference_mode])
@pytest.mark.parametrize("tasks", [["p"], ["h"], ["bias"], ["p", "h", "bias"]])
def test_inference_adds_in_place_with_the_recorded_forwards_numbers(grad_off, tasks):
    """Without autograd the engine adds task terms in place; the outputs stay bit-identical
    to the graph-recording forward, which adds out of place."""
    enc = encoder(layers=4)
    add(enc, "p", seed=1, name="pfeiffer", init="bert")
    add(enc, "h", seed=2, name="houlsby", init="bert")
    add(enc, "bias", seed=3, name="adapterbias")
    ids, mask = batch()
    dropped = dict(zip(tasks, [0, 1, 2], strict=False))
    recorded = enc(ids, mask, tasks=tasks, dropped_layers=dropped)
    assert all(out.requires_grad for out in recorded.values())
    with grad_off():
        in_place = enc(ids, mask, tasks=tasks, dropped_layers=dropped)
    for task in tasks:
        assert torch.equal(in_place[task], recorded[task]), task


def test_batched_adapters_on_a_subset_of_streams():
    """At layer 2's attention site the two Houlsby streams are 0 and 2 of [h1, p, h2]."""
    enc = encoder()
    add(enc, "h1", seed=1, name="houlsby", init="bert")
    add(enc, "p", seed=2, name="pfeiffer", init="bert")
    add(enc, "h2", seed=3, name="houlsby", init="bert")
    ids, mask = batch()
    assert_matches_references(enc, ids, mask, {"h1": 0, "p": 0, "h2": 1})
    assert_matches_references(enc, ids, mask, {"h1": 0, "p": 1, "h2": 0})


@pytest.mark.parametrize(
    ("dropped", "rows"),
    [
        ({"a": 2, "b": 2}, [1, 1, 2, 2]),
        ({"a": 1, "b": 3}, [1, 2, 2, 2]),
        ({"a": 3, "b": 3, "c": 3}, [1, 1, 1, 3]),
    ],
)
def test_batch_is_replicated_only_from_the_first_adapter(dropped, rows):
    """Late replication: one shared stream until a task branches, no shared stream after all
    tasks have branched (counted in batches at each layer's output LayerNorm)."""
    enc = encoder()
    for seed, task in enumerate(dropped):
        add(enc, task, seed=seed, name="pfeiffer", init="bert")
    _, outputs = record_layers(enc)
    ids, mask = batch()
    enc(ids, mask, tasks=list(dropped), dropped_layers=dropped)
    assert [out.shape[0] // ids.shape[0] for out in outputs] == rows


# ---------------------------------------------------------------- batched adapters = loop
@pytest.mark.parametrize("activation", ["relu", "swish"])
@pytest.mark.parametrize("shared_input", [True, False])
def test_batched_bottleneck_delta_equals_the_loop(activation, shared_input):
    torch.manual_seed(0)
    adapters = [BottleneckAdapter(HIDDEN, 8, activation, init="bert") for _ in range(3)]
    for adapter in adapters:
        with torch.no_grad():
            for param in adapter.parameters():
                nn.init.normal_(param, std=0.3)
    x = torch.randn(3, 2, 5, HIDDEN, requires_grad=True)
    inputs = x[0] if shared_input else x
    loop = torch.stack(
        [
            a.up(a.activation(a.down(inputs if shared_input else inputs[k])))
            for k, a in enumerate(adapters)
        ]
    )
    batched = batched_bottleneck_delta(adapters, inputs)
    torch.testing.assert_close(batched, loop)
    weights = torch.randn_like(loop)
    params = [p for a in adapters for p in a.parameters()] + [x]
    grads_loop = torch.autograd.grad((loop * weights).sum(), params)
    grads_batched = torch.autograd.grad((batched * weights).sum(), params)
    for g_loop, g_batched in zip(grads_loop, grads_batched, strict=True):
        torch.testing.assert_close(g_batched, g_loop)


# ---------------------------------------------------------------- dynamic = static drop
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize(
    "cfg",
    [
        {"name": "pfeiffer", "init": "bert"},
        {"name": "houlsby", "init": "bert"},
        {"name": "adapterbias"},
    ],
)
def test_dynamic_drop_equals_static_leave_out(cfg, n):
    dynamic = encoder()
    add(dynamic, "t", seed=0, **cfg)
    static = AdapterEncoder(dynamic.backbone).eval()
    build_method({**cfg, "leave_out": n}).apply(static, "t")
    kept = static.modules_of("t")
    assert all(key.layer >= n for key in kept)
    for key, module in kept.items():
        module.load_state_dict(dynamic.modules_of("t")[key].state_dict())
    ids, mask = batch()
    out_dynamic = dynamic(ids, mask, dropped_layers=n)["t"]
    torch.testing.assert_close(out_dynamic, static(ids, mask)["t"])
    assert (out_dynamic - dynamic(ids, mask)["t"]).abs().max() > 1e-2, "drop had no effect"


# ---------------------------------------------------------------- sharing
@pytest.mark.parametrize("method", ["pfeiffer", "houlsby"])
def test_shared_adapter_is_one_set_of_weights_trained_by_every_layer(method):
    shared = encoder()
    add(shared, "t", seed=0, name=method, init="bert", reduction_factor=4, shared=True)
    sites = 2 if method == "houlsby" else 1
    assert len({id(m) for m in shared.modules_of("t").values()}) == sites
    assert task_parameter_count(shared, "t") == sites * (2 * HIDDEN * 16 + 16 + HIDDEN)
    # The same weights, copied into independent per-layer adapters.
    copies = AdapterEncoder(shared.backbone).eval()
    for key, module in shared.modules_of("t").items():
        copies.add_module_at("t", key.layer, key.site, copy.deepcopy(module))
    ids, mask = batch()
    weights = torch.randn(3, 9, HIDDEN)
    out_shared, out_copies = shared(ids, mask)["t"], copies(ids, mask)["t"]
    torch.testing.assert_close(out_shared, out_copies)
    (out_shared * weights).sum().backward()
    (out_copies * weights).sum().backward()
    for key, module in shared.modules_of("t").items():
        same_site = [m for k, m in copies.modules_of("t").items() if k.site is key.site]
        assert len(same_site) == shared.num_layers
        for name, param in module.named_parameters():
            per_layer = [dict(m.named_parameters())[name].grad for m in same_site]
            assert all(g is not None and g.abs().sum() > 0 for g in per_layer), (key, name)
            torch.testing.assert_close(param.grad, torch.stack(per_layer).sum(0))


# ---------------------------------------------------------------- where autograd starts
def record_layers(enc: AdapterEncoder) -> tuple[list, list]:
    """Per layer: whether grad mode was on, and the layer's output (its last LayerNorm call)."""
    grad_mode: list[bool] = [None] * enc.num_layers
    outputs: list[torch.Tensor] = [None] * enc.num_layers
    for i, layer in enumerate(enc.layers):
        layer.attention.self.register_forward_pre_hook(
            lambda _m, _a, i=i: grad_mode.__setitem__(i, torch.is_grad_enabled())
        )
        layer.output.LayerNorm.register_forward_hook(
            lambda _m, _a, out, i=i: outputs.__setitem__(i, out)
        )
    return grad_mode, outputs


@pytest.mark.parametrize("dropped", [{"a": 2}, {"a": 3}, {"a": 2, "b": 3}, {"a": 3, "b": 1}])
def test_training_with_dropped_layers_keeps_autograd_above_the_lowest_adapter(dropped):
    enc = encoder().train()
    add(enc, "a", seed=0, name="pfeiffer", init="bert")
    add(enc, "b", seed=1, name="adapterbias")
    grad_mode, outputs = record_layers(enc)
    ids, mask = batch()
    out = enc(ids, mask, tasks=list(dropped), dropped_layers=dropped)
    lowest = min(dropped.values())
    for i in range(enc.num_layers):
        below = i < lowest
        assert grad_mode[i] is not below, i
        assert (outputs[i].grad_fn is None) is below, i
        assert outputs[i].requires_grad is not below, i
    sum(o.pow(2).mean() for o in out.values()).backward()
    assert all(p.grad is None for p in enc.backbone.parameters())
    for task, n in dropped.items():
        for key, module in enc.modules_of(task).items():
            grads = [p.grad for p in module.parameters()]
            if key.layer < n:
                assert all(g is None for g in grads), (task, key)
            else:
                assert all(g is not None and g.abs().sum() > 0 for g in grads), (task, key)


def test_unfrozen_backbone_keeps_autograd_everywhere():
    enc = encoder().train()
    add(enc, "a", seed=0, name="pfeiffer", init="bert")
    enc.backbone.requires_grad_(True)
    grad_mode, outputs = record_layers(enc)
    ids, mask = batch()
    enc(ids, mask, dropped_layers=3)["a"].sum().backward()
    assert all(grad_mode) and all(o.grad_fn is not None for o in outputs)
    assert enc.layers[0].attention.self.query.weight.grad is not None


# ---------------------------------------------------------------- refused configurations
def embedding_calls(enc: AdapterEncoder) -> list:
    calls: list = []
    enc.backbone.embeddings.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dropped_layers": 4}, ValueError, r"cannot drop 4 of 4 layers: choose 0\.\.3"),
        ({"dropped_layers": -1}, ValueError, r"cannot drop -1 of 4 layers: choose 0\.\.3"),
        ({"dropped_layers": {"a": 1, "b": 7}}, ValueError, r"cannot drop 7 of 4 layers"),
        ({"tasks": "nope"}, KeyError, r"unknown task 'nope'; this model has tasks \['a', 'b'\]"),
        ({"tasks": []}, ValueError, r"no task to run; this model has tasks \['a', 'b'\]"),
        ({"tasks": ["a", "a"]}, ValueError, r"tasks must be distinct, got \['a', 'a'\]"),
        ({"dropped_layers": {"a": 1}}, ValueError, r"names tasks \['a'\] but the pass runs"),
        (
            {"dropped_layers": {"a": 1, "b": 1, "c": 2}},
            ValueError,
            r"names tasks \['a', 'b', 'c'\]",
        ),
        ({"dropped_layers": 1.5}, TypeError, r"must be an int, got 1\.5"),
        ({"dropped_layers": True}, TypeError, r"must be an int, got True"),
    ],
)
def test_bad_forward_arguments_are_refused_before_any_work(kwargs, error, message):
    enc = encoder()
    add(enc, "a", seed=0, name="pfeiffer")
    add(enc, "b", seed=1, name="pfeiffer")
    calls = embedding_calls(enc)
    ids, mask = batch()
    with pytest.raises(error, match=message):
        enc(ids, mask, **kwargs)
    assert calls == []


def test_a_model_without_tasks_refuses_to_run():
    enc = encoder()
    with pytest.raises(ValueError, match=r"no task to run; this model has tasks \[\]"):
        enc(*batch())


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"name": "nope"}, r"unknown method 'nope'; choose one of \['adapterbias', .*'pfeiffer'"),
        ({"name": "pfeiffer", "rank": 4}, r"no option\(s\) \['rank'\]; valid: \["),
        ({"name": "pfeiffer", "reduction_factor": 128}, r"bottleneck of 0 for hidden size 64"),
        ({"name": "pfeiffer", "reduction_factor": 0.5}, r"bottleneck of 128 for hidden size 64"),
        ({"name": "houlsby", "reduction_factor": 0}, r"reduction_factor must be > 0, got 0"),
        ({"name": "pfeiffer", "init": "xavier"}, r"unknown adapter init 'xavier'; choose one of"),
        ({"name": "pfeiffer", "leave_out": 4}, r"cannot drop 4 of 4 layers: choose 0\.\.3"),
        ({"name": "adapterbias", "leave_out": -1}, r"cannot drop -1 of 4 layers"),
    ],
)
def test_bad_method_configuration_is_refused_before_adding_anything(cfg, message):
    enc = encoder()
    with pytest.raises(ValueError, match=message):
        build_method(cfg).apply(enc, "t")
    assert enc.tasks == []


# ---------------------------------------------------------------- precision and kernels
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_bf16_autocast_with_padding(attn):
    enc = encoder(attn=attn)
    add(enc, "a", seed=0, name="pfeiffer", init="bert")
    add(enc, "b", seed=1, name="pfeiffer", init="bert")
    add(enc, "c", seed=2, name="adapterbias")
    ids, mask = batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(ids, mask, dropped_layers={"a": 0, "b": 2, "c": 1})
    full = enc(ids, mask, dropped_layers={"a": 0, "b": 2, "c": 1})
    for task, hidden in out.items():
        assert hidden.shape == (3, 9, HIDDEN) and torch.isfinite(hidden).all(), task
        torch.testing.assert_close(hidden.float(), full[task], atol=0.15, rtol=0.05)


def test_eager_and_sdpa_attention_agree_in_fp32():
    outs = []
    for attn in ("sdpa", "eager"):
        enc = encoder(attn=attn)
        assert enc.backbone.config._attn_implementation == attn
        add(enc, "a", seed=0, name="houlsby", init="bert")
        add(enc, "b", seed=1, name="pfeiffer", init="bert")
        ids, mask = batch()
        outs.append(enc(ids, mask, dropped_layers={"a": 0, "b": 2}))
        torch.testing.assert_close(outs[-1]["a"], reference(enc, "a", ids, mask))
    for task in ("a", "b"):
        torch.testing.assert_close(outs[0][task], outs[1][task], atol=1e-5, rtol=1e-4)


def test_parameter_count_of_the_engine_includes_each_task_once():
    enc = encoder()
    add(enc, "a", seed=0, name="pfeiffer", shared=True)
    add(enc, "b", seed=1, name="adapterbias", share_alpha=True)
    expected = task_parameter_count(enc, "a") + task_parameter_count(enc, "b")
    assert count_parameters(enc, trainable_only=True) == expected
