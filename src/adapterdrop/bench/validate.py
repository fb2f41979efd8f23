"""Checks a grid runs on its config before any model is built: a bad value fails in seconds,
naming the key, the value and what would be valid, instead of failing each point after its
model loaded (or, worse, silently measuring something else)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from transformers import AutoModel

from adapterdrop.checks import check_int, check_known_keys, is_int
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method
from adapterdrop.models import model_config

#: Type and least value of each timing budget key (ints count as seconds).
_TIMING_TYPES = {
    "warmup": (int, 0),
    "warmup_seconds": (float, 0),
    "min_reps": (int, 1),
    "min_seconds": (float, 0),
    "max_reps": (int, 1),
}


def check_timing(timing: Mapping[str, Any], what: str = "timing") -> dict[str, Any]:
    """A complete, consistent budget for :func:`adapterdrop.bench.timer.measure_interleaved`."""
    for key, (kind, least) in _TIMING_TYPES.items():
        value = timing.get(key)
        number = is_int(value) or (kind is float and isinstance(value, float))
        if not number or value < least:
            kind_name = "an int" if kind is int else "a number"
            raise ValueError(f"{what}.{key} must be {kind_name} >= {least}, got {value!r}")
    if timing["max_reps"] < timing["min_reps"]:
        raise ValueError(
            f"{what}.max_reps ({timing['max_reps']}) must be >= min_reps ({timing['min_reps']})"
        )
    return dict(timing)


def check_choices(what: str, values: Any, allowed: Sequence[Any]) -> list[Any]:
    """``values`` as a list: non-empty, distinct, each one of ``allowed``. A bare string
    (``bench.phases=training``) is refused, not split into its letters."""
    check_list(values, what, f"[{allowed[0]}]")
    values = list(values)
    unknown = [v for v in values if v not in allowed]
    if unknown or not values or len(set(values)) != len(values):
        raise ValueError(f"{what} must be distinct values from {list(allowed)}; got {values}")
    return values


def check_list(value: Any, what: str, example: str) -> list[Any]:
    """A list (or tuple) as such: a scalar gets a hint to bracket it, instead of failing later
    with ``'int' object is not iterable``."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"{what} must be a list such as {example}, got {value!r}")
    return list(value)


def check_shapes(
    model_cfg: Mapping[str, Any],
    batch_sizes: Iterable[Any],
    seq_lens: Iterable[Any],
    names: tuple[str, str] = ("batch_size", "seq_len"),
) -> None:
    """Refuse batch sizes that are not ints >= 1 and sequences that are not ints within the
    model's position embeddings; ``names`` are the keys that set them, for the message."""
    batch_name, seq_name = names
    for batch in batch_sizes:
        check_int(batch, batch_name)
    positions = model_config(model_cfg).max_position_embeddings
    # RoBERTa's positions start after the padding index, so two of its slots are unusable.
    limit = positions - 2 * (model_cfg["family"] == "roberta")
    for seq in seq_lens:
        if not is_int(seq) or not 1 <= seq <= limit:
            raise ValueError(
                f"{seq_name} {seq!r} impossible for {model_cfg['name']}: use 1..{limit}"
            )


def check_threads(threads: Any) -> int | None:
    """``null`` (torch's default) or a positive thread count."""
    return None if threads is None else check_int(threads, "threads")


def check_method(
    method: Mapping[str, Any], what: str, model: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Validate a method config without building a model: unknown names and options fail, and
    with ``model`` so do values that only its shapes refuse (``reduction_factor: 0``, more
    layers left out than it has): the method is applied to the model's skeleton on the meta
    device, which allocates nothing."""
    try:
        built = build_method(method)
        if model is not None:
            with torch.device("meta"):
                skeleton = AutoModel.from_config(model_config(model), add_pooling_layer=False)
            built.apply(AdapterEncoder(skeleton), "validation")
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: {err}") from err
    return dict(method)


def _config_keys(path: Path) -> set[str]:
    """Keys a config file defines, plus the groups its defaults list places in it (a group
    packaged elsewhere, like ``/preset/<grid>@_global_``, adds no key here)."""
    node = OmegaConf.to_container(OmegaConf.load(path))
    keys = set(node) - {"defaults"}
    for entry in node.get("defaults", []):
        if isinstance(entry, dict):
            names = (name.removeprefix("override ") for name in entry if "@" not in name)
            keys |= {name.lstrip("/").split("/")[0] for name in names}
    return keys


def check_bench_keys(cfg: Mapping[str, Any], conf: Path) -> None:
    """Every key of a composed bench config is one the configs in ``conf`` define."""
    grid = cfg["bench"]["name"]
    check_known_keys(cfg, _config_keys(conf / "bench.yaml") | {"hydra"}, "the bench config")
    check_known_keys(cfg["bench"], _config_keys(conf / "bench" / f"{grid}.yaml"), f"bench={grid}")
    check_known_keys(cfg["timing"], _TIMING_TYPES, "timing")
