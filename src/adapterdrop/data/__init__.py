"""GLUE and SuperGLUE data: task specs, readers for local files or the hub, a DataModule."""

from adapterdrop.data.datamodule import CACHE_DIR_ENV, PadCollator, TaskDataModule
from adapterdrop.data.readers import DATA_DIR_ENV, Example, read_split
from adapterdrop.data.tasks import TASKS, DataError, LocalFormat, TaskSpec, get_task_spec

__all__ = [
    "CACHE_DIR_ENV",
    "DATA_DIR_ENV",
    "TASKS",
    "DataError",
    "Example",
    "LocalFormat",
    "PadCollator",
    "TaskDataModule",
    "TaskSpec",
    "get_task_spec",
    "read_split",
]
