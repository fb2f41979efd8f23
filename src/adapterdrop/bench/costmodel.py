"""The AdapterDrop cost model (paper Table 2) and a least-squares fit of measured times to it.

Inference on T tasks with a shared backbone whose first n of L layers carry no adapters
computes those n layers once and the remaining L - n layers once per task, so the ideal
cost in single-task layer passes is ``n + (L - n) * T``. Measured times add a fixed part
(embeddings, head, Python overhead), hence the fit ``t(n) = alpha + beta * cost(n)``.
Speed-ups are expressed as ``t(0) / t(k) - 1`` (0.05 = 5 % faster than dropping nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


def _check_shape(num_layers: int, num_tasks: int) -> None:
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if num_tasks < 1:
        raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")


def _check_dropped(n: int, num_layers: int) -> None:
    if not 0 <= n <= num_layers:
        raise ValueError(f"dropped layers must be in [0, {num_layers}], got {n}")


def ideal_cost(n: int, *, num_layers: int, num_tasks: int) -> int:
    """Layer passes for T tasks when the first ``n`` layers are shared: ``n + (L - n) T``."""
    _check_shape(num_layers, num_tasks)
    _check_dropped(n, num_layers)
    return n + (num_layers - n) * num_tasks


def ideal_speedup(k: int, *, num_layers: int, num_tasks: int) -> float:
    """Ideal speed-up from dropping ``k`` layers: ``cost(0) / cost(k) - 1``."""
    base = ideal_cost(0, num_layers=num_layers, num_tasks=num_tasks)
    return base / ideal_cost(k, num_layers=num_layers, num_tasks=num_tasks) - 1


def ideal_per_layer_speedup(*, num_layers: int, num_tasks: int) -> float:
    """Ideal speed-up of dropping one layer: ``(T - 1) / (L T - T + 1)`` (paper Table 2)."""
    _check_shape(num_layers, num_tasks)
    return (num_tasks - 1) / (num_layers * num_tasks - num_tasks + 1)


@dataclass(frozen=True)
class CostModelFit:
    """Least-squares fit ``t(n) = alpha + beta * (n + (L - n) T)`` with its diagnostics.

    ``alpha_se``/``beta_se`` are the usual OLS standard errors (``None`` with fewer than
    three points, where the residual variance is undefined).
    """

    alpha: float
    beta: float
    num_layers: int
    num_tasks: int
    n_points: int
    residuals: list[float]
    r_squared: float
    alpha_se: float | None
    beta_se: float | None

    def predict(self, n: int) -> float:
        """Fitted time with ``n`` dropped layers."""
        cost = ideal_cost(n, num_layers=self.num_layers, num_tasks=self.num_tasks)
        return self.alpha + self.beta * cost

    def speedup(self, k: int) -> float:
        """Fitted speed-up from dropping ``k`` layers: ``t_hat(0) / t_hat(k) - 1``."""
        return self.predict(0) / self.predict(k) - 1

    @property
    def per_layer_speedup(self) -> float:
        """Fitted speed-up of dropping one layer, read off the line rather than one point."""
        return self.speedup(1)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "per_layer_speedup": self.per_layer_speedup}


def fit_cost_model(
    n_dropped: Sequence[int],
    times: Sequence[float],
    *,
    num_layers: int,
    num_tasks: int,
) -> CostModelFit:
    """Fit measured times against the ideal cost over every measured ``n`` (repeats allowed).

    Using all points rather than t(0) and t(1) alone averages out the noise of any single
    measurement; the residuals and R^2 show whether the linear model holds at all.
    """
    _check_shape(num_layers, num_tasks)
    n_arr = np.asarray(n_dropped, dtype=int)
    y = np.asarray(times, dtype=float)
    if n_arr.shape != y.shape or n_arr.ndim != 1:
        raise ValueError(
            f"n_dropped and times must be 1-D of equal length: {n_arr.shape}, {y.shape}"
        )
    if np.unique(n_arr).size < 2:
        raise ValueError("the fit needs measurements at two or more distinct n")
    if num_tasks == 1:
        raise ValueError("with one task the cost does not depend on n; nothing to fit")
    cost = np.array([ideal_cost(int(n), num_layers=num_layers, num_tasks=num_tasks) for n in n_arr])
    design = np.column_stack([np.ones_like(cost, dtype=float), cost.astype(float)])
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ np.array([alpha, beta])
    ss_res = float(residuals @ residuals)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    # Constant times are described perfectly by the intercept alone.
    r_squared = 1 - ss_res / ss_tot if ss_tot > 0 else 1.0
    alpha_se = beta_se = None
    if y.size > 2:
        covariance = ss_res / (y.size - 2) * np.linalg.inv(design.T @ design)
        alpha_se, beta_se = (float(v) for v in np.sqrt(np.diag(covariance)))
    return CostModelFit(
        alpha=float(alpha),
        beta=float(beta),
        num_layers=num_layers,
        num_tasks=num_tasks,
        n_points=int(y.size),
        residuals=[float(r) for r in residuals],
        r_squared=float(r_squared),
        alpha_se=alpha_se,
        beta_se=beta_se,
    )


def measured_speedup(times_by_n: Mapping[int, float], k: int) -> float:
    """Speed-up read directly from two measurements: ``t(0) / t(k) - 1``."""
    return times_by_n[0] / times_by_n[k] - 1


def replication_floor(
    n: int, *, t_plain_replicated: float, num_layers: int, num_tasks: int
) -> float:
    """Cost-model lower bound for late replication after ``n`` dropped layers.

    ``t_plain_replicated`` is the plain backbone's time on the T-times replicated batch,
    i.e. ``L * T`` layer passes at batch size B; the floor scales it to
    ``(n + 1) + (L - n - 1) * T`` passes, as defined for judging late replication.
    A measured time far above the floor points at overhead outside the encoder layers.
    """
    _check_shape(num_layers, num_tasks)
    if not 0 <= n <= num_layers - 1:
        raise ValueError(f"n must be in [0, {num_layers - 1}] for late replication, got {n}")
    passes = (n + 1) + (num_layers - n - 1) * num_tasks
    return t_plain_replicated * passes / (num_layers * num_tasks)
