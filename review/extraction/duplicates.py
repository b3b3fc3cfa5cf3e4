"""One patient reported twice: the screen the protocol's `extraction.duplicate_patients` asks
for, and the reviewers' decisions on its pairs.

Case reports are republished: as a meeting abstract and then a paper, in two journals, or
inside a later series. Two rows of the sheet for one patient count them twice. The screen
lists every pair of patients from different reports that agree on the protocol's `match`
fields (each known in both; lists compared as sets), differ on none of its `differ_not`
fields known in both, and whose reports are at most `max_year_gap` years apart. Reviewers
decide each pair in `data/extraction/duplicate_patients.csv` ("same" or "different"); the
patient of the later report of a pair decided "same" is left out of the analysis, and the
report says how many pairs were found, decided and merged.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import pandas as pd

from review.errors import DataProblems, Problem, ReviewError
from review.extraction.sheet import ensure_sheet, split_list
from review.fileio import read_text
from review.protocol import ExtractionSchema
from review.transaction import commit, workspace_lock
from review.workspace import Workspace

DECISIONS = ("same", "different")
COLUMNS = ["first", "second", "decision", "reviewer", "note"]


@dataclass(frozen=True)
class CandidatePair:
    """Two patients who may be one; `first` is the patient of the earlier report."""

    first: str
    second: str
    agreeing: tuple[str, ...]  # "age 56", "sex M", ...
    years_apart: int | None
    decision: str | None = None
    reviewer: str = ""
    note: str = ""


@dataclass(frozen=True)
class DuplicateScreen:
    """The screen's pairs with their decisions; `checked` patients were compared."""

    checked: int
    pairs: tuple[CandidatePair, ...]

    def decided(self, decision: str | None) -> list[CandidatePair]:
        return [pair for pair in self.pairs if pair.decision == decision]

    @property
    def left_out(self) -> tuple[str, ...]:
        """The later report's patient of every pair decided to be one patient."""
        return tuple(sorted({pair.second for pair in self.decided("same")}))

    def to_dict(self) -> dict[str, object]:
        return {"checked": self.checked, "pairs": [pair.__dict__ for pair in self.pairs],
                "same": len(self.decided("same")), "different": len(self.decided("different")),
                "undecided": len(self.decided(None)), "left_out": list(self.left_out)}


def _value(cell: object, multi_valued: bool, separator: str) -> object:
    text = "" if cell is None or (isinstance(cell, float) and pd.isna(cell)) else str(cell)
    text = text.strip()
    if not text:
        return None
    return frozenset(split_list(text, separator)) if multi_valued else text


def _known_and_different(one: object, other: object, multi_valued: bool,
                         separator: str) -> bool:
    first, second = (_value(cell, multi_valued, separator) for cell in (one, other))
    return first is not None and second is not None and first != second


def _shown(value: object) -> str:
    return ";".join(sorted(value)) if isinstance(value, frozenset) else str(value)


def read_decisions(path: Path) -> pd.DataFrame:
    """The reviewers' decisions, or none yet; every problem named with its row and column."""
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS, dtype=object)
    reader = csv.reader(io.StringIO(read_text(path), newline=""), strict=True)
    try:
        header = next(reader, [])
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise ReviewError(f"{path}:{reader.line_num}: not valid CSV ({error})") from None
    if header != COLUMNS:
        raise ReviewError(f"{path}:1: expected the columns {','.join(COLUMNS)}")
    problems = []
    for number, row in rows:
        if len(row) != len(COLUMNS):
            problems.append(Problem(str(path), number, "", f"{len(row)} cells, but the header "
                                                            f"has {len(COLUMNS)}"))
        elif row[2] not in DECISIONS:
            problems.append(Problem(str(path), number, "decision",
                                    f"'{row[2]}' is not a decision (allowed: "
                                    f"{', '.join(DECISIONS)})"))
    if problems:
        raise DataProblems(problems)
    return pd.DataFrame([row for _, row in rows], columns=COLUMNS, dtype=object)


def screen_duplicates(cases: pd.DataFrame, schema: ExtractionSchema,
                      decisions: pd.DataFrame | None = None) -> DuplicateScreen | None:
    """The screen of the sheet's `cases` (text cells, as read) by the protocol's rule, with
    the recorded `decisions`; None when the protocol asks for none.

    Example::

        screen = screen_duplicates(cases, protocol.extraction, read_decisions(path))
        [pair.first for pair in screen.decided(None)]  # pairs awaiting a decision
    """
    rule = schema.duplicate_patients
    if rule is None:
        return None
    separator = schema.list_separator
    key, study = schema.study.id_field, schema.study.key
    multi = {spec.name for spec in schema.fields if spec.multi_valued}
    # Only patients who agree on every match field can pair: grouping by those values keeps
    # the screen linear in the sheet's size.
    groups: dict[tuple, list[int]] = defaultdict(list)
    for position, row in enumerate(cases.to_dict("records")):
        values = tuple(_value(row[name], name in multi, separator) for name in rule.match)
        if all(value is not None for value in values):
            groups[values].append(position)
    records = cases.to_dict("records")
    recorded = {}
    for row in (decisions if decisions is not None else pd.DataFrame(columns=COLUMNS)
                ).to_dict("records"):
        recorded[frozenset((row["first"], row["second"]))] = row
    pairs = []
    for values, members in groups.items():
        for a, b in combinations(members, 2):
            one, other = records[a], records[b]
            if one[study] == other[study]:
                continue
            if any(_known_and_different(one[name], other[name], name in multi, separator)
                   for name in rule.differ_not):
                continue
            years_apart = None
            if rule.year_field:
                years = [pd.to_numeric(row[rule.year_field], errors="coerce")
                         for row in (one, other)]
                if not any(pd.isna(year) for year in years):
                    years_apart = int(abs(years[0] - years[1]))
                    if years_apart > rule.max_year_gap:
                        continue
                    if years[1] < years[0]:
                        one, other = other, one
            decision = recorded.get(frozenset((one[key], other[key])), {})
            pairs.append(CandidatePair(
                first=one[key], second=other[key],
                agreeing=tuple(f"{name} {_shown(value)}"
                               for name, value in zip(rule.match, values, strict=True)),
                years_apart=years_apart, decision=decision.get("decision"),
                reviewer=decision.get("reviewer", ""), note=decision.get("note", "")))
    pairs.sort(key=lambda pair: (pair.first, pair.second))
    return DuplicateScreen(checked=len(cases), pairs=tuple(pairs))


def record_decision(workspace: Workspace, first: str, second: str, decision: str,
                    reviewer: str, note: str = "") -> None:
    """Record (or replace) the decision on one pair the screen lists, as the one writer."""
    if decision not in DECISIONS:
        raise ReviewError(f"'{decision}' is not a decision (allowed: {', '.join(DECISIONS)})")
    if not reviewer.strip():
        raise ReviewError("name the reviewer who decided (--reviewer)")
    schema = workspace.protocol.extraction
    with workspace_lock(workspace.root, "extract duplicates"):
        decisions = read_decisions(workspace.duplicate_decisions_path)
        screen = screen_duplicates(ensure_sheet(workspace.cases_path, schema), schema,
                                   decisions)
        if screen is None:
            raise ReviewError(f"{workspace.protocol_path}: the protocol plans no screen for "
                              "duplicate patients (extraction.duplicate_patients)")
        pair = next((pair for pair in screen.pairs
                     if {pair.first, pair.second} == {first, second}), None)
        if pair is None:
            raise ReviewError(f"{first} and {second} are not a pair the screen lists "
                              "(review extract duplicates shows them)")
        kept = decisions[[frozenset((a, b)) != frozenset((first, second))
                          for a, b in zip(decisions["first"], decisions["second"],
                                          strict=True)]]
        row = pd.DataFrame([[pair.first, pair.second, decision, reviewer.strip(),
                             note.strip()]], columns=COLUMNS)
        table = pd.concat([kept, row], ignore_index=True).sort_values(["first", "second"])
        commit(workspace.root, {workspace.duplicate_decisions_path: table.to_csv(
            index=False, lineterminator="\n").encode("utf-8")})
