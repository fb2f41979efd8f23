"""``python -m adapterdrop.cli.train`` (or ``adapterdrop-train``): fit one task's adapters,
evaluate them, and write the run's metrics as a result JSON (kind ``"train"``).

``main`` is the thin Hydra entry point; ``train(cfg)`` does the work on a composed config, so
tests and notebooks call it with configs from Hydra's compose API.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger, WandbLogger

from adapterdrop.bench.environment import collect_environment
from adapterdrop.cli import conf_dir
from adapterdrop.data import get_task_spec
from adapterdrop.results import (
    is_measured,
    make_result,
    point_id,
    read_result,
    result_path,
    write_result,
)
from adapterdrop.train import AdapterDropModule

log = logging.getLogger(__name__)

#: Config keys that say where things go or how they are shown, not what is computed; a
#: result's point id ignores them, so a re-run elsewhere finds the earlier result.
RESULT_CONFIG_EXCLUDE = (
    "paths",
    "logger",
    "hydra",
    "skip_measured",
    "data.data_dir",
    "data.cache_dir",
    "data.num_workers",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
)


def result_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config minus ``RESULT_CONFIG_EXCLUDE``: what identifies a training run."""
    plain = OmegaConf.to_container(cfg, resolve=False)
    for dotted in RESULT_CONFIG_EXCLUDE:
        *parents, leaf = dotted.split(".")
        node = plain
        for key in parents:
            node = node.get(key, {})
        node.pop(leaf, None)
    return OmegaConf.to_container(OmegaConf.create(plain), resolve=True)


def instantiate_loggers(cfg: Mapping[str, Any] | None) -> list[Logger]:
    """One logger per entry of the ``logger`` group (none for ``logger=none``)."""
    return [hydra.utils.instantiate(entry) for entry in (cfg or {}).values()]


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, evaluate (at every depth with ``eval_sweep``), write the result; return metrics."""
    experiment = cfg.experiment_name
    config = result_config(cfg)
    root = cfg.paths.results_root
    if cfg.skip_measured and is_measured(root, experiment, point_id(config)):
        path = result_path(root, experiment, point_id(config))
        log.info("already measured: %s", path)
        return read_result(path)["metrics"]
    pl.seed_everything(cfg.seed, workers=True)
    module = AdapterDropModule(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        method=OmegaConf.to_container(cfg.method, resolve=True),
        task=cfg.data.task,
        drop=OmegaConf.to_container(cfg.drop, resolve=True),
        optim=OmegaConf.to_container(cfg.optim, resolve=True),
        seed=cfg.seed,
    )
    if module.tokenizer is None:
        raise ValueError(
            f"model {cfg.model.name!r} has no tokenizer, so it cannot be trained on text: "
            "set model.tokenizer or pick model=minilm-l6 / model=tiny"
        )
    datamodule = hydra.utils.instantiate(cfg.data, tokenizer=module.tokenizer)
    loggers = instantiate_loggers(cfg.get("logger"))
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(config)
    try:
        metrics = _fit_and_evaluate(cfg, trainer, module, datamodule)
    except Exception as err:
        error = {
            "type": type(err).__name__,
            "message": str(err),
            "traceback": traceback.format_exc(),
        }
        write_result(_record(experiment, config, error=error), root)
        raise
    finally:
        close_loggers(loggers)
    log.info("result: %s", write_result(_record(experiment, config, metrics=metrics), root))
    return metrics


def close_loggers(loggers: list[Logger]) -> None:
    """Finish the wandb run, so that the next job of a multirun starts its own."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb  # only here: importing wandb costs seconds that other runs need not pay

        wandb.finish()


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
    module: AdapterDropModule,
    datamodule: pl.LightningDataModule,
) -> dict[str, float]:
    trainer.fit(module, datamodule=datamodule)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
    module.set_eval_ns(range(module.num_layers) if cfg.eval_sweep else None)
    metrics.update(trainer.validate(module, datamodule=datamodule, verbose=False)[0])
    if cfg.run_test:
        module.set_eval_ns(None)
        metrics.update(trainer.test(module, datamodule=datamodule, verbose=False)[0])
    return metrics


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns the main validation metric, for Hydra sweepers that optimise it."""
    metrics = train(cfg)
    return metrics.get(f"val/{get_task_spec(cfg.data.task).main_metric}")


if __name__ == "__main__":
    main()
