"""``adapterdrop.cli.eval``: a trained adapter, saved by training, scores as it did in training."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from adapterdrop.cli import conf_dir
from adapterdrop.cli.eval import EvaluationFailed, evaluate
from adapterdrop.cli.train import find_trained_adapter, train
from adapterdrop.results import iter_result_files, read_result
from conftest import REPO
from test_config import app_help, help_groups
from test_train import DATA_DIR, NEEDS_RTE, TINY_LAYERS, shrunk

#: The data as ``shrunk`` configures it for training: the same 16 validation examples.
DATA = [
    "model=tiny",
    f"data.data_dir={DATA_DIR}",
    "data.limit_examples=16",
    "data.batch_size=8",
    "trainer.precision=32-true",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def compose_eval(tmp_path, *overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir())):
        return compose(
            "eval",
            overrides=[
                *DATA,
                f"data.cache_dir={tmp_path / 'cache'}",
                f"paths.output_dir={tmp_path / 'eval-out'}",
                f"paths.results_root={tmp_path / 'eval-results'}",
                *overrides,
            ],
        )


def eval_records(tmp_path) -> list[dict]:
    return [read_result(p) for p in iter_result_files(tmp_path / "eval-results")]


@NEEDS_RTE
@pytest.mark.parametrize(
    "overrides",
    [("experiment=fig2_robust",), ("method=lora",), ("drop.mode=specialized", "drop.n=2")],
)
def test_a_saved_adapter_scores_as_the_training_run_validated_it(tmp_path, overrides):
    cfg = shrunk(tmp_path, "logger=none", *overrides)
    trained = train(cfg)
    adapter = find_trained_adapter(cfg)
    assert adapter is not None

    [metrics] = evaluate(compose_eval(tmp_path, f"adapters=[{adapter}]"))
    sweep = {f"val/accuracy@n={n}" for n in range(TINY_LAYERS)}
    assert sweep | {"val/accuracy", "val/loss"} <= set(metrics)
    validated = {k: v for k, v in trained.items() if k.startswith("val/")}
    assert validated and {k: metrics[k] for k in validated} == validated  # exactly
    if "drop.n=2" in overrides:  # scored at the depth it was trained for, and at every other
        assert metrics["val/accuracy"] == metrics["val/accuracy@n=2"]

    [record] = eval_records(tmp_path)
    assert record["kind"] == "eval" and record["status"] == "ok"
    assert record["metrics"] == metrics and record["artefacts"] == {"adapter": str(adapter)}
    assert record["config"]["adapter"]["training_point_id"] == adapter.name
    assert "adapters" not in record["config"] and "paths" not in record["config"]


@NEEDS_RTE
def test_a_folder_of_adapters_is_each_scored_and_a_failure_is_recorded(tmp_path):
    for seed in (0, 1):
        train(shrunk(tmp_path, "logger=none", f"seed={seed}"))
    folder = tmp_path / "adapters" / "train"
    assert len(evaluate(compose_eval(tmp_path, f"adapters=[{folder}]"))) == 2
    assert sorted(r["status"] for r in eval_records(tmp_path)) == ["ok", "ok"]

    # another backbone (the tiny model drawn with seed 7) fails each, recorded, then raises
    cfg = compose_eval(tmp_path, f"adapters=[{folder}]", "backbone_seed=7")
    with pytest.raises(EvaluationFailed, match="2 of 2 adapter\\(s\\) failed") as err:
        evaluate(cfg)
    assert "was trained on backbone tiny" in str(err.value)
    assert sorted(r["status"] for r in eval_records(tmp_path)) == ["failed", "failed", "ok", "ok"]


@NEEDS_RTE
def test_adapters_of_another_task_or_none_fail_before_any_model(tmp_path, monkeypatch):
    cfg = shrunk(tmp_path, "logger=none")
    train(cfg)
    adapter = find_trained_adapter(cfg)
    monkeypatch.setattr("adapterdrop.cli.eval.AdapterDropModule", None)  # never reached
    with pytest.raises(ValueError, match="data=glue/mrpc cannot score adapter.*\\(glue/rte\\)"):
        evaluate(compose_eval(tmp_path, f"adapters=[{adapter}]", "data=glue/mrpc"))
    with pytest.raises(ValueError, match="no adapter to evaluate"):
        evaluate(compose_eval(tmp_path))
    with pytest.raises(ValueError, match="data=multitask: eval scores one task's.*one per task"):
        evaluate(compose_eval(tmp_path, f"adapters=[{adapter}]", "data=multitask"))
    with pytest.raises(ValueError, match="neither a saved adapter nor a folder of them"):
        evaluate(compose_eval(tmp_path, f"adapters=[{tmp_path / 'nothing'}]"))
    assert eval_records(tmp_path) == []


def test_the_command_exits_non_zero_on_failure_and_lists_its_groups(tmp_path):
    command = [
        sys.executable,
        "-m",
        "adapterdrop.cli.eval",
        *DATA,
        f"adapters=[{tmp_path / 'nothing'}]",
        f"paths.results_root={tmp_path}/results",
        f"hydra.run.dir={tmp_path}/run",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert "neither a saved adapter nor a folder of them" in done.stderr
    assert set(help_groups(app_help("eval", []))) == {"model", "data", "trainer"}
