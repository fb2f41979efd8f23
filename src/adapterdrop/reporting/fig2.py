"""Fig. 2 of AdapterDrop: a task's validation score against the number n of dropped lower layers.

Built from training results only (``results/raw/fig2_*``), like every other table:

* ``standard``: one adapter trained in every layer, scored with the adapters of the first n
  layers dropped at test time (``val/<metric>@n=<k>``);
* ``robust``: one adapter trained with n ~ U{0..L-1} per batch, scored the same way;
* ``specialized``: one adapter per n, built without adapters below layer n, scored at that n
  (n = 0 is the standard run: :func:`with_specialized_at_zero`).

``fig2`` has one row per curve point (model, task, training subset, precision, training
batches, epochs, metric, n) with
each variant's mean over seeds, its standard deviation (``<variant>_std``, sample std: blank
for one run) and its run count (``<variant>_runs``, one run per seed). ``limit_examples`` is
the seeded subset each split was cut to (``data.limit_examples``; blank: the whole split),
``precision`` the trainer's and ``epochs`` its ``max_epochs``, since runs in bf16 and fp32, or
of 3 and 6 epochs, are different settings, not seeds.
``fig2_relative`` divides the means and deviations by the standard adapter's mean at n = 0,
the form of the paper's "with 5 dropped layers specialized keeps 97.1 % and robust 95.4 %".
``fig2_contrasts`` tests the figure's claims per n on each task's main metric: robust minus
standard, specialized minus standard and specialized minus robust, as paired differences over
the seeds the two variants share, with a 95 % Student-t interval and whether it excludes zero
(``beyond_noise``; blank with fewer than two seeds).
``python -m adapterdrop.reporting`` (``make tables``) writes them to ``results/tables/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from adapterdrop.data import get_task_spec
from adapterdrop.reporting.baselines import subset_size
from adapterdrop.reporting.tables import load_ok_results, train_batches, write_table

#: Result experiment name (``experiment_name`` of ``conf/experiment/fig2_*.yaml``) -> curve.
VARIANTS = {"fig2_standard": "standard", "fig2_robust": "robust", "fig2_specialized": "specialized"}
#: What one curve is: runs that agree on these are seeds of one setting.
CURVE = ["model", "task", "limit_examples", "precision", "batches", "epochs", "metric"]
KEYS = [*CURVE, "dropped_layers"]
#: Fig. 2's comparisons: (name, variant, minus variant).
CONTRASTS = (
    ("robust - standard", "robust", "standard"),
    ("specialized - standard", "specialized", "standard"),
    ("specialized - robust", "specialized", "robust"),
)


def _depth_scores(run: pd.Series, variant: str, metric: str) -> dict[int, float]:
    """``{n: score}`` of one run for one metric; empty when the run did not log it."""
    if variant == "specialized":
        value = run.get(f"metrics.val/{metric}")
        return {} if value is None or pd.isna(value) else {int(run["config.drop.n"]): value}
    pattern = re.compile(rf"metrics\.val/{re.escape(metric)}@n=(\d+)$")
    return {
        int(found.group(1)): run[column]
        for column in run.index
        if (found := pattern.match(column)) and pd.notna(run[column])
    }


def fig2_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, curve, n, run), for every metric of the task, with the run's
    seed and result file.

    The main metric must be there; others are kept where logged. One metric can mislead:
    on MRPC a model answering "equivalent" to every pair scores 0.81 F1, so F1 barely moves
    while accuracy falls to the majority share.
    """
    rows = []
    for _, run in runs.iterrows():
        variant = VARIANTS[run["experiment"]]
        task = run["config.data.task"]
        spec = get_task_spec(task)
        base = {
            "variant": variant,
            "model": run["config.model.name"],
            "task": task,
            "limit_examples": subset_size(run),
            "precision": str(run["config.trainer.precision"]),
            "batches": train_batches(run),
            "epochs": run.get("config.trainer.max_epochs"),
            "seed": int(run["config.seed"]),
            "path": run["path"],
        }
        for metric in spec.metrics:
            scores = _depth_scores(run, variant, metric)
            if not scores and metric == spec.main_metric:
                raise ValueError(
                    f"{run['path']}: no val/{metric}@n=<k> metrics; {variant} runs need "
                    "eval_sweep=true (set by conf/experiment/fig2_*.yaml)"
                )
            rows += [
                {**base, "metric": metric, "dropped_layers": n, "score": float(s)}
                for n, s in scores.items()
            ]
    scores = pd.DataFrame(rows)
    if not scores.empty:
        for count in ("limit_examples", "epochs"):
            scores[count] = scores[count].astype("Int64")
    return with_specialized_at_zero(scores)


def with_specialized_at_zero(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` plus, for every seed of a curve with specialized runs but none at n = 0, the
    standard run's n = 0 scores as specialized ones (its ``path``).

    Specialized AdapterDrop at n = 0 leaves no layer without adapters and drops none: it is
    the standard adapter's training exactly (a test compares the two runs), so the
    specialized sweep starts at n = 1 and the curve takes its first point from there."""
    if scores.empty:
        return scores
    seeds = [*CURVE, "seed"]
    specialized = scores[scores["variant"] == "specialized"]
    have = specialized[seeds].drop_duplicates()
    have_zero = specialized.loc[specialized["dropped_layers"] == 0, seeds].drop_duplicates()
    standard = scores[(scores["variant"] == "standard") & (scores["dropped_layers"] == 0)]
    borrowed = standard.merge(have, on=seeds).merge(have_zero, on=seeds, how="left", indicator=True)
    borrowed = borrowed[borrowed.pop("_merge") == "left_only"].assign(variant="specialized")
    return pd.concat([scores, borrowed[scores.columns]], ignore_index=True)


def check_one_run_per_seed(scores: pd.DataFrame) -> None:
    """Refuse two runs of one seed on one curve: they differ in a setting the table does not
    show (epochs, learning rate, ...), and averaging them would pass a setting off as seeds."""
    run = [*KEYS, "variant", "seed"]
    twice = scores[scores.duplicated(run, keep=False)]
    if not twice.empty:
        (_, group), *_ = twice.groupby(run, dropna=False, sort=False)
        first, paths = group.iloc[0], sorted(set(group["path"]))
        raise ValueError(
            f"{first['variant']} {first['task']} ({first['model']}, {first['precision']}) has "
            f"{len(paths)} runs of seed {first['seed']}: {', '.join(map(str, paths))}; they "
            "differ in settings that Fig. 2 does not separate, so move all but one away"
        )


def _spread_of_mean(stds: pd.Series) -> float:
    """Standard deviation of the mean of independent scores with these deviations (NaN when
    any is unknown)."""
    return float(np.sqrt((stds**2).sum(min_count=len(stds)))) / len(stds)


def fig2_tables(scores: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``fig2`` (mean, std and runs per variant and n) and ``fig2_relative`` (means and stds
    over the standard adapter's mean at n = 0).

    A metric that some variant did not log (a standard run trained before the depth sweep
    logged it, say) is left out. The ``mean`` rows of ``fig2_relative`` average each task's
    main metric only, so a task with two metrics does not count twice; their std is that of a
    mean over tasks of one run each (tasks' runs are independent trainings).
    """
    check_one_run_per_seed(scores)
    stats = scores.groupby([*KEYS, "variant"], dropna=False)["score"].agg(["mean", "std", "size"])
    stats = stats.unstack("variant")
    variants = [v for v in VARIANTS.values() if v in stats["mean"]]
    stds = [f"{v}_std" for v in variants]
    table = pd.concat(
        [
            stats["mean"][variants],
            stats["std"][variants].add_suffix("_std"),
            stats["size"][variants].add_suffix("_runs").astype("Int64"),
        ],
        axis=1,
    )
    table = table.reset_index().sort_values(KEYS, ignore_index=True)
    logged = table.groupby(CURVE, dropna=False)[variants].transform("count").gt(0)
    table = table[logged.all(axis=1)].reset_index(drop=True)
    relative = table[KEYS].copy()
    if "standard" in table:
        at_zero = table.loc[table["dropped_layers"] == 0, [*CURVE, "standard"]]
        reference = table[CURVE].merge(
            at_zero.rename(columns={"standard": "reference"}), on=CURVE, how="left"
        )["reference"]
        for column in [*variants, *stds]:
            relative[column] = table[column].to_numpy() / reference.to_numpy()
        main = relative["metric"] == relative["task"].map(lambda t: get_task_spec(t).main_metric)
        by = relative[main].groupby(["model", "precision", "batches", "dropped_layers"])
        mean = by[variants].mean().join(by[stds].agg(_spread_of_mean)).reset_index()
        relative = pd.concat([relative, mean.assign(task="mean", metric="")], ignore_index=True)
        relative = relative[[*KEYS, *variants, *stds]]
    return {"fig2": table, "fig2_relative": relative, "fig2_contrasts": fig2_contrasts(scores)}


def fig2_contrasts(scores: pd.DataFrame) -> pd.DataFrame:
    """Per curve and n (main metrics only), each of :data:`CONTRASTS` as the mean of per-seed
    differences, the seeds both variants ran, a 95 % Student-t interval over those differences
    and whether it excludes zero. Seeds pair runs that share data order and initial weights."""
    main = scores[scores["metric"] == scores["task"].map(lambda t: get_task_spec(t).main_metric)]
    per_seed = main.groupby([*KEYS, "seed", "variant"], dropna=False)["score"].first()
    per_seed = per_seed.unstack("variant")
    rows = []
    for keys, group in per_seed.groupby(level=KEYS, dropna=False, sort=True):
        for name, variant, other in CONTRASTS:
            if variant not in group or other not in group:
                continue
            diff = (group[variant] - group[other]).dropna()
            if diff.empty:
                continue
            low = high = float("nan")
            if len(diff) >= 2:
                low, high = stats.ttest_1samp(diff.to_numpy(), 0.0).confidence_interval(0.95)
            known = bool(np.isfinite(low) and np.isfinite(high))
            rows.append(
                {
                    **dict(zip(KEYS, keys, strict=True)),
                    "contrast": name,
                    "difference": float(diff.mean()),
                    "ci_low": low,
                    "ci_high": high,
                    "seeds": len(diff),
                    "beyond_noise": (low > 0 or high < 0) if known else pd.NA,
                }
            )
    columns = [*KEYS, "contrast", "difference", "ci_low", "ci_high", "seeds", "beyond_noise"]
    out = pd.DataFrame(rows, columns=columns)
    out["limit_examples"] = out["limit_examples"].astype("Int64")
    return out


def load_fig2_runs(results_root: Path | str) -> pd.DataFrame:
    """Every successful ``fig2_*`` training result under ``results_root``."""
    frames = [load_ok_results(results_root, experiment) for experiment in VARIANTS]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        raise FileNotFoundError(
            f"no Fig. 2 results under {results_root}/{{{','.join(VARIANTS)}}}: "
            "run `make reproduce-fig2` first"
        )
    return pd.concat(frames, ignore_index=True)


def write_fig2_tables(results_root: Path | str, tables_root: Path | str) -> dict[str, str]:
    """Build the Fig. 2 tables from the results under ``results_root`` and write them to
    ``tables_root``; return each table's markdown."""
    tables = fig2_tables(fig2_scores(load_fig2_runs(results_root)))
    return {
        name: write_table(frame, name, tables_root=tables_root) for name, frame in tables.items()
    }
