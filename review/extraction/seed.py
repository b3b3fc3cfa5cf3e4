"""Reports found by other methods, entered from the extraction sheet's citations.

A review assembled from web and reference-list searches has no database records: its
included reports are records identified via other methods, assessed in full and included.
Creating them from the sheet (and recording who included them) keeps the PRISMA diagram
honest and in step with the sheet.
"""

from __future__ import annotations

import pandas as pd

from review.extraction.sheet import ensure_sheet, study_table
from review.screening.decisions import Decision, DecisionStore, check_reviewer, now
from review.search.records import OTHER_METHODS, Record, RecordStore, make_record
from review.transaction import workspace_lock
from review.workspace import Workspace

SHEET = "data/extraction/cases.csv"


def sheet_studies(workspace: Workspace) -> pd.DataFrame:
    schema = workspace.protocol.extraction
    return study_table(ensure_sheet(workspace.cases_path, schema), schema)


def other_method_records(studies: pd.DataFrame, source: str,
                         stored: list[Record]) -> list[Record]:
    """A record for every report of the sheet that has none yet; a report is known by its
    study id, so reordering or editing the sheet adds nothing twice."""
    known = {record.extra.get("study_id") for record in stored
             if record.extra.get("identified_via") == OTHER_METHODS}
    first = 1 + sum(record.origin == SHEET for record in stored)
    fresh = [row for row in studies.itertuples(index=False) if row.study_id not in known]
    return [make_record(source, SHEET, origin=SHEET, position=first + offset,
                        export_id=row.study_id, title=row.source_title, doi=row.doi,
                        pmid=row.pmid, year=row.pub_year,
                        extra={"identified_via": OTHER_METHODS, "study_id": row.study_id,
                               "url": row.source_url})
            for offset, row in enumerate(fresh)]


def include_extracted_reports(workspace: Workspace, source: str,
                              reviewer: str) -> tuple[int, int]:
    """Add the sheet's reports as other-method records with a full-text inclusion by
    `reviewer`; returns the records and decisions added (both 0 when already done)."""
    check_reviewer(reviewer, workspace.protocol)
    with workspace_lock(workspace.root, "screen from-extraction"):
        return _include(workspace, source, reviewer)


def _include(workspace: Workspace, source: str, reviewer: str) -> tuple[int, int]:
    record_store = RecordStore(workspace.search_dir / "records.jsonl")
    stored = record_store.load()
    studies = sheet_studies(workspace)
    added = record_store.add(other_method_records(studies, source, stored))
    in_sheet = set(studies[workspace.protocol.extraction.study.key])
    records = [record for record in [*stored, *added]
               if record.extra.get("identified_via") == OTHER_METHODS
               and record.extra.get("study_id") in in_sheet]
    store = DecisionStore(workspace.screening_dir)
    decided = {d.record for d in store.read("full-text") if d.reviewer == reviewer}
    when = now()
    new = [Decision(record=r.record_id, stage="full-text", reviewer=reviewer,
                    decision="include", note="included in the extraction sheet", time=when)
           for r in records if r.record_id not in decided]
    store.append(new)
    return len(added), len(new)
