"""Several tasks as one Lightning DataModule, for multi-task training (one model, one head per
task: the multi-task full fine-tuning that Mundra et al. 2023 compare adapters against).

Each task keeps its own :class:`TaskDataModule` (its files, subset, cache and collator). A
training batch holds one batch of every task, as the benchmark's multi-task step does
(``bench=efficiency``'s ``multitask`` study); an epoch runs the largest task's batches and the
smaller tasks start over (Lightning's ``max_size_cycle``). Validation and test run each task's
loader in turn, ``dataloader_idx`` being the task's place in ``tasks``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from adapterdrop.data.datamodule import TaskDataModule
from adapterdrop.data.errors import DataError
from adapterdrop.data.tasks import get_task_spec


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
    """The tasks a data config reads: ``data.tasks`` of a multi-task config, else its one
    ``data.task``."""
    if data.get("tasks") is not None:
        return task_keys(data["tasks"])
    return [get_task_spec(data["task"]).key]


def is_multitask(data: Mapping[str, Any]) -> bool:
    """Whether a data config trains several tasks together (``data=multitask``)."""
    return data.get("tasks") is not None


class MultiTaskDataModule(pl.LightningDataModule):
    """The tasks' :class:`TaskDataModule` s side by side, every other setting shared."""

    def __init__(
        self, tasks: Sequence[str], tokenizer: PreTrainedTokenizerBase, **shared: Any
    ) -> None:
        super().__init__()
        self.tasks = task_keys(tasks)
        self.modules = {task: TaskDataModule(task, tokenizer, **shared) for task in self.tasks}

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

    def task_module(self, task: str) -> TaskDataModule:
        """The :class:`TaskDataModule` of ``task`` (its group ids, for MultiRC's metrics)."""
        return self.modules[task]
