"""The single-task adapters that an AdapterFusion run fuses, found by their training config.

A run whose method fuses tasks (``Method.fuses_tasks``: ``method=fusion``) names them in
``method.adapters`` (task keys, ``glue/mrpc``). Each one's adapter is the training run
:func:`adapter_config` describes: this run's config with ``method`` the ``fusion.method`` preset
(``conf/method/<name>.yaml``), ``data`` the task's own data config over this run's data settings,
``experiment_name`` ``fusion.experiment`` and ``fusion.overrides`` merged over it. Such
a run is an ordinary training run (result and artefact), so a sweep reuses every adapter that
exists and trains only the missing ones; the fusion run's identity holds their point ids, so a
retrained adapter (another config) gives another fusion result.

``fusion`` is optional (``conf/experiment/fusion.yaml`` sets it); :data:`DEFAULTS` otherwise.
The callables of ``cli.train`` (``result_config``, ``train``) are passed in, as this module sits
beside it. Evaluating a saved fusion (``cli.eval``) loads the adapters its training run named.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigKeyError

from adapterdrop.artefacts import SIDECAR_FILE, Artefact, artefact_folder, find_artefact
from adapterdrop.cli import conf_dir
from adapterdrop.data import get_task_spec
from adapterdrop.methods import build_method
from adapterdrop.results import check_experiment_name, point_id

#: ``fusion.*`` when a config leaves it out: where the fused adapters' runs go, their method
#: preset, and deltas for their runs, merged over the run's config (``{"optim": {"lr": 1e-3}}``:
#: existing keys only).
DEFAULTS: dict[str, Any] = {"experiment": "fusion_adapters", "method": "pfeiffer", "overrides": {}}

ConfigOf = Callable[[DictConfig], dict[str, Any]]


def fuses_tasks(cfg: DictConfig) -> bool:
    """Whether the run's method reads other tasks' adapters (a training config's ``method``)."""
    method = cfg.get("method")
    if method is None:
        return False
    return build_method(OmegaConf.to_container(method, resolve=True)).fuses_tasks


def fusion_settings(cfg: DictConfig) -> dict[str, Any]:
    """``fusion.*`` over :data:`DEFAULTS`, checked: unknown keys, the experiment name and the
    method preset fail naming the valid choices."""
    given = OmegaConf.to_container(cfg.get("fusion") or OmegaConf.create({}), resolve=True)
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"fusion has no key(s) {unknown}; valid: {sorted(DEFAULTS)}")
    settings = {**DEFAULTS, **given}
    try:
        check_experiment_name(settings["experiment"])
    except ValueError as err:
        raise ValueError(f"fusion.experiment: {err}") from None
    if not isinstance(settings["overrides"], dict):
        raise ValueError(
            f"fusion.overrides must be a mapping of config keys, got {settings['overrides']!r}"
        )
    _group_file("method", settings["method"])
    return settings


def fused_tasks(cfg: DictConfig) -> list[str]:
    """``method.adapters``, checked: distinct task keys, and somewhere to keep their adapters."""
    names = cfg.method.get("adapters")
    if isinstance(names, str) or not names:
        raise ValueError(
            f"method.adapters={names!r}: name the tasks whose single-task adapters to fuse, as a "
            "list of task keys, e.g. 'method.adapters=[glue/mrpc,glue/stsb]'"
        )
    names = list(names)
    for name in names:
        key = get_task_spec(name).key  # an unknown task fails listing the valid ones
        if key != name:
            raise ValueError(f"method.adapters: write the task key {key!r}, not {name!r}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"method.adapters names {repeated} more than once: {names}")
    if cfg.paths.get("adapters_root") is None:
        raise ValueError(
            "paths.adapters_root is null, so the adapters to fuse cannot be found or saved: "
            "set it (default outputs/adapters)"
        )
    return names


def adapter_config(cfg: DictConfig, task: str) -> DictConfig:
    """The training config of ``task``'s single-task adapter, fused by the run ``cfg``."""
    settings = fusion_settings(cfg)
    out = copy.deepcopy(cfg)
    with open_dict(out):
        out.pop("fusion", None)
        out.experiment_name = settings["experiment"]
        out.method = _group_file("method", settings["method"])
        out.data = OmegaConf.merge(cfg.data, _group_file("data", task))
    try:
        return OmegaConf.merge(out, settings["overrides"])
    except ConfigKeyError as err:
        raise ValueError(f"fusion.overrides: {err.msg}") from None


def fused_identity(cfg: DictConfig, config_of: ConfigOf) -> dict[str, Any]:
    """``{"fused_adapters": {task: {experiment, point_id}}}``, each fused adapter's training
    run, for the fusion run's identity; ``{}`` for a run that fuses nothing."""
    if not fuses_tasks(cfg):
        return {}
    experiment = fusion_settings(cfg)["experiment"]
    runs = {
        task: {"experiment": experiment, "point_id": point_id(config_of(adapter_config(cfg, task)))}
        for task in fused_tasks(cfg)
    }
    return {"fused_adapters": runs}


def fused_folders(cfg: DictConfig, config_of: ConfigOf) -> dict[str, str]:
    """``{task: artefact folder}`` of the fused adapters (each must have been trained); ``{}``
    for a run that fuses nothing."""
    if not fuses_tasks(cfg):
        return {}
    folders = {}
    for task in fused_tasks(cfg):
        single = adapter_config(cfg, task)
        config = config_of(single)
        folder = find_artefact(cfg.paths.adapters_root, single.experiment_name, config)
        if folder is None:
            expected = artefact_folder(
                cfg.paths.adapters_root, single.experiment_name, point_id(config)
            )
            raise FileNotFoundError(
                f"the {task} adapter to fuse is not in {expected}: adapterdrop.cli.train "
                "trains the missing ones first"
            )
        folders[task] = str(folder)
    return folders


def train_missing_adapters(
    cfg: DictConfig, config_of: ConfigOf, train: Callable[[DictConfig], Any]
) -> None:
    """Train each fused task's adapter that has no artefact yet (a run that fuses nothing has
    none to train). Run one fusion target after another: two at once would both train a
    missing adapter (the second waits for the first's lock, then trains it again)."""
    if not fuses_tasks(cfg):
        return
    for task in fused_tasks(cfg):
        single = adapter_config(cfg, task)
        if find_artefact(cfg.paths.adapters_root, single.experiment_name, config_of(single)):
            continue
        with open_dict(single):
            single.skip_measured = False  # a result without its artefact: train it again
        train(single)


def saved_fused_folders(artefact: Artefact, adapters_root: str | None) -> dict[str, str]:
    """``{task: artefact folder}`` of the adapters a saved fusion was trained over (named in
    its training config), under ``adapters_root``; ``{}`` for an artefact that fuses nothing."""
    runs = ((artefact.training or {}).get("config") or {}).get("fused_adapters")
    if not runs:
        return {}
    if adapters_root is None:
        raise ValueError(
            f"{artefact.folder} fuses {sorted(runs)}: set paths.adapters_root to where their "
            "adapters were saved"
        )
    folders = {}
    for task, run in runs.items():
        folder = artefact_folder(adapters_root, run["experiment"], run["point_id"])
        if not (folder / SIDECAR_FILE).is_file():
            raise FileNotFoundError(
                f"{artefact.folder} fuses the {task} adapter of training run {run['point_id']}, "
                f"which is not in {folder}: set paths.adapters_root to where it was trained"
            )
        folders[task] = str(folder)
    return folders


def _group_file(group: str, option: str) -> DictConfig:
    """``conf/<group>/<option>.yaml`` as written, less its ``defaults`` (a data config's base
    settings are already in the run's ``data``)."""
    folder = conf_dir() / group
    path = folder / f"{option}.yaml"
    if not path.is_file():
        options = sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml"))
        raise ValueError(f"no {group} config {option!r} in {folder}; choose one of {options}")
    node = OmegaConf.load(path)
    with open_dict(node):
        node.pop("defaults", None)
    return node
