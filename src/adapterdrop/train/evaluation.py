"""What one evaluation epoch scored, put back together from every process.

Metrics such as F1, MCC, correlations and MultiRC's exact match need every example of the
split at once, so each evaluation batch's outputs are kept and scored at the epoch's end. The
single-task module keeps one :class:`EvalBuffer`, the multi-task module one per task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

from adapterdrop.data import ROW_KEY

#: (rows, labels, outputs by dropped depth) of a whole split, each row once
Scored = tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]


class EvalBuffer:
    """One split's outputs at each evaluated depth, its labels and its rows, batch by batch."""

    def __init__(self, ns: Iterable[int] = (0,)) -> None:
        self.reset(ns)

    def reset(self, ns: Iterable[int]) -> None:
        self.ns = list(ns)
        self.outputs: dict[int, list[torch.Tensor]] = {n: [] for n in self.ns}
        self.labels: list[torch.Tensor] = []
        self.rows: list[torch.Tensor | None] = []

    def add(self, outputs: Mapping[int, torch.Tensor], batch: Mapping[str, torch.Tensor]) -> None:
        """A batch's logits by depth, with the batch's labels and rows (``ROW_KEY``)."""
        for n in self.ns:
            self.outputs[n].append(outputs[n].detach().float().cpu())
        self.labels.append(batch["labels"].detach().cpu())
        rows = batch.get(ROW_KEY)
        self.rows.append(None if rows is None else rows.detach().cpu())

    def gather(self, world_size: int) -> Scored | None:
        """The epoch's examples from every process, by row, each once (``None`` when nothing
        was scored). Every process must call it, in the same order, when ``world_size > 1``.

        In a multi-device run each process scores a shard that Lightning's DistributedSampler
        interleaves and pads to equal length with repeated rows; the rows each batch carries
        (``ROW_KEY``) put the shards back in order and drop the repeats. On one process a
        loader without rows numbers its examples in arrival order."""
        local = None
        if self.labels:
            labels = torch.cat(self.labels)
            if any(rows is None for rows in self.rows):
                if world_size > 1:
                    raise ValueError(
                        f"evaluating on {world_size} processes needs each batch's rows under "
                        f"{ROW_KEY!r} (TaskDataModule's loaders carry them), to merge the shards "
                        "and drop the rows the sampler repeated"
                    )
                rows = torch.arange(len(labels))
            else:
                rows = torch.cat(self.rows)
            outputs = {n: torch.cat(parts) for n, parts in self.outputs.items()}
            local = (rows, labels, outputs)
        parts = [local]
        if world_size > 1:
            parts = [None] * world_size
            torch.distributed.all_gather_object(parts, local)
        parts = [part for part in parts if part is not None]
        if not parts:
            return None
        rows, first = np.unique(torch.cat([part[0] for part in parts]).numpy(), return_index=True)
        keep = torch.from_numpy(first)
        labels = torch.cat([part[1] for part in parts])[keep]
        outputs = {n: torch.cat([part[2][n] for part in parts])[keep] for n in self.ns}
        return torch.from_numpy(rows), labels, outputs
