"""Shared fixtures: the repo's conf/ folder, real data beside the checkout, small models."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest
import torch
import yaml

import adapterdrop  # noqa: F401  (registers the ${adapterdrop.*} resolvers that conf/ uses)
from adapterdrop.data import ROW_KEY

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SHARED_DATA = REPO.parent / "shared" / "data"


def model_cfg(name: str) -> dict:
    """A ``conf/model`` entry as a plain dict (for tests that need no Hydra)."""
    return yaml.safe_load((CONF / "model" / f"{name}.yaml").read_text())


def method_cfg(preset: str, **options) -> dict:
    """``conf/method/<preset>.yaml`` as Hydra composes it (a preset may extend another), with
    ``options`` over it."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        method = OmegaConf.to_container(compose("train", [f"method={preset}"]).method)
    return {**method, **options}


def labels_in_split_order(loader: Iterable[dict[str, torch.Tensor]]) -> torch.Tensor:
    """An evaluation loader's labels in split order: the loaders batch by length, and their
    rows (``ROW_KEY``) put the labels back in order, as ``EvalBuffer.gather`` does."""
    batches = list(loader)
    rows = torch.cat([batch[ROW_KEY] for batch in batches])
    return torch.cat([batch["labels"] for batch in batches])[rows.argsort()]


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """Real GLUE/SuperGLUE files (``ADAPTERDROP_DATA_DIR`` or ``../shared/data``)."""
    path = Path(os.environ.get("ADAPTERDROP_DATA_DIR") or SHARED_DATA)
    if not (path / "glue").is_dir():
        pytest.skip(f"real GLUE/SuperGLUE files not found at {path}")
    return path


#: Settings that shrink any benchmark grid to seconds: tiny model, minimal timing budget, one
#: thread (a busy 2-core machine stalls multi-threaded tiny kernels), fp32 so results are exact;
#: no W&B run (tests/test_tracking.py checks those).
TINY_BENCH = [
    "logger=none",
    "model=tiny",
    "device=cpu",
    "dtype=fp32",
    "preset=cpu",
    "progress=false",
    "threads=1",
    "timing.warmup=0",
    "timing.min_reps=2",
    "timing.min_seconds=0",
]


def bench_cfg(tmp_path: Path, bench: str, *overrides: str) -> dict:
    """``conf/bench.yaml`` composed for ``bench``, shrunk, writing results under ``tmp_path``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    every = [
        f"bench={bench}",
        *TINY_BENCH,
        f"paths.results_root={tmp_path}/raw",
        f"paths.tables_root={tmp_path}/tables",
        *overrides,
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return OmegaConf.to_container(compose(config_name="bench", overrides=every), resolve=True)


@pytest.fixture(autouse=True)
def restore_threads():
    """A benchmark run sets torch's process-wide thread count; give later tests theirs back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
