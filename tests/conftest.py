"""Shared fixtures: the repo's conf/ folder, real data beside the checkout, small models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SHARED_DATA = REPO.parent / "shared" / "data"


def model_cfg(name: str) -> dict:
    """A ``conf/model`` entry as a plain dict (for tests that need no Hydra)."""
    return yaml.safe_load((CONF / "model" / f"{name}.yaml").read_text())


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """Real GLUE/SuperGLUE files (``ADAPTERDROP_DATA_DIR`` or ``../shared/data``)."""
    path = Path(os.environ.get("ADAPTERDROP_DATA_DIR") or SHARED_DATA)
    if not (path / "glue").is_dir():
        pytest.skip(f"real GLUE/SuperGLUE files not found at {path}")
    return path
