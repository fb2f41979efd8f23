"""The ``fusion`` experiment end to end on a tiny model and real data (a few steps each): the
fused single-task adapters are trained once and found by config afterwards, the fusion trains
over them, pruning keeps the most activated adapters by name, and the tables build."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from adapterdrop.cli import fusion as cli_fusion
from adapterdrop.cli.eval import EvaluationFailed, evaluate
from adapterdrop.cli.train import find_trained_adapter, result_config, train
from adapterdrop.data import DataError
from adapterdrop.methods.fusion import fusion_layers
from adapterdrop.reporting import figures
from adapterdrop.reporting.fusion import write_fusion_tables
from adapterdrop.reporting.notebooks import run_all
from adapterdrop.results import iter_result_files, point_id, read_result, result_path
from adapterdrop.train import fusion as train_fusion
from adapterdrop.train.preflight import check_run
from conftest import REPO
from test_eval import compose_eval
from test_sweeps import compose_job, job_overrides, make_commands
from test_train import DATA_DIR, TINY_LAYERS, compose_train, shrunk

#: The experiment's own K = 8 tasks (conf/experiment/fusion.yaml), all with local data.
FUSED = [
    "glue/cola",
    "glue/mrpc",
    "glue/rte",
    "glue/sst2",
    "glue/stsb",
    "glue/wnli",
    "superglue/cb",
    "superglue/wic",
]
NEEDS_DATA = pytest.mark.skipif(
    not all((DATA_DIR / benchmark).is_dir() for benchmark in ("glue", "superglue")),
    reason=f"real GLUE/SuperGLUE files not found under {DATA_DIR}",
)


def fusion_cfg(tmp_path, *overrides: str):
    """The real experiment, shrunk: tiny model, 16 examples, 2 steps per run."""
    return shrunk(tmp_path, "experiment=fusion", "logger=none", *overrides)


def adapter_records(tmp_path) -> dict[str, dict]:
    """``{task: result}`` of the single-task adapter runs."""
    paths = iter_result_files(tmp_path / "results", "fusion_adapters")
    return {r["config"]["data"]["task"]: r for r in map(read_result, paths)}


class PruneSpy:
    """Records what each pruning kept in every fusion layer, read back from the layers."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kept: list[dict[int, list[str]]] = []
        original = train_fusion.prune_fusion

        def prune(encoder, task, keep):
            original(encoder, task, keep)
            self.kept.append({i: layer.names for i, layer in fusion_layers(encoder, task).items()})

        monkeypatch.setattr(train_fusion, "prune_fusion", prune)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny kernels on one thread: on a busy 2-core machine two threads stall each other (3x)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fusion_run(tmp_path_factory):
    """RTE's fusion over the 8 adapters (trained on the way), pruning recorded."""
    tmp_path = tmp_path_factory.mktemp("fusion")
    with pytest.MonkeyPatch.context() as monkeypatch:
        spy = PruneSpy(monkeypatch)
        cfg = fusion_cfg(tmp_path)
        metrics = train(cfg)
    return tmp_path, cfg, metrics, spy.kept


@NEEDS_DATA
def test_missing_adapters_are_trained_once_then_found_by_config(fusion_run):
    tmp_path, cfg, _, _ = fusion_run
    first = adapter_records(tmp_path)
    assert sorted(first) == FUSED
    for task, record in first.items():
        assert record["config"]["method"]["name"] == "pfeiffer"
        assert record["config"]["optim"]["lr"] == 1e-3  # fusion.overrides
        assert find_trained_adapter(cli_fusion.adapter_config(cfg, task)) is not None
    assert sorted(cli_fusion.fused_folders(cfg, result_config)) == FUSED

    # CoLA's fusion and a rerun of RTE's reuse all eight: no adapter trains again
    train(fusion_cfg(tmp_path, "data=glue/cola"))
    train(fusion_cfg(tmp_path))
    assert adapter_records(tmp_path) == first
    results = list(iter_result_files(tmp_path / "results", "fusion"))
    assert len(results) == 2


@NEEDS_DATA
def test_the_fusion_identity_names_the_fused_adapters_runs(fusion_run):
    tmp_path, cfg, _, _ = fusion_run
    config = result_config(cfg)
    fused = config["fused_adapters"]
    records = adapter_records(tmp_path)
    assert {task: run["point_id"] for task, run in fused.items()} == {
        task: record["point_id"] for task, record in records.items()
    }
    record = read_result(result_path(tmp_path / "results", "fusion", point_id(config)))
    assert record["config"]["fused_adapters"] == fused
    # another adapter config for one task is another fusion run
    other = fusion_cfg(tmp_path, "fusion.overrides.optim.lr=0.01")
    assert point_id(result_config(other)) != point_id(config)


@NEEDS_DATA
def test_pruning_keeps_exactly_the_top_k_adapters_by_activation(fusion_run):
    _, _, metrics, kept = fusion_run
    activation = {t: metrics[f"fusion/activation/{t}"] for t in FUSED}
    ranks = {t: metrics[f"fusion/rank/{t}"] for t in FUSED}
    ranking = sorted(FUSED, key=ranks.__getitem__)
    assert sorted(ranks.values()) == list(range(1, 9))
    assert [activation[t] for t in ranking] == sorted(activation.values(), reverse=True)
    # k = 7 .. 1, each the same adapters in every fusion layer, in fusion order
    assert len(kept) == len(FUSED) - 1
    for k, layers in zip(range(len(FUSED) - 1, 0, -1), kept, strict=True):
        top = [t for t in FUSED if t in ranking[:k]]
        assert layers == dict.fromkeys(range(TINY_LAYERS), top)
    for k in range(1, len(FUSED) + 1):
        assert 0.0 <= metrics[f"val/accuracy@k={k}"] <= 1.0
    assert metrics["val/accuracy@k=8"] == metrics["val/accuracy"]
    for n in range(TINY_LAYERS):  # fusion-AdapterDrop
        assert 0.0 <= metrics[f"val/accuracy@n={n}"] <= 1.0


@NEEDS_DATA
def test_tables_from_the_results_with_baseline_and_speed(fusion_run, monkeypatch):
    tmp_path, _, metrics, _ = fusion_run
    monkeypatch.setenv("ADAPTERDROP_DATA_DIR", str(DATA_DIR))
    speed = tmp_path / "machines" / "cpu-x" / "tables"
    speed.mkdir(parents=True)
    pd.DataFrame(
        [
            {"source": "ours", "adapters": 8, "keep": 2, "speedup": 1.25},
            {"source": "adapterhub", "adapters": 8, "keep": 2, "speedup": 1.75},
        ]
    ).to_csv(speed / "table3_pruning.csv", index=False)
    written = write_fusion_tables(tmp_path / "results", tmp_path / "tables", speed.parents[1])
    assert set(written) == {"fusion_pruning", "fusion_drop", "fusion_activations"}

    pruning = pd.read_csv(tmp_path / "tables" / "fusion_pruning.csv")
    rte = pruning[(pruning["task"] == "glue/rte") & (pruning["metric"] == "accuracy")]
    assert rte["k"].tolist() == list(range(1, 9))
    assert rte["score"].tolist() == pytest.approx(
        [metrics[f"val/accuracy@k={k}"] for k in rte["k"]]
    )
    assert (rte["full"] == metrics["val/accuracy@k=8"]).all()
    assert rte["kept_fraction"].iloc[-1] == 1.0
    top2 = sorted(FUSED, key=lambda t: metrics[f"fusion/rank/{t}"])[:2]
    assert rte.set_index("k").loc[2, "kept"] == ", ".join(top2)
    assert rte.set_index("k")["speedup_cpu-x"].dropna().to_dict() == {2: 1.25}
    assert rte["majority"].notna().all()  # RTE's majority class on its dev split

    drop = pd.read_csv(tmp_path / "tables" / "fusion_drop.csv")
    assert sorted(set(drop["dropped_layers"])) == list(range(TINY_LAYERS))
    activations = pd.read_csv(tmp_path / "tables" / "fusion_activations.csv")
    assert sorted(activations[activations["task"] == "glue/rte"]["adapter"]) == FUSED


@NEEDS_DATA
def test_a_saved_fusion_scores_as_its_training_run_validated_it(fusion_run):
    tmp_path, cfg, metrics, _ = fusion_run
    fusion = find_trained_adapter(cfg)
    overrides = [f"adapters=[{fusion}]", f"paths.adapters_root={tmp_path / 'adapters'}"]
    [scores] = evaluate(compose_eval(tmp_path, *overrides))
    for n in range(TINY_LAYERS):
        assert scores[f"val/accuracy@n={n}"] == metrics[f"val/accuracy@n={n}"]
    elsewhere = compose_eval(tmp_path, *overrides[:1], f"paths.adapters_root={tmp_path / 'none'}")
    with pytest.raises(EvaluationFailed, match="fuses the glue/cola adapter of training run"):
        evaluate(elsewhere)


@pytest.mark.parametrize(
    ("adapters", "error", "match"),
    [
        ("[mrpc]", ValueError, "write the task key 'glue/mrpc'"),
        ("[glue/nope]", DataError, "Valid tasks: .*glue/mrpc"),
        ("[glue/mrpc,glue/mrpc]", ValueError, r"names \['glue/mrpc'\] more than once"),
        ("[]", ValueError, "name the tasks whose single-task adapters to fuse"),
    ],
)
def test_bad_fused_tasks_fail_before_any_training(tmp_path, adapters, error, match):
    cfg = fusion_cfg(tmp_path, f"method.adapters={adapters}")
    with pytest.raises(error, match=match):
        train(cfg)
    assert not (tmp_path / "results" / "fusion_adapters").exists()


@NEEDS_DATA
def test_a_plain_fusion_run_trains_its_adapters_with_the_defaults(tmp_path):
    """The command a new user tried: no experiment, just the method and the tasks to fuse."""
    cfg = shrunk(tmp_path, "logger=none", "method=fusion", "method.adapters=[glue/mrpc,glue/stsb]")
    metrics = train(cfg)
    assert sorted(adapter_records(tmp_path)) == ["glue/mrpc", "glue/stsb"]  # DEFAULTS
    single = cli_fusion.adapter_config(cfg, "glue/stsb")
    assert single.method.name == "pfeiffer" and single.optim == cfg.optim
    assert {"val/accuracy@k=1", "val/accuracy@k=2"} <= set(metrics)
    with pytest.raises(ValueError, match="fusion has no key"):
        cli_fusion.fusion_settings(compose_train("method=fusion", "+fusion.epochs=3"))


@NEEDS_DATA
def test_make_reproduce_fusion_runs_both_targets_over_the_same_adapters():
    """As `make reproduce-fusion` composes its jobs (the real CPU settings): SST-2's and
    STS-B's fusions pass the run's checks and fuse the same eight adapter runs."""
    [(app, args)] = make_commands("reproduce-fusion", {})
    jobs = job_overrides(app, args)
    configs = [compose_job(app, job) for job in jobs]
    assert [c["data"]["task"] for c in configs] == ["glue/sst2", "glue/stsb"]
    for config in configs:
        check_run(config)
    identities = []
    for job in jobs:
        cfg = compose_train(*job, "paths.output_dir=/tmp/unused", f"data.data_dir={DATA_DIR}")
        assert cli_fusion.fused_tasks(cfg) == FUSED and cfg.data.limit_examples == 2000
        identities.append(cli_fusion.fused_identity(cfg, result_config))
    assert identities[0] == identities[1] and len(identities[0]["fused_adapters"]) == 8


@NEEDS_DATA
def test_the_figure_draws_the_main_metric_per_target_from_the_tables(fusion_run, monkeypatch):
    tmp_path, _, _, _ = fusion_run
    monkeypatch.setenv("ADAPTERDROP_DATA_DIR", str(DATA_DIR))
    tables = tmp_path / "figure-tables"
    write_fusion_tables(tmp_path / "results", tables, tmp_path / "no-machines")
    pruning = figures.read_table(tables, "fusion_pruning")
    fig = figures.fusion_figure(pruning, figures.read_table(tables, "fusion_drop"))
    prune_ax, drop_ax = fig.axes[:2]
    targets = pruning.loc[pruning["main"], ["task", "metric"]].drop_duplicates()
    scored = [line for line in prune_ax.lines if line.get_linestyle() == "-"]
    assert len(scored) == len(targets) and all(len(line.get_xdata()) == 8 for line in scored)
    assert len([line for line in drop_ax.lines if line.get_linestyle() == "-"]) == len(targets)


@NEEDS_DATA
def test_the_notebook_draws_the_tables_of_the_run(fusion_run, monkeypatch):
    tmp_path, _, _, _ = fusion_run
    monkeypatch.setenv("ADAPTERDROP_DATA_DIR", str(DATA_DIR))
    root = tmp_path / "notebook-root"
    write_fusion_tables(tmp_path / "results", root / "tables", tmp_path / "no-machines")
    out = tmp_path / "figures"
    written, failed = run_all(root, out, notebooks_dir=REPO / "notebooks", only=["fusion"])
    assert not failed, failed
    assert (out / "fusion.png").stat().st_size > 10_000
    assert (out / "fusion.pdf").read_bytes().startswith(b"%PDF")
