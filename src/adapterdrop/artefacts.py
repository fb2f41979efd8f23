"""A trained task as a file: its trainable tensors and head, loadable into any encoder of the
same backbone, under its own task name or a new one.

An artefact is a folder of two files, three for a method that trains the backbone itself:

* ``adapter.safetensors``: exactly what training ``task`` updated (``encoder.trainable(task)``)
  and its head. Keys are ``task.<site key>.<name>`` for the task's own modules (a module shared
  across layers once, under its first key), ``backbone.<name>`` for weights its method placed
  or trained inside the backbone (a path component equal to the task name is written as
  ``{task}``: LoRA's weights are named after their task) and ``head.<name>``.
* ``backbone.safetensors``, only for a method that trains the backbone itself
  (``Method.trains_backbone``, full fine-tuning): the whole backbone state, buffers included,
  under ``backbone.<name>``. The tasks of one multi-task run share their backbone, so its
  artefacts hold one file hard-linked into every task's folder (``same_backbone_as``): each
  folder stays whole on its own, and the disk holds the backbone once, not once per task.
* ``adapter.json``: the method config (what ``methods.build_method`` takes), the task, its label
  count, the backbone's identity, the tensor files' digests and, when training wrote it, the
  training run's experiment, point id and identifying config (:func:`find_artefact`).

Format version 1 (still read) kept the whole backbone state in ``adapter.safetensors``.

Nothing here names a method: what is saved follows from ``encoder.trainable(task)`` and the
method's flags. A backbone is identified by its family, width, depth, a digest of its
architecture config and a digest of its weights (all of them, less any a task's method placed
inside it), so adapters trained on pretrained MiniLM never load into a random BERT of the same
shape, nor the tiny random model's adapters into the one drawn with another seed. A backbone
whose own weights were trained has no weight digest; loading its artefact replaces them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save, save_file

from adapterdrop.core import Method
from adapterdrop.data.identity import file_digest
from adapterdrop.engine import AdapterEncoder
from adapterdrop.heads import MultiTaskModel
from adapterdrop.methods import build_method
from adapterdrop.results import canonical_json, check_experiment_name, point_id, utc_now

FORMAT = "adapterdrop-artefact"
FORMAT_VERSION = 2
#: Version 1: a backbone-training task's backbone state inside ``TENSORS_FILE``.
READABLE_VERSIONS = (1, 2)
TENSORS_FILE = "adapter.safetensors"
BACKBONE_FILE = "backbone.safetensors"
BACKBONE_PREFIX = "backbone."
SIDECAR_FILE = "adapter.json"
TASK_PLACEHOLDER = "{task}"
#: The config keys that fix a BERT/RoBERTa backbone's shapes and computation (dropout rates,
#: paths and versions do not change what its weights compute at evaluation).
ARCHITECTURE_KEYS = (
    "model_type",
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "position_embedding_type",
    "pad_token_id",
)
DIGEST_LENGTH = 16
_IDENTITY_KEYS = ("family", "hidden_size", "num_layers", "architecture", "weights")


class ArtefactError(ValueError):
    """An artefact is unreadable, or does not fit the encoder it is loaded into."""


@dataclass(frozen=True)
class Artefact:
    """A saved artefact's folder and sidecar (``meta``); tensors are read when loaded."""

    folder: Path
    meta: dict[str, Any]

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def method(self) -> dict[str, Any]:
        return dict(self.meta["method"])

    @property
    def num_labels(self) -> int:
        return self.meta["num_labels"]

    @property
    def training(self) -> dict[str, Any] | None:
        """``{experiment, point_id, config}`` of the training run that wrote it, if any."""
        return self.meta.get("training")

    @property
    def tensors_path(self) -> Path:
        return self.folder / TENSORS_FILE

    @property
    def backbone_path(self) -> Path | None:
        """The backbone state's own file (a backbone-training method's), else ``None``."""
        entry = self.meta.get("backbone_tensors")
        return None if entry is None else self.folder / entry["file"]


# --------------------------------------------------------------------------- identity
def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy())


def weights_digest(
    encoder: AdapterEncoder, incoming: tuple[Method, str] | None = None
) -> str | None:
    """Digest of the backbone's weights and buffers in module order, less those that a task's
    method placed inside it or trains (``Method.backbone_parameters``: LoRA's, AdapterBias's
    LayerNorms), the ``incoming`` (method, task) about to be loaded included. Values, shapes and
    dtypes count, names do not (peft renames the layers it wraps). ``None`` once a task trains
    the backbone's own weights: they are no longer the backbone's."""
    backbone = encoder.backbone
    added: set[int] = set()
    owners = [(encoder.method_of(task), task) for task in encoder.tasks]
    for method, task in [*owners, *([incoming] if incoming else [])]:
        if method is None or not method.changes_backbone:
            continue
        if method.trains_backbone:
            return None
        added.update(id(p) for _, p in method.backbone_parameters(backbone, task))
    digest = hashlib.sha256()
    for tensor in backbone.state_dict(keep_vars=True).values():
        if id(tensor) in added:
            continue
        digest.update(f"{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(_tensor_bytes(tensor))
    return f"sha256:{digest.hexdigest()[:DIGEST_LENGTH]}"


def backbone_identity(
    encoder: AdapterEncoder,
    name: str | None = None,
    incoming: tuple[Method, str] | None = None,
) -> dict[str, Any]:
    """What makes two backbones the same one; ``name`` (a ``conf/model`` name) is only shown;
    ``incoming``: see :func:`weights_digest`."""
    config = encoder.backbone.config
    architecture = {key: getattr(config, key, None) for key in ARCHITECTURE_KEYS}
    return {
        "name": name,
        "family": config.model_type,
        "hidden_size": int(config.hidden_size),
        "num_layers": encoder.num_layers,
        "architecture": "sha256:"
        + hashlib.sha256(canonical_json(architecture).encode()).hexdigest()[:DIGEST_LENGTH],
        "weights": weights_digest(encoder, incoming),
    }


def describe_backbone(identity: Mapping[str, Any]) -> str:
    name = identity.get("name") or "unnamed"
    return (
        f"{name} ({identity['family']}, hidden {identity['hidden_size']}, "
        f"{identity['num_layers']} layers, architecture {identity['architecture']}, "
        f"weights {identity.get('weights') or 'trained'})"
    )


def check_backbone(artefact: Artefact, encoder: AdapterEncoder, name: str | None = None) -> None:
    """The encoder's backbone is the artefact's, or an error naming both. An artefact holding
    the whole backbone state needs only the same architecture."""
    saved = artefact.meta["backbone"]
    here = backbone_identity(encoder, name, (build_method(artefact.method), artefact.task))
    keys = [k for k in _IDENTITY_KEYS if k != "weights"]
    if saved.get("weights") is not None:
        keys.append("weights")
    differ = [k for k in keys if saved.get(k) != here.get(k)]
    if differ:
        raise ArtefactError(
            f"adapter {artefact.folder} was trained on backbone {describe_backbone(saved)}, but "
            f"this encoder's backbone is {describe_backbone(here)} (differs in "
            f"{', '.join(differ)}): load it into the model it was trained on"
            + (" (a random model: the same seed)" if "weights" in differ else "")
        )


# ---------------------------------------------------------------------------- tensors
def _generic_name(name: str, task: str) -> str:
    return ".".join(TASK_PLACEHOLDER if part == task else part for part in name.split("."))


def task_tensors(model: MultiTaskModel, task: str) -> dict[str, torch.Tensor]:
    """``task``'s artefact tensors by artefact key: the live parameters (and, for a method that
    trains the backbone, buffers) that saving reads and loading writes."""
    encoder = model.encoder
    method = encoder.method_of(task)
    if method is None:
        raise ArtefactError(
            f"task {task!r} was built by hand, not by a method: an artefact needs the method "
            "config that rebuilds it"
        )
    if task not in model.heads:
        raise ArtefactError(f"task {task!r} has no head; this model has heads {list(model.heads)}")
    trainable = {id(p) for p in encoder.trainable(task)}
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, module in encoder.modules_of(task).items():
        for name, param in module.named_parameters(prefix=f"task.{key}"):
            if id(param) in trainable and id(param) not in seen:
                seen.add(id(param))
                tensors[name] = param
    if method.trains_backbone:
        named = encoder.backbone.state_dict(keep_vars=True).items()
    else:
        named = [(n, p) for n, p in encoder.backbone.named_parameters() if id(p) in trainable]
    for name, tensor in named:
        seen.add(id(tensor))
        tensors[f"{BACKBONE_PREFIX}{_generic_name(name, task)}"] = tensor
    left = trainable - seen
    if left:
        raise ArtefactError(
            f"task {task!r}: {len(left)} trainable parameter(s) are neither in its modules nor "
            "in the backbone, so no artefact could hold them"
        )
    for name, param in model.heads[task].named_parameters(prefix="head"):
        tensors[name] = param
    return tensors


# ---------------------------------------------------------------------------- save
def save_artefact(
    model: MultiTaskModel,
    task: str,
    folder: Path | str,
    method_config: Mapping[str, Any],
    *,
    backbone_name: str | None = None,
    training: Mapping[str, Any] | None = None,
    same_backbone_as: Path | str | None = None,
) -> Path:
    """Write ``task``'s artefact to ``folder`` (replacing one there) and return the folder.

    ``method_config`` must rebuild the task's method (``build_method(method_config)`` equal to
    ``encoder.method_of(task)``). ``same_backbone_as``: an artefact saved from the same model
    (another task of a multi-task run); where its backbone file holds exactly this backbone
    state, it is hard-linked instead of written again (copied where links are not possible).
    The folder appears whole or not at all: it is written beside
    itself and renamed; a temporary left by a killed writer is removed by the next save (one
    writer per folder: training holds its point's lock).
    """
    folder = Path(folder)
    encoder = model.encoder
    method = encoder.method_of(encoder.check_task(task))
    config = json.loads(canonical_json(method_config))
    if method is None or build_method(config) != method:
        raise ArtefactError(
            f"method config {config} does not rebuild task {task!r}'s method {method!r}"
        )
    tensors = {
        key: tensor.detach().to("cpu").contiguous()
        for key, tensor in task_tensors(model, task).items()
    }
    backbone = {}
    if method.trains_backbone:
        backbone = {k: tensors.pop(k) for k in list(tensors) if k.startswith(BACKBONE_PREFIX)}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": task,
        "method": config,
        "flags": {
            "changes_backbone": method.changes_backbone,
            "trains_backbone": method.trains_backbone,
            "fuses_tasks": method.fuses_tasks,
        },
        "num_labels": int(model.heads[task].out.out_features),
        "backbone": backbone_identity(encoder, backbone_name),
        "scope": "backbone" if method.trains_backbone else "trainable",
        "tensors": {
            "file": TENSORS_FILE,
            "count": len(tensors),
            "parameters": sum(t.numel() for t in tensors.values()),
        },
        "created_at": utc_now(),
    }
    backbone_bytes = b""
    if backbone:
        backbone_bytes = save(backbone, metadata={"format": FORMAT})
        meta["backbone_tensors"] = {
            "file": BACKBONE_FILE,
            "count": len(backbone),
            "parameters": sum(t.numel() for t in backbone.values()),
            "sha256": f"sha256:{hashlib.sha256(backbone_bytes).hexdigest()}",
        }
    if training is not None:
        meta["training"] = json.loads(canonical_json(training))
    folder.parent.mkdir(parents=True, exist_ok=True)
    for orphan in folder.parent.glob(f".{folder.name}.*.tmp"):
        shutil.rmtree(orphan, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        save_file(tensors, str(staging / TENSORS_FILE), metadata={"format": FORMAT})
        meta["tensors"]["sha256"] = file_digest(staging / TENSORS_FILE, length=None)
        if backbone:
            _write_backbone(staging, backbone_bytes, meta["backbone_tensors"], same_backbone_as)
        (staging / SIDECAR_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        for path in staging.iterdir():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; adapters are shared files
        if folder.exists():
            old = folder.parent / f".{folder.name}.old.tmp"
            os.replace(folder, old)
            os.replace(staging, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _write_backbone(
    staging: Path, data: bytes, entry: Mapping[str, Any], same_as: Path | str | None
) -> None:
    """The backbone file: a hard link to ``same_as``'s when that holds the same bytes (its
    sidecar's digest says so), else ``data`` written out."""
    target = staging / entry["file"]
    if same_as is not None:
        try:
            other = read_artefact(same_as)
        except ArtefactError:
            other = None
        source = None if other is None else other.backbone_path
        if source is not None and other.meta["backbone_tensors"]["sha256"] == entry["sha256"]:
            try:
                os.link(source, target)
                return
            except OSError:  # another filesystem, or one without links: write a copy
                pass
    target.write_bytes(data)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------- read
def read_artefact(folder: Path | str) -> Artefact:
    """The artefact in ``folder``, its sidecar checked; :class:`ArtefactError` names the file."""
    folder = Path(folder)
    path = folder / SIDECAR_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtefactError(
            f"{folder} holds no saved adapter (no {SIDECAR_FILE}); training writes them to "
            "paths.adapters_root/<experiment_name>/<point id>/"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtefactError(f"{path}: {err}") from err
    problem = _sidecar_problem(meta)
    if problem:
        raise ArtefactError(f"{path}: {problem}")
    artefact = Artefact(folder, meta)
    for path in (artefact.tensors_path, artefact.backbone_path):
        if path is not None and not path.is_file():
            raise ArtefactError(f"{folder}: {path.name} is missing beside {SIDECAR_FILE}")
    return artefact


def _sidecar_problem(meta: Any) -> str | None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return f"not an {FORMAT} sidecar"
    if meta.get("format_version") not in READABLE_VERSIONS:
        return (
            f"format_version {meta.get('format_version')!r}, this code reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    types = {
        "task": str,
        "method": dict,
        "flags": dict,
        "num_labels": int,
        "backbone": dict,
        "tensors": dict,
    }
    for key, typ in types.items():
        if not isinstance(meta.get(key), typ):
            return f"{key!r} must be a {typ.__name__}"
    missing = [k for k in _IDENTITY_KEYS if k not in meta["backbone"]]
    if missing:
        return f"backbone identity lacks {missing}"
    if not isinstance(meta["tensors"].get("sha256"), str):
        return "tensors.sha256 is missing"
    optional = {
        "backbone_tensors": {"file": str, "sha256": str},
        "training": {"point_id": str, "config": dict},
    }
    for key, fields in optional.items():
        block = meta.get(key)
        if block is not None and not (
            isinstance(block, dict) and all(isinstance(block.get(f), t) for f, t in fields.items())
        ):
            return f"{key} must hold {' and '.join(fields)}"
    return None


# ---------------------------------------------------------------------------- load
def load_artefact(
    folder: Path | str | Artefact,
    model: MultiTaskModel,
    task: str | None = None,
    *,
    backbone_name: str | None = None,
) -> str:
    """Add the artefact's task to ``model`` (as ``task``, default its own name): rebuild its
    method and head, then load its tensors. Returns the task name.

    The model may hold other tasks, unless either side changes the backbone (LoRA, full
    fine-tuning: such a task needs a backbone of its own). A fusion artefact needs the tasks it
    fuses in the model first, under their own names.
    """
    artefact = folder if isinstance(folder, Artefact) else read_artefact(folder)
    encoder = model.encoder
    name = task or artefact.task
    if name in encoder.tasks or name in model.heads:
        raise ArtefactError(f"task {name!r} already exists; this model has tasks {encoder.tasks}")
    _check_shared_backbone(artefact, encoder, name)
    check_backbone(artefact, encoder, backbone_name)
    method = build_method(artefact.method)
    method.apply(encoder, name)
    model.add_head(name, artefact.num_labels)
    try:
        load_weights(artefact, model, name, backbone_name=backbone_name, checked=True)
    except BaseException:
        encoder.remove_task(name)
        del model.heads[name]
        raise
    return name


def load_weights(
    folder: Path | str | Artefact,
    model: MultiTaskModel,
    task: str,
    *,
    backbone_name: str | None = None,
    checked: bool = False,
) -> None:
    """Load the artefact's tensors into ``task``, which its method and head already built
    (as a training module builds them; ``load_artefact`` builds them itself)."""
    artefact = folder if isinstance(folder, Artefact) else read_artefact(folder)
    encoder = model.encoder
    method = encoder.method_of(encoder.check_task(task))
    if build_method(artefact.method) != method:
        raise ArtefactError(
            f"adapter {artefact.folder} holds method {artefact.method}, but task {task!r} was "
            f"built by {method!r}"
        )
    if not checked:
        _check_shared_backbone(artefact, encoder, task)
        check_backbone(artefact, encoder, backbone_name)
    saved = _checked_tensors(artefact.tensors_path, artefact.meta["tensors"]["sha256"])
    if artefact.backbone_path is not None:
        digest = artefact.meta["backbone_tensors"]["sha256"]
        saved |= _checked_tensors(artefact.backbone_path, digest)
    target = task_tensors(model, task)
    missing, extra = sorted(set(target) - set(saved)), sorted(set(saved) - set(target))
    shapes = [k for k in target.keys() & saved.keys() if target[k].shape != saved[k].shape]
    if missing or extra or shapes:
        raise ArtefactError(
            f"adapter {artefact.folder} does not fit task {task!r} as its method builds it: "
            f"missing {missing[:5]}, unexpected {extra[:5]}, other shapes {sorted(shapes)[:5]}"
        )
    with torch.no_grad():
        for key, tensor in target.items():
            tensor.copy_(saved[key])


def _checked_tensors(path: Path, digest: str) -> dict[str, torch.Tensor]:
    if file_digest(path, length=None) != digest:
        raise ArtefactError(f"{path} does not match the digest in its {SIDECAR_FILE}")
    return load_file(str(path))


def _check_shared_backbone(artefact: Artefact, encoder: AdapterEncoder, task: str) -> None:
    others = [t for t in encoder.tasks if t != task]
    if not others:
        return
    if artefact.meta["flags"]["changes_backbone"]:
        raise ArtefactError(
            f"adapter {artefact.folder} ({artefact.method.get('name')}) changes the backbone, "
            f"so it needs an encoder of its own; this one holds tasks {others}"
        )
    changers = [t for t in others if _changes_backbone(encoder.method_of(t))]
    if changers:
        raise ArtefactError(
            f"task(s) {changers} of this encoder changed its backbone; load adapter "
            f"{artefact.folder} into an encoder of its own"
        )


def _changes_backbone(method: Any) -> bool:
    return bool(method is not None and method.changes_backbone)


# ---------------------------------------------------------------------------- find
def artefact_folder(root: Path | str, experiment: str, pid: str) -> Path:
    """Where training run ``pid`` of ``experiment`` saves its artefact."""
    check_experiment_name(experiment)
    return Path(root) / experiment / pid


def find_artefact(
    root: Path | str, experiment: str, training_config: Mapping[str, Any]
) -> Path | None:
    """The saved artefact of the training run that ``training_config`` identifies (its
    ``cli.train.result_config``, hashed into the point id), or ``None`` when it has none yet.
    An unreadable artefact is announced and counts as none."""
    pid = point_id(training_config)
    folder = artefact_folder(root, experiment, pid)
    if not (folder / SIDECAR_FILE).exists():
        return None
    try:
        artefact = read_artefact(folder)
    except ArtefactError as err:
        warnings.warn(f"ignoring a broken artefact: {err}", stacklevel=2)
        return None
    training = artefact.training or {}
    if training.get("point_id") != pid:
        warnings.warn(
            f"ignoring {folder}: it was saved by point {training.get('point_id')!r}, not {pid!r}",
            stacklevel=2,
        )
        return None
    return folder
