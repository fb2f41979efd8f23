"""CoDA inference speed against the token ratio ``r`` and the sequence length.

Per sequence length, one point times on one backbone and one batch, interleaved:

* ``pfeiffer``: the standard adapter (every token through every frozen layer);
* ``coda_r<r>``: CoDA with ``k = ceil(S / r)`` routed tokens per layer; ``r = 1`` is the dense
  parallel adapter (every token routed, same code path), the baseline of the speed-up;
* ``frozen_dense`` and ``frozen_r<r>``: the frozen layers alone on ``S`` and on ``k`` tokens,
  without router, soft top-k, gather or adapter: the compute CoDA's routing can save at best.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch

from adapterdrop.bench.devices import storage_dtype
from adapterdrop.bench.experiments.efficiency_common import (
    common_fields,
    device_of,
    speeds,
    summaries,
)
from adapterdrop.bench.inputs import random_inputs
from adapterdrop.bench.model_cache import cached
from adapterdrop.bench.models import build_encoder
from adapterdrop.bench.phases import time_phase
from adapterdrop.bench.validate import check_list, check_method, check_shapes
from adapterdrop.checks import check_int_list
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods.coda import check_token_ratio, frozen_layer, selected_count


def ratio_name(ratio: float) -> str:
    """A ratio as part of a metric name, ``2.5 -> 2p5``: dots separate flattened columns."""
    return f"{ratio:g}".replace(".", "p")


def coda_points(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One point per sequence length; every ratio and the references are timed in it."""
    coda = cfg["bench"]["coda"]
    given = check_list(coda["token_ratios"], "bench.coda.token_ratios", "[1, 3, 5]")
    ratios = [check_token_ratio(r) for r in given]
    if 1 not in ratios:
        raise ValueError(
            f"coda token_ratios {ratios} must include 1, the dense parallel adapter that the "
            "speed-ups are relative to"
        )
    if len({ratio_name(r) for r in ratios}) != len(ratios):
        raise ValueError(f"coda token_ratios has duplicates: {ratios}")
    if coda["method"].get("name") != "coda":
        raise ValueError(f"bench.coda.method must be a coda config, got {coda['method']}")
    for ratio in ratios:
        check_method({**coda["method"], "token_ratio": ratio}, "bench.coda.method")
    check_method(coda["method"], "bench.coda.method", cfg["model"])  # its shapes, once
    seq_lens = check_int_list(coda["seq_lens"], "bench.coda.seq_lens", example="[128, 512]")
    shape_keys = ("bench.coda.batch_size", "bench.coda.seq_lens")
    check_shapes(cfg["model"], [coda["batch_size"]], seq_lens, shape_keys)
    target = coda["frozen_target"]
    if set(target) != {"seq_len", "token_ratio", "min_speedup"}:
        raise ValueError(
            f"bench.coda.frozen_target needs seq_len, token_ratio, min_speedup; got {target}"
        )
    common = {
        **common_fields(cfg, "coda"),
        "adapter": check_method(cfg["bench"]["adapter"], "bench.adapter", cfg["model"]),
        "coda_method": dict(coda["method"]),
        "token_ratios": sorted(ratios),
        "batch_size": coda["batch_size"],
    }
    return [{**common, "seq_len": s} for s in coda["seq_lens"]]


def _encoder(point: Mapping[str, Any]) -> AdapterEncoder:
    """One frozen backbone with a ``pfeiffer`` task and a ``coda_r<r>`` task per ratio."""
    fields = ("study", "model", "adapter", "coda_method", "token_ratios", "device", "seed")
    methods = {"pfeiffer": point["adapter"]}
    for ratio in point["token_ratios"]:
        methods[f"coda_r{ratio_name(ratio)}"] = {**point["coda_method"], "token_ratio": ratio}
    return cached(
        {k: point[k] for k in fields},
        lambda: build_encoder(point["model"], methods, device_of(point), point["seed"]),
    )


def measure_coda(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    device = device_of(point)
    encoder = _encoder(point)
    seq_len, dtype = point["seq_len"], point["dtype"]
    ids, mask = random_inputs(
        encoder.backbone.config.vocab_size, point["batch_size"], seq_len, device, point["seed"]
    )
    # Weights in ``dtype`` (as time_phase stores them at inference) before the embeddings.
    encoder.to(storage_dtype(dtype, "inference"))
    with torch.inference_mode():
        embedded = encoder.backbone.embeddings(input_ids=ids)

    def run(task: str) -> Callable[[], None]:
        return partial(encoder, ids, mask, tasks=task)

    def frozen(tokens: int) -> Callable[[], None]:
        hidden = embedded[:, :tokens].contiguous()

        def call() -> None:
            out = hidden
            for layer in encoder.layers:
                out = frozen_layer(layer, out, None)

        return call

    ratios = point["token_ratios"]
    callables = {"pfeiffer": run("pfeiffer"), "frozen_dense": frozen(seq_len)}
    for ratio in ratios:
        callables[f"coda_r{ratio_name(ratio)}"] = run(f"coda_r{ratio_name(ratio)}")
        if ratio != 1:
            callables[f"frozen_r{ratio_name(ratio)}"] = frozen(selected_count(seq_len, ratio))
    samples = time_phase(
        callables, [encoder], "inference", device=device, dtype=dtype, timing=point["timing"]
    )
    coda_names = [f"coda_r{ratio_name(r)}" for r in ratios]
    metrics: dict[str, Any] = summaries(samples)
    metrics["vs_dense"] = speeds(samples, "coda_r1", coda_names)
    metrics["vs_pfeiffer"] = speeds(samples, "pfeiffer", coda_names)
    metrics["frozen_only"] = speeds(
        samples, "frozen_dense", [f"frozen_r{ratio_name(r)}" for r in ratios if r != 1]
    )
    return metrics, samples
