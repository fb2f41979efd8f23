"""LightningModule that trains one task's adapters with standard, specialized, dynamic or robust
AdapterDrop.

Evaluation reads its drop depth from the configuration on every step (``eval_ns``), never from
what training last used, so a robust draw cannot leak into a validation, test or sanity-check
pass: there is no state to reset, hence no window in which a reset comes too late (the bug in
AdapterHub's AdapterDrop notebook, which restored the depth only once evaluation had begun).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.warnings import PossibleUserWarning
from torch.nn import functional as F
from transformers import get_linear_schedule_with_warmup

from adapterdrop.data import TaskSpec, get_task_spec
from adapterdrop.engine import AdapterEncoder
from adapterdrop.heads import MultiTaskModel
from adapterdrop.methods import build_method
from adapterdrop.methods.fusion import fusion_regularization_loss
from adapterdrop.models import load_backbone
from adapterdrop.train.evaluation import EvalBuffer
from adapterdrop.train.fusion import load_fused_adapters
from adapterdrop.train.robust import RobustDropSampler

DROP_MODES = ("none", "specialized", "dynamic", "robust")
#: Bump when a change to how a run trains or scores changes its numbers: runs then get new
#: result ids and train again (version 1 adds no key, so earlier results stay found).
CODE_VERSION = 1

# Lightning suggests sync_dist for every epoch-level log of a multi-process run; evaluation
# metrics are computed from every process's examples already (``_log_eval``): none to reduce.
warnings.filterwarnings(
    "ignore",
    message=r"It is recommended to use `self\.log\('(val|test)/",
    category=PossibleUserWarning,
)


@dataclass(frozen=True)
class DropConfig:
    """How many leading layers lose their adapters, in training and in evaluation.

    * ``none``: adapters everywhere in training; evaluated at ``eval_n`` (default 0).
    * ``specialized``: no adapter is ever built below ``n`` (the method's ``leave_out``).
    * ``dynamic``: adapters below ``n`` are skipped at run time, in training and evaluation.
    * ``robust``: each training batch skips ``0..max_n`` layers (drawn, seeded by ``seed``);
      evaluation uses ``eval_n`` (default 0).
    """

    mode: str = "none"
    n: int = 0
    eval_n: int | None = None
    max_n: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in DROP_MODES:
            raise ValueError(f"unknown drop.mode {self.mode!r}; choose one of {DROP_MODES}")
        for name in ("n", "eval_n", "max_n"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"drop.{name} must be an integer >= 0, got {value!r}")
        if self.mode in ("none", "robust") and self.n != 0:
            raise ValueError(
                f"drop.n={self.n} has no meaning in drop.mode={self.mode!r}: use "
                "drop.eval_n for the evaluation depth"
                + (" and drop.max_n for the largest draw" if self.mode == "robust" else "")
            )
        if self.max_n is not None and self.mode != "robust":
            raise ValueError(f"drop.max_n only applies to drop.mode='robust', not {self.mode!r}")

    @property
    def default_eval_n(self) -> int:
        """Depth used for validation/test: ``eval_n`` if set, else the trained depth."""
        if self.eval_n is not None:
            return self.eval_n
        return self.n if self.mode in ("specialized", "dynamic") else 0

    def check_layers(self, num_layers: int) -> None:
        """Refuse depths the encoder does not have, naming the valid range."""
        for name in ("n", "eval_n", "max_n"):
            value = getattr(self, name)
            if value is not None and value >= num_layers:
                raise ValueError(
                    f"drop.{name}={value} is out of range for a {num_layers}-layer encoder: "
                    f"choose 0..{num_layers - 1}"
                )

    def method_config(self, method: Mapping[str, Any]) -> dict[str, Any]:
        """The method config with specialized AdapterDrop's ``leave_out`` filled in."""
        cfg = dict(method)
        if self.mode != "specialized":
            return cfg
        if cfg.get("leave_out", 0) not in (0, self.n):
            raise ValueError(
                f"method.leave_out={cfg['leave_out']} conflicts with drop.n={self.n} in "
                "specialized mode; set only drop.n"
            )
        cfg["leave_out"] = self.n
        return cfg


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup then linear decay to zero over all training steps."""

    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"optim.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


class AdapterDropModule(pl.LightningModule):
    """One task's model (frozen backbone + method modules + head) and how to train it.

    Everything is validated before the backbone is loaded: the task, the drop mode and the
    method (name and options); the drop depths once the layer count is known.
    """

    def __init__(
        self,
        model: Mapping[str, Any],
        method: Mapping[str, Any],
        task: str,
        drop: Mapping[str, Any] | None = None,
        optim: Mapping[str, Any] | None = None,
        seed: int = 0,
        fused: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.spec = get_task_spec(task)
        self.task = self.spec.name
        self.drop = DropConfig(**{"seed": seed, **(drop or {})})
        self.optim = OptimConfig(**(optim or {}))
        method_cfg = self.drop.method_config(method)
        #: the config that rebuilds the task's method (what a saved adapter records)
        self.method_config = method_cfg
        adapter_method = build_method(method_cfg)
        backbone = load_backbone(model, seed=seed)
        self.drop.check_layers(backbone.num_layers)
        self.tokenizer = backbone.tokenizer
        encoder = AdapterEncoder(backbone.model)
        encoder.freeze_backbone()
        self.model = MultiTaskModel(encoder)
        #: a method that fuses other tasks (``Method.fuses_tasks``) reads their saved adapters
        self.fuses_tasks = adapter_method.fuses_tasks
        if fused:
            load_fused_adapters(self.model, fused, backbone_name=model.get("name"))
        adapter_method.apply(encoder, self.task)
        if self.drop.mode != "none" and not encoder.modules_of(self.task):
            raise ValueError(
                f"drop.mode={self.drop.mode!r} has nothing to drop: method "
                f"{method_cfg.get('name')!r} adds no per-layer task modules"
            )
        self.model.add_head(self.task, self.spec.num_labels)
        # Lightning keeps each submodule's mode as found; train like HF/AdapterHub: dropout on
        self.model.train()
        if not any(p.requires_grad for p in self.model.encoder.parameters()):
            raise ValueError(
                f"method {method_cfg.get('name')!r} left nothing in the encoder to train"
            )
        self.sampler = (
            RobustDropSampler(encoder.num_layers, self.drop.seed, self.drop.max_n)
            if self.drop.mode == "robust"
            else None
        )
        # Checkpoints hold the trained weights only (``on_save_checkpoint``).
        self.strict_loading = False
        self.eval_ns: list[int] = [self.drop.default_eval_n]
        self._scored = EvalBuffer(self.eval_ns)

    # ------------------------------------------------------------------ structure
    @property
    def tasks(self) -> list[str]:
        """The tasks the module trains (one; a multi-task module has several)."""
        return [self.task]

    @property
    def num_layers(self) -> int:
        return self.model.encoder.num_layers

    def artefact_folders(self, folder: Path) -> dict[str, Path]:
        """Where the run's trained task is saved (``adapterdrop.artefacts``): ``folder``."""
        return {self.task: folder}

    def set_eval_ns(self, ns: Iterable[int] | None) -> None:
        """Depths at which the next evaluation scores the model (``None``: the configured one).

        With several depths, metrics are logged as ``<stage>/<metric>@n=<k>``.
        """
        chosen = [self.drop.default_eval_n] if ns is None else list(ns)
        if not chosen:
            raise ValueError("set_eval_ns needs at least one depth")
        for n in chosen:
            self.model.encoder.check_dropped(n)
        self.eval_ns = chosen

    def train_n(self) -> int:
        """Layers dropped for the next training batch (a fresh draw in robust mode)."""
        if self.sampler is not None:
            return self.sampler.draw()
        return self.drop.n if self.drop.mode == "dynamic" else 0

    # -------------------------------------------------------------------- compute
    def forward(self, batch: Mapping[str, torch.Tensor], dropped: int) -> torch.Tensor:
        logits = self.model(
            batch["input_ids"],
            batch.get("attention_mask"),
            batch.get("token_type_ids"),
            tasks=self.task,
            dropped_layers=dropped,
        )
        return logits[self.task]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return task_loss(self.spec, logits, labels)

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        n = self.train_n()
        loss = self.loss(self(batch, n), batch["labels"])
        if self.fuses_tasks:  # AdapterHub's value-map regularizer
            loss = loss + fusion_regularization_loss(self.model.encoder, self.task)
        size = batch["input_ids"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=size, sync_dist=True)
        self.log("train/dropped", float(n), batch_size=size)
        return loss

    # ----------------------------------------------------------------- evaluation
    def on_validation_epoch_start(self) -> None:
        self._reset_eval()

    def on_test_epoch_start(self) -> None:
        self._reset_eval()

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val", self.spec.validation_split)

    def on_test_epoch_end(self) -> None:
        self._log_eval("test", self.spec.test_split)

    def _reset_eval(self) -> None:
        self._scored.reset(self.eval_ns)

    @property
    def primary_eval_n(self) -> int:
        """The depth whose metrics are logged without an ``@n=`` suffix."""
        default = self.drop.default_eval_n
        return default if default in self.eval_ns else self.eval_ns[0]

    def _eval_step(self, batch: Mapping[str, torch.Tensor], stage: str) -> None:
        if "labels" not in batch:
            raise ValueError(
                f"{self.spec.key}: the {stage} split has no labels (GLUE/SuperGLUE test labels "
                "are hidden), so it cannot be scored; evaluate on the validation split"
            )
        self._scored.add({n: self(batch, n) for n in self.eval_ns}, batch)

    def _log_eval(self, stage: str, split: str) -> None:
        """Metrics, the loss too, over the whole epoch of every process (not averaged per
        batch or per process: F1, MCC, correlations, MultiRC's exact match need all examples).

        Every process computes them from the same gathered examples, so each logs the global
        value itself (nothing left for ``sync_dist`` to reduce)."""
        scored = self._scored.gather(self.trainer.world_size)
        if scored is None:
            return
        rows, labels, outputs = scored
        groups = self._group_info(split, rows)
        sweep = len(self.eval_ns) > 1
        for n, logits in outputs.items():
            scores = self.spec.compute_metrics(logits, labels, **groups)
            if n == self.primary_eval_n:
                self.log(f"{stage}/loss", self.loss(logits, labels))
            for metric, value in scores.items():
                if n == self.primary_eval_n:
                    self.log(f"{stage}/{metric}", value, prog_bar=metric == self.spec.main_metric)
                if sweep:
                    self.log(f"{stage}/{metric}@n={n}", value)

    def _group_info(self, split: str, rows: torch.Tensor) -> dict[str, Any]:
        """Per-example group ids (MultiRC) of the scored ``rows``, from the datamodule."""
        return group_info(self.spec, getattr(self.trainer, "datamodule", None), split, rows)

    # ------------------------------------------------------------------ optimizer
    def configure_optimizers(self) -> dict[str, Any]:
        return adamw_with_linear_schedule(self, self.optim)

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep only what training changes: frozen weights are rebuilt when the run resumes
        (the packaged checkpoint, or the same seed for random weights), so a MiniLM-L6
        checkpoint is the adapter's few MB, not the backbone's 90."""
        keep_trained_state(self, checkpoint)
        if self.sampler is not None:
            checkpoint["robust_sampler"] = self.sampler.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.sampler is not None and "robust_sampler" in checkpoint:
            self.sampler.load_state_dict(checkpoint["robust_sampler"])


# ------------------------------------------------------- shared with the multi-task module
def task_loss(spec: TaskSpec, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """MSE for regression; cross-entropy over labels, or over choices for multiple choice."""
    if spec.task_type == "regression":
        return F.mse_loss(logits.float().view(-1), labels.float().view(-1))
    return F.cross_entropy(logits.float(), labels.long())


def group_info(spec: TaskSpec, datamodule: Any, split: str, rows: torch.Tensor) -> dict[str, Any]:
    """Per-example group ids (MultiRC) of the scored ``rows`` of ``spec``'s ``split``, from
    the datamodule that loaded it (``{}`` for a task without groups)."""
    if not spec.group_info_keys:
        return {}
    if datamodule is None or not hasattr(datamodule, "group_info"):
        raise ValueError(f"{spec.key} metrics need group ids from a TaskDataModule")
    picked = rows.numpy()
    return {key: value[picked] for key, value in datamodule.group_info(split).items()}


def adamw_with_linear_schedule(module: pl.LightningModule, optim: OptimConfig) -> dict[str, Any]:
    """AdamW over trainable parameters only; biases and LayerNorm weights get no decay."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.dim() >= 2]
    no_decay = [p for p in trainable if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": optim.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=optim.lr,
        betas=optim.betas,
        eps=optim.eps,
    )
    total = module.trainer.estimated_stepping_batches
    if not math.isfinite(total):
        raise ValueError(
            "the learning-rate schedule needs a finite length: set trainer.max_epochs or "
            "trainer.max_steps"
        )
    warmup = int(optim.warmup_ratio * total)
    schedule = get_linear_schedule_with_warmup(optimizer, warmup, int(total))
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": schedule, "interval": "step"},
    }


def keep_trained_state(module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
    """Drop frozen weights from a checkpoint: they are rebuilt when the run resumes."""
    frozen = {name for name, p in module.named_parameters() if not p.requires_grad}
    state = checkpoint["state_dict"]
    checkpoint["state_dict"] = {k: v for k, v in state.items() if k not in frozen}
