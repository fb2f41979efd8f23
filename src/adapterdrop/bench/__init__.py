"""Generic benchmark harness: timing, statistics, environment capture, resumable sweeps.

Nothing here knows about adapters; experiment code supplies callables and configs.
"""

from adapterdrop.bench.costmodel import (
    CostModelFit,
    fit_cost_model,
    ideal_cost,
    ideal_per_layer_speedup,
    ideal_speedup,
    measured_speedup,
    replication_floor,
)
from adapterdrop.bench.environment import collect_environment, git_state, static_environment
from adapterdrop.bench.runner import RunSummary, run_points
from adapterdrop.bench.stats import (
    HighSpreadWarning,
    RatioCI,
    SampleStats,
    ratio_of_medians,
    relative_speeds,
    summarize,
)
from adapterdrop.bench.timer import measure, measure_interleaved

__all__ = [
    "CostModelFit",
    "HighSpreadWarning",
    "RatioCI",
    "RunSummary",
    "SampleStats",
    "collect_environment",
    "fit_cost_model",
    "git_state",
    "ideal_cost",
    "ideal_per_layer_speedup",
    "ideal_speedup",
    "measure",
    "measure_interleaved",
    "measured_speedup",
    "ratio_of_medians",
    "relative_speeds",
    "replication_floor",
    "run_points",
    "static_environment",
    "summarize",
]
