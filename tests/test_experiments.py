"""Every training experiment in conf/experiment fits the tiny model for two steps, on a slice
of the real data and on fixture files, and writes an ok result: a new experiment file is
covered by being there."""

from __future__ import annotations

import pytest

from adapterdrop.cli.train import main_metric, train
from adapterdrop.data import TASKS
from adapterdrop.results import iter_result_files, read_result
from conftest import CONF
from test_data_datamodule import write_tiny_task
from test_train import DATA_DIR, NEEDS_RTE, shrunk

EXPERIMENTS = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))
#: Two small fused adapters instead of the experiment's eight: the fusion path, cheaply.
FUSED = ["glue/mrpc", "glue/wnli"]
#: Besides the experiment's own run: multi-task full fine-tuning in the methods experiment.
RUNS = {
    **{name: [[]] for name in EXPERIMENTS},
    "fusion": [[f"method.adapters=[{','.join(FUSED)}]"]],
    "methods": [[], ["method=full", "data=multitask", "data.tasks=[glue/rte,glue/stsb]"]],
}


def fixture_data(root):
    for task in ["glue/rte", "glue/stsb", *FUSED]:
        write_tiny_task(TASKS[task], root)
    return root


def fit_every_run(tmp_path, experiment: str, data_dir) -> list[dict]:
    for extra in RUNS[experiment]:
        cfg = shrunk(tmp_path, f"experiment={experiment}", "logger=none", *extra)
        cfg.data.data_dir = str(data_dir)
        metrics = train(cfg)
        assert main_metric(cfg) in metrics
    return [read_result(path) for path in iter_result_files(tmp_path / "results")]


def test_every_experiment_file_is_covered():
    assert {"fig2_standard", "fusion", "methods", "sharing"} <= set(EXPERIMENTS)


@NEEDS_RTE
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_an_experiment_fits_a_slice_of_the_real_data(tmp_path, experiment):
    records = fit_every_run(tmp_path, experiment, DATA_DIR)
    assert records and all(record["status"] == "ok" for record in records)
    assert {record["experiment"] for record in records} >= {experiment}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_an_experiment_fits_fixture_files(tmp_path, experiment):
    records = fit_every_run(tmp_path, experiment, fixture_data(tmp_path / "fixtures"))
    assert records and all(record["status"] == "ok" for record in records)
