"""Reports found by other methods, entered from the extraction sheet's citations.

A review assembled from web and reference-list searches has no database records: its
included reports are records identified via other methods, assessed in full and included.
Creating them from the sheet (and recording who included them) keeps the PRISMA diagram
honest and in step with the sheet.
"""

from __future__ import annotations

from review.extraction.sheet import ensure_sheet, study_table
from review.screening.decisions import Decision, DecisionStore, check_reviewer, now
from review.screening.flow import OTHER_METHODS
from review.search.records import Record, RecordStore, make_record
from review.workspace import Workspace


def other_method_records(workspace: Workspace, source: str) -> list[Record]:
    schema = workspace.protocol.extraction
    studies = study_table(ensure_sheet(workspace.cases_path, schema), schema)
    return [make_record(source, "data/extraction/cases.csv", title=row.source_title,
                        doi=row.doi, pmid=row.pmid, year=row.pub_year,
                        extra={"identified_via": OTHER_METHODS, "study_id": row.study_id,
                               "url": row.source_url})
            for row in studies.itertuples(index=False)]


def include_extracted_reports(workspace: Workspace, source: str,
                              reviewer: str) -> tuple[int, int]:
    """Add the sheet's reports as other-method records with a full-text inclusion by
    `reviewer`; returns the records and decisions added (both 0 when already done)."""
    check_reviewer(reviewer, workspace.protocol)
    records = other_method_records(workspace, source)
    added, _ = RecordStore(workspace.search_dir / "records.jsonl").add(records)
    store = DecisionStore(workspace.screening_dir)
    decided = {d.record for d in store.read("full-text") if d.reviewer == reviewer}
    when = now()
    new = [Decision(record=r.record_id, stage="full-text", reviewer=reviewer,
                    decision="include", note="included in the extraction sheet", time=when)
           for r in records if r.record_id not in decided]
    store.append(new)
    return len(added), len(new)
