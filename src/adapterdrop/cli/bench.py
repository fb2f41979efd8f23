"""``python -m adapterdrop.cli.bench bench=<grid>`` (or ``adapterdrop-bench``): measure a
benchmark grid, print its tables and log them to W&B (``logger``, see
:mod:`adapterdrop.tracking`). The work is in ``adapterdrop.bench.sweep``."""

from __future__ import annotations

from collections.abc import Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from adapterdrop import tracking
from adapterdrop.bench.sweep import resolve_paths, run_benchmark
from adapterdrop.cli import conf_dir
from adapterdrop.cli.jobs import sweep_job

#: Config groups that say how a run is shown or swept, not what it measures: kept out of the
#: grid's config and of the overrides that decide whether a run changes the grid's setting.
DISPLAY_GROUPS = ("logger", "sweep")


def setting_overrides(overrides: Sequence[str], grid: str) -> list[str]:
    """The command line's overrides that may change what ``grid`` measures: without the grid's
    own choice (``bench=<grid>`` names the tables, it is no other setting of them), ``logger``
    (W&B) and ``sweep`` (a sweep file only picks its grid and its swept keys, and those reach
    every job as overrides of their own)."""
    kept = []
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key == "bench" and value == grid:
            continue
        if any(key == g or key.startswith((f"{g}.", f"{g}/")) for g in DISPLAY_GROUPS):
            continue
        kept.append(override)
    return kept


@hydra.main(config_path=str(conf_dir()), config_name="bench", version_base="1.3")
@sweep_job
def main(cfg: DictConfig) -> None:
    plain = OmegaConf.to_container(cfg, resolve=True)
    wandb_cfg = (plain.pop("logger", None) or {}).get("wandb")
    grid = cfg.bench.name
    overrides = setting_overrides(HydraConfig.get().overrides.task, grid)
    summary, tables = run_benchmark(plain, overrides)
    print(f"{grid}: {summary}")
    for name, markdown in tables.items():
        print(f"\n## {name}\n\n{markdown}")
    results_root = resolve_paths(plain)["results_root"]
    tracking.log_benchmark(plain, summary, tables, results_root, wandb_cfg)
    if summary.failed:
        # After every other point ran and the tables were built: a failed point fails the run.
        report = summary.failure_report(grid)
        raise SystemExit(f"{grid}: {len(summary.failed)} point(s) failed:\n{report}")


if __name__ == "__main__":
    main()
