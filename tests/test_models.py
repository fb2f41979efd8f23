"""Backbones load offline: packaged MiniLM, random paper-size configs, a readable hub error."""

from __future__ import annotations

import pytest
import torch

from adapterdrop.models import ModelUnavailableError, load_backbone
from conftest import model_cfg


def test_minilm_loads_offline_and_embeds_deterministically(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = load_backbone(model_cfg("minilm-l6"))
    assert backbone.num_layers == 6 and backbone.hidden_size == 384
    batch = backbone.tokenizer(["Adapters are small."], return_tensors="pt")
    with torch.inference_mode():
        first = backbone.model(**batch).last_hidden_state
        second = backbone.model(**batch).last_hidden_state
    assert first.shape == (1, batch["input_ids"].shape[1], 384)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    # pretrained, not random: the packaged weights give a known non-trivial embedding norm
    assert 1.0 < first[0, 0].norm().item() < 100.0


def test_bert_base_random_has_paper_shape():
    backbone = load_backbone(model_cfg("bert-base"))
    config = backbone.model.config
    assert (config.num_hidden_layers, config.hidden_size) == (12, 768)
    assert len(backbone.model.encoder.layer) == 12


def test_tiny_is_small_and_has_a_tokenizer():
    backbone = load_backbone(model_cfg("tiny"))
    assert 2 <= backbone.num_layers <= 4
    assert backbone.tokenizer is not None


def test_hub_model_offline_fails_at_once_with_choices(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    cfg = {**model_cfg("bert-base"), "pretrained": True}
    with pytest.raises(ModelUnavailableError) as info:
        load_backbone(cfg)
    message = str(info.value)
    assert "bert-base-uncased" in message and "unreachable" in message
    assert "model=minilm-l6" in message and "pretrained=false" in message


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="family 'gpt2'"):
        load_backbone({**model_cfg("tiny"), "family": "gpt2"})


def test_an_unreachable_hub_fails_without_a_single_request(monkeypatch, tmp_path):
    # No HF_HUB_OFFLINE: the probe finds the hub unreachable, and nothing may try it anyway
    # (transformers' own offline load retried requests for about 23 s).
    from adapterdrop import models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "_hub_reachable", lambda: False)

    def no_request(*args, **kwargs):
        raise AssertionError("a request was made to an unreachable hub")

    monkeypatch.setattr(models.AutoModel, "from_pretrained", no_request)
    monkeypatch.setattr(models.AutoConfig, "from_pretrained", no_request)
    with pytest.raises(ModelUnavailableError, match="unreachable"):
        load_backbone({**model_cfg("bert-base"), "pretrained": True})
