"""Prediction heads keyed by task, on top of the shared adapter encoder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from adapterdrop.engine import AdapterEncoder


class ClassificationHead(nn.Module):
    """RoBERTa-style head on the first token: dense, tanh, dropout, projection to labels."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = self.dropout(hidden[:, 0])
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out(x)


class MultiTaskModel(nn.Module):
    """An ``AdapterEncoder`` with one head per task; one forward serves several tasks.

    Multiple-choice inputs ``(B, C, S)`` are flattened to ``(B * C, S)`` and scored with a
    one-logit head, giving ``(B, C)`` logits.
    """

    def __init__(self, encoder: AdapterEncoder, head_dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict()
        self.head_dropout = head_dropout

    def add_head(self, task: str, num_labels: int) -> None:
        if num_labels < 1:
            raise ValueError(f"task {task!r}: num_labels must be >= 1, got {num_labels}")
        self.heads[task] = ClassificationHead(
            self.encoder.hidden_size, num_labels, self.head_dropout
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        tasks: str | Iterable[str] | None = None,
        dropped_layers: int | Mapping[str, int] = 0,
    ) -> dict[str, torch.Tensor]:
        """Logits per task: ``(B, num_labels)``, or ``(B, C)`` for multiple choice."""
        choices = input_ids.shape[1] if input_ids.dim() == 3 else None
        if choices is not None:
            input_ids, attention_mask, token_type_ids = (
                None if t is None else t.flatten(0, 1)
                for t in (input_ids, attention_mask, token_type_ids)
            )
        hidden = self.encoder(input_ids, attention_mask, token_type_ids, tasks, dropped_layers)
        logits = {task: self.heads[task](h) for task, h in hidden.items()}
        if choices is not None:
            logits = {task: z.view(-1, choices) for task, z in logits.items()}
        return logits
