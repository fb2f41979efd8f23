"""LightningModule that trains several tasks as one model, one head per task.

With ``method=full`` this is multi-task full fine-tuning, the baseline of "A Comprehensive
Analysis of Adapter Efficiency" (Mundra et al. 2023): one backbone for all tasks, which they
found no dearer to train than one adapter per task. With an adapter method each task trains
its own modules on the shared frozen backbone, in one step.

A training step takes one batch of every task (:class:`adapterdrop.data.MultiTaskDataModule`)
and minimises the mean of the tasks' losses, each regression loss divided by its training
labels' variance, from a head that starts at their mean, as the datamodule's
``loss_balance`` says (``label_scales``). Validation scores each task on its own dev split
(``val/<task>/<metric>``) and logs ``val/average``, the mean of the tasks' main metrics, which
the run monitors (its time to the best score). Each task is saved as its own artefact
(:meth:`MultiTaskModule.artefact_folders`). AdapterDrop and fusion are single-task regimes and
are refused here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from adapterdrop.config import folder_name
from adapterdrop.data import get_task_spec
from adapterdrop.data.multitask import task_keys
from adapterdrop.engine import AdapterEncoder
from adapterdrop.heads import MultiTaskModel
from adapterdrop.methods import build_method
from adapterdrop.models import load_backbone
from adapterdrop.train.evaluation import EvalBuffer
from adapterdrop.train.module import (
    OptimConfig,
    adamw_with_linear_schedule,
    group_info,
    keep_trained_state,
    task_loss,
)

#: The logged mean of every task's main dev metric, the run's main metric.
AVERAGE = "average"


class MultiTaskModule(pl.LightningModule):
    """Frozen backbone + the method applied for every task + a head per task.

    The tasks and the method are checked before the backbone is loaded.
    """

    #: as the single-task module's flag: no fusion to prune after training
    fuses_tasks = False

    def __init__(
        self,
        model: Mapping[str, Any],
        method: Mapping[str, Any],
        tasks: Sequence[str],
        optim: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.tasks = task_keys(tasks)
        self.specs = {task: get_task_spec(task) for task in self.tasks}
        self.optim = OptimConfig(**(optim or {}))
        self.method_config = dict(method)
        check_multitask_method(self.method_config)
        backbone = load_backbone(model, seed=seed)
        self.tokenizer = backbone.tokenizer
        encoder = AdapterEncoder(backbone.model)
        encoder.freeze_backbone()
        self.model = MultiTaskModel(encoder)
        for task in self.tasks:
            build_method(self.method_config).apply(encoder, task)
            self.model.add_head(task, self.specs[task].num_labels)
        self.model.train()  # dropout on, as in the single-task module
        self.strict_loading = False
        self._scored = {task: EvalBuffer() for task in self.tasks}
        self.loss_scales = {task: 1.0 for task in self.tasks}

    def setup(self, stage: str) -> None:
        """Put the tasks' losses on one scale (the datamodule's ``label_scales``): a regression
        head starts at its labels' mean and its loss is divided by their variance. A resumed
        run then loads the trained head over the starting bias."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage != "fit" or not hasattr(datamodule, "label_scales"):
            return
        for task, (mean, variance) in datamodule.label_scales().items():
            with torch.no_grad():
                self.model.heads[task].out.bias.fill_(mean)
            self.loss_scales[task] = variance

    def artefact_folders(self, folder: Path) -> dict[str, Path]:
        """Where each task is saved (``adapterdrop.artefacts``): a sub-folder per task
        (``glue_stsb``: :func:`adapterdrop.config.folder_name`), each an artefact of its own
        that ``eval`` scores with ``data=<task>``. A method that trains the backbone (full
        fine-tuning) saves it with every task."""
        return {task: folder / folder_name(task) for task in self.tasks}

    def forward(self, batch: Mapping[str, torch.Tensor], task: str) -> torch.Tensor:
        logits = self.model(
            batch["input_ids"],
            batch.get("attention_mask"),
            batch.get("token_type_ids"),
            tasks=task,
        )
        return logits[task]

    def training_step(
        self, batch: Mapping[str, Mapping[str, torch.Tensor]], batch_idx: int
    ) -> torch.Tensor:
        losses = self.task_losses(batch)
        loss = torch.stack(list(losses.values())).mean()
        size = sum(part["input_ids"].shape[0] for part in batch.values())
        self.log("train/loss", loss, prog_bar=True, batch_size=size, sync_dist=True)
        for task, value in losses.items():
            rows = batch[task]["input_ids"].shape[0]
            self.log(f"train/{task}/loss", value, batch_size=rows, sync_dist=True)
        return loss

    def task_losses(
        self, batch: Mapping[str, Mapping[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Each task's training loss on its part of the batch, on the run's one scale."""
        return {
            task: task_loss(self.specs[task], self(part, task), part["labels"])
            / self.loss_scales[task]
            for task, part in batch.items()
        }

    # ----------------------------------------------------------------- evaluation
    def on_validation_epoch_start(self) -> None:
        self._reset_eval()

    def on_test_epoch_start(self) -> None:
        self._reset_eval()

    def validation_step(
        self, batch: Mapping[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_step(batch, dataloader_idx, "val")

    def test_step(
        self, batch: Mapping[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        self._eval_step(batch, dataloader_idx, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def _reset_eval(self) -> None:
        for buffer in self._scored.values():
            buffer.reset([0])

    def _eval_step(self, batch: Mapping[str, torch.Tensor], index: int, stage: str) -> None:
        task = self.tasks[index]
        if "labels" not in batch:
            raise ValueError(
                f"{task}: the {stage} split has no labels (GLUE/SuperGLUE test labels are "
                "hidden), so it cannot be scored; evaluate on the validation split"
            )
        self._scored[task].add({0: self(batch, task)}, batch)

    def _log_eval(self, stage: str) -> None:
        """Each task's metrics over its whole split from every process (as the single-task
        module scores them), then the mean of the main metrics as ``<stage>/average``."""
        datamodule = getattr(self.trainer, "datamodule", None)
        mains = []
        for task in self.tasks:
            scored = self._scored[task].gather(self.trainer.world_size)
            if scored is None:
                continue
            spec = self.specs[task]
            rows, labels, outputs = scored
            split = spec.validation_split if stage == "val" else spec.test_split
            source = None if datamodule is None else datamodule.task_module(task)
            scores = spec.compute_metrics(
                outputs[0], labels, **group_info(spec, source, split, rows)
            )
            self.log(f"{stage}/{task}/loss", task_loss(spec, outputs[0], labels))
            for metric, value in scores.items():
                self.log(f"{stage}/{task}/{metric}", value)
            mains.append(scores[spec.main_metric])
        if len(mains) == len(self.tasks):
            self.log(f"{stage}/{AVERAGE}", sum(mains) / len(mains), prog_bar=True)

    # --------------------------------------------------------- optimizer, checkpoints
    def configure_optimizers(self) -> dict[str, Any]:
        return adamw_with_linear_schedule(self, self.optim)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keep_trained_state(self, checkpoint)


def check_multitask_method(method: Mapping[str, Any]) -> None:
    """A method multi-task training can run: known, not one that fuses other tasks, and
    either training the shared backbone itself (full fine-tuning) or leaving it unchanged:
    a method whose weights live inside the backbone (LoRA's layers, AdapterBias's trained
    LayerNorms) would have its tasks share or clash in them."""
    built = build_method(dict(method))  # an unknown name or option lists the valid ones
    name = method.get("name")
    if built.fuses_tasks:
        raise ValueError(
            f"method {name!r} fuses single-task adapters, which a multi-task run does not "
            "train: use data=<one task> for AdapterFusion"
        )
    if built.changes_backbone and not built.trains_backbone:
        raise ValueError(
            f"method {name!r} places its weights inside the shared backbone, so tasks trained "
            "together would share them: train it with data=<one task>, or pick a method whose "
            "modules are each task's own (pfeiffer, houlsby, adapterbias, coda) or full"
        )
