"""The artefact notebooks and their plotting functions (adapterdrop.reporting.figures).

The committed raw results of every machine (and the Fig. 2 training results) are copied to a
temporary results root and their tables rebuilt there by the real table builders, so the
figures are drawn from tables exactly as ``make tables`` writes them; then every notebook runs
headless on that root, as ``make figures`` runs it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from adapterdrop.reporting import figures
from adapterdrop.reporting.baselines import baseline_rows, majority_baselines
from adapterdrop.reporting.notebooks import NOTEBOOKS, SCORE_NOTEBOOKS, pending, run_all
from conftest import REPO

RESULTS = REPO / "results"


def _copy_and_rebuild(root: Path) -> None:
    """Every machine's raw results (and re-runs) under ``root``, tables rebuilt from them."""
    from adapterdrop.reporting.__main__ import main as make_tables
    from adapterdrop.reporting.benchmarks import build_tables

    for manifest in sorted(RESULTS.glob("*/**/tables/*.run.json")):
        tables = manifest.parent
        if "variants" in tables.relative_to(RESULTS).parts:
            continue
        here = root / tables.relative_to(RESULTS)
        raw = here.parent / "raw"
        if not raw.is_dir():
            shutil.copytree(tables.parent / "raw", raw)
        spec = json.loads(manifest.read_text())
        build_tables(spec["grid"], spec["config"], spec["point_ids"], raw, here)
    shutil.copytree(RESULTS / "raw", root / "raw")
    for artefact in (
        "fig2",
        *(a for a in ("fusion", "sharing", "methods") if (root / "raw" / a).is_dir()),
    ):
        make_tables(["--root", str(root), "--only", artefact])  # as make tables builds them


@pytest.fixture(scope="module")
def results_root(tmp_path_factory) -> Path:
    if not list(RESULTS.glob("*/tables/*.run.json")) or not (RESULTS / "raw").is_dir():
        pytest.skip("no committed results to draw")
    root = tmp_path_factory.mktemp("results")
    _copy_and_rebuild(root)
    return root


def _labels(ax) -> list[str]:
    return [label for label in ax.get_legend_handles_labels()[1] if not label.startswith("_")]


def legend_texts(fig: Figure) -> list[str]:
    texts = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    for ax in fig.axes:
        if ax.get_legend() is not None:
            texts += [t.get_text() for t in ax.get_legend().get_texts()]
    return texts


def assert_readable(fig: Figure) -> None:
    """Every drawn panel: both axes labelled, a title, and a legend of its own or its series
    all in the figure's shared legend."""
    shared = {t.get_text() for leg in fig.legends for t in leg.get_texts()}
    panels = [ax for ax in fig.axes if ax.axison]
    assert panels
    for ax in panels:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), ax
        if ax.get_legend() is None:
            assert _labels(ax) and set(_labels(ax)) <= shared, ax.get_title()
    assert any("paper" in text for text in legend_texts(fig))


def _line(fig: Figure, label: str, ax=None):
    axes = [ax] if ax is not None else fig.axes
    found = [line for a in axes for line in a.get_lines() if line.get_label() == label]
    assert found, f"no line {label!r}"
    return found[0]


def _machines(root: Path, table: str) -> list[str]:
    return sorted(figures.read_machine_tables(root, table)["machine"].unique())


# --------------------------------------------------------------------------------------------
# Notebooks
# --------------------------------------------------------------------------------------------


def test_every_notebook_writes_png_and_pdf(results_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTERDROP_DATA_DIR", "")  # no dev labels: the baseline is a note
    out = tmp_path / "figures"
    written, failed = run_all(results_root, out, notebooks_dir=REPO / "notebooks")
    assert not failed, failed
    built = [name for name in SCORE_NOTEBOOKS if name not in pending(results_root)]
    committed = [name for name in SCORE_NOTEBOOKS if (RESULTS / "raw" / name).is_dir()]
    assert "methods" in committed and set(committed) <= set(built)  # drawn from what ran
    assert sorted(written) == sorted([*NOTEBOOKS, *built])
    for name in [*NOTEBOOKS, *built]:
        assert (out / f"{name}.png").stat().st_size > 20_000
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF")


def test_notebooks_are_committed_without_outputs():
    import nbformat

    for name in [*NOTEBOOKS, *SCORE_NOTEBOOKS]:
        notebook = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", [])
        assert all(not cell.outputs and cell.execution_count is None for cell in code), name


def test_an_unknown_notebook_is_refused_before_any_kernel(tmp_path):
    with pytest.raises(FileNotFoundError, match="table9"):
        run_all(tmp_path, tmp_path, notebooks_dir=REPO / "notebooks", only=["table1", "table9"])


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def test_parse_estimate():
    nan = np.isnan
    assert figures.parse_estimate("1.261 [1.221, 1.334]") == (1.261, 1.221, 1.334)
    assert figures.parse_estimate(1.5)[0] == 1.5 and nan(figures.parse_estimate(1.5)[1])
    value, low, high = figures.parse_estimate("0.94-0.96")
    assert nan(value) and (low, high) == (0.94, 0.96)
    value, low, high = figures.parse_estimate("up to 1.6")
    assert nan(value) and nan(low) and high == 1.6
    assert figures.parse_estimate("26")[0] == 26
    assert all(nan(v) for v in figures.parse_estimate(float("nan")))
    assert all(nan(v) for v in figures.parse_estimate(""))
    with pytest.raises(ValueError, match="not an estimate"):
        figures.parse_estimate("fast")


def test_short_names_drop_the_common_words():
    tags = ["cpu-amd-epyc-avx2-2t", "cpu-amd-epyc-avx512bf16-2t"]
    assert figures.short_names(tags) == dict(zip(tags, ["avx2-2t", "avx512bf16-2t"], strict=True))
    assert figures.short_names(tags[:1]) == {tags[0]: tags[0]}


def test_table1_figure_has_intervals_and_the_paper_band(results_root):
    from adapterdrop.reporting.table1 import PAPER_SPEED

    table = figures.read_machine_tables(results_root, "table1")
    summary = figures.read_machine_tables(results_root, "table1_summary")
    fig = figures.table1_figure(table, summary)
    assert_readable(fig)
    training, inference = fig.axes[:2]
    assert any(isinstance(c, ErrorbarContainer) for c in training.containers)
    low, high = PAPER_SPEED["inference"]
    assert f"paper (GPU): {low:g}-{high:g}" in _labels(inference)
    assert f"paper (GPU): up to {PAPER_SPEED['training'][1]:g}" in _labels(training)


def test_table2_figure_draws_every_machine_the_paper_and_the_ideal(results_root):
    from adapterdrop.reporting.table2 import PAPER_PER_LAYER

    read = figures.read_machine_tables
    fig = figures.table2_figure(
        read(results_root, "table2"),
        read(results_root, "table2_curve"),
        read(results_root, "table2", collection="repeat", required=False),
        read(results_root, "table2_curve", collection="repeat", required=False),
    )
    assert_readable(fig)
    summary = fig.axes[0]
    paper = _line(fig, "paper (GPU)", summary)
    assert list(paper.get_xdata()) == sorted(PAPER_PER_LAYER)
    np.testing.assert_allclose(
        paper.get_ydata(), [100 * PAPER_PER_LAYER[t] for t in sorted(PAPER_PER_LAYER)]
    )
    ideal = _line(fig, "ideal cost model", summary).get_ydata()
    np.testing.assert_allclose(ideal, [100 * (t - 1) / (12 * t - t + 1) for t in (2, 4, 8, 16)])
    machines = _machines(results_root, "table2")
    for machine in machines:
        assert f"ours @ {machine}" in _labels(summary)
        assert f"adapterhub @ {machine}" in _labels(summary)
    assert len(fig.axes) == 1 + len(machines)


def test_ideal_speedup_matches_the_cost_model():
    np.testing.assert_allclose(figures.ideal_speedup([0, 1, 11], 8, 12), [1, 96 / 89, 96 / 19])


def test_table3_figure_shares_one_legend_and_draws_the_paper(results_root):
    from adapterdrop.reporting.table3 import PAPER, PAPER_PRUNING

    read = figures.read_machine_tables
    fig = figures.table3_figure(
        read(results_root, "table3"),
        read(results_root, "table3_detail"),
        read(results_root, "table3_pruning"),
    )
    assert_readable(fig)
    assert len(fig.legends) == 1
    panels = {ax.get_title(): ax for ax in fig.axes}
    paper = _line(fig, "paper (GPU)", panels["Table 3: fusion vs full fine-tuning, inference"])
    np.testing.assert_allclose(paper.get_ydata(), [PAPER[k][1] for k in sorted(PAPER)])
    pruning = next(ax for title, ax in panels.items() if title.startswith("Fusion pruned"))
    assert f"paper (GPU): {PAPER_PRUNING['speedup']:g}" in _labels(pruning)
    for machine in _machines(results_root, "table3"):
        assert f"ours @ {machine}" in {t.get_text() for t in fig.legends[0].get_texts()}


def test_efficiency_figure_reads_the_paper_rows(results_root):
    from adapterdrop.reporting.efficiency_coda import PAPER_CODA
    from adapterdrop.reporting.efficiency_drop import PAPER_ROBUST_SPEEDUP
    from adapterdrop.reporting.efficiency_overheads import PAPER_PFEIFFER

    tables = {
        name: figures.read_machine_tables(results_root, name, required=False)
        for name in figures.EFFICIENCY_TABLES
    }
    assert any(not frame.empty for frame in tables.values())
    fig = figures.efficiency_figure(tables)
    assert_readable(fig)
    texts = legend_texts(fig)
    assert f"paper, robust (GPU): {PAPER_ROBUST_SPEEDUP:g}" in texts
    assert f"paper (CoDA, TPU): {PAPER_CODA}" in texts
    assert f"paper, Pfeiffer (GPU): {PAPER_PFEIFFER['training']}" in texts
    assert f"paper, Pfeiffer (GPU): {PAPER_PFEIFFER['inference']}" in texts


def test_efficiency_figure_draws_what_is_there():
    curve = pd.DataFrame(
        {"dropped_layers": [0, 1, 2], "speed_vs_n0": ["1.0 [1.0, 1.0]", "1.1 [1.0, 1.2]", 1.2]}
    ).assign(machine="m")
    fig = figures.efficiency_figure({"efficiency_robust_curve": curve})
    drop = fig.axes[0]
    assert drop.get_legend() is not None and "step with n dropped @ m" in _labels(drop)


def test_fig2_figure_draws_baselines_and_the_paper(results_root):
    table = figures.read_table(results_root / "tables", "fig2")
    relative = figures.read_table(results_root / "tables", "fig2_relative")
    baselines = pd.DataFrame(
        [
            {"task": "glue/mrpc", "metric": "accuracy", "score": 0.684, "note": ""},
            {"task": "glue/stsb", "metric": None, "score": np.nan, "note": "regression task"},
        ]
    )
    fig = figures.fig2_figure(table, relative, baselines)
    assert_readable(fig)
    panels = [ax for ax in fig.axes if ax.axison]
    setting = ["model", "precision", "batches"]
    curves = table.groupby([*setting, "task", "limit_examples", "epochs", "metric"], dropna=False)
    means = relative[relative["task"] == "mean"].groupby(setting)
    assert len(panels) == curves.ngroups + means.ngroups  # a mean panel per setting
    mrpc = [ax for ax in panels if ax.get_ylabel().startswith("accuracy")][0]
    assert "majority class (dev): 0.684" in _labels(mrpc)
    assert {"standard", "robust", "specialized"} <= set(_labels(mrpc))
    stsb = [ax for ax in panels if ax.get_title().startswith("glue/stsb")][0]
    assert "majority class: regression task" in _labels(stsb)
    mean = [ax for ax in panels if ax.get_title().startswith("Mean")][0]
    layers = int(relative["dropped_layers"].max()) + 1
    star = _line(fig, "paper, specialized: 97.1 % at n=5 of 12 (roberta-base)", mean)
    assert star.get_xdata()[0] == pytest.approx(5 * layers / 12)
    assert star.get_ydata()[0] == pytest.approx(97.1)


def test_fig2_figure_draws_the_seed_spread_as_a_band_and_names_the_setting():
    table = pd.DataFrame(
        {
            "model": "minilm-l6",
            "task": "glue/sst2",
            "limit_examples": 8000,
            "precision": "32-true",
            "epochs": 6,
            "metric": "accuracy",
            "dropped_layers": [0, 1, 2],
            "standard": [0.8, 0.7, 0.4],
            "standard_std": [0.02, 0.05, np.nan],
            "standard_runs": [3, 3, 1],
            "robust": [0.78, 0.75, 0.7],
        }
    )
    fig = figures.fig2_figure(table)
    [ax] = [a for a in fig.axes if a.axison]
    assert "8000-example subsets, 32-true precision, 6 epochs" in ax.get_title().replace("\n", " ")
    [band] = ax.collections  # robust has no std column: no band of its own
    heights = band.get_paths()[0].vertices[:, 1]
    assert heights.min() == pytest.approx(0.65) and heights.max() == pytest.approx(0.82)
    assert "1/3 runs (seeds) per point; bands: mean +/- 1 std" in _labels(ax)


def test_save_figure_writes_png_and_pdf(tmp_path):
    fig = Figure()
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="x")
    paths = figures.save_figure(fig, tmp_path / "out", "demo")
    assert [p.name for p in paths] == ["demo.png", "demo.pdf"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_read_machine_tables_stacks_machines_and_names_what_is_missing(tmp_path):
    for machine, value in (("cpu-a", 1), ("cpu-b", 2)):
        (tmp_path / machine / "tables").mkdir(parents=True)
        pd.DataFrame({"x": [value]}).to_csv(tmp_path / machine / "tables" / "t.csv", index=False)
    (tmp_path / "tables").mkdir()
    pd.DataFrame({"x": [9]}).to_csv(tmp_path / "tables" / "t.csv", index=False)  # not a machine
    frame = figures.read_machine_tables(tmp_path, "t")
    assert frame.to_dict("records") == [{"x": 1, "machine": "cpu-a"}, {"x": 2, "machine": "cpu-b"}]
    with pytest.raises(FileNotFoundError, match="no u.csv"):
        figures.read_machine_tables(tmp_path, "u")
    assert figures.read_machine_tables(tmp_path, "t", collection="repeat", required=False).empty


# --------------------------------------------------------------------------------------------
# Majority-class baseline
# --------------------------------------------------------------------------------------------


def test_majority_baseline_without_data_is_a_note(tmp_path):
    frame = majority_baselines(["glue/mrpc"], tmp_path / "absent")
    assert len(frame) == 1 and pd.isna(frame["score"][0]) and "no dev labels" in frame["note"][0]


def test_majority_baseline_from_dev_labels(real_data_dir):
    frame = majority_baselines(["glue/mrpc", "glue/stsb", "glue/cola"], real_data_dir)
    scores = frame.set_index(["task", "metric"])["score"]
    assert scores["glue/mrpc", "accuracy"] == pytest.approx(279 / 408)
    assert scores["glue/mrpc", "f1"] == pytest.approx(2 * 279 / (2 * 279 + 129))
    assert scores["glue/cola", "matthews_corr"] == 0
    assert frame[frame["task"] == "glue/stsb"]["score"].isna().all()
    assert (frame[frame["task"] == "glue/stsb"]["note"].str.contains("regression")).all()


def test_the_best_constant_beats_the_majority_class_on_multircs_f1a(real_data_dir):
    frame = majority_baselines(["superglue/multirc", "glue/rte"], real_data_dir)
    multirc = frame.set_index(["task", "metric"]).loc[("superglue/multirc", "f1a")]
    positives = 1 - multirc["majority_share"]  # the majority answer is false: F1a 0
    assert multirc["score"] == 0 and multirc["best_constant_label"] == "True"
    assert multirc["best_constant"] == pytest.approx(2 * positives / (1 + positives))
    columns = {"rte": "glue/rte", "multirc": "superglue/multirc"}
    rows = baseline_rows(columns, frame).set_index("source")
    assert rows.index.tolist() == ["majority class (dev)", "best constant (dev)"]
    assert rows.loc["best constant (dev)", "rte"] == rows.loc["majority class (dev)", "rte"]
    assert rows.loc["best constant (dev)", "multirc"] == pytest.approx(59.9, abs=0.05)
    assert rows.loc["best constant (dev)", "note"] == "superglue/multirc: every example True"
