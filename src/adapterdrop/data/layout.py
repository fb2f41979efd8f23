"""Where a task's files are: the data directory, the task folder and one file per split.

A data directory holds `glue/<Folder>/{train,dev,test}.tsv` and
`superglue/<Folder>/{train,val,test}.jsonl` as in the official downloads (MNLI:
`dev_matched.tsv`, `test_mismatched.tsv`, ...). Errors about a missing folder or file say what
was searched, what was found there instead and which alternatives exist (another directory, or
the hub), so a run can fail on them before any model is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from adapterdrop.data.errors import DataError
from adapterdrop.data.spec import TaskSpec
from adapterdrop.data.tasks import TASKS

DATA_DIR_ENV = "ADAPTERDROP_DATA_DIR"
_FORMATS = {"glue": ("tsv", "dev", "tab-separated"), "superglue": ("jsonl", "val", "JSON lines")}

STAGE_SPLITS = {
    "fit": ("train", "validation"),
    "validate": ("validation",),
    "test": ("test",),
    "predict": ("test",),
}
"""Lightning stage -> prefixes of the split names it reads (MNLI has two of each but train)."""


def stage_splits(spec: TaskSpec, stages: str | Iterable[str] | None) -> tuple[str, ...]:
    """The task's splits that the stages read, in the spec's order; None means every split."""
    if stages is None:
        return spec.splits
    stages = (stages,) if isinstance(stages, str) else tuple(stages)
    unknown = [stage for stage in stages if stage not in STAGE_SPLITS]
    if unknown:
        raise DataError(f"unknown stage(s) {unknown}; valid stages: {list(STAGE_SPLITS)}")
    prefixes = tuple(prefix for stage in stages for prefix in STAGE_SPLITS[stage])
    return tuple(split for split in spec.splits if split.startswith(prefixes))


def resolve_data_dir(
    spec: TaskSpec, data_dir: str | os.PathLike[str] | None, needed_for: str = ""
) -> Path | None:
    """The configured data directory (argument, else env variable), checked to hold the task.

    None means no local directory is configured, so the hub is the source. `needed_for` says
    in the error what wanted the task, e.g. " for split(s) train (needed by stage fit)".
    """
    chosen = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if chosen is None:
        return None
    root = Path(chosen).expanduser()
    if not task_dir(spec, root).is_dir():
        origin = "data_dir" if data_dir else DATA_DIR_ENV
        raise DataError(missing_task_message(spec, root, origin, needed_for))
    return root


def task_dir(spec: TaskSpec, root: Path) -> Path:
    return root / spec.benchmark / spec.local.folder


def split_file(spec: TaskSpec, root: Path, split: str) -> Path:
    """E.g. glue/MNLI/dev_matched.tsv or superglue/CB/val.jsonl under `root` (may not exist)."""
    check_split_name(spec, split)
    suffix, validation_stem, _ = _FORMATS[spec.benchmark]
    return task_dir(spec, root) / f"{split.replace('validation', validation_stem)}.{suffix}"


def split_path(spec: TaskSpec, root: Path, split: str) -> Path:
    """`split_file`, which must exist."""
    path = split_file(spec, root, split)
    if not path.is_file():
        raise DataError(missing_splits_message(spec, root, [split]))
    return path


def check_split_name(spec: TaskSpec, split: str) -> None:
    if split not in spec.splits:
        raise DataError(f"{spec.key} has no split {split!r}; its splits are {list(spec.splits)}")


def expected_files(spec: TaskSpec) -> str:
    """E.g. "train.tsv, dev.tsv, test.tsv (tab-separated files as in the official download)"."""
    suffix, validation_stem, _ = _FORMATS[spec.benchmark]
    names = [f"{split.replace('validation', validation_stem)}.{suffix}" for split in spec.splits]
    return f"{', '.join(names)} ({file_kind(spec)})"


def file_kind(spec: TaskSpec) -> str:
    return f"{_FORMATS[spec.benchmark][2]} files as in the official download"


def source_fingerprint(spec: TaskSpec, root: Path | None, split: str) -> str:
    """Identifies the split's raw data for the cache key; a changed local file changes it."""
    if root is None:
        check_split_name(spec, split)
        return f"hub:{spec.hub_id}:{spec.hub_config}:{split}"
    path = split_path(spec, root, split)
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def tasks_in(root: Path) -> list[TaskSpec]:
    """The catalogue's tasks whose folder exists under `root`."""
    return [spec for spec in TASKS.values() if task_dir(spec, root).is_dir()]


def present_splits(spec: TaskSpec, root: Path) -> list[str]:
    return [split for split in spec.splits if split_file(spec, root, split).is_file()]


def hub_alternative(spec: TaskSpec) -> str:
    return (
        f"set data_dir to null and unset {DATA_DIR_ENV} to load {spec.key} from the Hugging "
        f"Face hub ({spec.hub_id}, config {spec.hub_config})"
    )


def missing_task_message(
    spec: TaskSpec, root: Path, origin: str = "data_dir", needed_for: str = ""
) -> str:
    """No folder for the task under `root`: what is there instead, and the ways out."""
    folder = task_dir(spec, root)
    if not root.is_dir():
        found = f"{root} does not exist"
    else:
        others = [other.key for other in tasks_in(root)]
        found = (
            f"tasks found in {root}: {', '.join(others)}"
            if others
            else (f"{root} holds no GLUE/SuperGLUE task folder (glue/<Task>/ or superglue/<Task>/)")
        )
    near = _same_name_ignoring_case(folder)
    hint = ""
    if near:
        hint = f"; found {near}, but folder names are case-sensitive: rename it to {folder.name}"
    return (
        f"No {spec.key} data at {folder}{needed_for}: {origin} ({root}) must hold "
        f"{spec.benchmark}/{spec.local.folder}/ with {expected_files(spec)}{hint}. Searched "
        f"{root}; {found}. Alternatives: point data_dir (or {DATA_DIR_ENV}) at a directory "
        f"holding {spec.benchmark}/{spec.local.folder}/, or {hub_alternative(spec)}"
    )


def missing_splits_message(
    spec: TaskSpec, root: Path, missing: Sequence[str], needed_by: str = ""
) -> str:
    """Split files absent from the task folder: the files searched, those found, the ways out."""
    folder = task_dir(spec, root)
    names = ", ".join(split_file(spec, root, split).name for split in missing)
    paths = ", ".join(str(split_file(spec, root, split)) for split in missing)
    present = present_splits(spec, root)
    found = ", ".join(f"{split_file(spec, root, split).name} ({split})" for split in present)
    known = {split_file(spec, root, split).name for split in spec.splits}
    others = sorted(path.name for path in folder.iterdir() if path.name not in known)
    other_files = f"; other files: {', '.join(others)}" if others else ""
    fewer = f"run only stages that read {', '.join(present)}; " if present else ""
    return (
        f"Missing {spec.key} split(s) {', '.join(missing)}{needed_by}: no file {paths} "
        f"(searched {folder}; found there: {found or 'no split file'}{other_files}). "
        f"Alternatives: add {names} ({file_kind(spec)}); point data_dir "
        f"(or {DATA_DIR_ENV}) at another copy holding {expected_files(spec)}; {fewer}"
        f"or {hub_alternative(spec)}"
    )


def _same_name_ignoring_case(folder: Path) -> Path | None:
    if not folder.parent.is_dir():
        return None
    wanted = folder.name.lower()
    return next(
        (path for path in folder.parent.iterdir() if path.name.lower() == wanted and path.is_dir()),
        None,
    )
