"""A stage's decisions for the team to read elsewhere: one row per record with every
reviewer's vote, reason, note and tags, the final decision and who adjudicated it (CSV or XLSX,
formula-safe), or the records included at the stage as RIS for a reference manager.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import pandas as pd

from review.errors import ReviewError
from review.fileio import safe_csv, spreadsheet_safe
from review.protocol import Protocol
from review.screening.decisions import ADJUDICATOR, latest_by_reviewer
from review.screening.flow import ScreeningState
from review.screening.tags import TagStore
from review.search.records import Record

EXPORT_FORMATS = ("csv", "xlsx", "ris")
RECORD_COLUMNS = ["record_id", "title", "authors", "year", "journal", "doi", "pmid", "source"]


def decisions_table(state: ScreeningState, stage: str, protocol: Protocol,
                    screening_dir: Path | None = None) -> pd.DataFrame:
    """Every record of the stage, in screening order, with each reviewer's latest vote, their
    tags (read from `screening_dir`) and the final decision; reasons are the protocol's
    labels.

    Example::

        decisions_table(screening_state(workspace), "title-abstract", workspace.protocol,
                        workspace.screening_dir)
    """
    if stage not in protocol.screening.stages:
        raise ReviewError(f"no stage '{stage}' in the protocol (stages: "
                          f"{', '.join(protocol.screening.stages)})")
    labels = {reason.id: reason.label for reason in protocol.screening.exclusion_reasons}
    latest = latest_by_reviewer(state.decisions[stage])
    adjudicators: dict[str, str] = defaultdict(str)
    for decision in state.decisions[stage]:
        if decision.role == ADJUDICATOR:
            adjudicators[decision.record] = decision.reviewer
    tags = TagStore(screening_dir).everyone() if screening_dir is not None else {}
    reviewers = list(dict.fromkeys(
        [*protocol.screening.reviewers,
         *(who for votes in latest.values() for who in votes
           if not who.startswith(f"{ADJUDICATOR}:"))]))
    rows = []
    for record in state.candidates(stage):
        votes = latest.get(record.record_id, {})
        final = state.final[stage].get(record.record_id)
        row = {"record_id": record.record_id, "title": record.title,
               "authors": "; ".join(record.authors), "year": record.year,
               "journal": record.journal, "doi": record.doi, "pmid": record.pmid,
               "source": record.source}
        for reviewer in reviewers:
            vote = votes.get(reviewer)
            row[f"{reviewer}: decision"] = vote.decision if vote else ""
            row[f"{reviewer}: reason"] = labels.get(vote.reason, vote.reason) if vote else ""
            row[f"{reviewer}: note"] = vote.note if vote else ""
            row[f"{reviewer}: tags"] = "; ".join(sorted(tags.get(reviewer, {}).get(
                record.record_id, ())))
        row["final decision"] = final.decision if final else "awaiting"
        row["final reason"] = labels.get(final.reason, final.reason) if final else ""
        row["adjudicated by"] = adjudicators[record.record_id] if final and final.adjudicated \
            else ""
        rows.append(row)
    columns = [*RECORD_COLUMNS, *(f"{reviewer}: {part}" for reviewer in reviewers
                                  for part in ("decision", "reason", "note", "tags")),
               "final decision", "final reason", "adjudicated by"]
    return pd.DataFrame(rows, columns=columns, dtype=object)


def included_records(state: ScreeningState, stage: str) -> list[Record]:
    final = state.final[stage]
    return [record for record in state.candidates(stage)
            if final.get(record.record_id) is not None
            and final[record.record_id].decision == "include"]


def ris_text(records: list[Record]) -> str:
    """The records as RIS, one TY … ER block each."""
    lines = []
    for record in records:
        lines.append("TY  - JOUR")
        for tag, value in (("TI", record.title), *(("AU", name) for name in record.authors),
                           ("PY", record.year), ("JO", record.journal), ("VL", record.volume),
                           ("IS", record.issue), ("SP", record.pages), ("DO", record.doi),
                           ("AN", record.pmid), ("AB", record.abstract)):
            if value:
                lines.append(f"{tag}  - {' '.join(str(value).split())}")
        lines.append("ER  - ")
        lines.append("")
    return "\n".join(lines)


def export_decisions(state: ScreeningState, stage: str, protocol: Protocol,
                     export_format: str, screening_dir: Path | None = None) -> bytes:
    """The stage's decisions as CSV or XLSX, or its included records as RIS."""
    if export_format not in EXPORT_FORMATS:
        raise ReviewError(f"unknown export format '{export_format}' (allowed: "
                          f"{', '.join(EXPORT_FORMATS)})")
    if export_format == "ris":
        return ris_text(included_records(state, stage)).encode("utf-8")
    table = decisions_table(state, stage, protocol, screening_dir)
    if export_format == "csv":
        return safe_csv(table).encode("utf-8")
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = stage[:31]
    sheet.append(list(table.columns))
    for row in table.itertuples(index=False):
        sheet.append([spreadsheet_safe(value) for value in row])
        for cell in sheet[sheet.max_row]:
            cell.data_type = "s"  # text as typed, never a formula
    sheet.freeze_panes = "B2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
