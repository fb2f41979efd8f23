"""Methods one by one: AdapterBias, full fine-tuning, LoRA, parameter counts, conf presets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adapterdrop.core import Site, SiteInputs, SiteKey
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method, method_names
from adapterdrop.methods.adapterbias import AdapterBias
from adapterdrop.methods.lora import lora_adapter_names
from adapterdrop.models import load_backbone
from adapterdrop.params import count_parameters, task_parameter_count, unique_parameters
from conftest import CONF, method_cfg, model_cfg

OWN_PRESETS = ("pfeiffer", "houlsby", "adapterbias", "lora", "full", "pfeiffer-shared")


def encoder(name: str = "tiny") -> AdapterEncoder:
    cfg = {**model_cfg(name), "tokenizer": None}
    enc = AdapterEncoder(load_backbone(cfg).model)
    enc.freeze_backbone()
    return enc.eval()


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three sequences of lengths 9, 5 and 2, padded with id 0."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 1000, (3, 9), generator=gen)
    mask = (torch.arange(9) < torch.tensor([[9], [5], [2]])).long()
    return ids * mask, mask


def hf_forward(enc: AdapterEncoder, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return enc.backbone(ids, attention_mask=mask).last_hidden_state


@pytest.fixture(scope="module")
def bert_base() -> AdapterEncoder:
    """One random bert-base shared by the counting tests; they only add task modules."""
    return encoder("bert-base")


# ---------------------------------------------------------------- AdapterBias
def test_adapterbias_delta_is_alpha_of_intermediate_times_vector():
    module = AdapterBias(hidden_size=8, intermediate_size=16)
    nn.init.normal_(module.vector)
    hidden, inter = torch.randn(2, 3, 8), torch.randn(2, 3, 16)
    inputs = SiteInputs(hidden, hidden, nn.LayerNorm(8), inter)
    alpha = inter @ module.alpha.weight.T + module.alpha.bias  # (2, 3, 1): one scalar per token
    torch.testing.assert_close(module.delta(inputs), alpha * module.vector)


def test_adapterbias_starts_at_zero_and_refuses_sites_without_intermediate():
    module = AdapterBias(hidden_size=8, intermediate_size=16)
    hidden = torch.randn(2, 3, 8)
    delta = module.delta(SiteInputs(hidden, hidden, nn.LayerNorm(8), torch.randn(2, 3, 16)))
    assert torch.equal(delta, torch.zeros_like(delta))
    with pytest.raises(ValueError, match="Site.OUTPUT"):
        module.delta(SiteInputs(hidden, hidden, nn.LayerNorm(8), None))


def test_adapterbias_refuses_a_shared_alpha_of_the_wrong_width():
    with pytest.raises(ValueError, match="alpha must map 16 -> 1, got 8 -> 1"):
        AdapterBias(hidden_size=8, intermediate_size=16, alpha=nn.Linear(8, 1))


@pytest.mark.parametrize("leave_out", [0, 3])
def test_adapterbias_sits_at_the_ffn_output_of_layers_from_leave_out(leave_out):
    enc = encoder()
    build_method({"name": "adapterbias", "leave_out": leave_out}).apply(enc, "t")
    expected = [SiteKey(i, Site.OUTPUT) for i in range(leave_out, enc.num_layers)]
    assert list(enc.modules_of("t")) == expected
    with pytest.raises(ValueError, match="cannot drop 4 of 4 layers: choose 0..3"):
        build_method({"name": "adapterbias", "leave_out": 4}).apply(enc, "u")


def test_adapterbias_share_alpha_shares_alpha_only():
    enc = encoder()
    build_method({"name": "adapterbias", "share_alpha": True}).apply(enc, "t")
    modules = list(enc.modules_of("t").values())
    assert all(m.alpha is modules[0].alpha for m in modules)
    assert len({id(m.vector) for m in modules}) == len(modules)


def test_adapterbias_counts_on_bert_base(bert_base):
    build_method({"name": "adapterbias"}).apply(bert_base, "ab")
    build_method({"name": "adapterbias", "share_alpha": True}).apply(bert_base, "ab_shared")
    assert task_parameter_count(bert_base, "ab") == 12 * (768 + 3072 + 1) == 46_092
    assert task_parameter_count(bert_base, "ab", weights_only=True) == 12 * (768 + 3072)
    assert task_parameter_count(bert_base, "ab_shared") == 12 * 768 + 3072 + 1


@pytest.mark.parametrize("leave_out", [0, 3])
def test_adapterbias_with_layer_norms_trains_them_only_from_leave_out(leave_out):
    enc = encoder("bert-base")  # its own: training LayerNorms changes the backbone
    build_method({"name": "adapterbias", "train_layer_norms": True, "leave_out": leave_out}).apply(
        enc, "ab"
    )
    assert enc.method_of("ab").changes_backbone
    norms = 13 if leave_out == 0 else 12 - leave_out  # + the embeddings' LayerNorm at n = 0
    expected = (12 - leave_out) * (768 + 3072 + 1) + norms * 2 * 768
    assert task_parameter_count(enc, "ab") == expected
    if leave_out == 0:
        assert expected == 66_060  # the AdapterBias paper's count on bert-base
    trained = {id(p) for p in enc.trainable("ab")}
    below = [p for layer in enc.layers[:leave_out] for p in layer.parameters()]
    assert not any(id(p) in trained for p in below)
    assert enc.layers[-1].output.LayerNorm.weight.requires_grad
    assert not enc.layers[-1].attention.output.LayerNorm.weight.requires_grad
    assert not build_method({"name": "adapterbias"}).changes_backbone


def test_adapterbias_with_layer_norms_preset_composes():
    assert method_cfg("adapterbias-ln") == {
        "name": "adapterbias",
        "share_alpha": False,
        "leave_out": 0,
        "train_layer_norms": True,
    }
    assert method_cfg("coda-r5")["token_ratio"] == 5


# ---------------------------------------------------------------- parameter counting
@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        ({"name": "pfeiffer", "reduction_factor": 16}, 884_736),
        ({"name": "pfeiffer", "reduction_factor": 1.3333333333333333, "shared": True}, 884_736),
        ({"name": "pfeiffer", "reduction_factor": 4, "shared": True}, 294_912),
        ({"name": "pfeiffer", "reduction_factor": 16, "shared": True}, 73_728),
        ({"name": "houlsby", "reduction_factor": 16}, 2 * 884_736),
        ({"name": "houlsby", "reduction_factor": 16, "shared": True}, 2 * 73_728),
    ],
)
def test_paper_weight_counts_on_bert_base(bert_base, cfg, expected):
    task = f"t{len(bert_base.tasks)}"
    build_method(cfg).apply(bert_base, task)
    assert task_parameter_count(bert_base, task, weights_only=True) == expected


def test_biases_count_unless_weights_only(bert_base):
    build_method({"name": "pfeiffer", "reduction_factor": 16}).apply(bert_base, "with_bias")
    biases = 12 * (48 + 768)
    assert task_parameter_count(bert_base, "with_bias") == 884_736 + biases


def test_shared_module_is_counted_once_however_many_keys_hold_it():
    enc = encoder()
    build_method({"name": "pfeiffer", "reduction_factor": 4, "shared": True}).apply(enc, "t")
    adapters = list(enc.modules_of("t").values())
    assert len(adapters) == enc.num_layers and all(a is adapters[0] for a in adapters)
    one = 2 * 64 * 16 + 16 + 64
    assert task_parameter_count(enc, "t") == one
    backbone = count_parameters(enc.backbone)
    assert count_parameters(enc) == backbone + one
    assert count_parameters(enc, trainable_only=True) == one
    linear = nn.Linear(3, 2)
    twice = [("a.weight", linear.weight), ("b.weight", linear.weight), ("a.bias", linear.bias)]
    assert [name for name, _ in unique_parameters(twice)] == ["a.weight", "a.bias"]


def test_task_count_needs_a_known_task():
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        task_parameter_count(encoder(), "nope")


# ---------------------------------------------------------------- full fine-tuning
def test_full_fine_tuning_trains_the_backbone_through_the_engine():
    enc = encoder()
    build_method({"name": "full"}).apply(enc, "t")
    assert enc.tasks == ["t"] and len(enc.modules_of("t")) == 0
    assert count_parameters(enc, trainable_only=True) == count_parameters(enc.backbone)
    assert task_parameter_count(enc, "t") == 0
    ids, mask = batch()
    out = enc(ids, mask, tasks="t")["t"]
    assert torch.equal(out, hf_forward(enc, ids, mask))
    out.pow(2).mean().backward()
    assert all(p.grad is not None for p in enc.backbone.encoder.parameters())
    with pytest.raises(ValueError, match="task 't' already exists"):
        build_method({"name": "full"}).apply(enc, "t")


# ---------------------------------------------------------------- LoRA
def test_lora_runs_inside_the_engine_and_trains_only_lora():
    enc = encoder()
    ids, mask = batch()
    base = hf_forward(enc, ids, mask)
    build_method({"name": "lora"}).apply(enc, "t")
    assert lora_adapter_names(enc.backbone) == ["t"]
    layer = enc.layers[0].attention.self
    assert (
        "t" in layer.query.lora_A and "t" in layer.value.lora_A and not hasattr(layer.key, "lora_A")
    )
    per_layer = 2 * (64 * 8 + 8 * 64)  # query and value, A and B
    assert task_parameter_count(enc, "t") == enc.num_layers * per_layer
    assert count_parameters(enc, trainable_only=True) == enc.num_layers * per_layer
    # peft initialises B to zero: the fresh model is the base model (eval: dropout off).
    torch.testing.assert_close(enc(ids, mask, tasks="t")["t"], base)
    with torch.no_grad():
        for name, param in enc.backbone.named_parameters():
            if "lora_B" in name:
                nn.init.normal_(param, std=0.5)
    out = enc(ids, mask, tasks="t")["t"]
    torch.testing.assert_close(out, hf_forward(enc, ids, mask))
    assert (out - base).abs().max() > 1e-2
    out.pow(2).mean().backward()
    grads = {n: p.grad for n, p in enc.backbone.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "lora_" in n)
    assert all(g is None for n, g in grads.items() if "lora_" not in n)


def test_lora_on_bert_base_counts_and_is_single_task():
    enc = encoder("bert-base")  # its own: LoRA changes the backbone in place
    build_method({"name": "lora"}).apply(enc, "a")
    assert task_parameter_count(enc, "a") == 12 * 2 * (768 * 8 + 8 * 768) == 294_912
    with pytest.raises(ValueError, match=r"already holds LoRA adapter\(s\) \['a'\]"):
        build_method({"name": "lora"}).apply(enc, "b")
    assert enc.tasks == ["a"]


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"r": 0}, "rank r must be >= 1, got 0"),
        ({"target_modules": []}, "at least one target module"),
        ({"target_modules": ["nope"]}, "nope"),
    ],
)
def test_lora_refuses_bad_options(cfg, message):
    with pytest.raises(ValueError, match=message):
        build_method({"name": "lora", **cfg}).apply(encoder(), "t")


def test_lora_dropout_follows_the_model_mode():
    enc = encoder()
    build_method({"name": "lora", "lora_dropout": 0.5}).apply(enc, "t")
    assert not enc.layers[0].attention.self.query.lora_dropout["t"].training
    enc.train()
    assert enc.layers[0].attention.self.query.lora_dropout["t"].training


# ---------------------------------------------------------------- registry and presets
def test_methods_are_registered_with_their_options():
    assert {"adapterbias", "full", "houlsby", "lora", "pfeiffer"} <= set(method_names())
    with pytest.raises(ValueError, match=r"no option\(s\) \['rank'\]; valid: \['leave_out', "):
        build_method({"name": "adapterbias", "rank": 2})
    with pytest.raises(ValueError, match=r"no option\(s\) \['leave_out'\]; valid: \[\]"):
        build_method({"name": "full", "leave_out": 2})


def test_every_preset_builds_and_own_presets_run_on_tiny():
    presets = sorted(CONF.glob("method/*.yaml"))
    assert {p.stem for p in presets} >= set(OWN_PRESETS)
    ids, mask = batch()
    for path in presets:
        method = build_method(method_cfg(path.stem))
        if path.stem not in OWN_PRESETS:
            continue
        enc = encoder()
        method.apply(enc, "t")
        out = enc(ids, mask, tasks="t")["t"]
        assert out.shape == (3, 9, 64) and torch.isfinite(out).all(), path.stem
        # Every preset starts from the frozen model's function.
        torch.testing.assert_close(out, hf_forward(enc, ids, mask), msg=path.stem)
        assert count_parameters(enc, trainable_only=True) > 0, path.stem
