"""Our engine against AdapterHub (``adapters`` 1.3) on identical weights and padded inputs.

Covers single Pfeiffer/Houlsby adapters, ``Parallel`` multi-task inference, static leave-out,
dynamic AdapterDrop (AdapterHub's ``skip_layers``) and AdapterHub's failure on mixed depths.
"""

from __future__ import annotations

import pytest
import torch
from adapters import SeqBnConfig

from adapterdrop.core import Site, SiteInputs, SiteKey, SiteModule
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method
from adapterdrop.models import load_backbone
from adapterdrop.reference.adapterhub import (
    AdapterHubReference,
    AdapterSpec,
    adapter_spec,
    build_adapterhub_reference,
)
from conftest import model_cfg

TOL = {"atol": 1e-5, "rtol": 1e-5}
TASKS = ["rte", "sst", "mnli"]
KINDS = ["pfeiffer", "houlsby"]


def make_encoder(
    kind: str, leave_out: dict[str, int], model: str = "tiny", family: str | None = None
) -> AdapterEncoder:
    """Encoder with one adapter per task; weights scaled up so adapters clearly matter."""
    cfg = model_cfg(model)
    if family is not None:
        cfg = {**cfg, "family": family}
    encoder = AdapterEncoder(load_backbone(cfg).model)
    torch.manual_seed(1)
    for task, depth in leave_out.items():
        method = {"name": kind, "init": "bert", "reduction_factor": 4, "leave_out": depth}
        build_method(method).apply(encoder, task)
    with torch.no_grad():
        for param in [p for task in encoder.tasks for p in encoder.trainable(task)]:
            param.mul_(10.0)
            if param.dim() == 1:  # give the zero-initialised biases values too
                param.normal_(std=0.1)
    return encoder.eval()


def padded_batch(vocab: int = 30522) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, vocab, (3, 10), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    return ids, mask


def reference_for(encoder: AdapterEncoder, tasks=None) -> AdapterHubReference:
    reference = build_adapterhub_reference(encoder, tasks)
    reference.model.eval()
    return reference


@pytest.fixture(scope="module", params=KINDS)
def three_tasks(request) -> tuple[AdapterEncoder, AdapterHubReference]:
    """Three tasks with adapters in every layer, and their AdapterHub twin (shared: read-only)."""
    encoder = make_encoder(request.param, dict.fromkeys(TASKS, 0))
    return encoder, reference_for(encoder)


def assert_adapters_matter(encoder: AdapterEncoder, outputs: dict[str, torch.Tensor]) -> None:
    """Guard against vacuous equivalence: each task moves the output well beyond tolerance."""
    ids, mask = padded_batch()
    with torch.inference_mode():
        plain = encoder.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
    for task, hidden in outputs.items():
        assert (hidden - plain).abs().max() > 0.05, task


@pytest.mark.parametrize("kind", KINDS)
def test_single_adapter_matches(kind):
    encoder = make_encoder(kind, {"rte": 0})
    ids, mask = padded_batch()
    forward = build_adapterhub_reference(encoder, ["rte"]).single_forward("rte")
    with torch.inference_mode():
        ours = encoder(ids, mask, tasks="rte")["rte"]
        theirs = forward(ids, mask)
    assert_adapters_matter(encoder, {"rte": ours})
    torch.testing.assert_close(ours, theirs, **TOL)


@pytest.mark.parametrize("dropped", [0, 2, 3])
def test_parallel_three_tasks_matches(three_tasks, dropped):
    encoder, reference = three_tasks
    ids, mask = padded_batch()
    forward = reference.parallel_forward(TASKS, dropped_layers=dropped)
    with torch.inference_mode():
        ours = encoder(ids, mask, tasks=TASKS, dropped_layers=dropped)
        theirs = forward(ids, mask)
    assert len(theirs) == len(TASKS)
    assert_adapters_matter(encoder, ours)
    for task, hidden in zip(TASKS, theirs, strict=True):
        torch.testing.assert_close(ours[task], hidden, **TOL)
    # the tasks really differ, so a swapped chunk order would be caught
    assert (ours["rte"] - ours["sst"]).abs().max() > 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_static_leave_out_matches_adapterhub_leave_out(kind):
    encoder = make_encoder(kind, dict.fromkeys(TASKS, 2))
    reference = reference_for(encoder)
    config = reference.specs["rte"].config(64, 4)
    assert config.leave_out == [0, 1]
    for layer in range(4):
        assert ("rte" in reference.adapter_layer(layer, Site.OUTPUT).adapters) == (layer >= 2)
        has_attention = "rte" in reference.adapter_layer(layer, Site.ATTENTION).adapters
        assert has_attention == (kind == "houlsby" and layer >= 2)
    ids, mask = padded_batch()
    with torch.inference_mode():
        ours = encoder(ids, mask, tasks=TASKS)
        theirs = reference.run(ids, mask, tasks=TASKS)
        single = reference.run(ids, mask, tasks="sst")["sst"]
    assert_adapters_matter(encoder, ours)
    for task in TASKS:
        torch.testing.assert_close(ours[task], theirs[task], **TOL)
    torch.testing.assert_close(ours["sst"], single, **TOL)


def test_dynamic_skip_matches_skip_layers(three_tasks):
    encoder, reference = three_tasks
    ids, mask = padded_batch()
    with torch.inference_mode():
        for dropped in range(4):
            ours = encoder(ids, mask, tasks=TASKS, dropped_layers=dropped)
            theirs = reference.run(ids, mask, tasks=TASKS, dropped_layers=dropped)
            assert reference.model.adapters_config.skip_layers == (list(range(dropped)) or None)
            for task in TASKS:
                torch.testing.assert_close(ours[task], theirs[task], **TOL)
            single = reference.run(ids, mask, tasks="mnli", dropped_layers=dropped)["mnli"]
            torch.testing.assert_close(ours["mnli"], single, **TOL)
        full = encoder(ids, mask, tasks="rte")["rte"]
        dropped_2 = encoder(ids, mask, tasks="rte", dropped_layers=2)["rte"]
    assert (full - dropped_2).abs().max() > 0.05  # skipping layers changes the output


def test_dynamic_skip_equals_static_leave_out_on_same_weights():
    """Dropping n layers at run time is leave-out n with the upper layers' weights kept."""
    full = make_encoder("pfeiffer", {"rte": 0})
    static = make_encoder("pfeiffer", {"rte": 2})
    for key, module in static.modules_of("rte").items():
        assert key.layer >= 2
        module.load_state_dict(full.modules_of("rte")[key].state_dict())
    ids, mask = padded_batch()
    with torch.inference_mode():
        dynamic = reference_for(full).run(ids, mask, tasks="rte", dropped_layers=2)["rte"]
        left_out = reference_for(static).run(ids, mask, tasks="rte")["rte"]
    torch.testing.assert_close(dynamic, left_out, **TOL)


@pytest.mark.parametrize("kind", KINDS)
def test_mixed_depths_fail_in_adapterhub_parallel_but_not_in_ours(kind):
    encoder = make_encoder(kind, {"deep": 0, "shallow": 2})
    reference = reference_for(encoder)
    ids, mask = padded_batch()
    with torch.inference_mode():
        # deep first: layers 0-1 concatenate a left-out child with no bottleneck output
        with pytest.raises(TypeError, match="expected Tensor"):
            reference.run(ids, mask, tasks=["deep", "shallow"])
        # shallow first: pre_block looks up the block's first adapter where it does not exist
        with pytest.raises(KeyError, match="shallow"):
            reference.run(ids, mask, tasks=["shallow", "deep"])
        ours = encoder(ids, mask, tasks=["shallow", "deep"])
        for task in ("deep", "shallow"):
            alone = reference.run(ids, mask, tasks=task)[task]
            torch.testing.assert_close(ours[task], alone, **TOL)


def test_switching_setups_reactivates(three_tasks, monkeypatch):
    """Re-activation is skipped only when the setup is unchanged; AdapterHub's block ``==``
    ignores length, so a shorter Parallel must still re-activate."""
    encoder, reference = three_tasks
    calls = []
    activate = reference.model.set_active_adapters
    monkeypatch.setattr(
        reference.model, "set_active_adapters", lambda *a, **k: calls.append(a) or activate(*a, **k)
    )
    ids, mask = padded_batch()
    everything = reference.parallel_forward(TASKS)
    with torch.inference_mode():
        everything(ids, mask)
        everything(ids, mask)
        assert len(calls) <= 1  # the fixture's reference may already be in this setup
        theirs = reference.run(ids, mask, tasks=TASKS[:2], dropped_layers=1)
        ours = encoder(ids, mask, tasks=TASKS[:2], dropped_layers=1)
        again = everything(ids, mask)
        ours_all = encoder(ids, mask, tasks=TASKS)
    assert list(theirs) == TASKS[:2]
    for task in TASKS[:2]:
        torch.testing.assert_close(ours[task], theirs[task], **TOL)
    for task, hidden in zip(TASKS, again, strict=True):
        torch.testing.assert_close(ours_all[task], hidden, **TOL)


def test_roberta_parallel_matches():
    encoder = make_encoder("houlsby", dict.fromkeys(TASKS, 0), family="roberta")
    ids, mask = padded_batch()
    forward = build_adapterhub_reference(encoder, TASKS).parallel_forward(TASKS, dropped_layers=1)
    with torch.inference_mode():
        ours = encoder(ids, mask, tasks=TASKS, dropped_layers=1)
        theirs = forward(ids, mask)
    for task, hidden in zip(TASKS, theirs, strict=True):
        torch.testing.assert_close(ours[task], hidden, **TOL)


def test_reference_owns_copies_of_the_weights():
    encoder = make_encoder("pfeiffer", {"rte": 0})
    reference = reference_for(encoder)
    ours = encoder.modules_of("rte")[SiteKey(1, Site.OUTPUT)]
    theirs = reference.adapter_layer(1, Site.OUTPUT).adapters["rte"]
    torch.testing.assert_close(theirs.adapter_up.weight, ours.up.weight, rtol=0, atol=0)
    assert theirs.adapter_up.weight.data_ptr() != ours.up.weight.data_ptr()
    hub_embed = reference.model.embeddings.word_embeddings.weight
    assert hub_embed.data_ptr() != encoder.backbone.embeddings.word_embeddings.weight.data_ptr()
    assert not hasattr(encoder.backbone, "adapters_config")  # our backbone is left untouched


def test_spec_reads_bottleneck_and_layers():
    encoder = make_encoder("houlsby", {"rte": 1})
    spec = adapter_spec(encoder, "rte")
    assert (spec.kind, spec.bottleneck, spec.layers) == ("houlsby", 16, (1, 2, 3))
    assert spec.sites == frozenset({Site.ATTENTION, Site.OUTPUT})


def test_reduction_factor_reproduces_every_width():
    for bottleneck in range(1, 769):
        spec = AdapterSpec("pfeiffer", SeqBnConfig, bottleneck, (0, 1), frozenset({Site.OUTPUT}))
        factor = spec.config(768, 2)["reduction_factor"]
        assert int(768 // factor) == bottleneck, factor


class _NotABottleneck(SiteModule):
    def delta(self, inputs: SiteInputs) -> torch.Tensor:
        return inputs.projected


def test_unsupported_modules_are_refused_with_reasons():
    shared = make_encoder("pfeiffer", {})
    build_method({"name": "pfeiffer", "shared": True}).apply(shared, "rte")
    with pytest.raises(ValueError, match="cross-layer sharing"):
        build_adapterhub_reference(shared)
    other = make_encoder("pfeiffer", {})
    other.add_module_at("bias", 0, Site.OUTPUT, _NotABottleneck())
    with pytest.raises(ValueError, match="_NotABottleneck.*Pfeiffer/Houlsby"):
        build_adapterhub_reference(other)
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        build_adapterhub_reference(make_encoder("pfeiffer", {"rte": 0}), ["nope"])


def test_bad_run_arguments_name_the_choices(three_tasks):
    _, reference = three_tasks
    ids, mask = padded_batch()
    with pytest.raises(ValueError, match=r"choose 0\.\.3"):
        reference.run(ids, mask, tasks="rte", dropped_layers=4)
    with pytest.raises(ValueError, match="chosen from"):
        reference.run(ids, mask, tasks=["rte", "qqp"])
    with pytest.raises(ValueError, match="distinct"):
        reference.run(ids, mask, tasks=["rte", "rte"])


@pytest.mark.slow
def test_bert_base_parallel_matches():
    encoder = make_encoder("pfeiffer", dict.fromkeys(TASKS, 0), model="bert-base")
    ids, mask = padded_batch()
    forward = build_adapterhub_reference(encoder, TASKS).parallel_forward(TASKS, dropped_layers=5)
    with torch.inference_mode():
        ours = encoder(ids, mask, tasks=TASKS, dropped_layers=5)
        theirs = forward(ids, mask)
    for task, hidden in zip(TASKS, theirs, strict=True):
        torch.testing.assert_close(ours[task], hidden, **TOL)
