"""The inputs benchmark callables run on: random token ids, random labels and task names.

Speed depends on shapes only, so every implementation of a point is fed the same random
tensors, made on the host from the point's seed and moved to the device once.
"""

from __future__ import annotations

import torch

#: Labels of the synthetic classification task; speed does not depend on the label count.
NUM_LABELS = 2


def random_inputs(
    vocab_size: int, batch: int, seq_len: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, None]:
    """Token ids made on the host once and moved, and no attention mask: speed runs are
    unpadded, and every implementation then takes its mask-free path (no mask to build or
    check on the device in each forward)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (batch, seq_len), generator=generator)
    return ids.to(device), None


def random_labels(batch: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, NUM_LABELS, (batch,), generator=generator).to(device)


def labelled_inputs(
    vocab_size: int, batch: int, seq_len: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, None, torch.Tensor]:
    """Token ids, no mask (:func:`random_inputs`) and random labels for a training step."""
    ids, mask = random_inputs(vocab_size, batch, seq_len, device, seed)
    return ids, mask, random_labels(batch, device, seed)


def task_names(count: int) -> list[str]:
    if count < 1:
        raise ValueError(f"num_tasks must be >= 1, got {count}")
    return [f"task{index}" for index in range(count)]
