"""``python -m adapterdrop.cli.bench bench=<grid>`` (or ``adapterdrop-bench``): measure a
benchmark grid and print its tables. The work is in ``adapterdrop.bench.sweep``."""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from adapterdrop.bench.sweep import run_benchmark
from adapterdrop.cli import conf_dir
from adapterdrop.cli.jobs import sweep_job


@hydra.main(config_path=str(conf_dir()), config_name="bench", version_base="1.3")
@sweep_job
def main(cfg: DictConfig) -> None:
    overrides = list(HydraConfig.get().overrides.task)
    summary, tables = run_benchmark(OmegaConf.to_container(cfg, resolve=True), overrides)
    print(f"{cfg.bench.name}: {summary}")
    for name, markdown in tables.items():
        print(f"\n## {name}\n\n{markdown}")
    if summary.failed:
        # After every other point ran and the tables were built: a failed point fails the run.
        report = summary.failure_report(cfg.bench.name)
        raise SystemExit(f"{cfg.bench.name}: {len(summary.failed)} point(s) failed:\n{report}")


if __name__ == "__main__":
    main()
