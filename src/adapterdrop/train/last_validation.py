"""The fit's last validation, kept so that a run need not score the same weights twice.

Lightning validates at the end of every epoch, so after the last one the dev scores of the
final weights are already known. Validating again after ``trainer.fit`` (as a run used to)
repeats that whole pass: for the methods frontier at 3 epochs, one in four of its dev passes.
:class:`LastFitValidation` keeps what the fit's last validation logged and the optimizer step
it scored; :meth:`LastFitValidation.scores_of` hands those back only while the weights are
still the ones it scored.
"""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn

#: The prefix of what a validation logs.
PREFIX = "val/"


class LastFitValidation(pl.Callback):
    """The ``val/`` metrics of the fit's last validation (not its sanity check) and the
    global step at which it ran. Not saved in checkpoints: a run resumed after its last
    epoch has not validated in this process, so it validates again."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.metrics: dict[str, float] = {}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking:
            return
        self.step = trainer.global_step
        self.metrics = {
            key: float(value)
            for key, value in trainer.callback_metrics.items()
            if key.startswith(PREFIX)
        }

    def scores_of(self, trainer: pl.Trainer) -> dict[str, float] | None:
        """The last validation's metrics if no optimizer step came after it (the weights
        are the ones it scored), else ``None``: validate again."""
        if self.step is None or self.step != trainer.global_step or not self.metrics:
            return None
        return dict(self.metrics)
