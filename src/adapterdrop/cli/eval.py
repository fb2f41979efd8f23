"""``python -m adapterdrop.cli.eval`` (or ``adapterdrop-eval``): score saved adapters on the
validation split at every number of dropped layers, one result JSON (kind ``"eval"``) each.

An adapter is a folder that training wrote (``paths.adapters_root/<experiment>/<point id>/``,
see :mod:`adapterdrop.artefacts`); a folder of such folders stands for all of them. The model
and data come from this config's groups, as in training; what was trained (method, task,
AdapterDrop mode) from the adapter. Scoring is the training module's own validation
(:class:`adapterdrop.train.AdapterDropModule` with depths ``0..L-1``), so the metrics and their
names (``val/<metric>``, ``val/<metric>@n=<k>``) are those of a training run's ``eval_sweep``.
Every adapter is scored even when one fails; any failure (each recorded as a failed result)
makes the command exit non-zero.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from adapterdrop.artefacts import SIDECAR_FILE, Artefact, ArtefactError, load_weights, read_artefact
from adapterdrop.bench.environment import collect_environment
from adapterdrop.cli import conf_dir
from adapterdrop.cli.fusion import saved_fused_folders
from adapterdrop.cli.jobs import sweep_job
from adapterdrop.cli.train import check_destination, error_block, result_config
from adapterdrop.data import get_task_spec, is_multitask
from adapterdrop.results import (
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
from adapterdrop.train.preflight import check_data_sizes

log = logging.getLogger(__name__)

STAGES = ("validate",)


class EvaluationFailed(RuntimeError):
    """Some adapters could not be scored; each has a failed result."""


def adapter_folders(entries: Iterable[str | Path]) -> list[Path]:
    """Each entry is an adapter folder, or a folder whose sub-folders are adapters."""
    folders: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if (path / SIDECAR_FILE).is_file():
            folders.append(path)
            continue
        inside = sorted(p.parent for p in path.glob(f"[!.]*/{SIDECAR_FILE}"))
        if not inside:
            raise ArtefactError(
                f"{path} is neither a saved adapter nor a folder of them (no {SIDECAR_FILE}); "
                "training saves them to paths.adapters_root/<experiment_name>/<point id>/"
            )
        folders.extend(inside)
    if not folders:
        raise ValueError(
            "no adapter to evaluate: pass adapters=[<folder>, ...], folders that training wrote "
            "under paths.adapters_root (default outputs/adapters/<experiment_name>/<point id>)"
        )
    return folders


def trained_task(artefact: Artefact) -> str:
    """The data task the adapter was trained on (``glue/rte``; the encoder's name is ``rte``)."""
    config = (artefact.training or {}).get("config", {})
    return get_task_spec(config.get("data", {}).get("task") or artefact.task).key


def eval_config(cfg: DictConfig, artefact: Artefact, data: dict[str, Any]) -> dict[str, Any]:
    """What identifies one evaluation: this config (less where things are), the data's
    content and the adapter's, not where its folder is."""
    config = {k: v for k, v in result_config(cfg, with_data=False).items() if k != "adapters"}
    training = artefact.training or {}
    config["adapter"] = {
        "tensors": artefact.meta["tensors"]["sha256"],
        "task": artefact.task,
        "method": artefact.method,
        "training_point_id": training.get("point_id"),
    }
    config["data_content"] = data
    return config


def evaluate(cfg: DictConfig) -> list[dict[str, float]]:
    """Score every adapter of ``cfg.adapters``; return their metrics in order.

    The destination, the data and every adapter's sidecar are checked before any model loads.
    Each adapter's result is written (failed ones too); :class:`EvaluationFailed` is raised at
    the end if any failed.
    """
    experiment = cfg.experiment_name
    root = Path(cfg.paths.results_root)
    check_destination(experiment, root)
    if is_multitask(cfg.data):
        raise ValueError(
            "data=multitask: eval scores one task's saved adapters; a multi-task run saves one "
            "per task (<its folder>/<benchmark>_<task>, e.g. glue_stsb): pass those with "
            "data=<their task>"
        )
    artefacts = [read_artefact(folder) for folder in adapter_folders(cfg.adapters)]
    task = get_task_spec(cfg.data.task).key
    wrong = [f"{a.folder} ({trained_task(a)})" for a in artefacts if trained_task(a) != task]
    if wrong:
        raise ArtefactError(
            f"data={task} cannot score adapter(s) trained on other tasks: {', '.join(wrong)}; "
            "choose their data=... (one task per run)"
        )
    check_data_sizes(
        OmegaConf.to_container(cfg.data, resolve=True),
        OmegaConf.to_container(cfg.model, resolve=True),
    )
    data = result_config(cfg, stages=STAGES)["data_content"]
    results, failed = [], []
    for artefact in artefacts:
        config = eval_config(cfg, artefact, data)
        pid = point_id(config)
        if cfg.skip_measured and is_measured(root, experiment, pid):
            path = result_path(root, experiment, pid)
            log.info("already measured: %s", path)
            results.append(read_result(path)["metrics"])
            continue
        named = {"adapter": str(artefact.folder)}
        with locked(root / experiment, f".{pid}.lock"):
            remove_orphan_temporaries(root / experiment, pid)
            try:
                metrics = _evaluate(cfg, artefact)
            except Exception as err:
                log.exception("adapter %s failed", artefact.folder)
                record = _record(experiment, config, named, error=error_block(err))
                write_result(record, root)
                failed.append(f"{artefact.folder}: {type(err).__name__}: {err}")
                continue
            record = _record(experiment, config, named, metrics=metrics)
            log.info("result: %s", write_result(record, root))
        results.append(metrics)
    if failed:
        lines = "\n".join(f"  {line.splitlines()[0]}" for line in failed)
        raise EvaluationFailed(f"{len(failed)} of {len(artefacts)} adapter(s) failed:\n{lines}")
    return results


def _evaluate(cfg: DictConfig, artefact: Artefact) -> dict[str, float]:
    """The training module rebuilt as the adapter was trained, its tensors loaded, validated
    at every depth."""
    training = (artefact.training or {}).get("config", {})
    seed = cfg.backbone_seed if cfg.backbone_seed is not None else training.get("seed", cfg.seed)
    pl.seed_everything(cfg.seed, workers=True)
    module = AdapterDropModule(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        method=artefact.method,
        task=cfg.data.task,
        drop=training.get("drop"),
        seed=seed,
        fused=saved_fused_folders(artefact, cfg.paths.get("adapters_root")),
    )
    if module.tokenizer is None:
        raise ValueError(f"model {cfg.model.name!r} has no tokenizer, so it cannot read text")
    load_weights(artefact, module.model, module.task, backbone_name=cfg.model.name)
    datamodule = hydra.utils.instantiate(cfg.data, tokenizer=module.tokenizer, check_stages=STAGES)
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False
    )
    module.set_eval_ns(range(module.num_layers))
    return {
        key: float(value)
        for key, value in trainer.validate(module, datamodule=datamodule, verbose=False)[0].items()
    }


def _record(
    experiment: str, config: dict[str, Any], artefacts: dict[str, str], **outcome: Any
) -> dict[str, Any]:
    return make_result(
        experiment=experiment,
        config=config,
        environment=collect_environment(),
        kind="eval",
        artefacts=artefacts,
        **outcome,
    )


@hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="eval")
@sweep_job
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
