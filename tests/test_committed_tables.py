"""The committed tables are what ``make tables`` builds from the committed results: a table
rebuilt without the data directory (no majority-class rows) or left stale after a new result
fails here, not in a reader's hands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapterdrop.reporting.__main__ import main as make_tables
from adapterdrop.reporting.baselines import DATA_DIR_ENV

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _tables(root: Path) -> dict[str, str]:
    """Every built table under ``root`` (markdown and CSV outside ``raw/`` folders)."""
    return {
        str(path.relative_to(root)): path.read_text()
        for pattern in ("*.md", "*.csv")
        for path in root.rglob(pattern)
        if "raw" not in path.relative_to(root).parts
    }


def test_committed_tables_match_a_rebuild_from_committed_results(
    tmp_path, monkeypatch, real_data_dir
):
    if not RESULTS.is_dir():
        pytest.skip("no committed results folder")
    monkeypatch.setenv(DATA_DIR_ENV, str(real_data_dir))
    rebuilt = tmp_path / "results"
    shutil.copytree(RESULTS, rebuilt)
    monkeypatch.chdir(tmp_path)  # results.csv names each file by its path from the root's parent
    make_tables(["--root", "results"])
    committed, fresh = _tables(RESULTS), _tables(rebuilt)
    assert sorted(fresh) == sorted(committed)
    stale = [name for name in committed if committed[name] != fresh[name]]
    assert not stale, f"stale committed tables (run `make tables`): {stale}"
