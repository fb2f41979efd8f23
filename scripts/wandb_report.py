"""Build a W&B report of a project's runs, one section per paper artefact.

Usage: .venv/bin/python scripts/wandb_report.py [--entity E] [--project P] [--title T]
       [--outline]     (make report REPORT_ARGS="...")

Each section (Table 1, 2, 3, the efficiency studies, Fig. 2, fusion scores, cross-layer sharing,
the methods frontier) says what the artefact is and the command that makes it, and shows the
project's runs of it: the tables that
benchmark runs logged (``tables/<name>``) and, for training, the eval-sweep table and figure
(``eval_sweep``, ``figures/eval_sweep``); runs are picked by the experiment that
``adapterdrop.tracking`` records in their config (``tracking.experiment``).

A report lives on the W&B server, so it needs W&B online and logged in. Offline (the default:
``WANDB_MODE=offline``, as the Makefile exports it, or no API key) it builds nothing and says
what to run instead: ``wandb sync`` of the offline runs found under ``outputs/`` and
``multirun/``, then this script online. ``--outline`` prints the sections it would build, with
no network. Exit status: 0 report saved (its URL printed), 2 offline, 1 any other failure.
"""

from __future__ import annotations

import argparse
import netrc
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
#: Where the apps write their W&B runs (each run's Hydra folder): conf/hydra/default.yaml.
RUN_ROOTS = ("outputs", "multirun")


@dataclass(frozen=True)
class Section:
    """One paper artefact: its runs (by ``tracking.experiment`` and ``filters``, W&B filter
    expressions), the tables and media keys their panels show."""

    title: str
    text: str
    command: str
    experiments: tuple[str, ...]
    tables: tuple[str, ...] = ()
    media: tuple[str, ...] = ()
    filters: tuple[str, ...] = field(default=())

    def runset_filter(self) -> str:
        """The W&B filter expression that picks the section's runs."""
        names = ", ".join(f"'{name}'" for name in self.experiments)
        if len(self.experiments) > 1:
            chosen = [f"Config('tracking.experiment') in [{names}]"]
        else:
            chosen = [f"Config('tracking.experiment') == {names}"] if names else []
        return " and ".join((*chosen, *self.filters))


SECTIONS = (
    Section(
        "Table 1: adapters vs full fine-tuning",
        "Relative speed (t_full / t_adapter) of Pfeiffer and Houlsby adapters, one training "
        "step and inference, per sequence length and batch size.",
        "make reproduce-table1",
        ("table1",),
        tables=("tables/table1", "tables/table1_summary"),
    ),
    Section(
        "Table 2: speed-up per shared layer",
        "T task adapters in one Parallel pass with the first n layers shared: per-layer "
        "speed-up of ours and AdapterHub against the paper and the ideal cost model.",
        "make reproduce-table2   # one T per job: make bench ARGS='-m sweep=bench/tasks'",
        ("table2",),
        tables=("tables/table2", "tables/table2_curve"),
    ),
    Section(
        "Table 3: AdapterFusion cost and pruning",
        "Fusion of K adapters vs full fine-tuning, and the fusion of 8 pruned to k by mean "
        "fusion activation.",
        "make reproduce-table3   # pruning k: make bench ARGS='-m sweep=bench/prune'",
        ("table3",),
        tables=(
            "tables/table3",
            "tables/table3_pruning",
            "tables/table3_vs_adapterhub",
            "tables/table3_detail",
        ),
    ),
    Section(
        "Efficiency: robust and specialized AdapterDrop, CoDA, overheads, multi-task",
        "Training-step speed of robust and specialized AdapterDrop, CoDA's token routing, "
        "AdapterBias / LoRA / adapter overheads and multi-task cost.",
        "make reproduce-efficiency",
        ("efficiency",),
        tables=(
            "tables/efficiency_robust",
            "tables/efficiency_robust_curve",
            "tables/efficiency_specialized",
            "tables/efficiency_coda",
            "tables/efficiency_overheads",
            "tables/efficiency_multitask_training",
            "tables/efficiency_multitask_inference",
        ),
    ),
    Section(
        "Fig. 2: task scores vs dropped layers",
        "Standard adapters evaluated with the first n layers' adapters dropped, robust "
        "AdapterDrop (one model, every n) and specialized AdapterDrop (one model per n).",
        "make reproduce-fig2",
        ("fig2_standard", "fig2_robust", "fig2_specialized"),
        tables=("eval_sweep",),
        media=("figures/eval_sweep",),
    ),
    Section(
        "Fig. 4/5: AdapterFusion scores, pruned and dropped",
        "An AdapterFusion per target task over 8 frozen single-task adapters, scored without "
        "retraining when pruned to the k most activated adapters (val/<metric>@k=<k>) and with "
        "the fusion of the first n layers dropped (val/<metric>@n=<n>).",
        "make reproduce-fusion",
        ("fusion",),
        tables=("eval_sweep",),
    ),
    Section(
        "Appendix: cross-layer parameter sharing",
        "A standard Pfeiffer adapter beside one shared by every layer, at reduction factors "
        "4/3, 4 and 16.",
        "make reproduce-sharing   # one task: SHARING_TASKS=glue/stsb",
        ("sharing",),
    ),
    Section(
        "Methods frontier: score, size and time per method",
        "Full fine-tuning and every parameter-efficient method on the same tasks: dev score, "
        "params/trainable, time/train_step_s and time/to_best_s of each run.",
        "make reproduce-methods",
        ("methods",),
    ),
)


def build_report(
    entity: str,
    project: str,
    title: str = "AdapterDrop reproduction",
    sections: tuple[Section, ...] = SECTIONS,
):
    """The report (``wandb_workspaces.reports.v2.Report``), unsaved: nothing here reaches the
    network; :meth:`Report.save` does."""
    import wandb_workspaces.reports.v2 as wr

    blocks: list = [
        wr.TableOfContents(),
        wr.P(
            f"Runs of the W&B project {entity}/{project}, logged by adapterdrop "
            "(src/adapterdrop/tracking.py); each section lists its runs, grouped by run group "
            "(the experiment, or experiment/sweep folder for a multirun)."
        ),
    ]
    for section in sections:
        panels: list = [wr.WeavePanelSummaryTable(table_name=name) for name in section.tables]
        if section.media:
            panels.append(wr.MediaBrowser(media_keys=list(section.media)))
        runset = wr.Runset(
            entity=entity,
            project=project,
            name=section.title.split(":")[0],
            filters=section.runset_filter(),
            groupby=["group"],
        )
        blocks += [
            wr.H1(section.title),
            wr.P(section.text),
            wr.MarkdownBlock(text=f"```bash\n{section.command}\n```"),
            wr.PanelGrid(runsets=[runset], panels=panels),
        ]
    return wr.Report(
        entity=entity,
        project=project,
        title=title,
        description="One section per paper artefact: tables, curves and the runs behind them.",
        blocks=blocks,
    )


def outline(report) -> str:
    """The report's headings, each with its run filter and panels, as text."""
    import wandb_workspaces.reports.v2 as wr

    lines = [f"{report.title} ({report.entity}/{report.project})"]
    for block in report.blocks:
        if isinstance(block, wr.H1):
            lines.append(f"- {block.text}")
        elif isinstance(block, wr.PanelGrid):
            lines.append(f"    runs: {block.runsets[0].filters}")
            for panel in block.panels:
                key = getattr(panel, "table_name", None) or getattr(panel, "media_keys", None)
                lines.append(f"    {type(panel).__name__}: {key}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- offline
def has_credentials(environ: Mapping[str, str] | None = None) -> bool:
    """An API key in ``WANDB_API_KEY`` or in ``~/.netrc`` for the W&B host (``wandb login``)."""
    env = os.environ if environ is None else environ
    if env.get("WANDB_API_KEY"):
        return True
    host = urlparse(env.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    try:
        return netrc.netrc(env.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def offline_reason(environ: Mapping[str, str] | None = None) -> str | None:
    """Why no report can be built from here, or ``None`` when W&B is online and logged in."""
    env = os.environ if environ is None else environ
    mode = env.get("WANDB_MODE", "").strip().lower()
    if mode in ("offline", "dryrun", "disabled"):
        return (
            f"W&B is {mode} here (WANDB_MODE={env['WANDB_MODE']}; the Makefile exports offline "
            "by default), and a report lives on the W&B server"
        )
    if not has_credentials(env):
        return (
            "W&B has no API key here (wandb login, or WANDB_API_KEY), and a report lives on "
            "the W&B server"
        )
    return None


def what_to_run(reason: str, runs: list[Path], entity: str | None) -> str:
    """The message for an offline machine: why, the offline runs found, and the commands."""
    where = " and ".join(f"{root}/" for root in RUN_ROOTS)
    found = (
        f"Found {len(runs)} offline run(s) under {where}, e.g. {runs[0]}."
        if runs
        else f"No offline runs under {where} yet (make reproduce-*, make train, make bench)."
    )
    entity_arg = f" --entity {entity}" if entity else " --entity <your W&B entity>"
    return "\n".join(
        [
            f"cannot build the report: {reason}.",
            f"{found} Upload them, then build the report online:",
            "  .venv/bin/wandb login",
            "  .venv/bin/wandb sync $(find "
            + " ".join(RUN_ROOTS)
            + " -type d -name 'offline-run-*')",
            f'  WANDB_MODE=online make report REPORT_ARGS="{entity_arg.strip()}"',
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entity", default=os.environ.get("WANDB_ENTITY"))
    parser.add_argument("--project", default=os.environ.get("WANDB_PROJECT", "adapterdrop"))
    parser.add_argument("--title", default="AdapterDrop reproduction")
    parser.add_argument(
        "--outline", action="store_true", help="print the sections, build nothing (no network)"
    )
    args = parser.parse_args(argv)
    if args.outline:
        print(outline(build_report(args.entity or "<entity>", args.project, args.title)))
        return 0
    reason = offline_reason()
    if reason is not None:
        from adapterdrop.tracking import offline_runs

        runs = [
            p.relative_to(REPO) if p.is_relative_to(REPO) else p
            for p in offline_runs(*(REPO / root for root in RUN_ROOTS))
        ]
        print(what_to_run(reason, runs, args.entity), file=sys.stderr)
        return 2
    if not args.entity:
        import wandb

        args.entity = wandb.Api().default_entity
    report = build_report(args.entity, args.project, args.title)
    report.save()
    print(report.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
