"""W&B (adapterdrop.tracking): modes, names and tags, the result tables, offline runs of training
and benchmarks read back from their files, and the report script without network."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from adapterdrop import tracking
from adapterdrop.bench.runner import RunSummary
from adapterdrop.cli.train import result_config, train
from adapterdrop.results import make_result, point_id, result_path, write_result
from conftest import REPO, SHARED_DATA
from wandb_files import read_offline_run

NEEDS_RTE = pytest.mark.skipif(
    not (SHARED_DATA / "glue" / "RTE" / "dev.tsv").is_file(),
    reason=f"real GLUE RTE files not found under {SHARED_DATA}",
)


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """Offline W&B whose staging, cache and settings stay in the test's folder."""
    for name in ("DATA", "CACHE", "CONFIG"):
        monkeypatch.setenv(f"WANDB_{name}_DIR", str(tmp_path / f"wandb-{name.lower()}"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    yield
    import wandb

    assert wandb.run is None  # every run was finished


# ---------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("offline", "env", "mode"),
    [
        (True, {}, "offline"),
        (True, {"WANDB_MODE": "offline"}, "offline"),
        (True, {"WANDB_MODE": "dryrun"}, "offline"),
        (True, {"WANDB_MODE": "online"}, "online"),
        (False, {}, "online"),
        (False, {"WANDB_MODE": "offline"}, "online"),  # the override beats the Makefile's export
        (False, {"WANDB_MODE": "disabled"}, "disabled"),
    ],
)
def test_offline_by_default_online_by_one_override(offline, env, mode):
    assert tracking.resolve_mode(offline, env) == mode


def test_runs_are_named_grouped_and_tagged_by_experiment_and_sweep():
    single = tracking.run_info("train", "fig2_robust", sweep={})
    assert (single.name, single.group, single.tags) == (
        "fig2_robust",
        "fig2_robust",
        ["train", "fig2_robust"],
    )
    sweep = {"dir": "multirun/x/2026", "id": "2026", "job": 3, "swept": {"drop.n": "3"}}
    job = tracking.run_info("train", "fig2_specialized", sweep=sweep, tags=["mine"])
    assert job.name == "fig2_specialized[drop.n=3]" and job.group == "fig2_specialized/2026"
    assert job.tags == ["train", "fig2_specialized", "drop.n=3", "mine"]
    assert job.config()["sweep"]["swept"] == {"drop.n": "3"}
    assert tracking.artifact_name("train", "fig2/x", "abc") == "train-fig2-x-abc"


def test_the_swept_keys_come_from_the_sweeps_multirun_yaml(tmp_path):
    saved = {
        "hydra": {
            "sweeper": {"params": {"drop.n": "range(0,${adapterdrop.num_layers:${model}})"}},
            "overrides": {
                "task": ["seed=1,2", "model=tiny", "paths.root=/a,/b", "+method.x=3", "sweep=t"]
            },
        }
    }
    (tmp_path / "multirun.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(saved)))
    assert tracking.swept_keys(tmp_path / "multirun.yaml") == ["drop.n", "seed"]
    assert tracking.swept_keys(tmp_path / "absent.yaml") is None
    # a command-line sweep: Hydra saves the sweeper's params as null
    line = {
        "hydra": {"sweeper": {"params": None}, "overrides": {"task": ["bench.num_tasks=[2],[4]"]}}
    }
    (tmp_path / "multirun.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(line)))
    assert tracking.swept_keys(tmp_path / "multirun.yaml") == ["bench.num_tasks"]


def test_the_training_table_has_a_row_per_dropped_depth():
    metrics = {
        "val/accuracy@n=1": 0.6,
        "val/accuracy@n=0": 0.7,
        "val/loss@n=0": 0.5,
        "val/loss@n=1": 0.6,
        "val/accuracy": 0.7,
        "train/loss": 0.4,
    }
    columns, rows = tracking.eval_sweep_rows(metrics)
    assert columns == ["n", "val/accuracy", "val/loss"]
    assert rows == [[0, 0.7, 0.5], [1, 0.6, 0.6]]
    # no eval sweep: one row at the run's evaluation depth
    assert tracking.eval_sweep_rows({"val/accuracy": 0.5, "train/loss": 1.0}, 3) == (
        ["n", "val/accuracy"],
        [[3, 0.5]],
    )


def test_bench_tables_are_read_back_from_their_markdown():
    markdown = (
        "| num_tasks | name | ours_% |\n| --------: | :--- | -----: |\n"
        "|         2 | a    |  3.59 |\n|         4 |      |   nan |\n"
    )
    columns, rows = tracking.parse_markdown_table(markdown)
    assert columns == ["num_tasks", "name", "ours_%"]
    assert rows[0] == [2, "a", 3.59] and rows[1][:2] == [4, None]
    assert tracking.flat_numbers({"a": {"b": 1, "c": [2.5, "x"]}, "d": True}) == {
        "a/b": 1.0,
        "a/c/0": 2.5,
    }


def test_a_training_run_keeps_the_wandb_run_open_until_its_result_is_logged():
    import wandb  # noqa: F401  (imported, so that close_loggers looks at wandb.run)

    class WandbLogger:  # what close_loggers recognises, without a run behind it
        pass

    tracking.close_loggers([WandbLogger()])  # no run open: nothing to do
    with tracking.train_run(Path("/nonexistent"), "x", "0" * 16):
        assert tracking._TRAIN_RUNS == [True]
    assert tracking._TRAIN_RUNS == []


# ------------------------------------------------------------------ offline runs, on disk
@NEEDS_RTE
def test_an_offline_training_run_holds_config_metrics_table_figure_and_artifact(
    tmp_path, wandb_env
):
    from test_train import shrunk

    cfg = shrunk(tmp_path, "logger=wandb", "eval_sweep=true", "experiment_name=wandb_check")
    metrics = train(cfg)
    [run_dir] = tracking.offline_runs(tmp_path / "out")
    run = read_offline_run(run_dir)
    pid = point_id(result_config(cfg))
    assert (run["name"], run["group"], run["job_type"]) == ("wandb_check", "wandb_check", "train")
    assert run["tags"] == ["train", "wandb_check"] and run["project"] == "adapterdrop"
    assert json.loads(run["config"]["tracking"])["experiment"] == "wandb_check"
    assert json.loads(run["config"]["drop"])["mode"] == "none"  # the result's config, once
    assert {"trainer/global_step", "val/accuracy@n=3"} <= run["history"]
    assert run["media"] == {"eval_sweep": "table-file", "figures/eval_sweep": "image-file"}
    [result] = [a for a in run["artifacts"] if a["type"] == "result"]
    assert result == {
        "name": f"train-wandb_check-{pid}",
        "type": "result",
        "files": [f"{pid}.json"],
    }
    # the table holds every depth, and the table and the figure are files of the run
    [table] = (run_dir / "files" / "media" / "table").glob("eval_sweep_*.table.json")
    logged = json.loads(table.read_text())
    assert [row[0] for row in logged["data"]] == [0, 1, 2, 3]
    assert logged["columns"][:2] == ["n", "val/accuracy"]
    assert logged["data"][3][1] == pytest.approx(metrics["val/accuracy@n=3"])
    assert list((run_dir / "files" / "media" / "images" / "figures").glob("eval_sweep_*.png"))


def test_an_offline_benchmark_run_holds_points_tables_and_their_result_files(tmp_path, wandb_env):
    root = tmp_path / "results" / "box" / "raw"
    ids = []
    for n, error in ((2, None), (4, {"type": "E", "message": "m", "traceback": "t"})):
        config = {"num_tasks": n, "model": "tiny"}
        outcome = {"error": error} if error else {"metrics": {"ours": {"per_layer": 3.5 * n}}}
        record = make_result(experiment="table2", config=config, environment={}, **outcome)
        write_result(record, root)
        ids.append(point_id(config))
    summary = RunSummary(measured=[ids[0]], failed=[ids[1]], errors={ids[1]: "E: m"})
    # a column mixing numbers with estimates and their CI, as the efficiency tables' paper rows do
    tables = {
        "table2": "| num_tasks | ours |\n| ---: | ---: |\n| 2 | 7.0 |\n| 4 | 1.31 [1.2, 1.4] |\n"
    }
    cfg = {"bench": {"name": "table2"}, "machine": "box", "seed": 0}
    wandb_cfg = {"project": "adapterdrop", "offline": True, "save_dir": str(tmp_path / "out")}
    folder = tracking.log_benchmark(cfg, summary, tables, root, wandb_cfg)
    run = read_offline_run(folder)
    assert (run["name"], run["group"], run["job_type"]) == ("table2", "table2", "bench")
    assert run["tags"] == ["bench", "table2", "box"]
    assert json.loads(run["config"]["bench"]) == {"name": "table2"}
    assert {"ours/per_layer", "_step"} <= run["history"]
    assert run["media"] == {"points": "table-file", "tables/table2": "table-file"}
    [result] = [a for a in run["artifacts"] if a["type"] == "result"]
    assert result["name"] == "bench-table2-box"
    assert sorted(result["files"]) == sorted(
        [
            result_path(root, "table2", ids[0]).name,
            result_path(root, "table2", ids[1], "failed").name,
        ]
    )
    assert tracking.log_benchmark(cfg, summary, tables, root, None) is None  # logger=none


# ------------------------------------------------------------------------ the W&B report
def report_script():
    spec = importlib.util.spec_from_file_location(
        "wandb_report", REPO / "scripts" / "wandb_report.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_report_has_one_section_per_paper_artefact_and_needs_no_network(monkeypatch):
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.reports.v2.interface as interface

    def no_network():
        raise AssertionError("the report was built without network")

    monkeypatch.setattr(interface, "_get_api", no_network)
    script = report_script()
    report = script.build_report("me", "adapterdrop")
    assert (report.entity, report.project) == ("me", "adapterdrop")
    titles = [block.text for block in report.blocks if isinstance(block, wr.H1)]
    assert [t.split(":")[0] for t in titles] == [
        "Table 1",
        "Table 2",
        "Table 3",
        "Efficiency",
        "Fig. 2",
        "Fig. 4/5",
        "Appendix",
        "Methods frontier",
    ]
    grids = [block for block in report.blocks if isinstance(block, wr.PanelGrid)]
    assert len(grids) == len(titles)
    filters = [grid.runsets[0].filters for grid in grids]
    assert filters[1] == "Config('tracking.experiment') == 'table2'"
    assert "'fig2_standard', 'fig2_robust', 'fig2_specialized'" in filters[4]
    assert filters[5] == "Config('tracking.experiment') == 'fusion'"
    assert filters[6] == "Config('tracking.experiment') == 'sharing'"  # standard and shared
    assert filters[7] == "Config('tracking.experiment') == 'methods'"
    tables = {
        title.split(":")[0]: [p.table_name for p in grid.panels if hasattr(p, "table_name")]
        for title, grid in zip(titles, grids, strict=True)
    }
    assert tables["Table 2"] == ["tables/table2", "tables/table2_curve"]
    assert tables["Fig. 2"] == ["eval_sweep"]
    media = [p for p in grids[4].panels if isinstance(p, wr.MediaBrowser)]
    assert media and media[0].media_keys == ["figures/eval_sweep"]
    assert "Table 3" in script.outline(report) and "eval_sweep" in script.outline(report)


def test_offline_the_report_says_why_and_what_to_sync(tmp_path, monkeypatch, capsys):
    script = report_script()
    run = tmp_path / "multirun" / "train" / "x" / "0" / "wandb" / "offline-run-20260101_000000-ab"
    run.mkdir(parents=True)
    monkeypatch.setattr(script, "REPO", tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert script.main(["--entity", "me"]) == 2
    said = capsys.readouterr().err
    assert "W&B is offline" in said and "a report lives on the W&B server" in said
    assert "1 offline run(s)" in said and "offline-run-20260101_000000-ab" in said
    assert "wandb sync $(find outputs multirun -type d -name 'offline-run-*')" in said
    assert 'WANDB_MODE=online make report REPORT_ARGS="--entity me"' in said
    # online but never logged in: the same advice, for that reason
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    (tmp_path / "netrc").write_text("")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert script.main([]) == 2
    assert "W&B has no API key here" in capsys.readouterr().err
