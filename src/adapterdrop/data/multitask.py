"""Several tasks as one Lightning DataModule, for multi-task training (one model, one head per
task: the multi-task full fine-tuning that Mundra et al. 2023 compare adapters against).

Each task keeps its own :class:`TaskDataModule` (its files, subset, cache and collator). A
training batch holds one batch of every task, as the benchmark's multi-task step does
(``bench=efficiency``'s ``multitask`` study); an epoch runs the largest task's batches and the
smaller tasks start over (Lightning's ``max_size_cycle``). Validation and test run each task's
loader in turn, ``dataloader_idx`` being the task's place in ``tasks``.

Two settings are the multi-task run's own. ``task_overrides`` gives a task loader settings
over the shared ones (MultiRC's passages need 256 tokens, as its single-task config says).
``loss_balance`` says how the tasks' losses share one scale: an unscaled MSE on STS-B's 0-5
labels starts near 10, against 0.69 for a binary cross-entropy, and its gradient (29x SST-2's
on the encoder) left SST-2 at chance in a 5-task run. ``label_variance`` measures a regression
loss in units of its training labels' variance, from a head that starts at their mean: z-scored
targets, with predictions still on the labels' scale.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from adapterdrop.data.datamodule import TaskDataModule
from adapterdrop.data.errors import DataError
from adapterdrop.data.tasks import get_task_spec

#: ``data.loss_balance``: how a multi-task run puts its tasks' losses on one scale.
LOSS_BALANCES = ("label_variance", "none")


def task_keys(tasks: Any) -> list[str]:
    """``data.tasks`` checked: a list of at least one distinct, known task key."""
    if isinstance(tasks, str) or not isinstance(tasks, Sequence) or not tasks:
        raise DataError(
            f"data.tasks={tasks!r}: name the tasks to train together as a list of task keys, "
            "e.g. 'data.tasks=[glue/stsb,glue/rte]'"
        )
    keys = [get_task_spec(task).key for task in tasks]  # an unknown one lists the valid ones
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise DataError(f"data.tasks names {twice} more than once: {list(tasks)}")
    return keys


def configured_tasks(data: Mapping[str, Any]) -> list[str]:
    """The tasks a data config reads: ``data.tasks`` of a multi-task config (its own settings
    checked too, so a bad one fails before any model loads), else its one ``data.task``."""
    if data.get("tasks") is not None:
        check_loss_balance(data.get("loss_balance", LOSS_BALANCES[0]))
        task_settings(data.get("task_overrides"))
        return task_keys(data["tasks"])
    return [get_task_spec(data["task"]).key]


def is_multitask(data: Mapping[str, Any]) -> bool:
    """Whether a data config trains several tasks together (``data=multitask``)."""
    return data.get("tasks") is not None


def check_loss_balance(loss_balance: str) -> None:
    if loss_balance not in LOSS_BALANCES:
        raise DataError(f"data.loss_balance={loss_balance!r} is not one of {list(LOSS_BALANCES)}")


def task_settings(overrides: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict]:
    """``data.task_overrides`` checked: loader settings keyed by known task keys (tasks the
    run does not train may be listed, so one config serves every task list)."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise DataError(
            f"data.task_overrides={overrides!r}: give loader settings per task, "
            "e.g. '++data.task_overrides={glue/rte: {max_length: 256}}'"
        )
    valid = set(inspect.signature(TaskDataModule).parameters) - {"task", "tokenizer"}
    checked = {}
    for task, settings in overrides.items():
        unknown = sorted(set(settings) - valid)
        if unknown:
            raise DataError(
                f"data.task_overrides.{task}: {unknown} are no loader settings; "
                f"valid: {sorted(valid)}"
            )
        checked[get_task_spec(task).key] = dict(settings)
    return checked


class MultiTaskDataModule(pl.LightningDataModule):
    """The tasks' :class:`TaskDataModule` s side by side, the settings shared but for each
    task's ``task_overrides``."""

    def __init__(
        self,
        tasks: Sequence[str],
        tokenizer: PreTrainedTokenizerBase,
        loss_balance: str = "label_variance",
        task_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        **shared: Any,
    ) -> None:
        super().__init__()
        check_loss_balance(loss_balance)
        self.tasks = task_keys(tasks)
        self.loss_balance = loss_balance
        overrides = task_settings(task_overrides)
        self.modules = {
            task: TaskDataModule(task, tokenizer, **{**shared, **overrides.get(task, {})})
            for task in self.tasks
        }

    def setup(self, stage: str | None = None) -> None:
        for module in self.modules.values():
            module.setup(stage)

    def train_dataloader(self) -> CombinedLoader:
        loaders = {task: module.train_dataloader() for task, module in self.modules.items()}
        return CombinedLoader(loaders, mode="max_size_cycle")

    def val_dataloader(self) -> list[DataLoader]:
        return [module.val_dataloader() for module in self.modules.values()]

    def test_dataloader(self) -> list[DataLoader]:
        return [module.test_dataloader() for module in self.modules.values()]

    def label_scales(self) -> dict[str, tuple[float, float]]:
        """``(mean, variance)`` of each regression task's training labels, which
        ``loss_balance="label_variance"`` scales its loss by (``{}`` under ``"none"`` or for one
        task). Needs
        the training splits (``setup("fit")``)."""
        if self.loss_balance == "none" or len(self.tasks) == 1:  # a lone task: nothing to
            return {}  # balance against, so it trains as its single-task run does
        scales = {}
        for task, module in self.modules.items():
            if module.spec.task_type == "regression":
                labels = np.asarray(module.datasets["train"]["labels"], dtype=np.float64)
                # constant labels: the mean is exact, nothing to scale
                scales[task] = (float(labels.mean()), float(labels.var()) or 1.0)
        return scales

    def task_module(self, task: str) -> TaskDataModule:
        """The :class:`TaskDataModule` of ``task`` (its group ids, for MultiRC's metrics)."""
        return self.modules[task]
