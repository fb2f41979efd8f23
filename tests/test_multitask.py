"""Multi-task training (data=multitask): one model, a head per task, each task scored on its
own dev split; with one task it is the single-task run exactly."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adapterdrop.artefacts import BACKBONE_FILE
from adapterdrop.cli.eval import evaluate
from adapterdrop.cli.train import result_config, train
from adapterdrop.data import MultiTaskDataModule
from adapterdrop.data.errors import DataError
from adapterdrop.models import load_backbone
from adapterdrop.results import iter_result_files, point_id, read_result, result_path
from adapterdrop.train import multitask as multitask_file
from test_eval import compose_eval
from test_train import DATA_DIR, NEEDS_RTE, compose_train, shrunk

TASKS = "[glue/rte,glue/stsb,superglue/multirc]"


def multitask(tmp_path, tasks: str = TASKS, *overrides: str):
    return shrunk(tmp_path, "data=multitask", f"data.tasks={tasks}", "logger=none", *overrides)


@NEEDS_RTE
def test_one_task_as_a_multitask_run_is_the_single_task_run(tmp_path):
    """Same seed, same batches, same loss: the same weights, so the same dev scores."""
    single = train(shrunk(tmp_path / "single", "method=full", "logger=none"))
    multi = train(multitask(tmp_path / "multi", "[glue/rte]", "method=full"))
    assert multi["val/glue/rte/accuracy"] == pytest.approx(single["val/accuracy"], abs=0)
    assert multi["val/glue/rte/loss"] == pytest.approx(single["val/loss"], rel=1e-6)
    assert multi["val/average"] == multi["val/glue/rte/accuracy"]
    assert multi["params/trainable"] == single["params/trainable"]


@NEEDS_RTE
def test_a_multitask_run_scores_every_task_and_their_average(tmp_path):
    cfg = multitask(tmp_path, TASKS, "method=full", "trainer.max_steps=3")  # MultiRC: 3 batches
    metrics = train(cfg)
    mains = {"glue/rte": "accuracy", "glue/stsb": "pearson", "superglue/multirc": "f1a"}
    scores = [metrics[f"val/{task}/{metric}"] for task, metric in mains.items()]
    assert metrics["val/average"] == pytest.approx(sum(scores) / 3)
    assert {"val/superglue/multirc/em", "train/glue/stsb/loss", "time/to_best_s"} <= set(metrics)
    # one backbone for every task: full fine-tuning's count, not three times it
    backbone = load_backbone(dict(cfg.model), seed=0).model
    assert metrics["params/trainable"] == sum(p.numel() for p in backbone.parameters())
    pid = point_id(result_config(cfg))
    record = read_result(result_path(tmp_path / "results", "train", pid))
    assert set(record["config"]["data_content"]) == set(mains)
    assert record["artefacts"] == {"adapter": str(tmp_path / "adapters" / "train" / pid)}
    assert (
        point_id(result_config(multitask(tmp_path, "[glue/rte,glue/stsb]"))) != record["point_id"]
    )


@NEEDS_RTE
@pytest.mark.parametrize("method", ["full", "pfeiffer", "coda"])
def test_each_task_of_a_multitask_run_is_saved_and_scores_as_trained(tmp_path, method):
    """Every task's artefact, loaded on its own into a single-task model, gives exactly the
    dev scores the multi-task run logged for that task."""
    cfg = multitask(tmp_path, "[glue/rte,glue/stsb]", f"method={method}")
    trained = train(cfg)
    folder = tmp_path / "adapters" / "train" / point_id(result_config(cfg))
    assert sorted(p.name for p in folder.iterdir()) == ["glue_rte", "glue_stsb"]
    backbones = [folder / name / BACKBONE_FILE for name in ("glue_rte", "glue_stsb")]
    if method == "full":  # one backbone on disk, linked into both folders
        assert len({path.stat().st_ino for path in backbones}) == 1
    else:
        assert not any(path.exists() for path in backbones)
    for task, metric in (("glue/rte", "accuracy"), ("glue/stsb", "pearson")):
        overrides = [f"adapters=[{folder / task.replace('/', '_')}]", f"data={task}"]
        [metrics] = evaluate(compose_eval(tmp_path / task, *overrides))
        assert metrics[f"val/{metric}"] == trained[f"val/{task}/{metric}"]  # exactly
        assert metrics["val/loss"] == pytest.approx(trained[f"val/{task}/loss"], rel=1e-6)


@NEEDS_RTE
def test_adapters_trained_together_count_each_tasks_own_modules(tmp_path):
    one = train(shrunk(tmp_path / "one", "logger=none"))
    two = train(multitask(tmp_path / "two", "[glue/rte,glue/wnli]"))
    assert two["params/trainable"] == 2 * one["params/trainable"]


def tiny_tokenizer():
    return load_backbone(dict(compose_train("model=tiny").model), seed=0).tokenizer


def two_task_data(tmp_path, **settings) -> MultiTaskDataModule:
    """RTE and STS-B, 24 examples each in batches of 8, set up for fitting."""
    data = MultiTaskDataModule(
        ["glue/rte", "glue/stsb"],
        tiny_tokenizer(),
        data_dir=DATA_DIR,
        cache_dir=tmp_path,
        limit_examples=24,
        batch_size=8,
        **settings,
    )
    data.setup("fit")
    return data


@NEEDS_RTE
def test_a_training_batch_holds_one_batch_of_every_task(tmp_path):
    data = two_task_data(tmp_path)
    data.modules["glue/stsb"].datasets["train"] = (
        data.modules["glue/stsb"].datasets["train"].select(range(8))
    )  # one batch: it cycles while RTE runs its three
    batches = [batch for batch, _, _ in data.train_dataloader()]
    assert len(batches) == 3
    assert all(set(batch) == {"glue/rte", "glue/stsb"} for batch in batches)
    assert batches[0]["glue/stsb"]["labels"].dtype.is_floating_point
    assert [len(loader.dataset) for loader in data.val_dataloader()] == [24, 24]


@NEEDS_RTE
def test_a_regression_loss_is_measured_in_its_labels_variance_from_a_head_at_their_mean(
    tmp_path,
):
    """Balanced, STS-B's MSE is divided by the variance of its training labels and its head
    starts at their mean; RTE's cross-entropy is left as it is."""
    data = two_task_data(tmp_path)
    labels = np.asarray(data.modules["glue/stsb"].datasets["train"]["labels"], dtype=np.float64)
    mean, variance = data.label_scales()["glue/stsb"]
    assert set(data.label_scales()) == {"glue/stsb"}
    assert (mean, variance) == pytest.approx((labels.mean(), labels.var()))
    cfg = compose_train("model=tiny", "method=full")
    module = multitask_file.MultiTaskModule(dict(cfg.model), dict(cfg.method), data.tasks)
    module.trainer = SimpleNamespace(datamodule=data)
    module.setup("fit")
    assert module.model.heads["glue/stsb"].out.bias.detach().tolist() == pytest.approx([mean])
    module.eval()  # no dropout: the two forward passes below agree
    batch = next(iter(data.train_dataloader()))[0]
    with torch.no_grad():
        losses = {task: loss.item() for task, loss in module.task_losses(batch).items()}
    stsb, rte = batch["glue/stsb"], batch["glue/rte"]
    with torch.no_grad():
        mse = F.mse_loss(module(stsb, "glue/stsb").view(-1), stsb["labels"]).item()
        ce = F.cross_entropy(module(rte, "glue/rte"), rte["labels"]).item()
    assert losses["glue/stsb"] == pytest.approx(mse / variance, rel=1e-6)
    assert losses["glue/rte"] == pytest.approx(ce, rel=1e-6)


@NEEDS_RTE
def test_no_balance_and_a_lone_task_leave_the_losses_as_the_single_task_run_has_them(tmp_path):
    assert two_task_data(tmp_path, loss_balance="none").label_scales() == {}
    alone = MultiTaskDataModule(
        ["glue/stsb"], tiny_tokenizer(), data_dir=DATA_DIR, cache_dir=tmp_path
    )
    alone.setup("fit")
    assert alone.label_scales() == {}


def test_task_overrides_reach_only_their_task(tmp_path):
    data = MultiTaskDataModule(
        ["glue/rte", "superglue/multirc"],
        tiny_tokenizer(),
        max_length=128,
        task_overrides={"superglue/multirc": {"max_length": 256}, "superglue/boolq": {}},
    )
    assert data.modules["superglue/multirc"].max_length == 256
    assert data.modules["glue/rte"].max_length == 128


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["drop.mode=robust"], "AdapterDrop runs are single-task"),
        (["eval_sweep=true"], "eval_sweep=true"),
        (["method=fusion", "method.adapters=[glue/mrpc,glue/stsb]"], "fuses single-task"),
        (["method=lora"], "'lora' places its weights inside the shared backbone"),
        (["method=adapterbias-ln"], "inside the shared backbone"),
        (["data.tasks=[]"], "name the tasks"),
        (["data.tasks=[glue/rte,glue/rte]"], "more than once"),
        (["data.tasks=[glue/rte,glue/nope]"], "Valid tasks"),
        (["data.loss_balance=equal"], r"'equal' is not one of \['label_variance', 'none'\]"),
        (["++data.task_overrides={glue/rte: {max_lenght: 64}}"], r"\['max_lenght'\] are no loader"),
        (["data.task_overrides=256"], "give loader settings per task"),
    ],
)
def test_what_a_multitask_run_cannot_do_fails_before_any_model(
    tmp_path, monkeypatch, overrides, message
):
    def never(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was checked")

    monkeypatch.setattr(multitask_file, "load_backbone", never)
    with pytest.raises((ValueError, DataError, KeyError), match=message):
        train(multitask(tmp_path, TASKS, *overrides))


@NEEDS_RTE
def test_two_processes_score_each_task_on_its_whole_dev_split(tmp_path):
    """Untrained (max_steps=0), so both runs hold the same weights: a 2-process DDP run must
    store exactly the one-process metrics of every task, MultiRC's grouped ones included."""
    common = [
        "model=minilm-l6",  # pretrained: a fresh head's predictions differ by example
        "data=multitask",
        "data.tasks=[glue/rte,superglue/multirc]",
        f"data.data_dir={DATA_DIR}",
        "data.limit_examples=15",  # odd: the second process's shard is padded with a repeat
        "data.batch_size=4",
        "data.max_length=64",
        "method=full",
        "logger=none",
        "trainer.accelerator=cpu",
        "trainer.max_steps=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"data.cache_dir={tmp_path / 'cache'}",
        f"paths.checkpoints_root={tmp_path / 'checkpoints'}",
    ]
    runs = {}
    for name, trainer in (("one", []), ("two", ["trainer=ddp", "trainer.devices=2"])):
        command = [sys.executable, "-m", "adapterdrop.cli.train", *common, *trainer]
        command.append(f"paths.root={tmp_path / name}")
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert ("Starting with 2 processes" in done.stdout + done.stderr) == bool(trainer)
        [path] = iter_result_files(tmp_path / name / "raw")
        runs[name] = read_result(path)["metrics"]
    scores = {k: v for k, v in runs["one"].items() if k.startswith("val/") and "loss" not in k}
    assert {"val/glue/rte/accuracy", "val/superglue/multirc/em", "val/average"} <= set(scores)
    assert {k: runs["two"][k] for k in scores} == scores
