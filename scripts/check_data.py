"""Check a local GLUE/SuperGLUE directory: parse every task found there, print what each holds.

Usage: .venv/bin/python scripts/check_data.py [DATA_DIR]   (default: $ADAPTERDROP_DATA_DIR)

One line per split: the example count, the count per label name (score range for STS-B),
and for grouped tasks the groups (MultiRC: paragraphs and questions, ReCoRD: passages and
queries; their examples are answer options and candidate entities). A task folder or split
file that is not there is reported as absent, which is fine (BoolQ, ReCoRD, MNLI, QNLI and QQP
are not in the shared copy; such tasks load from the hub).
Exit status: 0 when every split present parses, 1 when a file fails to parse (the message
names the file and line), 2 when DATA_DIR does not exist or holds no task folder at all.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from adapterdrop.data.checks import SplitReport, inspect_directory
from adapterdrop.data.layout import DATA_DIR_ENV


def main(argv: list[str]) -> int:
    chosen = argv[1] if len(argv) > 1 else os.environ.get(DATA_DIR_ENV)
    if not chosen or not Path(chosen).is_dir():
        print(f"data directory {chosen!r} not found; pass one or set {DATA_DIR_ENV}")
        return 2
    root = Path(chosen)
    reports = []
    for report in inspect_directory(root):
        print(format_report(report), flush=True)
        reports.append(report)
    errors = [report for report in reports if report.status == "error"]
    read = sum(report.status == "read" for report in reports)
    absent_tasks = [
        report.task for report in reports if report.status == "absent" and not report.split
    ]
    absent_splits = sum(report.status == "absent" and bool(report.split) for report in reports)
    print(
        f"{read} splits read, {len(errors)} failed to parse, {absent_splits} split files absent, "
        f"{len(absent_tasks)} tasks absent"
    )
    if len(absent_tasks) == len(reports):
        print(f"no GLUE/SuperGLUE task folder (glue/<Task>/, superglue/<Task>/) found in {root}")
        return 2
    return 1 if errors else 0


def format_report(report: SplitReport) -> str:
    head = f"{report.task:18s} {report.split or '-':22s}"
    if report.status == "absent":
        return f"{head} absent ({report.detail})"
    if report.status == "error":
        return f"{head} ERROR {report.detail}"
    groups = f"  groups: {report.groups}" if report.groups else ""
    return f"{head} {report.examples:7d}  labels: {report.labels}{groups}"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
