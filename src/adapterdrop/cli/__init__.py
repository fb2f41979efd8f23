"""Command-line entry points (thin ``@hydra.main`` wrappers) and where they find ``conf/``.

The configs live in the repository's ``conf/`` folder, not inside the package: the project is
installed editable (``pip install -e .``), so this file stays in ``<repo>/src/adapterdrop/cli``
and the folder is three parents up. ``ADAPTERDROP_CONF_DIR`` points elsewhere (e.g. a copy of
``conf/`` next to a non-editable install).
"""

from __future__ import annotations

import os
from pathlib import Path

CONF_DIR_ENV = "ADAPTERDROP_CONF_DIR"


def conf_dir() -> Path:
    """Absolute path of the config folder; fails with what to do when it is not there."""
    path = Path(os.environ.get(CONF_DIR_ENV) or Path(__file__).resolve().parents[3] / "conf")
    if not path.is_dir():
        raise FileNotFoundError(
            f"config folder {path} not found: install the repository editable "
            f"(pip install -e .) or set {CONF_DIR_ENV} to a copy of its conf/ folder"
        )
    return path


__all__ = ["CONF_DIR_ENV", "conf_dir"]
