"""Glue between stored results and published tables: load what is valid, write .md and .csv.

Table builders (:mod:`adapterdrop.reporting.table1` and the others) are pure functions from a
results DataFrame to a table DataFrame; this module supplies their input
(:func:`load_ok_results`) and their output (:func:`write_table`). Markdown is rendered here
because ``DataFrame.to_markdown`` needs ``tabulate``, which the suite does not depend on.
"""

from __future__ import annotations

import numbers
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from adapterdrop.results import DEFAULT_RESULTS_ROOT, atomic_write_text, load_results

DEFAULT_TABLES_ROOT = Path("results/tables")
#: Four significant digits: enough to show a 1 % difference between any two timings.
DEFAULT_FLOAT_FORMAT = "{:.4g}"


def load_ok_results(
    results_root: Path | str = DEFAULT_RESULTS_ROOT,
    experiment: str | None = None,
    *,
    strict: bool = True,
) -> pd.DataFrame:
    """Successful results only, ready for a table builder.

    ``strict`` (the default here) refuses to build a table while any result file is
    invalid, since a silently missing row would change the published numbers. Failed
    attempts are dropped: a point whose last attempt failed keeps its earlier success (kept
    beside the failure), and a point with no success is named in a warning.
    """
    df = load_results(results_root, experiment, strict=strict)
    if df.empty:
        return df
    is_ok = df["status"] == "ok"
    keys = df["experiment"] + "/" + df["point_id"]
    missing = df[~is_ok & ~keys.isin(set(keys[is_ok]))]
    if not missing.empty:
        names = ", ".join(missing["experiment"] + "/" + missing["point_id"])
        warnings.warn(f"{len(missing)} failed point(s) left out: {names}", stacklevel=2)
    ok = df[is_ok].reset_index(drop=True)
    ok.attrs = dict(df.attrs)
    return ok


def train_batches(run: pd.Series) -> str:
    """How a training run's batches were drawn: "by length" (``data.group_by_length``) or
    "random" (plain shuffling; results made before the option existed have no such key).
    The two are different settings, so a table keeps their runs apart."""
    grouped = run.get("config.data.group_by_length")
    return "by length" if isinstance(grouped, bool | int) and grouped else "random"


def load_experiment_runs(results_root: Path | str, experiment: str, target: str) -> pd.DataFrame:
    """The successful results of one training experiment; none is an error naming the make
    ``target`` that trains them."""
    runs = load_ok_results(results_root, experiment)
    if runs.empty:
        raise FileNotFoundError(
            f"no {experiment} results under {Path(results_root) / experiment}: run `make {target}`"
        )
    return runs


def _cell(value: Any, float_format: str) -> str:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral | bool):
        text = float_format.format(value)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")


def to_markdown(
    df: pd.DataFrame, *, index: bool = False, float_format: str = DEFAULT_FLOAT_FORMAT
) -> str:
    """GitHub-flavoured markdown table; numeric columns right-aligned, missing values blank."""
    frame = df.reset_index() if index else df
    headers = [_cell(c, float_format) for c in frame.columns]
    rows = [[_cell(v, float_format) for v in row] for row in frame.itertuples(index=False)]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    widths = [
        max(3, len(h), *(len(r[i]) for r in rows)) if rows else max(3, len(h))
        for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if num else "-" * w for w, num in zip(widths, numeric, strict=True)]
    return "\n".join([line(headers), line(rule), *(line(r) for r in rows)]) + "\n"


def write_table(
    df: pd.DataFrame,
    name: str,
    *,
    tables_root: Path | str = DEFAULT_TABLES_ROOT,
    index: bool = False,
    float_format: str = DEFAULT_FLOAT_FORMAT,
) -> str:
    """Write ``<tables_root>/<name>.md`` and ``.csv`` atomically; return the markdown.

    The CSV keeps full precision for further analysis; only the markdown is rounded.
    """
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"table name must be a plain file stem, got {name!r}")
    root = Path(tables_root)
    markdown = to_markdown(df, index=index, float_format=float_format)
    atomic_write_text(root / f"{name}.csv", df.to_csv(index=index))
    atomic_write_text(root / f"{name}.md", markdown)
    return markdown
