"""Decisions made elsewhere: a spreadsheet, or Rayyan's, ASReview's or Covidence's CSV export.

Rows are matched to records by record_id, PMID, DOI or title. The decision comes from a
decision column (`decision`, `included`, `asreview_label`, `label`, `screening decision`),
from Rayyan's notes (its per-reviewer map `RAYYAN-INCLUSION: {"ana"=>"Included", ...}`, read for
the importing reviewer only), or, for an export of one list such as Covidence's "Included"
list, from `--decision` applied to every row. A `note` or `notes` column (Rayyan's `USER-NOTES`
for that reviewer) becomes the decision's note.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from review.errors import DataProblems, Problem, ReviewError
from review.fileio import read_text
from review.protocol import Protocol
from review.screening.decisions import Decision, now, validate_decision
from review.search.records import Record, identity_key, normalise_doi

DECISION_COLUMNS = ("decision", "included", "asreview_label", "label", "screening decision")
VALUES = {"include": "include", "included": "include", "1": "include", "yes": "include",
          "true": "include", "exclude": "exclude", "excluded": "exclude", "0": "exclude",
          "no": "exclude", "false": "exclude", "maybe": "maybe", "undecided": "maybe",
          "not-retrieved": "not-retrieved", "not retrieved": "not-retrieved"}
RAYYAN_MAP = re.compile(r"RAYYAN-INCLUSION:\s*\{([^}]*)\}", re.IGNORECASE)
RAYYAN_VOTE = re.compile(r'"((?:[^"\\]|\\.)*)"\s*=>\s*"((?:[^"\\]|\\.)*)"')
RAYYAN_NOTES = re.compile(r"USER-NOTES:\s*\{(.*?)\}\s*(?:\||$)", re.IGNORECASE | re.DOTALL)
RAYYAN_NOTE = re.compile(r'"((?:[^"\\]|\\.)*)"\s*=>\s*\[(.*?)\]', re.DOTALL)
RAYYAN_REASONS = re.compile(r"RAYYAN-EXCLUSION-REASONS:\s*([^|]+)", re.IGNORECASE)
RAYYAN_TAG = re.compile(r"RAYYAN-[A-Z-]+:|USER-NOTES:", re.IGNORECASE)


@dataclass(frozen=True)
class ImportedDecisions:
    """The decisions of one file, and the rows that carried none for this reviewer."""

    decisions: list[Decision]
    undecided_rows: list[int]
    others_rows: list[int]
    rayyan_names: tuple[str, ...]


def _rayyan_vote(notes: str, name: str) -> tuple[str, set[str]] | None:
    """This reviewer's vote in Rayyan's notes and every name there; None without a map."""
    found = RAYYAN_MAP.search(notes)
    if not found:
        return None
    votes = dict(RAYYAN_VOTE.findall(found.group(1)))
    wanted = identity_key(name)
    mine = next((vote for who, vote in votes.items() if identity_key(who) == wanted), "")
    return mine, set(votes)


def _rayyan_note(notes: str, name: str) -> str:
    found = RAYYAN_NOTES.search(notes)
    if not found:
        return ""
    wanted = identity_key(name)
    for who, texts in RAYYAN_NOTE.findall(found.group(1)):
        if identity_key(who) == wanted:
            return "; ".join(re.findall(r'"((?:[^"\\]|\\.)*)"', texts))
    return ""


def _reason(text: str, protocol: Protocol) -> str | None:
    wanted = identity_key(text)
    for reason in protocol.screening.exclusion_reasons:
        if wanted in (identity_key(reason.id), identity_key(reason.label)):
            return reason.id
    return None


def read_decisions(path: Path, protocol: Protocol, records: list[Record], stage: str,
                   reviewer: str, *, every_row: str | None = None,
                   rayyan_name: str | None = None) -> ImportedDecisions:
    """Decisions of `reviewer` from a CSV; every problem is reported at once with its row and
    column, and nothing is returned unless every row is valid. `every_row` is the decision of
    a file without a decision column; `rayyan_name` is the reviewer's name in Rayyan when it
    is not the protocol's."""
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
    notes = header.get("notes") or header.get("note")
    if every_row is not None:
        if column is not None:
            raise ReviewError(f"{path}:1: has a decision column ('{column}'); --decision is "
                              "for a file of one list without one")
        if every_row.lower() not in VALUES:
            raise ReviewError(f"--decision {every_row}: not a decision (allowed: include, "
                              "exclude, maybe, not-retrieved)")
    elif column is None and notes is None:
        raise ReviewError(f"{path}:1: no decision column (looked for: "
                          f"{', '.join(DECISION_COLUMNS)}, or Rayyan's notes); for an export "
                          "of one list, give its decision with --decision")
    name_in_rayyan = rayyan_name or reviewer
    known = {record.record_id for record in records}
    problems: list[Problem] = []
    decisions = []
    undecided: list[int] = []
    others: list[int] = []
    names: set[str] = set()
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
        raw_value = every_row if every_row is not None else \
            (row.get(column, "") if column else "")
        reason_text = cell("reason") or cell("exclusion reason")
        note_text = (row.get(notes) or "").strip() if notes else ""
        if notes and RAYYAN_TAG.search(note_text):
            rayyan = _rayyan_vote(note_text, name_in_rayyan)
            if rayyan is not None and not (raw_value or "").strip():
                raw_value, seen = rayyan
                names |= seen
                if not raw_value and seen:
                    others.append(number)
                    continue
            reasons = RAYYAN_REASONS.search(note_text)
            if reasons and not reason_text:
                reason_text = reasons.group(1).split(",")[0].strip()
            note_text = _rayyan_note(note_text, name_in_rayyan)
        value = (raw_value or "").strip().lower()
        if not value:
            undecided.append(number)
            continue
        where = path.name
        if value not in VALUES:
            problems.append(Problem(where, number, column or "notes",
                                    f"not a decision (got '{value}'; allowed: include, "
                                    "exclude, maybe, not-retrieved, 1, 0)"))
            continue
        if record is None:
            problems.append(Problem(where, number, "record_id",
                                    "matches no record of this stage (by record_id, PMID, DOI "
                                    "or title)"))
            continue
        reason = ""
        if reason_text and VALUES[value] == "exclude":
            reason = _reason(reason_text, protocol) or ""
            if not reason:
                problems.append(Problem(where, number, "reason",
                                        f"not a reason of the protocol (got '{reason_text}')"))
                continue
        decision = Decision(record, stage, reviewer, VALUES[value], reason, note_text,
                            time=when)
        try:
            validate_decision(decision, protocol, known)
        except ReviewError as error:
            problems.append(Problem(where, number, column or "notes", str(error)))
            continue
        decisions.append(decision)
    if problems:
        raise DataProblems(problems)
    return ImportedDecisions(decisions, undecided, others, tuple(sorted(names)))
