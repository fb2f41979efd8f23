"""GLUE and SuperGLUE data: task specs, readers for local files or the hub, a DataModule.

Modules, one job each: `spec` (what a task is), `formatters` (record to model text), `tasks`
(the catalogue of every task), `layout` (where a task's files are in a data directory),
`readers` (files or hub rows to examples), `checks` (cheap checks before a run, and the
`make check-data` report), `datamodule` (tokenise, cache, batch), `multitask` (several
tasks' datamodules as one) and `metrics`.
"""

from adapterdrop.data.checks import check_splits
from adapterdrop.data.datamodule import CACHE_DIR_ENV, ROW_KEY, PadCollator, TaskDataModule
from adapterdrop.data.errors import DataError
from adapterdrop.data.layout import DATA_DIR_ENV
from adapterdrop.data.multitask import MultiTaskDataModule, configured_tasks, is_multitask
from adapterdrop.data.readers import Example, read_split
from adapterdrop.data.spec import LocalFormat, TaskSpec
from adapterdrop.data.tasks import TASKS, get_task_spec

__all__ = [
    "CACHE_DIR_ENV",
    "DATA_DIR_ENV",
    "ROW_KEY",
    "TASKS",
    "DataError",
    "Example",
    "LocalFormat",
    "MultiTaskDataModule",
    "PadCollator",
    "TaskDataModule",
    "TaskSpec",
    "check_splits",
    "configured_tasks",
    "get_task_spec",
    "is_multitask",
    "read_split",
]
