"""AdapterFusion: AdapterHub's Fuse semantics, the exact folded fast path, activation recording,
pruning and fusion-AdapterDrop, on the tiny random BERT."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

from adapterdrop.core import Site, SiteKey
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method
from adapterdrop.methods.fusion import (
    FusionLayer,
    fusion_layers,
    fusion_regularization_loss,
    prune_fusion,
    record_fusion_activations,
)
from adapterdrop.methods.fusion.recorder import FusionRecorder
from adapterdrop.models import load_backbone
from adapterdrop.reference.adapterhub_fusion import build_adapterhub_fusion

CONF = Path(__file__).resolve().parents[1] / "conf"
SOURCES = ("a", "b", "c")
OPTIONS = {
    "dynamic": {},
    "residual_before": {"residual_before": True},
    "query_before_ln": {"query_before_ln": True},
    "value_after_softmax": {"value_before_softmax": False},
    "static": {"value": False},
    "no_projections": {"query": False, "key": False, "value": False},
    "residual_before_no_value": {"residual_before": True, "value": False, "key": False},
}


@pytest.fixture(scope="module")
def backbone():
    cfg = yaml.safe_load((CONF / "model" / "tiny.yaml").read_text())
    return load_backbone({**cfg, "tokenizer": None}).model


def with_adapters(backbone, factors=(8, 16, 8), leave_out=0) -> AdapterEncoder:
    """Three Pfeiffer tasks with random, non-trivial adapters (mixed bottleneck widths)."""
    encoder = AdapterEncoder(copy.deepcopy(backbone))
    encoder.freeze_backbone()
    torch.manual_seed(0)
    for task, factor in zip(SOURCES, factors, strict=True):
        method = {"name": "pfeiffer", "init": "bert", "reduction_factor": factor}
        build_method({**method, "leave_out": leave_out}).apply(encoder, task)
        for adapter in encoder.modules_of(task).values():
            torch.nn.init.normal_(adapter.up.weight, std=0.3)
            torch.nn.init.normal_(adapter.up.bias, std=0.1)
    return encoder.eval()


def add_fusion(encoder: AdapterEncoder, task: str = "f", **options) -> dict[int, FusionLayer]:
    """Fusion of all sources with random weights, so attention is neither uniform nor one-hot."""
    build_method({"name": "fusion", "adapters": list(SOURCES), **options}).apply(encoder, task)
    layers = fusion_layers(encoder, task)
    torch.manual_seed(1)
    for layer in layers.values():
        with torch.no_grad():
            for parameter in layer.parameters():
                parameter.normal_(std=0.1)
            if layer.value is not None:
                layer.value.weight += torch.eye(encoder.hidden_size)
    return layers


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 1000, (3, 9), generator=generator)
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return ids, mask


def set_fast_path(layers: dict[int, FusionLayer], fast: bool) -> None:
    for layer in layers.values():
        layer.fast_path = fast


def run(encoder: AdapterEncoder, task: str = "f", **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return encoder(*batch(), tasks=task, **kwargs)[task]


# --------------------------------------------------------------- AdapterHub's Fuse
@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_matches_adapterhub_fuse(backbone, options):
    encoder = with_adapters(backbone)
    layers = add_fusion(encoder, **options)
    hub = build_adapterhub_fusion(encoder, "f")
    ids, mask = batch()
    with torch.no_grad():
        expected = hub(input_ids=ids, attention_mask=mask).last_hidden_state
    for fast in (False, True):
        set_fast_path(layers, fast)
        torch.testing.assert_close(run(encoder), expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(expected, run(encoder, task="a"), atol=1e-3)  # fusion matters


def test_matches_adapterhub_with_annealed_temperature(backbone):
    encoder = with_adapters(backbone)
    layers = add_fusion(encoder, temperature=True)
    assert all(layer.temperature == 50.0 for layer in layers.values())
    encoder.train()
    encoder(*batch())  # one training forward anneals T by 0.05 per layer
    encoder.eval()
    run(encoder)  # an eval forward leaves T alone (AdapterHub would anneal here too)
    assert all(layer.temperature == pytest.approx(49.95) for layer in layers.values())
    hub = build_adapterhub_fusion(encoder, "f").eval()
    ids, mask = batch()
    with torch.no_grad():
        expected = hub(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(run(encoder), expected, atol=1e-5, rtol=1e-5)


def test_regularization_loss_matches_adapterhub(backbone):
    encoder = with_adapters(backbone)
    add_fusion(encoder)
    hub = build_adapterhub_fusion(encoder, "f")
    ours = fusion_regularization_loss(encoder, "f")
    torch.testing.assert_close(ours, hub.get_fusion_regularization_loss())
    assert ours.item() > 0 and ours.requires_grad


def test_fresh_value_map_is_the_identity(backbone):
    encoder = with_adapters(backbone)
    build_method({"name": "fusion", "adapters": list(SOURCES)}).apply(encoder, "f")
    for layer in fusion_layers(encoder, "f").values():
        weight = layer.value.weight.detach().clone()
        torch.testing.assert_close(torch.diagonal(weight), torch.ones(encoder.hidden_size))
        assert weight.fill_diagonal_(0).abs().max().item() == pytest.approx(1e-6)
    assert fusion_regularization_loss(encoder, "f").item() < 1e-8


# ------------------------------------------------------------------- fast path
@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_folded_path_equals_plain_path_in_eval(backbone, options):
    encoder = with_adapters(backbone)
    layers = add_fusion(encoder, **options)
    set_fast_path(layers, False)
    plain = run(encoder)
    set_fast_path(layers, True)
    with torch.inference_mode():
        folded = encoder(*batch(), tasks="f")["f"]
    torch.testing.assert_close(folded, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("options", [{}, {"residual_before": True}], ids=["dynamic", "res_before"])
def test_folded_path_gradients_match_plain_path_in_training(backbone, options):
    """With dropout on the scores: the shared score term of residual_before must be kept."""
    encoder = with_adapters(backbone)
    layers = add_fusion(encoder, **options)
    assert next(iter(layers.values())).dropout.p == pytest.approx(0.1)
    encoder.train()
    results = []
    for fast in (False, True):
        set_fast_path(layers, fast)
        encoder.zero_grad()
        torch.manual_seed(7)
        out = encoder(*batch(), tasks="f")["f"]
        out.pow(2).mean().backward()
        grads = {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}
        results.append((out.detach(), grads))
    (plain, plain_grads), (folded, folded_grads) = results
    torch.testing.assert_close(folded, plain, atol=1e-5, rtol=1e-5)
    assert plain_grads.keys() == folded_grads.keys()
    assert {name.split(".")[-2] for name in plain_grads} == {"query", "key", "value"}
    for name, grad in plain_grads.items():
        torch.testing.assert_close(folded_grads[name], grad, atol=1e-5, rtol=1e-4)


def test_fold_is_cached_and_refreshed_when_weights_change(backbone):
    encoder = with_adapters(backbone)
    layers = add_fusion(encoder)
    layer = layers[2]
    with torch.no_grad():
        assert layer._fold() is layer._fold()
        first = layer._fold()
        layer.key.weight.add_(0.05)  # what an optimizer step does: an in-place update
        assert layer._fold() is not first
        encoder.modules_of("b")[SiteKey(2, Site.OUTPUT)].up.bias.add_(0.1)
        folded = run(encoder)
    set_fast_path(layers, False)
    torch.testing.assert_close(folded, run(encoder), atol=1e-5, rtol=1e-5)


def test_fold_cached_under_bf16_autocast_stays_full_precision(backbone):
    encoder = with_adapters(backbone)
    layers = add_fusion(encoder)
    ids, mask = batch()
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            encoder(ids, mask, tasks="f")
        assert layers[2]._fold().key_weight.dtype == torch.float32
        folded = run(encoder)  # an fp32 call after the bf16 one
    set_fast_path(layers, False)
    torch.testing.assert_close(folded, run(encoder), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------- recording and pruning
def steer(encoder: AdapterEncoder, layers: dict[int, FusionLayer], logits: torch.Tensor) -> None:
    """Make every token's scores ``logits[layer]``: constant query, keys = adapter biases."""
    direction = torch.zeros(encoder.hidden_size)
    direction[0] = 1.0
    with torch.no_grad():
        for index, layer in layers.items():
            layer.query.weight.zero_()
            layer.query.bias.copy_(direction)
            for adapter, logit in zip(layer.adapters, logits[index], strict=True):
                adapter.up.weight.zero_()
                adapter.up.bias.copy_(logit * direction)


def test_recorded_activations_and_top_k_pruning_on_known_scores(backbone):
    encoder = with_adapters(backbone)
    layers = add_fusion(encoder, key=False)
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0], [1.0, 2.0, 0.0], [3.0, 0.0, 0.5]])
    steer(encoder, layers, logits)
    with record_fusion_activations(encoder, "f") as recorder:
        run(encoder)
        run(encoder)
    table = recorder.table()
    assert table.layers == [0, 1, 2, 3] and table.adapters == list(SOURCES)
    torch.testing.assert_close(
        table.mean, torch.softmax(logits.double(), dim=-1), atol=1e-6, rtol=0
    )
    assert table.tokens == [2 * int(batch()[1].sum())] * 4  # padding is not counted
    assert all(layer.observer is None for layer in layers.values())

    keep = table.top(2)
    assert keep == {0: ["a", "c"], 1: ["b", "c"], 2: ["a", "b"], 3: ["a", "c"]}
    prune_fusion(encoder, "f", keep)
    assert {i: layer.names for i, layer in layers.items()} == keep
    with record_fusion_activations(encoder, "f") as recorder:
        run(encoder)
    pruned = recorder.table()
    assert sorted(pruned.adapters) == list(SOURCES)
    for index, names in keep.items():
        columns = [pruned.adapters.index(name) for name in names]
        expected = torch.softmax(logits[index, [SOURCES.index(n) for n in names]].double(), -1)
        torch.testing.assert_close(pruned.mean[index, columns], expected, atol=1e-6, rtol=0)
        assert pruned.mean[index].isnan().sum() == 1  # the pruned adapter's column


def test_pruning_to_all_adapters_changes_nothing(backbone):
    encoder = with_adapters(backbone)
    add_fusion(encoder)
    before = run(encoder)
    with record_fusion_activations(encoder, "f") as recorder:
        run(encoder)
    prune_fusion(encoder, "f", recorder.table().top(len(SOURCES)))
    torch.testing.assert_close(run(encoder), before, atol=0, rtol=0)


def test_pruned_fusion_matches_adapterhub_fuse_without_the_pruned_adapters(backbone):
    encoder = with_adapters(backbone)
    layers = add_fusion(encoder)
    prune_fusion(encoder, "f", {0: ["a", "c"], 2: ["b", "c"], 3: ["c"]})
    hub = build_adapterhub_fusion(encoder, "f")
    ids, mask = batch()
    with torch.no_grad():
        expected = hub(input_ids=ids, attention_mask=mask).last_hidden_state
    for fast in (True, False):
        set_fast_path(layers, fast)
        torch.testing.assert_close(run(encoder), expected, atol=1e-5, rtol=1e-5)


def test_recorder_skips_padding_tokens():
    layer_names = {0: type("Layer", (), {"names": ["a", "b"]})()}
    recorder = FusionRecorder(layer_names)
    probs = torch.tensor([[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [1.0, 0.0]]])
    recorder.set_mask(torch.tensor([[1, 1], [1, 0]]))
    recorder.observe(0, probs)
    table = recorder.table()
    torch.testing.assert_close(table.mean, torch.tensor([[1.6, 1.4]], dtype=torch.float64) / 3)
    assert table.tokens == [3]
    with pytest.raises(ValueError, match="cannot keep 3 adapters in layer 0"):
        table.top(3)
    recorder.set_mask(torch.ones(5, 2))
    with pytest.raises(ValueError, match=r"mask \(5, 2\) does not match"):
        recorder.observe(0, probs)


def _recorder(shards):
    """A recorder over two layers of adapters a, b that observed ``shards`` (per shard, the
    layers it reached)."""
    layers = {index: type("Layer", (), {"names": ["a", "b"]})() for index in (0, 1)}
    recorder = FusionRecorder(layers)
    for shard in shards:
        generator = torch.Generator().manual_seed(shard)
        for index in (0, 1) if shard == 0 else (0,):  # shard 1 never reaches layer 1
            recorder.observe(index, torch.rand(3, 4, 2, generator=generator))
    return recorder


def _reduce_shard(rank, address, tables):
    torch.distributed.init_process_group("gloo", init_method=address, rank=rank, world_size=2)
    try:
        recorder = _recorder([rank])
        recorder.all_reduce()
        tables[rank] = recorder.table()
    finally:
        torch.distributed.destroy_process_group()


def test_recorders_of_two_processes_rank_by_the_whole_validation_set(tmp_path):
    """A fusion pruned under trainer=ddp: each process saw half the examples, and both must
    rank (and prune) by all of them."""
    manager = torch.multiprocessing.get_context("spawn").Manager()
    tables = manager.dict()
    address = f"file://{tmp_path / 'rendezvous'}"
    torch.multiprocessing.spawn(_reduce_shard, args=(address, tables), nprocs=2)
    whole = _recorder([0, 1]).table()
    for rank in (0, 1):
        torch.testing.assert_close(tables[rank].mean, whole.mean)
        assert tables[rank].tokens == whole.tokens == [24, 12]


@pytest.mark.parametrize("keep", [[], ["a", "a"], ["z"]])
def test_prune_refuses_bad_subsets(backbone, keep):
    encoder = with_adapters(backbone)
    add_fusion(encoder)
    with pytest.raises(ValueError, match=r"subset of \['a', 'b', 'c'\]"):
        prune_fusion(encoder, "f", {1: keep})


# -------------------------------------------------------- fusion-AdapterDrop
def test_leave_out_builds_no_fusion_below_and_equals_dropping(backbone):
    encoder = with_adapters(backbone)
    add_fusion(encoder)
    full = run(encoder)
    left_out = copy.deepcopy(encoder)
    for layer in (0, 1):
        left_out.remove_module("f", SiteKey(layer, Site.OUTPUT))
    assert [str(key) for key in sorted(left_out.modules_of("f"))] == ["2_output", "3_output"]
    dropped = run(encoder, dropped_layers=2)
    torch.testing.assert_close(run(left_out), dropped, atol=0, rtol=0)
    assert not torch.allclose(dropped, full, atol=1e-4)

    built = copy.deepcopy(encoder)
    built.remove_task("f")
    build_method({"name": "fusion", "adapters": list(SOURCES), "leave_out": 2}).apply(built, "f")
    assert [str(key) for key in sorted(built.modules_of("f"))] == ["2_output", "3_output"]
    for key, module in built.modules_of("f").items():
        module.load_state_dict(left_out.modules_of("f")[key].state_dict())
    torch.testing.assert_close(run(built), dropped, atol=0, rtol=0)


def test_leave_out_matches_adapterhub(backbone):
    encoder = with_adapters(backbone, leave_out=1)
    layers = add_fusion(encoder, leave_out=2)
    assert list(layers) == [2, 3]
    hub = build_adapterhub_fusion(encoder, "f")
    ids, mask = batch()
    with torch.no_grad():
        expected = hub(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(run(encoder), expected, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------- wiring and errors
def test_fused_adapters_are_referenced_frozen_and_not_in_the_fusion_state(backbone):
    encoder = with_adapters(backbone)
    layers = add_fusion(encoder)
    for index, layer in layers.items():
        for name, adapter in zip(layer.names, layer.adapters, strict=True):
            assert adapter is encoder.modules_of(name)[SiteKey(index, Site.OUTPUT)]
            assert not any(p.requires_grad for p in adapter.parameters())
    params = ("query.weight", "query.bias", "key.weight", "key.bias", "value.weight")
    keys = {
        f"{key}.{name}"
        for key, module in encoder.modules_of("f").items()
        for name in module.state_dict()
    }
    assert keys == {f"{i}_output.{p}" for i in range(4) for p in params}


def test_multi_task_pass_gives_each_task_its_own_output(backbone):
    encoder = with_adapters(backbone)
    add_fusion(encoder)
    with torch.no_grad():
        together = encoder(*batch(), tasks=["f", "a"])
    for task in ("f", "a"):
        hidden = run(encoder, task=task)
        torch.testing.assert_close(together[task], hidden, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("adapters", "match"),
    [
        (["a", "nope"], r"other tasks \['a', 'b', 'c'\]; got \['a', 'nope'\]"),
        ([], r"got \[\]"),
        (["a", "a"], r"distinct adapters"),
        (["f"], r"other tasks \['a', 'b', 'c'\]"),
        ("a", r"list of task names, got the string 'a'"),
    ],
)
def test_bad_adapter_names_are_refused_with_the_choices(backbone, adapters, match):
    encoder = with_adapters(backbone)
    encoder.add_module_at("f", 0, Site.OUTPUT, torch.nn.Identity())
    with pytest.raises(ValueError, match=match):
        build_method({"name": "fusion", "adapters": adapters}).apply(encoder, "f")
    assert [str(key) for key in encoder.modules_of("f")] == ["0_output"]  # nothing half-applied


def test_fusing_houlsby_or_left_out_adapters_is_refused(backbone):
    encoder = with_adapters(backbone, leave_out=2)
    build_method({"name": "houlsby"}).apply(encoder, "h")
    with pytest.raises(ValueError, match=r"task 'h' has no Pfeiffer adapter .* at layer 0"):
        build_method({"name": "fusion", "adapters": ["h"]}).apply(encoder, "f")
    with pytest.raises(
        ValueError,
        match=r"task 'a' has no Pfeiffer adapter .* at layer 1; its modules sit at \['2_output'",
    ):
        build_method({"name": "fusion", "adapters": ["a"], "leave_out": 1}).apply(encoder, "f")
    assert "f" not in encoder.tasks


def test_preset_builds_the_method():
    preset = yaml.safe_load((CONF / "method" / "fusion.yaml").read_text())
    method = build_method({**preset, "adapters": ["a", "b"]})
    assert (method.adapters, method.leave_out, method.fast_path) == (["a", "b"], 0, True)
    with pytest.raises(ValueError, match="has no option"):
        build_method({**preset, "heads": 2})
