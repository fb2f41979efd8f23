"""Check a local GLUE/SuperGLUE directory: parse every task found there, print counts.

Usage: .venv/bin/python scripts/check_data.py [DATA_DIR]   (default: $ADAPTERDROP_DATA_DIR)
Exits non-zero when a file fails to parse; the message names the file and line.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

from adapterdrop.data import TASKS, DataError
from adapterdrop.data.readers import read_split, task_dir


def main(argv: list[str]) -> int:
    chosen = argv[1] if len(argv) > 1 else os.environ.get("ADAPTERDROP_DATA_DIR")
    if not chosen or not Path(chosen).is_dir():
        print(f"data directory {chosen!r} not found; pass one or set ADAPTERDROP_DATA_DIR")
        return 2
    root = Path(chosen)
    failures = 0
    for key, spec in TASKS.items():
        if not task_dir(spec, root).is_dir():
            print(f"{key:18s} absent")
            continue
        for split in spec.splits:
            try:
                examples = read_split(spec, root, split)
            except DataError as err:
                failures += 1
                print(f"{key:18s} {split:22s} ERROR {err}")
                continue
            labels = Counter(e.label for e in examples if e.label is not None)
            shown = dict(labels.most_common(4)) if spec.task_type != "regression" else "scores"
            print(f"{key:18s} {split:22s} {len(examples):7d}  labels: {shown or 'none (test)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
