"""Tables: built from a handful of result files, written as markdown and CSV."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from adapterdrop.reporting.cells import format_estimate
from adapterdrop.reporting.tables import load_ok_results, to_markdown, write_table
from adapterdrop.results import ResultError, make_result, write_result

ENV = {"hostname": "test"}


@pytest.fixture
def results_root(tmp_path):
    """Fixture results: three measured points and one failed point of a Table-2-like sweep."""
    root = tmp_path / "raw"
    for n, t in [(0, 0.120), (6, 0.090), (12, 0.060)]:
        record = make_result(
            experiment="speedup",
            config={"tasks": 4, "dropped": n},
            environment=ENV,
            metrics={"latency": {"median": t, "iqr": 0.001}},
            samples={"latency": [t, t * 1.01, t * 0.99]},
        )
        write_result(record, root)
    error = {"type": "RuntimeError", "message": "oom", "traceback": "..."}
    failed = make_result(
        experiment="speedup", config={"tasks": 4, "dropped": 3}, environment=ENV, error=error
    )
    write_result(failed, root)
    return root


def build_table(df: pd.DataFrame) -> pd.DataFrame:
    """A minimal table builder of the kind the experiment code supplies."""
    table = df[["config.dropped", "metrics.latency.median"]].sort_values("config.dropped")
    base = table["metrics.latency.median"].iloc[0]
    table = table.rename(columns={"config.dropped": "dropped", "metrics.latency.median": "t (s)"})
    table["speed-up"] = base / table["t (s)"] - 1
    return table.reset_index(drop=True)


def test_table_from_fixture_results(results_root, tmp_path):
    with pytest.warns(UserWarning, match="1 failed point"):
        df = load_ok_results(results_root, "speedup")
    assert sorted(df["config.dropped"]) == [0, 6, 12]
    markdown = write_table(build_table(df), "table2", tables_root=tmp_path / "tables")
    assert markdown == (
        "| dropped | t (s) | speed-up |\n"
        "| ------: | ----: | -------: |\n"
        "|       0 |  0.12 |        0 |\n"
        "|       6 |  0.09 |   0.3333 |\n"
        "|      12 |  0.06 |        1 |\n"
    )
    assert (tmp_path / "tables" / "table2.md").read_text() == markdown
    csv = pd.read_csv(tmp_path / "tables" / "table2.csv")
    assert csv["speed-up"].iloc[1] == pytest.approx(1 / 3, rel=1e-12)  # CSV keeps precision
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["table2.csv", "table2.md"]


def test_tables_refuse_invalid_results_by_default(results_root):
    bad = results_root / "speedup" / "ffffffffffffffff.json"
    bad.write_text('{"schema_version": 1,')
    with pytest.raises(ResultError, match=bad.name):
        load_ok_results(results_root, "speedup")


def test_markdown_text_cells_escaping_and_blanks():
    df = pd.DataFrame({"method": ["a|b", "line\nbreak"], "value": [1.5, math.nan]})
    assert to_markdown(df) == (
        "| method        | value |\n"
        "| ------------- | ----: |\n"
        "| a\\|b          |   1.5 |\n"
        "| line<br>break |       |\n"
    )


def test_markdown_with_index_and_no_rows():
    df = pd.DataFrame({"x": [1]}, index=pd.Index(["r"], name="row"))
    assert to_markdown(df, index=True).splitlines()[0] == "| row |   x |"
    assert to_markdown(pd.DataFrame({"x": []})) == "|   x |\n| --: |\n"


def test_format_estimate():
    assert format_estimate(1.23456, 1.2, 1.3) == "1.235 [1.200, 1.300]"
    assert format_estimate(0.5, fmt="{:.1%}") == "50.0%"


@pytest.mark.parametrize("name", ["", "a/b", ".x"])
def test_table_name_must_be_plain(tmp_path, name):
    with pytest.raises(ValueError):
        write_table(pd.DataFrame({"x": [1]}), name, tables_root=tmp_path)
