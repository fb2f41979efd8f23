"""Training: configs compose, AdapterDrop modes do what they say, a real run writes a result."""

from __future__ import annotations

import io
import json
import statistics
from itertools import pairwise
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from pytorch_lightning.loggers import CSVLogger, WandbLogger
from scipy import stats
from torch.utils.data import DataLoader

from adapterdrop.artefacts import read_artefact
from adapterdrop.cli import conf_dir
from adapterdrop.cli import train as cli_train
from adapterdrop.cli.train import find_trained_adapter, instantiate_loggers, result_config, train
from adapterdrop.config import training_precision
from adapterdrop.results import point_id, read_result, result_path
from adapterdrop.train import AdapterDropModule, clock
from adapterdrop.train import module as module_file
from adapterdrop.train.last_validation import LastFitValidation
from adapterdrop.train.robust import RobustDropSampler

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
NEEDS_RTE = pytest.mark.skipif(
    not (DATA_DIR / "glue" / "RTE" / "dev.tsv").is_file(),
    reason=f"real GLUE RTE files not found under {DATA_DIR}",
)
TINY_LAYERS = 4


def compose_train(*overrides: str, hydra_cfg: bool = False):
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir())):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra_cfg)


def shrunk(tmp_path: Path, *overrides: str):
    """The real primary config, shrunk to a tiny model, 16 examples and 2 steps."""
    return compose_train(
        "model=tiny",
        "logger=csv",
        f"data.data_dir={DATA_DIR}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.limit_examples=16",
        "data.batch_size=8",
        "trainer.max_steps=2",
        "trainer.precision=32-true",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"paths.output_dir={tmp_path / 'out'}",
        f"paths.results_root={tmp_path / 'results'}",
        f"paths.checkpoints_root={tmp_path / 'checkpoints'}",
        f"paths.adapters_root={tmp_path / 'adapters'}",
        *overrides,
    )


def tiny_module(task: str = "glue/rte", method: str = "pfeiffer", **drop) -> AdapterDropModule:
    cfg = compose_train("model=tiny", f"method={method}")
    return AdapterDropModule(dict(cfg.model), dict(cfg.method), task, drop=drop, seed=0)


def synthetic_batch(size: int = 4, seq: int = 6, choices: int | None = None) -> dict:
    shape = (size, seq) if choices is None else (size, choices, seq)
    generator = torch.Generator().manual_seed(size)
    return {
        "input_ids": torch.randint(1000, 2000, shape, generator=generator),
        "attention_mask": torch.ones(shape, dtype=torch.long),
        "labels": torch.randint(0, choices or 2, (size,), generator=generator),
    }


def loader(batches: list[dict]) -> DataLoader:
    return DataLoader(batches, batch_size=None)


def quiet_trainer(**kwargs) -> pl.Trainer:
    kwargs = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **kwargs,
    }
    return pl.Trainer(**kwargs)


class DepthSpy:
    """Wraps the encoder's forward to record (stage, dropped_layers) of every call."""

    def __init__(self, module: AdapterDropModule) -> None:
        self.calls: list[tuple[str, int]] = []
        encoder = module.model.encoder
        original = encoder.forward

        def forward(*args, **kwargs):
            stage = "train" if module.training else "eval"
            self.calls.append(
                (stage, kwargs.get("dropped_layers", args[4] if len(args) > 4 else 0))
            )
            return original(*args, **kwargs)

        encoder.forward = forward


# ------------------------------------------------------------------------------ configs
def test_primary_config_composes_with_every_launcher_and_fig2_experiment():
    for launcher, target in [("joblib", "JoblibLauncher"), ("submitit_slurm", "SlurmLauncher")]:
        cfg = compose_train(f"hydra/launcher={launcher}", hydra_cfg=True)
        assert cfg.hydra.launcher._target_.endswith(target)
    cfg = compose_train()
    assert (cfg.model.name, cfg.data.task, cfg.method.name) == ("minilm-l6", "glue/rte", "pfeiffer")
    assert list(cfg.logger) == ["wandb"]  # trainer=auto: this CPU's fast precision
    assert cfg.trainer.precision == training_precision("cpu")
    standard = compose_train("experiment=fig2_standard")
    assert standard.drop.mode == "none" and standard.eval_sweep
    robust = compose_train("experiment=fig2_robust")
    assert robust.drop.mode == "robust" and robust.eval_sweep
    specialized = compose_train("experiment=fig2_specialized", hydra_cfg=True)
    assert specialized.drop.mode == "specialized"
    assert specialized.hydra.sweeper.params["drop.n"] == "range(1,6)"  # n = 0: the standard run
    assert compose_train("trainer=cpu").trainer.precision == training_precision("cpu")


def test_wandb_logger_is_offline_by_default_and_none_means_no_logger(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = compose_train("paths.output_dir=/tmp/unused")
    [logger] = instantiate_loggers(cfg.logger)
    assert isinstance(logger, WandbLogger) and logger._wandb_init["mode"] == "offline"
    assert instantiate_loggers(compose_train("logger=none").get("logger")) == []
    both = compose_train("logger=[csv,wandb]", "paths.output_dir=/tmp/unused")
    assert sorted(both.logger) == ["csv", "wandb"]


def test_result_config_ignores_where_output_goes(tmp_path):
    a = shrunk(tmp_path / "a")
    b = shrunk(tmp_path / "b", "data.num_workers=1", "logger=none")
    assert point_id(result_config(a)) == point_id(result_config(b))
    assert point_id(result_config(a)) != point_id(result_config(shrunk(tmp_path, "seed=1")))


# ---------------------------------------------------------------------- end to end (real RTE)
@NEEDS_RTE
def test_fit_and_sweep_on_real_rte_write_a_train_result(tmp_path):
    cfg = shrunk(tmp_path, "experiment=fig2_robust")
    metrics = train(cfg)
    expected = {f"val/accuracy@n={n}" for n in range(TINY_LAYERS)} | {"val/accuracy", "val/loss"}
    assert expected <= set(metrics) and {"train/loss", "train/dropped"} <= set(metrics)
    assert all(0.0 <= metrics[k] <= 1.0 for k in expected - {"val/loss"})
    assert metrics["val/accuracy"] == metrics["val/accuracy@n=0"]
    path = result_path(tmp_path / "results", "fig2_robust", point_id(result_config(cfg)))
    record = read_result(path)
    assert record["kind"] == "train" and record["status"] == "ok"
    assert record["metrics"] == pytest.approx(metrics)
    assert record["config"]["drop"]["mode"] == "robust" and "paths" not in record["config"]
    # the trained adapter is saved by its point id and named in the record
    adapter = tmp_path / "adapters" / "fig2_robust" / record["point_id"]
    assert record["artefacts"] == {"adapter": str(adapter)}
    assert find_trained_adapter(cfg) == adapter
    assert read_artefact(adapter).training["config"] == record["config"]
    assert find_trained_adapter(shrunk(tmp_path, "experiment=fig2_robust", "seed=1")) is None
    csv = (tmp_path / "out" / "csv" / "version_0" / "metrics.csv").read_text()
    assert "val/accuracy@n=3" in csv

    # the same config again finds the result and does not train
    again = shrunk(tmp_path, "experiment=fig2_robust", "skip_measured=true")
    assert train(again) == pytest.approx(json.loads(path.read_text())["metrics"])


@NEEDS_RTE
def test_specialized_run_on_real_rte_validates_at_its_n(tmp_path):
    cfg = shrunk(tmp_path, "drop.mode=specialized", "drop.n=2", "logger=none")
    metrics = train(cfg)
    assert "val/accuracy" in metrics and not any("@n=" in k for k in metrics)
    path = result_path(tmp_path / "results", "train", point_id(result_config(cfg)))
    assert read_result(path)["config"]["drop"]["n"] == 2


@NEEDS_RTE
def test_a_run_that_fails_records_a_failed_result_and_raises(tmp_path, monkeypatch):
    def boom(*args):
        raise RuntimeError("out of memory at step 1")

    monkeypatch.setattr(cli_train, "_fit_and_evaluate", boom)
    cfg = shrunk(tmp_path, "logger=none")
    with pytest.raises(RuntimeError, match="out of memory"):
        train(cfg)
    record = read_result(
        result_path(tmp_path / "results", "train", point_id(result_config(cfg)), "failed")
    )
    assert record["status"] == "failed" and "out of memory" in record["error"]["message"]


@pytest.mark.slow
@NEEDS_RTE
def test_offline_wandb_run_is_written_locally_and_finished(tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(shrunk(tmp_path, "logger=wandb"))
    assert wandb.run is None
    assert list((tmp_path / "out" / "wandb").glob("offline-run-*/run-*.wandb"))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("task", "method", "drop", "message"),
    [
        ("glue/nope", "pfeiffer", {}, "Valid tasks"),
        ("glue/rte", "nope", {}, "choose one of"),
        ("glue/rte", "pfeiffer", {"mode": "sometimes"}, "robust"),
        ("glue/rte", "pfeiffer", {"mode": "robust", "n": 2}, "drop.max_n"),
        ("glue/rte", "full", {"mode": "specialized", "n": 1}, "leave_out"),
    ],
)
def test_bad_input_fails_before_the_backbone_loads(monkeypatch, task, method, drop, message):
    def never(*args, **kwargs):
        raise AssertionError("the backbone was loaded before the config was checked")

    monkeypatch.setattr(module_file, "load_backbone", never)
    cfg = compose_train("model=tiny")
    method_cfg = (
        {"name": method} if method == "nope" else dict(compose_train(f"method={method}").method)
    )
    with pytest.raises(ValueError, match=message):
        AdapterDropModule(dict(cfg.model), method_cfg, task, drop=drop)


@pytest.mark.parametrize("drop", [{"mode": "dynamic", "n": 4}, {"mode": "robust", "eval_n": 7}])
def test_drop_depth_beyond_the_encoder_names_the_valid_range(drop):
    with pytest.raises(ValueError, match=r"4-layer encoder: choose 0\.\.3"):
        tiny_module(**drop)


def test_drop_modes_need_per_layer_modules():
    with pytest.raises(ValueError, match="nothing to drop"):
        tiny_module(method="full", mode="dynamic", n=1)


# ------------------------------------------------------------------------------ robust
def test_robust_sampler_is_reproducible_from_its_seed_alone():
    first = RobustDropSampler(12, seed=3).draw()
    a, b, c = (RobustDropSampler(12, seed=s) for s in (3, 3, 4))
    torch.manual_seed(0)
    seq_a = [a.draw() for _ in range(50)]
    torch.manual_seed(123)  # the global RNG plays no part
    assert seq_a == [b.draw() for _ in range(50)] and seq_a[0] == first
    assert seq_a != [c.draw() for _ in range(50)]
    state = a.state_dict()
    ahead = [a.draw() for _ in range(5)]
    a.load_state_dict(state)
    assert [a.draw() for _ in range(5)] == ahead


def test_robust_sampler_is_uniform_over_0_to_L_minus_1():
    sampler = RobustDropSampler(12, seed=0)
    counts = torch.bincount(torch.tensor([sampler.draw() for _ in range(12_000)]), minlength=13)
    assert counts[12] == 0 and (counts[:12] > 0).all()
    assert stats.chisquare(counts[:12].numpy()).pvalue > 1e-3
    notebook = RobustDropSampler(12, seed=0, max_n=10)
    assert max(notebook.draw() for _ in range(2000)) == 10
    with pytest.raises(ValueError, match=r"choose 0\.\.11"):
        RobustDropSampler(12, seed=0, max_n=12)


def test_validation_right_after_a_robust_training_batch_uses_the_configured_n():
    module = tiny_module(mode="robust", eval_n=1)
    spy = DepthSpy(module)
    batches = [synthetic_batch(4) for _ in range(6)]
    trainer = quiet_trainer(max_steps=6, val_check_interval=1, num_sanity_val_steps=1)
    trainer.fit(module, loader(batches), loader(batches[:2]))
    train_ns = [n for stage, n in spy.calls if stage == "train"]
    assert len(train_ns) == 6 and set(train_ns) != {1}  # draws that differ from eval n
    assert spy.calls[0] == ("eval", 1)  # sanity check
    follows_training = [later for earlier, later in pairwise(spy.calls) if earlier[0] == "train"]
    assert follows_training == [("eval", 1)] * 6  # val_check_interval=1: after every batch
    assert all(n == 1 for stage, n in spy.calls if stage == "eval")


# ------------------------------------------------------------------ specialized / dynamic
def test_specialized_builds_no_modules_below_n():
    layers = {k.layer for k in tiny_module(mode="specialized", n=2).model.encoder.modules_of("rte")}
    assert layers == {2, 3}
    assert {k.layer for k in tiny_module().model.encoder.modules_of("rte")} == {
        0,
        1,
        2,
        3,
    }


def test_dynamic_forwards_with_dropped_layers_in_training_and_evaluation():
    module = tiny_module(mode="dynamic", n=3)
    spy = DepthSpy(module)
    batch = synthetic_batch()
    module.training_step(batch, 0)
    module.eval()
    module.on_validation_epoch_start()
    module.validation_step(batch, 0)
    assert spy.calls == [("train", 3), ("eval", 3)]


def test_training_step_with_dropped_layers_gives_backbone_and_dropped_adapters_no_grad():
    module = tiny_module(mode="dynamic", n=2)
    assert module.model.encoder.backbone.training  # dropout on, as in HF/AdapterHub training
    module.training_step(synthetic_batch(), 0).backward()
    backbone = module.model.encoder.backbone
    assert all(p.grad is None for p in backbone.parameters())
    for key, adapter in module.model.encoder.modules_of("rte").items():
        grads = [p.grad for p in adapter.parameters()]
        if key.layer < 2:
            assert all(g is None for g in grads), key
        else:
            assert any(g is not None and g.abs().sum() > 0 for g in grads), key
    assert all(p.grad is not None for p in module.model.heads.parameters())


# ---------------------------------------------------------------------- loss and metrics
def test_loss_by_task_type():
    regression = tiny_module("glue/stsb")
    logits = torch.tensor([[1.0], [2.0]])
    assert regression.loss(logits, torch.tensor([0.0, 4.0])).item() == pytest.approx(2.5)
    copa = tiny_module("superglue/copa")
    batch = synthetic_batch(3, choices=2)
    logits = copa(batch, 0)
    assert logits.shape == (3, 2)
    expected = torch.nn.functional.cross_entropy(logits, batch["labels"])
    assert copa.loss(logits, batch["labels"]).item() == pytest.approx(expected.item())


def test_validation_metrics_are_computed_over_the_whole_epoch():
    module = tiny_module()
    batches = [synthetic_batch(3), synthetic_batch(2)]
    [result] = quiet_trainer().validate(module, loader(batches), verbose=False)
    module.eval()
    with torch.no_grad():
        predictions = torch.cat([module(b, 0).argmax(-1) for b in batches])
    labels = torch.cat([b["labels"] for b in batches])
    assert result["val/accuracy"] == pytest.approx((predictions == labels).float().mean().item())


def test_eval_sweep_logs_each_depth_and_the_configured_one_plainly():
    module = tiny_module(mode="dynamic", n=1)
    module.set_eval_ns(range(TINY_LAYERS))
    [result] = quiet_trainer().validate(module, loader([synthetic_batch(4)]), verbose=False)
    assert {f"val/accuracy@n={n}" for n in range(TINY_LAYERS)} <= set(result)
    assert result["val/accuracy"] == result["val/accuracy@n=1"]
    with pytest.raises(ValueError, match=r"choose 0\.\.3"):
        module.set_eval_ns([4])


# ---------------------------------------------------------------------------- optimizer
def test_adamw_gets_only_trainable_params_and_a_linear_warmup_decay():
    cfg = compose_train("model=tiny")
    optim = {"lr": 1e-3, "warmup_ratio": 0.2}
    module = AdapterDropModule(dict(cfg.model), dict(cfg.method), "glue/rte", optim=optim)
    module.trainer = quiet_trainer(max_steps=-1, max_epochs=-1)
    with pytest.raises(ValueError, match="max_steps"):
        module.configure_optimizers()
    module.trainer = quiet_trainer(max_steps=10, max_epochs=-1)
    config = module.configure_optimizers()
    optimizer, schedule = config["optimizer"], config["lr_scheduler"]["scheduler"]
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    trainable = {id(p) for p in module.parameters() if p.requires_grad}
    assert in_optimizer == trainable and len(trainable) < len(list(module.parameters()))
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == 0.0 and lrs[2] == pytest.approx(1e-3) and lrs[6] == pytest.approx(5e-4)


def test_bf16_mixed_precision_trains_on_cpu():
    module = tiny_module()
    trainer = quiet_trainer(max_steps=2, precision="bf16-mixed", limit_val_batches=0)
    trainer.fit(module, loader([synthetic_batch(), synthetic_batch(3)]))
    assert trainer.global_step == 2


def test_csv_logger_config_instantiates(tmp_path):
    [logger] = instantiate_loggers(shrunk(tmp_path).logger)
    assert isinstance(logger, CSVLogger)


@NEEDS_RTE
def test_a_run_records_its_step_times_and_the_training_time_to_its_best_score(tmp_path):
    cfg = shrunk(tmp_path, "experiment=fig2_robust", "trainer.max_steps=4")
    metrics = train(cfg)
    pid = point_id(result_config(cfg))
    record = read_result(result_path(tmp_path / "results", "fig2_robust", pid))
    steps, evals = record["samples"][clock.STEP_S], record["samples"][clock.EVAL_STEP_S]
    # 16 examples at batch 8: 2 steps per epoch, each epoch validated over its 2 batches; the
    # sanity check and the final all-depth validation are not counted
    assert len(steps) == 4 and len(evals) == 2 * 2 and min(steps) > 0
    assert metrics[clock.STEP_S] == pytest.approx(statistics.median(steps))
    assert metrics[clock.TRAIN_S] == pytest.approx(sum(steps))
    assert metrics[clock.BEST_STEP] in (2.0, 4.0)
    best_at = sum(steps[: int(metrics[clock.BEST_STEP])])
    assert metrics[clock.BEST_S] == pytest.approx(best_at)
    # and its size: the adapters training updated, the head apart
    module = AdapterDropModule(model=dict(cfg.model), method=dict(cfg.method), task="glue/rte")
    own = sum(p.numel() for p in module.model.encoder.trainable(module.task))
    head = sum(p.numel() for p in module.model.heads[module.task].parameters())
    assert (metrics["params/trainable"], metrics["params/head"]) == (own, head) and own > 0


def test_the_clock_keeps_its_readings_through_a_checkpoint():
    first = clock.TrainingClock("val/accuracy")
    first.step_seconds, first.eval_seconds, first.best = [0.5, 0.25], [0.1], (0.7, 0.75, 2)
    resumed = clock.TrainingClock("val/accuracy")
    resumed.load_state_dict(torch.load(_saved(first.state_dict()), weights_only=True))
    assert resumed.metrics() == first.metrics() and resumed.samples() == first.samples()
    assert resumed.metrics()[clock.BEST_S] == 0.75


def _saved(state: dict) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


@NEEDS_RTE
def test_a_run_without_a_sweep_reports_its_last_epoch_validation_instead_of_repeating_it(
    tmp_path, monkeypatch
):
    calls = []
    validate = pl.Trainer.validate

    def counted(self, *args, **kwargs):
        calls.append(self.global_step)
        return validate(self, *args, **kwargs)

    monkeypatch.setattr(pl.Trainer, "validate", counted)
    plain = train(shrunk(tmp_path / "plain", "logger=none", "trainer.max_steps=4"))
    assert calls == [] and {"val/accuracy", "val/loss"} <= set(plain)
    train(shrunk(tmp_path / "sweep", "logger=none", "trainer.max_steps=4", "eval_sweep=true"))
    assert calls == [4]  # every depth needs its own pass


def test_the_last_validation_counts_only_while_no_step_came_after_it():
    last = LastFitValidation()
    trainer = quiet_trainer()
    assert last.scores_of(trainer) is None  # nothing validated in this process (a resumed run)
    last.step, last.metrics = 0, {"val/accuracy": 0.5}
    assert last.scores_of(trainer) == {"val/accuracy": 0.5}
    last.step = 3  # the weights moved on since (global step 0 here)
    assert last.scores_of(trainer) is None
