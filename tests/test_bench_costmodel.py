"""Cost model: paper Table 2 ideal speed-ups and a fit that recovers known parameters."""

from __future__ import annotations

import numpy as np
import pytest

from adapterdrop.bench.costmodel import (
    fit_cost_model,
    ideal_cost,
    ideal_per_layer_speedup,
    ideal_speedup,
    measured_speedup,
    replication_floor,
)

L = 12


@pytest.mark.parametrize(("tasks", "percent"), [(2, 4.35), (4, 6.67), (8, 7.87), (16, 8.47)])
def test_ideal_per_layer_speedup_matches_paper_table_2(tasks, percent):
    speedup = ideal_per_layer_speedup(num_layers=L, num_tasks=tasks)
    assert round(100 * speedup, 2) == percent
    assert speedup == pytest.approx(ideal_speedup(1, num_layers=L, num_tasks=tasks))


def test_ideal_cost_counts_layer_passes():
    assert ideal_cost(0, num_layers=L, num_tasks=4) == 48
    assert ideal_cost(L, num_layers=L, num_tasks=4) == 12
    assert ideal_cost(5, num_layers=L, num_tasks=4) == 5 + 7 * 4
    with pytest.raises(ValueError):
        ideal_cost(13, num_layers=L, num_tasks=4)


def _curve(alpha: float, beta: float, tasks: int, ns: np.ndarray) -> np.ndarray:
    return alpha + beta * (ns + (L - ns) * tasks)


def test_fit_recovers_parameters_exactly_without_noise():
    ns = np.arange(0, L + 1)
    fit = fit_cost_model(ns, _curve(0.015, 0.0021, 8, ns), num_layers=L, num_tasks=8)
    assert fit.alpha == pytest.approx(0.015, rel=1e-10)
    assert fit.beta == pytest.approx(0.0021, rel=1e-10)
    assert fit.r_squared == pytest.approx(1.0)
    assert max(abs(r) for r in fit.residuals) < 1e-12
    assert fit.n_points == L + 1


def test_fit_recovers_parameters_approximately_with_noise():
    rng = np.random.default_rng(0)
    ns = np.repeat(np.arange(0, L + 1), 5)  # repeated measurements per n are allowed
    times = _curve(0.02, 0.003, 4, ns) * rng.normal(1.0, 0.01, size=ns.size)
    fit = fit_cost_model(ns, times, num_layers=L, num_tasks=4)
    assert fit.beta == pytest.approx(0.003, rel=0.03)
    assert fit.alpha == pytest.approx(0.02, abs=4 * fit.alpha_se)
    assert abs(fit.beta - 0.003) < 4 * fit.beta_se
    assert fit.r_squared > 0.99


def test_fitted_speedups_read_off_the_line():
    ns = np.array([0, 3, 6, 9, 12])
    fit = fit_cost_model(ns, _curve(0.0, 0.002, 16, ns), num_layers=L, num_tasks=16)
    # Without a fixed cost the fitted speed-ups are the ideal ones.
    ideal = ideal_per_layer_speedup(num_layers=L, num_tasks=16)
    assert fit.per_layer_speedup == pytest.approx(ideal)
    assert fit.speedup(5) == pytest.approx(ideal_speedup(5, num_layers=L, num_tasks=16))
    assert fit.to_dict()["per_layer_speedup"] == pytest.approx(fit.per_layer_speedup)


def test_fixed_cost_dilutes_the_per_layer_speedup():
    ns = np.arange(0, L + 1)
    fit = fit_cost_model(ns, _curve(0.05, 0.002, 4, ns), num_layers=L, num_tasks=4)
    expected = (0.05 + 0.002 * 48) / (0.05 + 0.002 * 45) - 1
    assert fit.per_layer_speedup == pytest.approx(expected)
    assert fit.per_layer_speedup < ideal_per_layer_speedup(num_layers=L, num_tasks=4)


def test_two_points_fit_exactly_without_standard_errors():
    fit = fit_cost_model([0, 6], [1.0, 0.7], num_layers=L, num_tasks=2)
    assert fit.alpha_se is None and fit.beta_se is None
    assert fit.predict(0) == pytest.approx(1.0)
    assert fit.predict(6) == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("ns", "times", "tasks"),
    [([3, 3], [1.0, 1.1], 4), ([0, 1], [1.0, 0.9], 1), ([0, 1, 2], [1.0, 0.9], 4)],
)
def test_fit_rejects_underdetermined_input(ns, times, tasks):
    with pytest.raises(ValueError):
        fit_cost_model(ns, times, num_layers=L, num_tasks=tasks)


def test_measured_speedup():
    assert measured_speedup({0: 1.2, 3: 1.0}, 3) == pytest.approx(0.2)


def test_replication_floor():
    t_plain = 4.8  # L * T = 48 passes -> 0.1 per pass at batch B
    assert replication_floor(0, t_plain_replicated=t_plain, num_layers=L, num_tasks=4) == (
        pytest.approx(0.1 * (1 + 11 * 4))
    )
    assert replication_floor(11, t_plain_replicated=t_plain, num_layers=L, num_tasks=4) == (
        pytest.approx(0.1 * 12)
    )
    with pytest.raises(ValueError):
        replication_floor(L, t_plain_replicated=t_plain, num_layers=L, num_tasks=4)
