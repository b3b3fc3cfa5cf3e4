"""PRISMA 2020's counts of a workspace: the screening flow (`review.screening.flow`) with the
studies and patients the extraction sheet holds, each included report counted as extracted by
the links of the sheet's rows to their records (`review.extraction.links`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from review.extraction.links import can_link, linked_included
from review.extraction.sheet import ensure_sheet
from review.protocol import ExtractionSchema
from review.screening.flow import ScreeningState, prisma_counts, screening_state
from review.search.log import read_log
from review.search.records import Record
from review.transaction import commit, workspace_lock
from review.workspace import Workspace


def prisma_counts_for(workspace: Workspace, state: ScreeningState | None = None
                      ) -> dict[str, Any]:
    """The PRISMA 2020 counts of a workspace: the one source of every count that `review
    status`, `review prisma`, the PRISMA2020 CSV and the report show."""
    schema = workspace.protocol.extraction
    cases = ensure_sheet(workspace.cases_path, schema)
    studies = cases[schema.study.key].replace("", None).dropna().nunique()
    labels = {reason.id: reason.label for reason in workspace.protocol.screening.exclusion_reasons}
    removed_empty: Counter[str] = Counter()
    for entry in read_log(workspace):
        if entry.get("kind") == "import":
            removed_empty[entry.get("source", "")] += int(entry.get("empty_records", 0))
    state = state or screening_state(workspace)
    return prisma_counts(state, int(studies), len(cases), labels,
                         extracted_report_test(cases, schema, state), removed_empty)


def extracted_report_test(cases: pd.DataFrame, schema: ExtractionSchema,
                          state: ScreeningState) -> Callable[[Record], bool] | None:
    """Whether an included record's report is in the sheet, by the links of its rows (their
    record id, else the study id, PMID, DOI or title their report shares with a record);
    None when the schema has no column that could link a row, so no report can be told
    apart."""
    if not can_link(schema):
        return None
    linked = linked_included(cases, schema, state)
    return lambda record: record.record_id in linked


def write_prisma(workspace: Workspace, out: Path) -> dict[str, Any]:
    """Draw the diagram and write the PRISMA2020 CSV under `out` (figures/, tables/) as one
    change; returns the counts."""
    # Drawing needs matplotlib, which the counts alone (review status) should not load.
    from review.figure_style import figure_files
    from review.screening.prisma import prisma_csv, prisma_diagram

    with workspace_lock(workspace.root, "prisma"):
        counts = prisma_counts_for(workspace)
        files = figure_files(prisma_diagram(counts))
        commit(workspace.root, {out / "figures" / "prisma_flow.svg": files["svg"],
                                out / "figures" / "prisma_flow.png": files["png"],
                                out / "tables" / "prisma2020.csv": prisma_csv(counts)})
    return counts
