"""A benchmark run saves the config that ran: ``.hydra/config.yaml`` holds the preset chosen.

``preset: auto`` (conf/bench.yaml) is resolved while composing, so the saved file names the
concrete preset and Hydra's own record (``hydra.yaml``) keeps the choice that was asked for.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import REPO


@pytest.mark.parametrize(("asked", "ran"), [(None, "cpu"), ("full", "full")])
def test_the_saved_config_names_the_preset_that_ran(tmp_path, asked, ran):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "adapterdrop.cli.bench",
        "bench=table2",
        "model=tiny",
        "device=cpu",  # auto resolves to cpu on a CPU box: fixed so a GPU runner agrees
        "measure=false",  # nothing is timed: the grid's tables are rebuilt from no results
        "logger=none",
        f"paths.root={tmp_path / 'results'}",
        f"hydra.run.dir={run_dir}",
        *([f"preset={asked}"] if asked else []),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert saved["preset"] == ran
    # the preset's own settings, merged by Hydra, are in the file (conf/preset/table2/*.yaml)
    assert (saved["bench"]["seq_len"], saved["bench"]["dropped_layers"]) == (
        (64, "spread") if ran == "cpu" else (128, "all")
    )
    choices = yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]["runtime"]
    assert choices["choices"]["preset"] == (asked or "auto")
    assert choices["choices"]["preset/table2@_global_"] == ran
