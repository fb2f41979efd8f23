"""What a training run cost in time, recorded as it trains: the methods frontier compares
methods by score *and* by train time per step, wall time to the best validation score and
evaluation time per batch, all measured on the same real data as the score.

These are the run's own wall-clock readings (``time.perf_counter``), not a controlled
benchmark: the median over every step resists the odd slow one, and the raw step times are
kept with the result. Controlled timings of the same methods come from ``make
reproduce-efficiency``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn

#: Metric keys :meth:`TrainingClock.metrics` writes (seconds).
STEP_S = "time/train_step_s"
TRAIN_S = "time/train_s"
BEST_S = "time/to_best_s"
BEST_STEP = "time/best_step"
EVAL_STEP_S = "time/eval_step_s"


class TrainingClock(pl.Callback):
    """Times every optimisation step (forward, backward, optimizer: Lightning's whole batch)
    and every validation batch of the fit, and notes the training time (validation excluded)
    at which the main validation metric (``monitor``, higher is better) was best.

    Its state is saved in checkpoints, so a resumed run keeps counting from where it stopped.
    Only the fit counts: not its sanity check, nor a later ``trainer.validate`` (which may
    score every depth per batch).
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.step_seconds: list[float] = []
        self.eval_seconds: list[float] = []
        self.best: tuple[float, float, int] | None = None  # (score, training seconds, step)
        self._started: float | None = None

    # ------------------------------------------------------------------ training
    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._started is not None:
            self.step_seconds.append(time.perf_counter() - self._started)
            self._started = None

    # ---------------------------------------------------------------- validation
    def on_validation_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._started = time.perf_counter() if _fitting(trainer) else None

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._started is not None:
            self.eval_seconds.append(time.perf_counter() - self._started)
            self._started = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not _fitting(trainer) or self.monitor not in trainer.callback_metrics:
            return
        score = float(trainer.callback_metrics[self.monitor])
        if self.best is None or score > self.best[0]:
            self.best = (score, sum(self.step_seconds), trainer.global_step)

    # ------------------------------------------------------------------- results
    def metrics(self) -> dict[str, float]:
        """Median step times, total training time and the time to the best score."""
        out: dict[str, float] = {}
        if self.step_seconds:
            out[STEP_S] = statistics.median(self.step_seconds)
            out[TRAIN_S] = sum(self.step_seconds)
        if self.eval_seconds:
            out[EVAL_STEP_S] = statistics.median(self.eval_seconds)
        if self.best is not None:
            out[BEST_S], out[BEST_STEP] = self.best[1], float(self.best[2])
        return out

    def samples(self) -> dict[str, list[float]]:
        """The raw per-step seconds behind :meth:`metrics`."""
        return {STEP_S: list(self.step_seconds), EVAL_STEP_S: list(self.eval_seconds)}

    # --------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_seconds, "eval": self.eval_seconds, "best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.step_seconds = list(state_dict["step"])
        self.eval_seconds = list(state_dict["eval"])
        self.best = None if state_dict["best"] is None else tuple(state_dict["best"])


def _fitting(trainer: pl.Trainer) -> bool:
    return trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking
