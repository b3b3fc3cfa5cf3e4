"""Decisions made elsewhere: a spreadsheet, or Rayyan's or ASReview's CSV export."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from review.errors import DataProblems, Problem, ReviewError
from review.fileio import read_text
from review.protocol import Protocol
from review.screening.decisions import Decision, now, validate_decision
from review.search.records import Record, identity_key, normalise_doi

DECISION_COLUMNS = ("decision", "included", "asreview_label", "label", "screening decision")
VALUES = {"include": "include", "included": "include", "1": "include", "yes": "include",
          "true": "include", "exclude": "exclude", "excluded": "exclude", "0": "exclude",
          "no": "exclude", "false": "exclude", "maybe": "maybe", "undecided": "maybe"}
RAYYAN_DECISION = re.compile(r'RAYYAN-INCLUSION:\s*\{[^}]*=>\s*"(\w+)"', re.IGNORECASE)
RAYYAN_REASONS = re.compile(r"RAYYAN-EXCLUSION-REASONS:\s*([^|]+)", re.IGNORECASE)


def _reason(text: str, protocol: Protocol) -> str | None:
    wanted = identity_key(text)
    for reason in protocol.screening.exclusion_reasons:
        if wanted in (identity_key(reason.id), identity_key(reason.label)):
            return reason.id
    return None


def read_decisions(path: Path, protocol: Protocol, records: list[Record], stage: str,
                   reviewer: str) -> list[Decision]:
    """Decisions from a CSV, matched to records by record_id, PMID, DOI or title; every
    problem is reported at once with its row and column."""
    text = read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as error:
        raise ReviewError(f"{path}:{reader.line_num}: not valid CSV ({error})") from None
    for number, row in enumerate(rows, start=2):
        if any(str(value).strip() for value in row.get(None) or ()):
            raise ReviewError(f"{path}:{number}: {len(row) - 1 + len(row[None])} cells, but "
                              f"the header has {len(row) - 1}")
        row.pop(None, None)
    if not rows:
        raise ReviewError(f"{path}: no decisions (expected a header row and one row per "
                          "record)")
    header = {name.strip().lower(): name for name in rows[0]}
    by_key: dict[str, str] = {}
    for record in records:
        by_key[f"id:{record.record_id}"] = record.record_id
        if record.pmid:
            by_key[f"pmid:{record.pmid}"] = record.record_id
        if record.doi:
            by_key[f"doi:{record.doi}"] = record.record_id
        by_key[f"title:{identity_key(record.title)}"] = record.record_id
    column = next((header[c] for c in DECISION_COLUMNS if c in header), None)
    notes = header.get("notes")
    if column is None and notes is None:
        raise ReviewError(f"{path}:1: no decision column (looked for: "
                          f"{', '.join(DECISION_COLUMNS)}, or Rayyan's notes)")
    known = {record.record_id for record in records}
    problems: list[Problem] = []
    decisions = []
    when = now()
    for number, row in enumerate(rows, start=2):
        def cell(name: str, row: dict = row) -> str:
            return (row.get(header.get(name, ""), "") or "").strip()

        record = None
        for key in (f"id:{cell('record_id')}", f"pmid:{cell('pmid')}",
                    f"doi:{normalise_doi(cell('doi'))}", f"title:{identity_key(cell('title'))}"):
            if key.split(":", 1)[1] and key in by_key:
                record = by_key[key]
                break
        raw_value = row.get(column, "") if column else ""
        reason_text = cell("reason") or cell("exclusion reason")
        if notes and not (raw_value or "").strip():
            found = RAYYAN_DECISION.search(row.get(notes) or "")
            raw_value = found.group(1) if found else ""
            reasons = RAYYAN_REASONS.search(row.get(notes) or "")
            reason_text = reasons.group(1).split(",")[0].strip() if reasons else reason_text
        value = (raw_value or "").strip().lower()
        if not value:
            continue
        where = path.name
        if value not in VALUES:
            problems.append(Problem(where, number, column or "notes",
                                    f"not a decision (got '{value}'; allowed: include, "
                                    "exclude, maybe, 1, 0)"))
            continue
        if record is None:
            problems.append(Problem(where, number, "record_id",
                                    "matches no record of this stage (by record_id, PMID, DOI "
                                    "or title)"))
            continue
        reason = ""
        if reason_text:
            reason = _reason(reason_text, protocol) or ""
            if not reason:
                problems.append(Problem(where, number, "reason",
                                        f"not a reason of the protocol (got '{reason_text}')"))
                continue
        decision = Decision(record, stage, reviewer, VALUES[value], reason, cell("note"),
                            time=when)
        try:
            validate_decision(decision, protocol, known)
        except ReviewError as error:
            problems.append(Problem(where, number, column or "notes", str(error)))
            continue
        decisions.append(decision)
    if problems:
        raise DataProblems(problems)
    return decisions
