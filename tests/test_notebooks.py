"""Plotting notebooks run top to bottom on tables built from a real (tiny) benchmark run."""

from __future__ import annotations

import nbformat
import pandas as pd
from nbclient import NotebookClient

from adapterdrop.bench.sweep import run_benchmark
from conftest import REPO
from test_bench_table2 import table2_cfg


def test_table2_notebook_plots_from_results_tables(tmp_path, monkeypatch):
    run_benchmark(table2_cfg(tmp_path, "bench.num_tasks=[2]"))
    monkeypatch.setenv("ADAPTERDROP_TABLES_DIR", str(tmp_path / "tables"))
    monkeypatch.setenv("ADAPTERDROP_FIGURES_DIR", str(tmp_path / "figures"))
    notebook = nbformat.read(REPO / "notebooks" / "table2.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "figures" / "table2.png").stat().st_size > 10_000


def test_fig2_notebook_plots_from_results_tables(tmp_path, monkeypatch):
    from adapterdrop.reporting.tables import write_table
    from adapterdrop.reporting.fig2 import fig2_tables

    scores = pd.DataFrame(
        [
            {"variant": v, "model": "m", "task": task, "metric": "accuracy"}
            | {"dropped_layers": n, "score": 0.8 - 0.05 * n * (v == "standard")}
            for task in ("glue/rte", "glue/mrpc")
            for v in ("standard", "robust", "specialized")
            for n in range(4)
        ]
    )
    for name, frame in fig2_tables(scores).items():
        write_table(frame, name, tables_root=tmp_path / "tables")
    monkeypatch.setenv("ADAPTERDROP_TABLES_DIR", str(tmp_path / "tables"))
    monkeypatch.setenv("ADAPTERDROP_FIGURES_DIR", str(tmp_path / "figures"))
    notebook = nbformat.read(REPO / "notebooks" / "fig2.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert (tmp_path / "figures" / "fig2.png").stat().st_size > 10_000
