"""Robust AdapterDrop: every training batch drops a freshly drawn number of layers.

The draw comes from a ``torch.Generator`` owned by the sampler, so a run is reproducible from
its seed alone and does not disturb (or depend on) the global RNG that dropout uses.
Evaluation never asks the sampler (see ``module.py``), whatever the last training batch drew.
"""

from __future__ import annotations

from typing import Any

import torch


class RobustDropSampler:
    """Draws ``n`` uniformly from ``0..max_n`` (inclusive) for each training batch.

    The paper's range is ``0..L-1`` (the default, ``max_n=None``); AdapterHub's notebook uses
    ``0..L-2``, i.e. ``max_n=L-2``.
    """

    def __init__(self, num_layers: int, seed: int, max_n: int | None = None) -> None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers = num_layers
        self.max_n = num_layers - 1 if max_n is None else max_n
        if not 0 <= self.max_n < num_layers:
            raise ValueError(
                f"robust max_n={self.max_n} out of range: choose 0..{num_layers - 1} "
                f"(the encoder has {num_layers} layers)"
            )
        self.generator = torch.Generator().manual_seed(seed)

    def draw(self) -> int:
        """The number of dropped layers for the next training batch."""
        return int(torch.randint(0, self.max_n + 1, (), generator=self.generator))

    def state_dict(self) -> dict[str, Any]:
        """Generator state, so a resumed run continues the same sequence of draws."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
