"""Tables of the efficiency studies from stored results: each study's rows go to its table
builder (studies measured by :mod:`adapterdrop.bench.experiments.efficiency`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from adapterdrop.reporting import efficiency_coda as coda
from adapterdrop.reporting import efficiency_drop as drop
from adapterdrop.reporting import efficiency_multitask as multitask
from adapterdrop.reporting import efficiency_overheads as overheads

TableBuilder = Callable[[pd.DataFrame, Mapping[str, Any]], dict[str, pd.DataFrame]]

#: Study (``bench.experiments.efficiency.STUDIES``) -> its table builder.
STUDY_TABLES: dict[str, TableBuilder] = {
    "robust": drop.robust_tables,
    "specialized": drop.specialized_tables,
    "coda": coda.coda_tables,
    "overheads": overheads.overhead_tables,
    "multitask": multitask.multitask_tables,
}
#: Headline tables and the columns ``make tables`` puts side by side across machines (keyed
#: without dtype, which machines resolve differently).
COMPARISON = {
    "efficiency_overheads": (
        ["source", "method"],
        ["training_speed_vs_full", "inference_speed_vs_plain"],
    ),
    "efficiency_robust": (["source"], ["robust_speedup"]),
    "efficiency_coda": (["source", "seq_len", "token_ratio"], ["speed_vs_dense_r1"]),
}


def tables(df: pd.DataFrame, cfg: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """Every measured study's tables, each built from that study's rows only."""
    out: dict[str, pd.DataFrame] = {}
    for study, rows in df.groupby("config.study", sort=False):
        out |= STUDY_TABLES[study](rows.reset_index(drop=True), cfg)
    return out
