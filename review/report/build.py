"""`review build`: every table, figure and the report from protocols/ and data/, reproducibly.

The same inputs give the same bytes: figures carry no dates, tables have stable float
formatting, the manifest is sorted JSON, and the only date is that of the data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from review import __version__
from review.errors import ReviewError
from review.fileio import is_temporary
from review.report.manifest import (
    MANIFEST,
    BuildDate,
    build_date,
    is_up_to_date,
    manifest_text,
    package_versions,
    relative,
)
from review.transaction import commit, workspace_lock
from review.workspace import Workspace

if TYPE_CHECKING:
    from review.screening.flow import StageTeam

REPORT = "report.html"
OUTPUT_FOLDERS = ("figures", "tables")


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    files: tuple[str, ...]
    up_to_date: bool


def _quiet(_: str) -> None:
    """Report no progress."""


def _team_row(team: StageTeam) -> dict[str, object]:
    """One stage's screening as a row of tables/screening_agreement.csv."""
    found = team.agreement
    return {"stage": team.stage, "reviewers": "; ".join(team.reviewers),
            "records": team.records, "double_screened": team.double_screened,
            "adjudicated": team.adjudicated,
            "statistic": found.statistic if found else "",
            "records_compared": found.records if found else 0,
            "percent_agreement": found.percent if found else float("nan"),
            "kappa": found.kappa if found else float("nan"),
            "ci_low": found.ci_low if found else float("nan"),
            "ci_high": found.ci_high if found else float("nan")}


def render_outputs(workspace: Workspace, date: BuildDate,
                   progress: Callable[[str], None] = _quiet) -> dict[str, bytes]:
    """Every output file of the build dated `date`, by path relative to the output folder."""
    import pandas as pd

    from analysis.appraisal import TRAFFIC_LIGHT, judged_appraisal
    from analysis.rendering import FigureRendering
    from review.extraction.appraisal import read_appraisal
    from review.extraction.compare import compare_extractors
    from review.extraction.duplicates import read_decisions, screen_duplicates
    from review.extraction.validate import validated_cases
    from review.report.markdown import markdown_table

    protocol = workspace.protocol
    if protocol.analysis is None:
        raise ReviewError(f"{workspace.protocol_path}: the protocol has no analysis section, "
                          "so there is nothing to build")
    schema = protocol.extraction
    sheet = relative(workspace.cases_path, workspace.root)
    progress(f"validating {sheet}")
    cases = validated_cases(workspace.cases_path, schema, sheet)
    duplicates = screen_duplicates(cases, schema,
                                   read_decisions(workspace.duplicate_decisions_path))
    # A patient the reviewers judged to be another report's patient again is analysed once.
    analysed = cases[~cases[schema.study.id_field].isin(duplicates.left_out)] \
        if duplicates is not None else cases
    appraisal = None
    if schema.appraisal is not None and workspace.appraisal_path.exists():
        appraisal = read_appraisal(workspace.appraisal_path, schema.appraisal)
    outputs: dict[str, bytes] = {}
    prisma = state = None
    teams = []
    # The figures that need no analysis are drawn while the analysis runs.
    early = {}
    judged = judged_appraisal(protocol, appraisal)
    if judged is not None:
        early[TRAFFIC_LIGHT] = judged.plot
    if (workspace.search_dir / "records.jsonl").exists():
        from review.extraction.prisma_counts import prisma_counts_for
        from review.screening.flow import screening_state
        from review.screening.prisma import prisma_csv, prisma_diagram

        state = screening_state(workspace)
        prisma = prisma_counts_for(workspace, state)
        outputs["tables/prisma2020.csv"] = prisma_csv(prisma)
        early["prisma_flow"] = functools.partial(prisma_diagram, prisma)
    progress("drawing the figures")
    with FigureRendering() as rendering:
        rendering.start(early, workers=1)
        # Imported once those figures are forked: importing the statistics libraries is a third
        # of a cold build, and it overlaps their drawing.
        from analysis.review_analysis import (
            analysis_tables,
            analyze_review,
            figure_builders,
            table_csv,
        )

        progress(f"analysing {len(analysed)} {schema.unit}s")
        analysis = analyze_review(analysed, protocol, appraisal=appraisal)
        rendering.start({name: build for name, build in figure_builders(analysis).items()
                         if name not in early})
        # What only the tables and the page need comes after the figures are started.
        from review.report.html import ReportInputs, render_report

        if state is not None:
            from review.screening.flow import stage_team

            teams = [team for stage in protocol.screening.stages
                     if (team := stage_team(stage, state.decisions[stage])) is not None]
        for name, table in analysis_tables(analysis).items():
            outputs[f"tables/{name}.csv"] = table_csv(table)
            outputs[f"tables/{name}.md"] = markdown_table(table).encode("utf-8")
        if teams:
            outputs["tables/screening_agreement.csv"] = table_csv(pd.DataFrame(
                [_team_row(team) for team in teams]))
        double_extraction = None
        if schema.double_extraction is not None:
            progress(f"comparing the extractors' sheets in "
                     f"{relative(workspace.extractors_dir, workspace.root)}")
            double_extraction = compare_extractors(workspace.extractors_dir, cases, schema)
            if double_extraction is not None:
                outputs["tables/extraction_agreement.csv"] = table_csv(
                    double_extraction.agreement_table())
                outputs["tables/extraction_agreement.md"] = markdown_table(
                    double_extraction.agreement_table()).encode("utf-8")
                outputs["tables/extraction_disagreements.csv"] = table_csv(
                    double_extraction.differences)
        if duplicates is not None:
            outputs["tables/duplicate_patients.csv"] = table_csv(pd.DataFrame(
                [{**pair.__dict__, "agreeing": "; ".join(pair.agreeing)}
                 for pair in duplicates.pairs],
                columns=["first", "second", "agreeing", "years_apart", "decision", "reviewer",
                         "note"]))
        progress("waiting for the figures")
        svg = {}
        for name, files in rendering.files().items():
            svg[name] = files["svg"]
            for kind, data in files.items():
                outputs[f"figures/{name}.{kind}"] = data
    progress("writing the report")
    from review.search.log import read_log

    versions = {"casereview": __version__, **package_versions()}
    log = read_log(workspace)
    inputs = ReportInputs(
        analysis=analysis, figures=svg, appraisal=appraisal, prisma=prisma, screening=teams,
        build_day=date.day, versions=versions,
        searches=[entry for entry in log if entry.get("kind") == "search"],
        imports=[entry for entry in log if entry.get("kind") == "import"],
        double_extraction=double_extraction, duplicates=duplicates,
    )
    outputs[REPORT] = render_report(inputs).encode("utf-8")
    return outputs


def build_report(workspace: Workspace, out_dir: Path | None = None, *, force: bool = False,
                 progress: Callable[[str], None] = _quiet) -> BuildResult:
    """Build into out_dir (default reports/<id>/) unless its manifest shows nothing changed."""
    out_dir = Path(out_dir) if out_dir else workspace.reports_dir
    with workspace_lock(workspace.root, "build"):
        if not force and is_up_to_date(workspace, out_dir):
            return BuildResult(out_dir, (), True)
        date = build_date(workspace, out_dir)
        outputs = render_outputs(workspace, date, progress)
        outputs[MANIFEST] = manifest_text(workspace, date, outputs).encode("utf-8")
        commit(workspace.root, {out_dir / name: data for name, data in outputs.items()})
        for folder in OUTPUT_FOLDERS:
            for path in sorted((out_dir / folder).glob("*")):
                if path.is_file() and f"{folder}/{path.name}" not in outputs:
                    path.unlink()
    return BuildResult(out_dir, tuple(sorted(outputs)), False)


def _files(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in folder.rglob("*") if path.is_file() and not is_temporary(path)}


def stale_files(workspace: Workspace, committed: Path | None = None,
                progress: Callable[[str], None] = _quiet) -> list[str]:
    """Files of the committed report that a fresh build would change, add or remove."""
    committed = Path(committed) if committed else workspace.reports_dir
    # Rendered in memory: a check only reads, so it needs no lock and no writable checkout.
    date = build_date(workspace, committed)
    expected = render_outputs(workspace, date, progress)
    expected[MANIFEST] = manifest_text(workspace, date, expected).encode("utf-8")
    found = _files(committed)
    differ = [f"{name} (changed)" for name in sorted(expected.keys() & found.keys())
              if expected[name] != found[name]]
    differ += [f"{name} (missing)" for name in sorted(expected.keys() - found.keys())]
    differ += [f"{name} (not produced by the build)"
               for name in sorted(found.keys() - expected.keys())]
    return differ
