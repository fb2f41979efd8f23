"""The OmegaConf resolvers that ``conf/`` calls, registered when ``adapterdrop`` is imported.

- ``${adapterdrop.preset:<preset>,<device>}`` (conf/bench/<grid>.yaml): the preset a benchmark
  grid composes; ``auto`` becomes a concrete name here, before anything is measured, so the saved
  ``.hydra/config.yaml`` and every result hold the preset that ran (:func:`resolve_preset`).
- ``${adapterdrop.precision:<accelerator>}`` (conf/trainer/cpu.yaml, gpu.yaml): Lightning's
  precision for what is fast there, chosen while composing, so every result stores the
  concrete choice (:func:`training_precision`).
- ``${adapterdrop.accelerator:}`` (conf/trainer/auto.yaml, the default): ``gpu`` where CUDA is
  available, else ``cpu``, decided where the job runs (a SLURM job on its GPU node), so the
  default trainer is ``trainer=gpu`` or ``trainer=cpu`` there (:func:`training_accelerator`).
- ``${adapterdrop.num_layers:<model>}`` (conf/experiment/fig2_specialized.yaml): the layer count
  of a ``conf/model`` entry, from the model's own config (:func:`adapterdrop.models.num_layers`).
- ``${adapterdrop.options:<group>}`` (conf/hydra/help/*.yaml): a config group's options for
  ``--help``, nested folders included (``glue/rte``); ``${adapterdrop.options:sweep,train}``
  lists one subfolder's options with it as prefix (``train/layers``).
- ``${adapterdrop.run_tag:}`` (conf/hydra/default.yaml): six random hex digits, drawn once per
  config (cached like Hydra's ``${now:...}``, whose cache a multirun copies into every job), so
  runs started in the same second get folders of their own (:func:`run_tag`).
- ``${adapterdrop.folder_name:<name>}`` (conf/train.yaml, eval.yaml: ``hydra.job.name``): the
  experiment name as one folder name for Hydra's run folder and log file, so that
  ``experiment_name=../x`` cannot put them outside ``outputs/`` before the run refuses the
  name (:func:`folder_name`).
- ``${adapterdrop.multirun:}`` (conf/train.yaml, eval.yaml: ``skip_measured``): true in a job of
  a multirun (``-m``, any launcher), false in a single run, so every sweep skips the jobs
  that already have a result by default and a rerun retries only failed and missing ones
  (:func:`in_multirun`).

Compose-API users (tests, notebooks) get them by importing anything from ``adapterdrop``.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

#: The preset ``auto`` picks on CUDA (paper-size grids) and on a CPU (each grid's own sizes).
AUTO_PRESETS = {"cuda": "paper", "cpu": "cpu"}


def resolve_preset(preset: str, device: str) -> str:
    """``preset`` itself, or for ``auto`` the preset for the device ``device`` resolves to:
    ``paper`` on CUDA, ``cpu`` on a CPU (:data:`AUTO_PRESETS`). The grid's preset folder then
    says whether that name exists for it (Hydra lists its choices when it does not)."""
    if preset != "auto":
        return preset
    from adapterdrop.bench.devices import resolve_device  # torch, only when needed

    return AUTO_PRESETS[resolve_device(device).type]


#: Lightning precision per dtype that :func:`adapterdrop.bench.devices.resolve_dtype` picks.
LIGHTNING_PRECISION = {"bf16": "bf16-mixed", "fp16": "16-mixed", "fp32": "32-true"}
#: Lightning accelerator -> the device whose fast dtype it trains in.
ACCELERATOR_DEVICES = {"cpu": "cpu", "gpu": "cuda"}


def training_precision(accelerator: str) -> str:
    """Mixed precision where the hardware runs it natively, else fp32: bf16 autocast on a CPU
    with native bf16 (AMX, avx512_bf16) but fp32 on an AVX2-only one, where emulated bf16 made
    a MiniLM step 9x slower (155 s against 17 s); on a GPU bf16 where supported, else fp16.
    The same rule as a benchmark's ``dtype: auto``."""
    if accelerator not in ACCELERATOR_DEVICES:
        raise ValueError(
            f"adapterdrop.precision: unknown accelerator {accelerator!r}; choose one of "
            f"{sorted(ACCELERATOR_DEVICES)}"
        )
    import torch

    from adapterdrop.bench.devices import resolve_dtype  # torch, when needed

    if accelerator == "gpu" and not torch.cuda.is_available():
        # Composed where the GPU is not (a cluster's login node, a config check): fp16 runs on
        # every CUDA GPU, and the job resolves this again on its own node. Lightning itself
        # refuses a GPU trainer on a machine without one.
        return LIGHTNING_PRECISION["fp16"]
    device = torch.device(ACCELERATOR_DEVICES[accelerator])
    return LIGHTNING_PRECISION[resolve_dtype("auto", device)]


def training_accelerator() -> str:
    """Lightning's accelerator for the hardware the run is on: ``gpu`` with CUDA, else ``cpu``
    (each then trains in its fast precision, :func:`training_precision`)."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def model_layers(model: Mapping[str, Any]) -> int:
    from adapterdrop.models import num_layers

    if isinstance(model, DictConfig):
        model = OmegaConf.to_container(model, resolve=True)
    return num_layers(model)


def run_tag() -> str:
    """Six random hex digits: with the start time, a run folder no other run shares."""
    return secrets.token_hex(3)


def folder_name(name: Any) -> str:
    """``name`` with path separators replaced and leading dots dropped: one visible folder."""
    safe = str(name).replace("/", "_").replace("\\", "_").lstrip(".")
    return safe or "_"


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun; false outside Hydra (tests and
    notebooks calling ``train(cfg)`` on a composed config)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def group_options(group: str, under: str | None = None) -> str:
    """``"a, b, glue/rte, ..."``: the options of ``group`` in the running app's search path;
    with ``under``, those in its subfolder ``under`` only, named with that prefix.

    Only ``--help`` prints them, but OmegaConf resolves an interpolated value each time a merge
    writes to its key, so every compose asked for them about seven times (close to half of a
    compose's time); they are listed once per search path and group."""
    from hydra.core.global_hydra import GlobalHydra

    sources = GlobalHydra.instance().config_loader().get_sources()
    return _listed_options(tuple((s.provider, s.path) for s in sources), group, under)


@functools.lru_cache(maxsize=256)
def _listed_options(search_path: tuple[tuple[str, str], ...], group: str, under: str | None) -> str:
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.object_type import ObjectType

    loader = GlobalHydra.instance().config_loader()

    def walk(path: str, prefix: str) -> list[str]:
        names = [prefix + name for name in loader.get_group_options(path, ObjectType.CONFIG)]
        for sub in loader.get_group_options(path, ObjectType.GROUP):
            names += walk(f"{path}/{sub}", f"{prefix}{sub}/")
        return names

    if under is not None:
        return ", ".join(sorted(walk(f"{group}/{under}", f"{under}/")))
    return ", ".join(sorted(walk(group, "")))


def register_resolvers() -> None:
    """Register (again: idempotent) every resolver above."""
    OmegaConf.register_new_resolver("adapterdrop.preset", resolve_preset, replace=True)
    OmegaConf.register_new_resolver("adapterdrop.precision", training_precision, replace=True)
    OmegaConf.register_new_resolver("adapterdrop.accelerator", training_accelerator, replace=True)
    OmegaConf.register_new_resolver("adapterdrop.num_layers", model_layers, replace=True)
    OmegaConf.register_new_resolver("adapterdrop.options", group_options, replace=True)
    OmegaConf.register_new_resolver("adapterdrop.multirun", in_multirun, replace=True)
    OmegaConf.register_new_resolver("adapterdrop.folder_name", folder_name, replace=True)
    OmegaConf.register_new_resolver("adapterdrop.run_tag", run_tag, replace=True, use_cache=True)
