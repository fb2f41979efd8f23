"""``python -m adapterdrop.cli.train`` (or ``adapterdrop-train``): fit one task's adapters,
or several tasks as one model (``data=multitask``: :mod:`adapterdrop.train.multitask`), save
them (``paths.adapters_root/<experiment_name>/<point id>/``, see ``adapterdrop.artefacts``),
evaluate them, and write the run's metrics as a result JSON (kind ``"train"``) that names the
saved adapter (``artefacts.adapter``).

``main`` is the thin Hydra entry point; ``train(cfg)`` does the work on a composed config, so
tests and notebooks call it with configs from Hydra's compose API.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only

from adapterdrop import tracking
from adapterdrop.artefacts import artefact_folder, find_artefact, save_artefact
from adapterdrop.bench.environment import collect_environment
from adapterdrop.cli import conf_dir, fusion
from adapterdrop.cli.jobs import sweep_job
from adapterdrop.data import check_splits, configured_tasks, get_task_spec, is_multitask
from adapterdrop.data.identity import content_digests
from adapterdrop.params import training_counts
from adapterdrop.results import (
    check_experiment_name,
    check_writable,
    is_measured,
    locked,
    make_result,
    point_id,
    read_result,
    remove_orphan_temporaries,
    result_path,
    write_result,
)
from adapterdrop.train import AdapterDropModule
from adapterdrop.train import module as module_file
from adapterdrop.train.clock import TrainingClock
from adapterdrop.train.fusion import score_pruned_fusion
from adapterdrop.train.last_validation import LastFitValidation
from adapterdrop.train.multitask import AVERAGE, MultiTaskModule
from adapterdrop.train.preflight import check_run

log = logging.getLogger(__name__)

#: Config keys that say where things go or how they are shown, not what is computed; a
#: result's point id ignores them, so a re-run elsewhere finds the earlier result.
RESULT_CONFIG_EXCLUDE = (
    "paths",
    "logger",
    "hydra",
    "skip_measured",
    "resume",
    "checkpoint_every_n_steps",
    "data.data_dir",
    "data.cache_dir",
    "data.num_workers",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
)


def result_config(
    cfg: DictConfig, *, with_data: bool = True, stages: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """What identifies a training run: the resolved config minus ``RESULT_CONFIG_EXCLUDE``,
    plus (``with_data``) a digest of each data split it reads (those of ``stages``, default
    :func:`run_stages`), so runs on different files never share a result while the same files
    anywhere do. Needs the data to be there."""
    plain = OmegaConf.to_container(cfg, resolve=False)
    for dotted in RESULT_CONFIG_EXCLUDE:
        *parents, leaf = dotted.split(".")
        node = plain
        for key in parents:
            node = node.get(key, {})
        node.pop(leaf, None)
    config = OmegaConf.to_container(OmegaConf.create(plain), resolve=True)
    if with_data:
        config["data_content"] = data_content(cfg, stages or run_stages(cfg))
        config.update(fusion.fused_identity(cfg, result_config))
    if module_file.CODE_VERSION != 1:
        config["code_version"] = module_file.CODE_VERSION
    return config


def data_content(cfg: DictConfig, stages: tuple[str, ...]) -> dict[str, Any]:
    """Digests of the splits a run reads: its task's, or ``{task: digests}`` for a multi-task
    run. Checks first that every split is there, naming any that is missing."""
    digests = {
        task: content_digests(check_splits(task, cfg.data.data_dir, stages), get_task_spec(task))
        for task in configured_tasks(cfg.data)
    }
    return digests if is_multitask(cfg.data) else next(iter(digests.values()))


def main_metric(cfg: DictConfig) -> str:
    """The validation metric a run is judged by: its task's main metric, or the mean of the
    tasks' main metrics for a multi-task run."""
    if is_multitask(cfg.data):
        return f"val/{AVERAGE}"
    return f"val/{get_task_spec(cfg.data.task).main_metric}"


def find_trained_adapter(cfg: DictConfig) -> Path | None:
    """The adapter that training ``cfg`` saved (found by the point id of its
    :func:`result_config`, so anywhere the same config and data ran into this
    ``paths.adapters_root``), or ``None`` when it has not been trained yet."""
    root = cfg.paths.get("adapters_root")
    if root is None:
        return None
    return find_artefact(root, cfg.experiment_name, result_config(cfg))


def instantiate_loggers(cfg: Mapping[str, Any] | None) -> list[Logger]:
    """One logger per entry of the ``logger`` group (none for ``logger=none``)."""
    return [hydra.utils.instantiate(entry) for entry in (cfg or {}).values()]


def train(cfg: DictConfig) -> dict[str, float]:
    """Check, fit, save the adapter, evaluate (at every depth with ``eval_sweep``), write the
    result; return its metrics.

    Everything that can be checked without a model is checked first. A run that fails after
    its destination was checked leaves a failed record beside any earlier success. A killed
    run resumes from its last checkpoint when rerun with the same config (``resume``).
    """
    experiment = cfg.experiment_name
    root = Path(cfg.paths.results_root)
    zero = is_global_zero()
    check_destination(experiment, root)
    adapters_root = cfg.paths.get("adapters_root")
    try:
        if adapters_root is not None:
            check_writable(Path(adapters_root) / experiment, "paths.adapters_root")
        check_run(OmegaConf.to_container(cfg, resolve=True))
        config = result_config(cfg)
    except Exception as err:
        config = result_config(cfg, with_data=False)
        if zero:
            write_result(_record(experiment, config, error=error_block(err)), root)
        raise
    pid = point_id(config)
    if cfg.skip_measured and is_measured(root, experiment, pid):
        path = result_path(root, experiment, pid)
        log.info("already measured: %s", path)
        return read_result(path)["metrics"]
    fusion.train_missing_adapters(cfg, result_config, train)  # an AdapterFusion's, first
    with claimed(root / experiment, pid, zero), tracking.train_run(root, experiment, pid):
        checkpoints = Path(cfg.paths.checkpoints_root) / experiment / pid
        adapter = None
        if adapters_root is not None:
            adapter = artefact_folder(adapters_root, experiment, pid)
        training = {"experiment": experiment, "point_id": pid, "config": config}
        try:
            metrics, samples = _run(cfg, checkpoints, adapter, training)
        except Exception as err:
            if zero:
                write_result(_record(experiment, config, error=error_block(err)), root)
            raise
        if zero:
            saved = None if adapter is None else {"adapter": str(adapter)}
            record = _record(experiment, config, metrics=metrics, samples=samples, artefacts=saved)
            log.info("result: %s", write_result(record, root))
    if zero:  # the result is written: nothing to resume
        shutil.rmtree(checkpoints, ignore_errors=True)
    return metrics


def is_global_zero() -> bool:
    """Whether this process writes the run's files. With several devices (``trainer=ddp``),
    ``trainer.fit`` starts the other processes with this command line and their rank in the
    environment, so they run :func:`train` too: they must not lock, write or delete its files."""
    return rank_zero_only.rank == 0


@contextlib.contextmanager
def claimed(folder: Path, pid: str, zero: bool) -> Iterator[None]:
    """Hold the point's lock (and clear what a killed writer left) on the writing process;
    the other processes of a multi-device run, started while it holds the lock, take none."""
    if not zero:
        yield
        return
    with locked(folder, f".{pid}.lock"):
        remove_orphan_temporaries(folder, pid)
        yield


def check_destination(experiment: str, root: Path) -> None:
    """Where the result goes: checked first, as a failure there could not even be recorded."""
    try:
        check_experiment_name(experiment)
    except ValueError as err:
        raise ValueError(f"experiment_name: {err}") from None
    check_writable(root / experiment)


def run_stages(cfg: DictConfig) -> tuple[str, ...]:
    """The Lightning stages a run reads data for: fit (train and validation), test if asked."""
    return ("fit", "test") if cfg.run_test else ("fit",)


def error_block(err: BaseException) -> dict[str, str]:
    return {"type": type(err).__name__, "message": str(err), "traceback": traceback.format_exc()}


def _run(
    cfg: DictConfig,
    checkpoints: Path,
    adapter: Path | None = None,
    training: Mapping[str, Any] | None = None,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The run's metrics, and the raw step times behind its timing metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    module = build_module(cfg)
    if module.tokenizer is None:
        raise ValueError(
            f"model {cfg.model.name!r} has no tokenizer, so it cannot be trained on text: "
            "set model.tokenizer or pick model=minilm-l6 / model=tiny"
        )
    datamodule = hydra.utils.instantiate(cfg.data, tokenizer=module.tokenizer)
    loggers = instantiate_loggers(cfg.get("logger"))
    clock = TrainingClock(main_metric(cfg))
    last_validation = LastFitValidation()
    callbacks: list[pl.Callback] = [clock, last_validation]
    if cfg.resume:
        callbacks.append(resume_checkpoint(checkpoints, cfg.checkpoint_every_n_steps))
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        enable_checkpointing=cfg.resume,
    )
    log.info("precision %s on %s", trainer.precision, trainer.accelerator.__class__.__name__)
    for logger in loggers:
        logger.log_hyperparams(result_config(cfg, with_data=False))
    last = checkpoints / "last.ckpt"
    ckpt_path = str(last) if cfg.resume and last.is_file() else None
    if ckpt_path:
        log.info("resuming from %s", last)
    try:
        metrics = _fit_and_evaluate(
            cfg, trainer, module, datamodule, last_validation, ckpt_path, adapter, training
        )
        heads = [module.model.heads[task] for task in module.tasks]
        sizes = training_counts(module.model.encoder, heads, module.tasks)
        return {**metrics, **clock.metrics(), **sizes}, clock.samples()
    finally:
        close_loggers(loggers)


def build_module(cfg: DictConfig) -> AdapterDropModule | MultiTaskModule:
    """The run's LightningModule: one task's, or every task's of a multi-task run."""
    common = {
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "method": OmegaConf.to_container(cfg.method, resolve=True),
        "optim": OmegaConf.to_container(cfg.optim, resolve=True),
        "seed": cfg.seed,
    }
    if is_multitask(cfg.data):
        return MultiTaskModule(tasks=list(cfg.data.tasks), **common)
    return AdapterDropModule(
        task=cfg.data.task,
        drop=OmegaConf.to_container(cfg.drop, resolve=True),
        fused=fusion.fused_folders(cfg, result_config),
        **common,
    )


def resume_checkpoint(folder: Path, every_n_steps: int | None) -> ModelCheckpoint:
    """``last.ckpt`` in ``folder`` (one per config), at every epoch's end or every n steps."""
    return ModelCheckpoint(
        dirpath=folder,
        filename="last",
        save_last=False,
        save_top_k=1,
        monitor=None,
        every_n_train_steps=every_n_steps,
        enable_version_counter=False,
    )


def close_loggers(loggers: list[Logger]) -> None:
    """Finish the wandb run, so that the next job of a multirun starts its own (inside
    :func:`train` once its result is logged to it: :func:`adapterdrop.tracking.train_run`)."""
    tracking.close_loggers(loggers)


def _record(experiment: str, config: dict[str, Any], **outcome: Any) -> dict[str, Any]:
    return make_result(
        experiment=experiment,
        config=config,
        environment=collect_environment(),
        kind="train",
        **outcome,
    )


def _fit_and_evaluate(
    cfg: DictConfig,
    trainer: pl.Trainer,
    module: AdapterDropModule | MultiTaskModule,
    datamodule: pl.LightningDataModule,
    last_validation: LastFitValidation,
    ckpt_path: str | None = None,
    adapter: Path | None = None,
    training: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Fit, save, and score the final weights: at every depth (``eval_sweep``) by validating
    again, else with the scores of the fit's last validation when it ran on those weights."""
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    if adapter is not None and trainer.is_global_zero:
        first = None  # the tasks of one model share its backbone file, if they save one
        for task, folder in module.artefact_folders(adapter).items():
            save_artefact(
                module.model,
                task,
                folder,
                module.method_config,
                backbone_name=cfg.model.name,
                training=training,
                same_backbone_as=first,
            )
            first = first or folder
            log.info("adapter of %s: %s", task, folder)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
    scores = None
    if cfg.eval_sweep:
        module.set_eval_ns(range(module.num_layers))
    else:
        scores = last_validation.scores_of(trainer)
    if scores is None:
        scores = merged(trainer.validate(module, datamodule=datamodule, verbose=False))
    metrics.update(scores)
    if cfg.run_test:
        if cfg.eval_sweep:
            module.set_eval_ns(None)
        metrics.update(merged(trainer.test(module, datamodule=datamodule, verbose=False)))
    if module.fuses_tasks:  # last: it leaves the fusion pruned
        metrics.update(score_pruned_fusion(trainer, module, datamodule))
    return metrics


def merged(per_loader: list[dict[str, float]]) -> dict[str, float]:
    """One dict of what ``trainer.validate``/``test`` return per dataloader (a multi-task
    run has one per task, each holding every metric logged at the epoch's end)."""
    return {key: value for metrics in per_loader for key, value in metrics.items()}


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")
@sweep_job
def main(cfg: DictConfig) -> float | None:
    """Returns the main validation metric, for Hydra sweepers that optimise it."""
    metrics = train(cfg)
    return metrics.get(main_metric(cfg))


if __name__ == "__main__":
    main()
