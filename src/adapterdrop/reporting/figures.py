"""One figure per artefact, drawn from the built tables only (no measuring, no torch).

Inputs are the CSVs that ``make tables`` writes: ``results/<machine>/tables/<table>.csv`` for
the benchmarks (one series per machine; ``results/<machine>/repeat/tables`` holds a re-run of
Table 2, drawn as its run-to-run spread) and ``results/tables/fig2*.csv`` for the training
results. Every panel has labelled axes with units and a legend; confidence intervals are drawn
where a table has them (``ci_low``/``ci_high`` columns, or cells written ``"1.26 [1.22,
1.33]"``); the papers' values come from the tables' ``paper`` rows and columns, which the table
builders fill from their modules' constants (``PAPER_PER_LAYER`` of
:mod:`adapterdrop.reporting.table2` and the like; ``tests/test_notebooks.py`` checks they
agree), and for Fig. 2 from :data:`PAPER_FIG2_RELATIVE` (``papers.md``).

The notebooks in ``notebooks/`` call these functions and :func:`save_figure`; each function
returns a :class:`matplotlib.figure.Figure` (no pyplot state, nothing shown).
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

MAIN = "main"
#: Folders of ``results/`` that are not machines.
NOT_MACHINES = frozenset({"raw", "tables", "figures", "comparison", "variants"})
FORMATS = ("png", "pdf")
PAPER_COLOR = "black"
PAPER_MARKER = "*"
IDEAL_COLOR = "0.45"
BASELINE_COLOR = "0.55"
MACHINE_MARKERS = ("o", "s", "^", "D", "v", "P")
MACHINE_LINESTYLES = ("-", "--", "-.", ":")
#: AdapterDrop paper, Fig. 2 (``papers.md``): with 5 of roberta-base's 12 layers dropped, the
#: average GLUE dev score as a share of the standard adapter's with none dropped.
PAPER_FIG2_RELATIVE = {"specialized": {5: 0.971}, "robust": {5: 0.954}}
PAPER_FIG2_LAYERS = 12
FIG2_VARIANTS = {"standard": ":", "robust": "-", "specialized": "--"}
#: The columns of ``fig2.csv`` that tell one curve from another (older tables lack some).
FIG2_CURVE = ("model", "task", "limit_examples", "precision", "batches", "epochs", "metric")
METRIC_LABELS = {
    "accuracy": "accuracy (fraction correct)",
    "f1": "F1 of the positive class (0-1)",
    "f1a": "F1 over answer options (0-1)",
    "macro_f1": "macro F1 (0-1)",
    "matthews_corr": "Matthews correlation (-1 to 1)",
    "pearson": "Pearson r (-1 to 1)",
    "spearman": "Spearman rho (-1 to 1)",
    "em": "exact match (fraction of questions)",
}

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_WITH_CI = re.compile(rf"^\s*({_NUM})\s*\[\s*({_NUM})\s*,\s*({_NUM})\s*\]\s*$")
_RANGE = re.compile(rf"^\s*({_NUM})\s*[-\u2013]\s*({_NUM})\s*$")
_UP_TO = re.compile(rf"^\s*up to\s+({_NUM})\s*x?\s*$", re.IGNORECASE)
_PLAIN = re.compile(rf"^\s*({_NUM})\s*$")
NAN = float("nan")


# --------------------------------------------------------------------------------------------
# Reading tables
# --------------------------------------------------------------------------------------------


def machine_folders(root: Path | str, collection: str = MAIN) -> dict[str, Path]:
    """``{machine tag: tables folder}`` for every machine under ``root`` with built tables;
    ``collection`` ``"repeat"`` gives the folders of the machines' re-runs."""
    root = Path(root)
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name in NOT_MACHINES or folder.name.startswith("."):
            continue
        tables = folder / "tables" if collection == MAIN else folder / collection / "tables"
        if tables.is_dir() and any(tables.glob("*.csv")):
            found[folder.name] = tables
    return found


def read_machine_tables(
    root: Path | str, name: str, *, collection: str = MAIN, required: bool = True
) -> pd.DataFrame:
    """Table ``name`` of every machine under ``root``, stacked, with a ``machine`` column.

    Missing everywhere: :class:`FileNotFoundError` naming where it was looked for, or an empty
    frame when not ``required``.
    """
    frames = [
        pd.read_csv(folder / f"{name}.csv").assign(machine=machine)
        for machine, folder in machine_folders(root, collection).items()
        if (folder / f"{name}.csv").is_file()
    ]
    if frames:
        return pd.concat(frames, ignore_index=True)
    if required:
        where = "<machine>/tables" if collection == MAIN else f"<machine>/{collection}/tables"
        raise FileNotFoundError(
            f"no {name}.csv in {Path(root)}/{where}/: run the benchmark, or `make tables`"
        )
    return pd.DataFrame()


def read_table(tables_dir: Path | str, name: str) -> pd.DataFrame:
    """``<tables_dir>/<name>.csv`` (training tables: ``results/tables``)."""
    path = Path(tables_dir) / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: build it with `make tables`")
    return pd.read_csv(path)


def parse_estimate(value: object) -> tuple[float, float, float]:
    """``(value, low, high)`` of one table cell; NaN where the cell does not give it.

    ``1.26`` -> (1.26, nan, nan); ``"1.261 [1.221, 1.334]"`` (estimate and confidence
    interval) -> (1.261, 1.221, 1.334); a paper's range ``"0.94-0.96"`` -> (nan, 0.94, 0.96);
    ``"up to 1.6"`` -> (nan, nan, 1.6); blank -> all NaN.
    """
    if value is None:
        return NAN, NAN, NAN
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return float(value), NAN, NAN
    text = str(value)
    if not text.strip() or text.strip().lower() == "nan":
        return NAN, NAN, NAN
    if found := _WITH_CI.match(text):
        return tuple(float(g) for g in found.groups())  # type: ignore[return-value]
    if found := _PLAIN.match(text):
        return float(found.group(1)), NAN, NAN
    if found := _RANGE.match(text):
        return NAN, float(found.group(1)), float(found.group(2))
    if found := _UP_TO.match(text):
        return NAN, NAN, float(found.group(1))
    raise ValueError(f"not an estimate: {value!r}")


def estimates(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """``value``, ``low`` and ``high`` columns parsed from ``frame[column]``, same index."""
    parsed = [parse_estimate(v) for v in frame[column]]
    return pd.DataFrame(parsed, index=frame.index, columns=["value", "low", "high"], dtype=float)


# --------------------------------------------------------------------------------------------
# Drawing helpers
# --------------------------------------------------------------------------------------------


def _styles(machines: Iterable[str]) -> dict[str, dict[str, str]]:
    """A marker and a line style per machine, stable in sorted order."""
    return {
        machine: {
            "marker": MACHINE_MARKERS[i % len(MACHINE_MARKERS)],
            "linestyle": MACHINE_LINESTYLES[i % len(MACHINE_LINESTYLES)],
        }
        for i, machine in enumerate(sorted(set(machines)))
    }


def _errorbar(ax: Axes, x, y, low=None, high=None, **kwargs) -> None:
    """Points (or a line) with confidence intervals where ``low``/``high`` are finite."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if low is None or high is None:
        ax.plot(x, y, **kwargs)
        return
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    below = np.where(np.isfinite(low), y - low, 0.0)
    above = np.where(np.isfinite(high), high - y, 0.0)
    ax.errorbar(x, y, yerr=np.clip([below, above], 0, None), capsize=3, **kwargs)


def _paper_level(ax: Axes, low: float, high: float, label: str, value: float = NAN) -> bool:
    """The paper's value as a horizontal line, or its range as a band; False if none."""
    if math.isfinite(low) and math.isfinite(high):
        ax.axhspan(low, high, color=PAPER_COLOR, alpha=0.12, label=f"{label}: {low:g}-{high:g}")
        return True
    level = value if math.isfinite(value) else high
    if math.isfinite(level):
        prefix = "up to " if not math.isfinite(value) else ""
        ax.axhline(
            level, color=PAPER_COLOR, linestyle="--", lw=1.2, label=f"{label}: {prefix}{level:g}"
        )
        return True
    return False


def _note(ax: Axes, text: str) -> None:
    """A legend entry holding text only (no value to draw)."""
    ax.plot([], [], " ", label=text)


def _parity(ax: Axes, label: str) -> None:
    ax.axhline(1.0, color="0.7", lw=0.8, zorder=0, label=label)


def _legend(ax: Axes, **kwargs) -> None:
    ax.legend(fontsize="x-small", **kwargs)


def _legend_below(ax: Axes, ncol: int = 2) -> None:
    """The legend under the panel, for panels whose series would cover the data."""
    ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol)


def _shared_legend(fig: Figure, axes: Sequence[Axes], ncol: int = 4) -> None:
    """One legend below the figure for ``axes``, which draw the same series."""
    seen: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    fig.legend(
        list(seen.values()), list(seen), loc="outside lower center", ncol=ncol, fontsize="small"
    )


def short_names(machines: Iterable[str]) -> dict[str, str]:
    """Machine tags without the words all of them start with (``avx2-2t`` for
    ``cpu-amd-epyc-avx2-2t`` beside ``cpu-amd-epyc-avx512bf16-2t``); a lone tag is kept."""
    tags = sorted(set(machines))
    if len(tags) < 2:
        return {tag: tag for tag in tags}
    words = [tag.split("-") for tag in tags]
    common = 0
    while all(len(w) > common + 1 for w in words) and len({w[common] for w in words}) == 1:
        common += 1
    return {tag: "-".join(w[common:]) for tag, w in zip(tags, words, strict=True)}


def _spread(offset: int, count: int, step: float = 0.05) -> float:
    """A factor that moves series ``offset`` of ``count`` sideways on a log axis, so their
    error bars do not hide each other."""
    return 2 ** ((offset - (count - 1) / 2) * step)


CI_NOTE = "error bars: 95 % bootstrap confidence intervals"


def _settings(frame: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """Each row's setting as " (value, ...)" over those of `keys` that vary in the frame
    ("" where none does), so that a legend tells the settings' points apart."""
    varying = [key for key in keys if key in frame and frame[key].astype(str).nunique() > 1]
    if not varying:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[varying].astype(str).agg(", ".join, axis=1).map(" ({})".format)


def _new_figure(nrows: int, ncols: int, width: float, height: float) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig: Figure, out_dir: Path | str, name: str, dpi: int = 150) -> list[Path]:
    """Write ``<out_dir>/<name>.png`` and ``.pdf``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = out_dir / f"{name}.{fmt}"
        fig.savefig(path, dpi=dpi, metadata={"Date": None} if fmt == "pdf" else None)
        paths.append(path)
    return paths


def _log2_tasks(ax: Axes, values: Sequence[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(values), [str(v) for v in values])
    ax.minorticks_off()


# --------------------------------------------------------------------------------------------
# Table 1: adapter vs full fine-tuning speed
# --------------------------------------------------------------------------------------------


def table1_paper(summary: pd.DataFrame | None) -> dict[str, tuple[float, float]]:
    """``{phase: (low, high)}`` of the paper's relative speed, from ``table1_summary``."""
    if summary is None or summary.empty or "paper_speed_max" not in summary:
        return {}
    first = summary.groupby("phase")[["paper_speed_min", "paper_speed_max"]].first()
    return {phase: (float(row.iloc[0]), float(row.iloc[1])) for phase, row in first.iterrows()}


def table1_figure(table: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    """Relative speed adapter / full fine-tuning per (sequence length, batch) cell, one panel
    per phase; a series per (machine, implementation, method), with its confidence interval."""
    paper = table1_paper(summary)
    phases = [p for p in ("training", "inference") if p in set(table["phase"])]
    styles = _styles(table["machine"])
    cells = sorted(
        {(int(s), int(b)) for s, b in zip(table["seq_len"], table["batch_size"], strict=True)}
    )
    series = sorted({tuple(k) for k in table[["machine", "implementation", "method"]].values})
    colors = {key: f"C{i}" for i, key in enumerate(sorted({(i, m) for _, i, m in series}))}
    fig, axes = _new_figure(1, len(phases), 5.4, 3.8)
    width = 0.8 / max(len(series), 1)
    for ax, phase in zip(axes[0], phases, strict=True):
        rows = table[table["phase"] == phase]
        for k, (machine, impl, method) in enumerate(series):
            part = rows[
                (rows["machine"] == machine)
                & (rows["implementation"] == impl)
                & (rows["method"] == method)
            ]
            if part.empty:
                continue
            x = [
                cells.index((int(s), int(b)))
                for s, b in zip(part["seq_len"], part["batch_size"], strict=True)
            ]
            offset = (k - (len(series) - 1) / 2) * width
            label = f"{impl} {method}" + (f" @ {machine}" if len(styles) > 1 else "")
            _errorbar(
                ax,
                np.add(x, offset),
                part["relative_speed"],
                part.get("ci_low"),
                part.get("ci_high"),
                color=colors[(impl, method)],
                marker=styles[machine]["marker"],
                linestyle="none",
                label=label,
            )
        low, high = paper.get(phase, (NAN, NAN))
        _paper_level(ax, low, high, "paper (GPU)")
        _parity(ax, "parity with full FT")
        ax.set_xticks(range(len(cells)), [f"len {s}\nbatch {b}" for s, b in cells])
        ax.set(
            title=f"Table 1, {phase}" + (f" ({next(iter(styles))})" if len(styles) == 1 else ""),
            xlabel="input (sequence length in tokens, batch size)",
            ylabel="speed, adapter / full fine-tuning (x)",
        )
        _legend(ax)
    fig.suptitle(f"Table 1: adapter vs full fine-tuning speed ({CI_NOTE})", fontsize="medium")
    return fig


# --------------------------------------------------------------------------------------------
# Table 2: speed-up per shared layer vs number of tasks
# --------------------------------------------------------------------------------------------


def ideal_speedup(dropped: np.ndarray | Sequence[int], tasks: int, layers: int) -> np.ndarray:
    """Ideal cost model (``papers.md``): time ~ n + (L - n) T, so t(0)/t(n) = LT/(n+(L-n)T)."""
    n = np.asarray(dropped, dtype=float)
    return layers * tasks / (n + (layers - n) * tasks)


def table2_figure(
    summary: pd.DataFrame,
    curve: pd.DataFrame,
    repeat: pd.DataFrame | None = None,
    repeat_curve: pd.DataFrame | None = None,
) -> Figure:
    """Left: % speed-up per shared layer vs the number of tasks T, ours and AdapterHub's per
    machine, the paper's and the ideal cost model's; a machine's re-run (``repeat``) as open
    markers joined to the first run (the run-to-run spread). Right, one panel per machine:
    the measured speed-up t(0)/t(n) of our Parallel inference against dropped layers n, one
    line per T (a re-run's, ``repeat_curve``, thin and faded), with the ideal and the paper's
    headline (1 + 5 x per-layer, "8 tasks 39 % faster") at n = 5. Table 2 has no confidence
    intervals: the re-runs are its spread."""
    machines = sorted(set(summary["machine"]))
    styles = _styles(machines)
    fig, axes = _new_figure(1, 1 + len(machines), 4.6, 3.9)
    ax = axes[0, 0]
    tasks = sorted(int(t) for t in set(summary["num_tasks"]))
    impl_colors = {"ours": "C0", "adapterhub": "C1"}
    for machine in machines:
        rows = summary[summary["machine"] == machine].sort_values("num_tasks")
        again = (
            repeat[repeat["machine"] == machine].sort_values("num_tasks")
            if repeat is not None and not repeat.empty
            else pd.DataFrame()
        )
        for impl, color in impl_colors.items():
            column = f"{impl}_per_layer_%"
            if column not in rows:
                continue
            ax.plot(
                rows["num_tasks"],
                rows[column],
                color=color,
                marker=styles[machine]["marker"],
                linestyle=styles[machine]["linestyle"],
                label=f"{impl} @ {machine}",
            )
            if column in again:
                merged = rows.merge(again, on="num_tasks", suffixes=("", "_rep"))
                ax.vlines(merged["num_tasks"], merged[column], merged[f"{column}_rep"], color=color)
                ax.plot(
                    merged["num_tasks"],
                    merged[f"{column}_rep"],
                    color=color,
                    marker=styles[machine]["marker"],
                    markerfacecolor="none",
                    linestyle="none",
                    label=f"{impl} @ {machine}, re-run",
                )
    first = summary.drop_duplicates("num_tasks").sort_values("num_tasks")
    if "ideal_per_layer_%" in first:
        ax.plot(
            first["num_tasks"],
            first["ideal_per_layer_%"],
            ":",
            color=IDEAL_COLOR,
            label="ideal cost model",
        )
    if "paper_per_layer_%" in first:
        ax.plot(
            first["num_tasks"],
            first["paper_per_layer_%"],
            linestyle="none",
            marker=PAPER_MARKER,
            markersize=11,
            color=PAPER_COLOR,
            label="paper (GPU)",
        )
    _log2_tasks(ax, tasks)
    ax.set(
        title="Table 2: speed-up per shared layer",
        xlabel="number of tasks T (log scale)",
        ylabel="speed-up per dropped adapter layer (%)",
    )
    _legend_below(ax)

    layers = int(curve["dropped_layers"].max()) + 1
    paper = first.set_index("num_tasks").get("paper_per_layer_%")
    for ax, machine in zip(axes[0, 1:], machines, strict=True):
        rows = curve[curve["machine"] == machine]
        again = pd.DataFrame()
        if repeat_curve is not None and not repeat_curve.empty:
            again = repeat_curve[repeat_curve["machine"] == machine]
        for k, (t, group) in enumerate(rows.groupby("num_tasks")):
            color = f"C{k}"
            if not _speedup_line(ax, group, color=color, marker=".", label=f"T={t}"):
                continue
            if not again.empty:
                _speedup_line(ax, again[again["num_tasks"] == t], color=color, lw=0.8, alpha=0.5)
            n = np.arange(layers)
            ax.plot(n, ideal_speedup(n, int(t), layers), ":", color=color, lw=1)
            if paper is not None and t in paper.index and pd.notna(paper[t]):
                ax.plot(
                    5,
                    1 + 5 * paper[t] / 100,
                    PAPER_MARKER,
                    color=color,
                    markersize=11,
                    markeredgecolor=PAPER_COLOR,
                )
        ax.plot([], [], ":", color=IDEAL_COLOR, label="ideal cost model")
        if not again.empty:
            ax.plot([], [], color=IDEAL_COLOR, lw=0.8, alpha=0.5, label="re-run")
        if paper is not None:
            ax.plot(
                [],
                [],
                PAPER_MARKER,
                color="white",
                markeredgecolor=PAPER_COLOR,
                markersize=11,
                label="paper (GPU): 1 + 5 x per-layer at n=5",
            )
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.set(
            title=f"Parallel inference, ours\n@ {machine}",
            xlabel=f"dropped layers n (of {layers})",
            ylabel="speed-up t(0)/t(n) (x, log scale)",
        )
        _legend(ax)
    return fig


def _speedup_line(ax: Axes, group: pd.DataFrame, **kwargs) -> bool:
    """t(0)/t(n) of one T's curve; False when it has no n = 0 point."""
    group = group.sort_values("dropped_layers")
    base = group.loc[group["dropped_layers"] == 0, "ours_s"]
    if base.empty:
        return False
    ax.plot(group["dropped_layers"], base.iloc[0] / group["ours_s"], **kwargs)
    return True


# --------------------------------------------------------------------------------------------
# Table 3: AdapterFusion cost, and pruning
# --------------------------------------------------------------------------------------------

TABLE3_PANELS = {
    ("training", "full"): "training_vs_full",
    ("inference", "full"): "inference_vs_full",
    ("training", "adapter"): "training_vs_adapter",
    ("inference", "adapter"): "inference_vs_adapter",
}


def table3_figure(
    table: pd.DataFrame, detail: pd.DataFrame | None = None, pruning: pd.DataFrame | None = None
) -> Figure:
    """Four panels (training / inference, against full fine-tuning / one adapter): the speed of
    AdapterFusion over K adapters relative to the baseline, ours and AdapterHub's per machine
    with confidence intervals (from ``table3_detail``), and the paper's; a fifth: the speed-up
    of pruning the fusion (from ``table3_pruning``)."""
    machines = sorted(set(table["machine"]))
    styles = _styles(machines)
    impl_colors = {"ours": "C0", "adapterhub": "C1"}
    fig = Figure(figsize=(15, 7.4), layout="constrained")
    grid = fig.add_gridspec(2, 3)
    adapters = sorted(int(k) for k in set(table["num_adapters"]))
    series = [(m, i) for m in machines for i in impl_colors]
    panels = []
    for (row, col), ((phase, against), column) in zip(
        [(0, 0), (1, 0), (0, 1), (1, 1)], TABLE3_PANELS.items(), strict=True
    ):
        ax = fig.add_subplot(grid[row, col])
        panels.append(ax)
        for machine in machines:
            for impl, color in impl_colors.items():
                if detail is not None and not detail.empty:
                    part = detail[
                        (detail["machine"] == machine)
                        & (detail["implementation"] == impl)
                        & (detail["phase"] == phase)
                    ].sort_values("num_adapters")
                    y, low, high = (part[f"vs_{against}{s}"] for s in ("", "_low", "_high"))
                else:
                    part = table[(table["machine"] == machine) & (table["source"] == impl)]
                    part = part.sort_values("num_adapters")
                    y, low, high = part[column], None, None
                if part.empty:
                    continue
                shift = _spread(series.index((machine, impl)), len(series))
                _errorbar(
                    ax,
                    part["num_adapters"] * shift,
                    y,
                    low,
                    high,
                    color=color,
                    marker=styles[machine]["marker"],
                    linestyle=styles[machine]["linestyle"],
                    label=f"{impl} @ {machine}",
                )
        paper = table[table["source"] == "paper"].drop_duplicates("num_adapters")
        paper = paper.sort_values("num_adapters")
        if not paper.empty:
            ax.plot(
                paper["num_adapters"],
                paper[column],
                color=PAPER_COLOR,
                marker=PAPER_MARKER,
                markersize=11,
                linestyle="--",
                lw=1,
                label="paper (GPU)",
            )
        _parity(ax, "parity (1x)")
        _log2_tasks(ax, adapters)
        ax.set(
            title=f"Table 3: fusion vs {'full fine-tuning' if against == 'full' else 'one adapter'}"
            f", {phase}",
            xlabel="adapters fused K (log scale)",
            ylabel=f"speed, fusion / {'full FT' if against == 'full' else 'adapter'} (x)",
        )
    _shared_legend(fig, panels, ncol=len(series) + 2)
    ax = fig.add_subplot(grid[:, 2])
    _pruning_panel(ax, pruning, styles)
    fig.suptitle(f"Table 3: AdapterFusion cost ({CI_NOTE})", fontsize="medium")
    return fig


def _pruning_panel(ax: Axes, pruning: pd.DataFrame | None, styles) -> None:
    if pruning is None or pruning.empty:
        _note(ax, "no table3_pruning.csv")
        _legend(ax)
        ax.set(title="Fusion pruning", ylabel="inference speed-up, pruned / full fusion (x)")
        return
    ours = pruning[pruning["source"] != "paper"]
    bars = sorted({(m, s) for m, s in zip(ours["machine"], ours["source"], strict=True)})
    colors = {"ours": "C0", "adapterhub": "C1"}
    for i, (machine, source) in enumerate(bars):
        row = ours[(ours["machine"] == machine) & (ours["source"] == source)].iloc[0]
        low, high = row.get("ci_low", NAN), row.get("ci_high", NAN)
        err = None
        if pd.notna(low) and pd.notna(high):
            err = [[row["speedup"] - low], [high - row["speedup"]]]
        ax.bar(
            i,
            row["speedup"],
            yerr=err,
            capsize=4,
            color=colors.get(source, "C2"),
            hatch=None if styles[machine]["marker"] == MACHINE_MARKERS[0] else "//",
            label=f"{source} @ {machine}",
        )
    paper = pruning[pruning["source"] == "paper"]
    if not paper.empty:
        _paper_level(ax, NAN, NAN, "paper (GPU)", value=float(paper["speedup"].iloc[0]))
    _parity(ax, "no speed-up")
    keep = pruning.iloc[0]
    short = short_names(m for m, _ in bars)
    ax.set_xticks(range(len(bars)), [f"{s}\n{short[m]}" for m, s in bars], fontsize="small")
    ax.set(
        title=f"Fusion pruned from {int(keep['adapters'])} to {int(keep['keep'])} adapters",
        xlabel="implementation @ machine",
        ylabel="inference speed-up, pruned / full fusion (x)",
    )
    _legend(ax, loc="lower right")


# --------------------------------------------------------------------------------------------
# Efficiency studies
# --------------------------------------------------------------------------------------------

EFFICIENCY_TABLES = (
    "efficiency_robust",
    "efficiency_robust_curve",
    "efficiency_specialized",
    "efficiency_coda",
    "efficiency_overheads",
    "efficiency_multitask_inference",
    "efficiency_multitask_training",
)


def _paper_row(frame: pd.DataFrame, column: str) -> tuple[float, float, float]:
    if frame is None or frame.empty or "source" not in frame:
        return NAN, NAN, NAN
    paper = frame[frame["source"] == "paper"]
    return parse_estimate(paper[column].iloc[0]) if not paper.empty else (NAN, NAN, NAN)


def _ours(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["source"] != "paper"] if "source" in frame else frame


def efficiency_figure(tables: Mapping[str, pd.DataFrame]) -> Figure:
    """Six panels, one per study: training-step speed-up of robust and specialized
    AdapterDrop against dropped layers; CoDA against a Pfeiffer adapter per routing ratio;
    training and inference overheads of each method; multi-task serving and training against
    K full models. A series per machine, confidence intervals from the tables' cells, the
    papers' values where they give one."""
    get = {name: tables.get(name, pd.DataFrame()) for name in EFFICIENCY_TABLES}
    machines = sorted({m for f in get.values() if "machine" in f for m in f["machine"]})
    styles = _styles(machines)
    fig, axes = _new_figure(2, 3, 5.0, 3.9)
    _drop_panel(axes[0, 0], get, styles)
    _coda_panel(axes[0, 1], get["efficiency_coda"], styles)
    _overheads_panel(axes[0, 2], get["efficiency_overheads"], styles)
    _multitask_panel(axes[1, 0], get["efficiency_multitask_inference"], styles, "inference")
    _multitask_panel(axes[1, 1], get["efficiency_multitask_training"], styles, "training")
    _overheads_panel(axes[1, 2], get["efficiency_overheads"], styles, phase="inference")
    fig.suptitle(f"Efficiency studies ({CI_NOTE})", fontsize="medium")
    return fig


def _drop_panel(ax: Axes, get: Mapping[str, pd.DataFrame], styles) -> None:
    for name, color, what in (
        ("efficiency_robust_curve", "C0", "step with n dropped"),
        ("efficiency_specialized", "C2", "specialized adapter for n"),
    ):
        frame = get[name]
        for machine, part in frame.groupby("machine") if not frame.empty else []:
            part = part.sort_values("dropped_layers")
            est = estimates(part, "speed_vs_n0")
            _errorbar(
                ax,
                part["dropped_layers"],
                est["value"],
                est["low"],
                est["high"],
                color=color,
                marker=styles[machine]["marker"],
                linestyle=styles[machine]["linestyle"],
                label=f"{what} @ {machine}",
            )
    robust = get["efficiency_robust"]
    for machine, part in _ours(robust).groupby("machine") if not robust.empty else []:
        value, low, high = parse_estimate(part["robust_speedup"].iloc[0])
        ax.axhline(
            value,
            color="C3",
            linestyle=styles[machine]["linestyle"],
            label=f"robust, n ~ U{{0..L-1}}: {value:.2f} @ {machine}",
        )
        if math.isfinite(low) and math.isfinite(high):
            ax.axhspan(low, high, color="C3", alpha=0.12)
    value, _, _ = _paper_row(robust, "robust_speedup")
    if math.isfinite(value):
        ax.axhline(
            value,
            color=PAPER_COLOR,
            linestyle="--",
            lw=1.2,
            label=f"paper, robust (GPU): {value:g}",
        )
    ax.set(
        title="Robust / specialized AdapterDrop, training",
        xlabel="dropped layers n (count)",
        ylabel="training-step speed-up vs n = 0 (x)",
    )
    _legend(ax)


def _coda_panel(ax: Axes, frame: pd.DataFrame, styles) -> None:
    ours = _ours(frame)
    if not ours.empty:
        for k, ((machine, seq_len), part) in enumerate(ours.groupby(["machine", "seq_len"])):
            part = part.sort_values("token_ratio")
            est = estimates(part, "speed_vs_pfeiffer")
            _errorbar(
                ax,
                part["token_ratio"],
                est["value"],
                est["low"],
                est["high"],
                color=f"C{k}",
                marker=styles[machine]["marker"],
                linestyle=styles[machine]["linestyle"],
                label=f"{int(seq_len)} tokens @ {machine}",
            )
    _, low, high = _paper_row(frame, "speed_vs_pfeiffer")
    _paper_level(ax, low, high, "paper (CoDA, TPU)")
    _parity(ax, "as fast as Pfeiffer")
    ax.set(
        title="CoDA inference vs a Pfeiffer adapter",
        xlabel="token reduction ratio r (1 = every token routed)",
        ylabel="speed, CoDA / Pfeiffer adapter (x)",
    )
    _legend(ax)


def _overheads_panel(ax: Axes, frame: pd.DataFrame, styles, phase: str = "training") -> None:
    column = "training_speed_vs_full" if phase == "training" else "inference_speed_vs_plain"
    ours = _ours(frame)
    methods = sorted({m for m in ours.get("method", [])}, key=lambda m: (m.startswith("full"), m))
    machines = sorted(set(ours.get("machine", [])))
    width = 0.8 / max(len(machines), 1)
    for j, machine in enumerate(machines):
        part = ours[ours["machine"] == machine].set_index("method").reindex(methods)
        est = estimates(part.reset_index(), column)
        x = np.arange(len(methods)) + (j - (len(machines) - 1) / 2) * width
        err = np.clip([est["value"] - est["low"], est["high"] - est["value"]], 0, None)
        ax.bar(
            x,
            est["value"],
            width,
            yerr=np.nan_to_num(err),
            capsize=3,
            color=[f"C{i}" for i in range(len(methods))],
            hatch=None if j == 0 else "//",
            label=f"ours @ {machine}",
        )
    value, low, high = _paper_row(frame, column)
    _paper_level(ax, low, high, "paper, Pfeiffer (GPU)", value=value)
    _parity(ax, "full FT" if phase == "training" else "plain model")
    short = [m.split(" (")[0].replace("full fine-tuning", "full FT") for m in methods]
    ax.set_xticks(range(len(methods)), short, rotation=20, fontsize="small")
    against = "full fine-tuning" if phase == "training" else "the plain model"
    ax.set(
        title=f"Method overheads, {phase}",
        xlabel="method",
        ylabel=f"{phase} speed vs {against} (x)",
    )
    _legend(ax, loc="lower right")


def _multitask_panel(ax: Axes, frame: pd.DataFrame, styles, phase: str) -> None:
    if not frame.empty:
        strategies = sorted(set(frame["strategy"]))
        for (machine, strategy), part in frame.groupby(["machine", "strategy"]):
            part = part.sort_values("num_tasks")
            est = estimates(part, "speed_vs_k_full")
            _errorbar(
                ax,
                part["num_tasks"],
                est["value"],
                est["low"],
                est["high"],
                color=f"C{strategies.index(strategy)}",
                marker=styles[machine]["marker"],
                linestyle=styles[machine]["linestyle"],
                label=strategy + (f" @ {machine}" if len(styles) > 1 else ""),
            )
        _log2_tasks(ax, sorted(int(t) for t in set(frame["num_tasks"])))
    _note(ax, "paper (Mundra et al.): no per-step values")
    per = "request" if phase == "inference" else "round (a step per task)"
    ax.set(
        title=f"Multi-task {phase}" + (f" ({next(iter(styles))})" if len(styles) == 1 else ""),
        xlabel="number of tasks K (log scale)",
        ylabel=f"speed per {per} vs K full models (x)",
    )
    _legend(ax)


# --------------------------------------------------------------------------------------------
# Fig. 2: score vs dropped layers
# --------------------------------------------------------------------------------------------


def fig2_figure(
    table: pd.DataFrame,
    relative: pd.DataFrame | None = None,
    baselines: pd.DataFrame | None = None,
    paper: Mapping[str, Mapping[int, float]] = PAPER_FIG2_RELATIVE,
) -> Figure:
    """One panel per curve (model, task, training subset, precision, batches, epochs, metric):
    the dev score of the standard, robust and specialized adapters against the number n of
    dropped lower layers, the mean over seeds with a band of one standard deviation either
    side (``<variant>_std``), with the majority-class baseline (``baselines``: task, metric,
    score, note; see :mod:`adapterdrop.reporting.baselines`); a last panel: the mean over
    tasks of each curve relative to the standard adapter at n = 0 (``fig2_relative``), with
    its band and the paper's values, drawn at the same share of the depth (5 of 12 layers is
    n = 2.5 of 6). Each panel's legend gives its run count per point."""
    curve = [key for key in FIG2_CURVE if key in table]
    groups = list(table.groupby(curve, sort=True, dropna=False))
    means = [] if relative is None else _fig2_means(relative)
    panels = len(groups) + len(means)
    ncols = min(3, panels)
    nrows = math.ceil(panels / ncols)
    fig, axes = _new_figure(nrows, ncols, 4.6, 3.6)
    flat = list(axes.flat)
    for ax, (values, group) in zip(flat, groups, strict=False):
        setting = dict(zip(curve, values, strict=True))
        group = group.sort_values("dropped_layers")
        runs = set()
        for k, (variant, style) in enumerate(FIG2_VARIANTS.items()):
            if variant in group and group[variant].notna().any():
                _band_line(ax, group, variant, 1.0, style, color=f"C{k}")
                if f"{variant}_runs" in group:
                    runs |= set(group[f"{variant}_runs"].dropna().astype(int))
        _baseline(ax, baselines, setting["task"], setting["metric"])
        if runs:
            _note(ax, _runs_note(runs))
        _note(ax, "paper: no per-task values for this model")
        layers = int(group["dropped_layers"].max()) + 1
        ax.set(
            title=_fig2_title(setting, layers),
            xlabel="dropped lower layers n (count)",
            ylabel=METRIC_LABELS.get(setting["metric"], setting["metric"]),
        )
        _legend(ax)
    for ax, (setting, mean) in zip(flat[len(groups) :], means, strict=False):
        mean = mean.sort_values("dropped_layers")
        layers = int(mean["dropped_layers"].max()) + 1 if not mean.empty else PAPER_FIG2_LAYERS
        for k, (variant, style) in enumerate(FIG2_VARIANTS.items()):
            if variant in mean:
                _band_line(ax, mean, variant, 100.0, style, color=f"C{k}")
            for n, share in paper.get(variant, {}).items():
                ax.plot(
                    n * layers / PAPER_FIG2_LAYERS,
                    100 * share,
                    PAPER_MARKER,
                    color=f"C{k}",
                    markersize=13,
                    markeredgecolor=PAPER_COLOR,
                    label=f"paper, {variant}: {100 * share:.1f} % at n={n} of "
                    f"{PAPER_FIG2_LAYERS} (roberta-base)",
                )
        if any(f"{v}_std" in mean and mean[f"{v}_std"].notna().any() for v in FIG2_VARIANTS):
            _note(ax, "bands: +/- 1 std of a mean over tasks of one run each")
        _note(ax, f"paper drawn at the same share of depth (x {layers}/{PAPER_FIG2_LAYERS})")
        ax.set(
            title=f"Mean over tasks ({', '.join(map(str, setting))})",
            xlabel=f"dropped lower layers n (count, of {layers})",
            ylabel="score, % of the standard adapter at n = 0",
        )
        _legend(ax)
    for ax in flat[panels:]:
        ax.set_axis_off()
    return fig


def _fig2_means(relative: pd.DataFrame) -> list[tuple[tuple[str, ...], pd.DataFrame]]:
    """The ``mean`` rows of ``fig2_relative``, one curve set per (model, precision, training
    batches): runs in bf16 and in fp32 are different settings, and one line through both
    would zigzag."""
    mean = relative[relative["task"] == "mean"]
    keys = [key for key in ("model", "precision", "batches") if key in mean]
    return list(mean.groupby(keys, sort=True))


def _band_line(
    ax: Axes, frame: pd.DataFrame, variant: str, scale: float, style: str, color: str
) -> None:
    """A variant's mean curve and, where its std is known, a band of one std either side."""
    x = frame["dropped_layers"].to_numpy(dtype=float)
    y = scale * frame[variant].to_numpy(dtype=float)
    ax.plot(x, y, style, marker="o", color=color, label=variant)
    if f"{variant}_std" not in frame:
        return
    spread = scale * frame[f"{variant}_std"].to_numpy(dtype=float)
    known = np.isfinite(spread) & np.isfinite(y)
    if known.any():
        ax.fill_between(
            x, y - spread, y + spread, where=known, color=color, alpha=0.15, linewidth=0
        )


def _runs_note(runs: set[int]) -> str:
    """What a panel's points are: means of how many runs, and what the band shows."""
    counts = "/".join(map(str, sorted(runs)))
    if runs == {1}:
        return "1 run per point (one seed: no spread)"
    return f"{counts} runs (seeds) per point; bands: mean +/- 1 std"


def _fig2_title(setting: Mapping[str, object], layers: int) -> str:
    """Task and model; below, the training subset, precision, batches and epochs where the
    table gives them, wrapped to the panel's width."""
    title = f"{setting['task']} ({setting['model']}, {layers} layers)"
    details = []
    limit = setting.get("limit_examples")
    if limit is not None and pd.notna(limit):
        details.append(f"{int(limit)}-example subsets")
    precision = setting.get("precision")
    if precision is not None and pd.notna(precision):
        details.append(f"{precision} precision")
    if setting.get("batches") == "by length":
        details.append("batches by length")
    epochs = setting.get("epochs")
    if epochs is not None and pd.notna(epochs):
        details.append(f"{int(epochs)} epochs")
    return "\n".join([title, *textwrap.wrap(", ".join(details), width=40)])


def _baseline(ax: Axes, baselines: pd.DataFrame | None, task: str, metric: str) -> None:
    if baselines is None or baselines.empty:
        _note(ax, "majority class: no dev labels found")
        return
    rows = baselines[baselines["task"] == task]
    rows = rows[(rows["metric"] == metric) | rows["metric"].isna()]
    if rows.empty:
        _note(ax, "majority class: no dev labels found")
        return
    score = rows["score"].iloc[0]
    if pd.notna(score):
        ax.axhline(
            score,
            color=BASELINE_COLOR,
            linestyle="-.",
            lw=1.2,
            label=f"majority class (dev): {score:.3g}",
        )
    else:
        _note(ax, f"majority class: {rows['note'].iloc[0]}")


# --------------------------------------------------------------------------------------------
# Cross-layer sharing (the paper's appendix)
# --------------------------------------------------------------------------------------------

#: Columns of ``sharing.csv`` around its task columns.
SHARING_ROW_KEYS = ("source", "model", "precision", "batches", "adapter", "reduction_factor")
SHARING_TAIL = ("average", "trainable_params", "adapter_weights", "runs", "note")


def _sharing_label(row: pd.Series, setting: str = "") -> str:
    return f"{row['adapter']}, rf {float(row['reduction_factor']):.3g}{setting}"


def sharing_figure(table: pd.DataFrame) -> Figure:
    """Main dev score x 100 per task (and the average) of the standard adapter and the adapters
    shared across layers, as bars (ours, with trainable parameters in the legend); the paper's
    values (roberta-base) as stars over the same bars, the majority class as a grey tick."""
    columns = [c for c in table.columns if c not in SHARING_ROW_KEYS + SHARING_TAIL]
    groups = [*columns, "average"]
    ours = table[table["source"] == "ours"]
    settings = _settings(ours, ("model", "precision", "batches"))
    paper = table[table["source"] == "paper"]
    baseline = table[table["source"].str.startswith("majority")]
    fig, axes = _new_figure(1, 1, max(7.5, 1.9 * len(groups)), 4.2)
    ax = axes[0, 0]
    width = 0.8 / max(len(ours), 1)
    x = np.arange(len(groups), dtype=float)
    for k, (index, row) in enumerate(ours.iterrows()):
        offset = (k - (len(ours) - 1) / 2) * width
        params = row["trainable_params"]
        size = f", {int(params):,} trainable" if pd.notna(params) else ""
        label = _sharing_label(row, settings[index])
        ax.bar(x + offset, row[groups].to_numpy(float), width, color=f"C{k}", label=label + size)
        match = paper[(paper["adapter"] == row["adapter"])]
        match = match[np.isclose(match["reduction_factor"], float(row["reduction_factor"]))]
        if not match.empty:
            ax.plot(
                x + offset,
                match[groups].iloc[0].to_numpy(float),
                PAPER_MARKER,
                color=f"C{k}",
                markersize=11,
                markeredgecolor=PAPER_COLOR,
                linestyle="none",
                label=f"paper, {label} (roberta-base)",
            )
    if not baseline.empty:
        levels = baseline[groups].iloc[0].to_numpy(float)
        ax.hlines(
            levels, x - 0.45, x + 0.45, color=BASELINE_COLOR, linestyle="-.", lw=1.5,
            label="majority class (dev)",
        )  # fmt: skip
    models = ", ".join(sorted(set(ours["model"])))
    drawn = table[groups].to_numpy(float)
    if np.isfinite(drawn).any():  # differences of a point or two: start the bars near them
        ax.set_ylim(bottom=max(0.0, math.floor(np.nanmin(drawn)) - 5))
    ax.set_xticks(x, [g.replace(" (", "\n(") for g in groups], fontsize="small")
    ax.set(
        title=f"Cross-layer sharing, one adapter for every layer\n(bars: {models}; "
        "stars: the paper's roberta-base, its average over these tasks)",
        xlabel="task (main dev metric; subset size where trained on one)",
        ylabel="dev score x 100 (axis not from 0)",
    )
    _legend_below(ax, ncol=2)
    return fig


# --------------------------------------------------------------------------------------------
# The methods frontier
# --------------------------------------------------------------------------------------------


def methods_figure(summary: pd.DataFrame) -> Figure:
    """The frontier from ``methods_summary.csv``: each method's average dev score (x 100, over
    the table's tasks) against its trainable parameters (log scale), its train step time and its
    dev batch time (inference), both relative to full fine-tuning; the majority class's average
    as a grey line. A row of panels per setting (precision, training batches, epochs) where the
    summary holds several, so each panel names its few methods; a method keeps its colour."""
    ours = summary[summary["source"] == "ours"]
    colours = {method: f"C{k % 10}" for k, method in enumerate(dict.fromkeys(ours["method"]))}
    setting = (
        ours.assign(epochs=ours["epochs"].map(lambda e: f"{int(e)} ep."))
        if ("epochs" in ours)
        else ours
    )
    settings = _settings(setting, ("precision", "batches", "epochs"))
    baseline = summary[summary["source"].astype(str).str.startswith("majority")]
    groups = list(dict.fromkeys(settings))
    fig, axes = _new_figure(len(groups), 3, 6.5, 4.5)
    relative = "{} / full fine-tuning's\n(geometric mean over tasks)"
    panels = (
        ("trainable_params", "trainable parameters (encoder, head left out; log scale)", True),
        ("step_vs_full", relative.format("train step time"), False),
        ("eval_step_vs_full", relative.format("dev batch time (inference)"), False),
    )
    for row_axes, group in zip(axes, groups, strict=True):
        runs = ours[settings == group]
        for ax, (column, xlabel, log) in zip(row_axes, panels, strict=True):
            for _, row in runs.iterrows():
                method, colour = row["method"], colours[row["method"]]
                ax.plot(row[column], row["average"], "o", color=colour, label=method)
                ax.annotate(method, (row[column], row["average"]), fontsize="x-small",
                            xytext=(4, 3), textcoords="offset points")  # fmt: skip
            if not baseline.empty and pd.notna(baseline["average"].iloc[0]):
                ax.axhline(baseline["average"].iloc[0], color=BASELINE_COLOR, linestyle="-.",
                           label="majority class (dev)")  # fmt: skip
            if log:
                ax.set_xscale("log")
            ax.set(xlabel=xlabel, ylabel="average dev score x 100", title=group.strip(" ()"))
    models = ", ".join(sorted(set(ours["model"])))
    fig.suptitle(f"Methods frontier ({models}): score against size, training and inference cost")
    _shared_legend(fig, axes.ravel(), ncol=4)
    return fig


# --------------------------------------------------------------------------------------------
# AdapterFusion: pruning and fusion-AdapterDrop
# --------------------------------------------------------------------------------------------


def fusion_figure(pruning: pd.DataFrame, dropping: pd.DataFrame | None = None) -> Figure:
    """From ``fusion_pruning.csv`` and ``fusion_drop.csv``: each target task's dev score (its
    main metric) against the k adapters kept by activation (the full fusion at k = K), with the
    measured inference speed-up of the same pruned fusion on a second axis where Table 3 has it;
    and against the n lower layers whose fusion is dropped. Majority class: a grey line."""
    pruning = pruning[pruning["main"].astype(bool)] if "main" in pruning else pruning
    fig, axes = _new_figure(1, 2, 11.0, 4.4)
    prune_ax, drop_ax = axes[0]
    speed_columns = [c for c in pruning.columns if c.startswith("speedup_")]
    speed_ax = (
        prune_ax.twinx() if speed_columns and pruning[speed_columns].notna().any().any() else None
    )
    curve = [key for key in ("model", "precision", "batches", "task", "metric") if key in pruning]
    for k, (values, rows) in enumerate(pruning.groupby(curve)):
        found = dict(zip(curve, values, strict=True))
        model, task = found["model"], found["task"]
        setting = [str(found[key]) for key in ("precision", "batches") if key in found]
        label = f"{task} ({', '.join([model, *setting])})"
        prune_ax.plot(rows["k"], rows["score"], "o-", color=f"C{k}", label=label)
        if "majority" in rows and rows["majority"].notna().any():
            prune_ax.axhline(rows["majority"].iloc[0], color=f"C{k}", linestyle="-.", alpha=0.5)
        for j, column in enumerate(speed_columns):
            if speed_ax is not None and rows[column].notna().any() and k == 0:
                machine = column.removeprefix("speedup_")
                if machine == "paper":  # the paper's one measured point (k = 2 of 8)
                    speed_ax.plot(rows["k"], rows[column], "*", color=PAPER_COLOR, markersize=11,
                                  label="speed-up, paper (GPU)")  # fmt: skip
                    continue
                marker = MACHINE_MARKERS[j % len(MACHINE_MARKERS)]
                speed_ax.plot(rows["k"], rows[column], marker + ":", color=IDEAL_COLOR,
                              label=f"speed-up, {machine}")  # fmt: skip
        if dropping is not None:
            same = [key for key in curve if key in dropping]
            drop = dropping[(dropping[same] == pd.Series(found)[same]).all(axis=1)]
            drop_ax.plot(drop["dropped_layers"], drop["score"], "o-", color=f"C{k}", label=label)
            if "majority" in drop and drop["majority"].notna().any():
                drop_ax.axhline(drop["majority"].iloc[0], color=f"C{k}", linestyle="-.", alpha=0.5)
    prune_ax.set(
        title="Pruned AdapterFusion (no retraining)",
        xlabel="adapters kept k (most activated on the dev set)",
        ylabel="dev score (task's main metric)",
    )
    if speed_ax is not None:
        speed_ax.set_ylabel("inference speed-up vs the full fusion (Table 3)")
        _legend(speed_ax, loc="lower right")
    drop_ax.set(
        title="AdapterDrop in fusion (no retraining)",
        xlabel="lower layers without fusion n",
        ylabel="dev score (task's main metric)",
    )
    _legend(prune_ax, loc="lower right" if speed_ax is None else "upper left")
    if dropping is not None:
        _legend(drop_ax)
    fig.suptitle(
        "AdapterFusion: score vs pruned adapters and dropped fusion layers "
        "(dash-dot: majority class)"
    )
    return fig
