"""Validation of the extraction sheet against the protocol's schema.

`validate_cases` is pure: a DataFrame of text cells in, a sorted list of `Problem` out. A blank
cell means "not reported" and is always accepted unless the field is required.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from review.errors import DataProblems, Problem
from review.extraction.sheet import Location, sheet_locations
from review.protocol import ExtractionSchema, FieldSpec, Rule

DOI = re.compile(r"10\.\d{4,9}/\S+")
PMID = re.compile(r"[1-9]\d{0,8}")
RECORD_ID = re.compile(r"r[0-9a-f]{16}")
URL = re.compile(r"https?://[^\s/]+\S*")
# Excel's cell limit, kept by the sheet too so that every cell survives the workbook round trip.
CELL_LIMIT = 32_767
# ASCII digits only: Python reads '４５' (full-width) as 45, but pandas and R do not.
INTEGER = re.compile(r"[+-]?[0-9]+")
DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")


def _shown(value: str) -> str:
    return value if len(value) <= 60 else value[:57] + "..."


def _got(value: str) -> str:
    return f"got '{_shown(value)}'"


def _allowed(spec: FieldSpec) -> str:
    return f"allowed: {', '.join(spec.values)}"


def _check_number(spec: FieldSpec, cell: str, latest_year: int) -> str | None:
    whole = spec.type in ("integer", "year")
    if whole and not INTEGER.fullmatch(cell):
        hint = "a whole number" if spec.type == "integer" else "a four-digit year"
        return f"not {hint} ({_got(cell)})"
    if not whole and not DECIMAL.fullmatch(cell):
        hint = "; use '.' as the decimal mark" if re.fullmatch(r"\d+,\d+", cell) else ""
        return f"not a number ({_got(cell)}{hint})"
    value = float(cell)
    low, high = (1900, latest_year) if spec.type == "year" else (spec.min, spec.max)
    unit = f" {spec.unit}" if spec.unit else ""
    if low is not None and value < low:
        return f"below the minimum {low:g}{unit} ({_got(cell)})"
    if high is not None and value > high:
        return f"above the maximum {high:g}{unit} ({_got(cell)})"
    return None


def _check_code(spec: FieldSpec, value: str) -> str | None:
    if value in spec.values:
        return None
    same_but_case = [allowed for allowed in spec.values if allowed.lower() == value.lower()]
    hint = f"; did you mean '{same_but_case[0]}'?" if same_but_case else ""
    return f"not in the vocabulary ({_got(value)}{hint}; {_allowed(spec)})"


def _check_codes(spec: FieldSpec, cell: str, separator: str) -> list[str]:
    items = cell.split(separator)
    messages = []
    if any(not item.strip() for item in items):
        messages.append(f"empty item in the '{separator}'-list, a stray '{separator}' "
                        f"({_got(cell)})")
    if any(item != item.strip() for item in items if item.strip()):
        messages.append(f"space around an item of the '{separator}'-list ({_got(cell)})")
    values = [item.strip() for item in items if item.strip()]
    for value in values:
        message = _check_code(spec, value)
        if message:
            messages.append(message)
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        messages.append(f"'{repeated[0]}' is listed twice ({_got(cell)})")
    for value in spec.exclusive:
        if value in values and len(set(values)) > 1:
            messages.append(f"'{value}' cannot sit beside another value ({_got(cell)})")
    return messages


def check_cell(spec: FieldSpec, cell: str, separator: str, latest_year: int) -> list[str]:
    """Every problem of one non-blank cell of a field, as messages."""
    if cell != cell.strip() and not spec.multi_valued:
        return [f"leading or trailing space ({_got(cell)})"]
    if spec.numeric:
        message = _check_number(spec, cell, latest_year)
    elif spec.type == "code":
        message = _check_code(spec, cell)
    elif spec.multi_valued:
        return _check_codes(spec, cell, separator)
    elif spec.type == "identifier" and spec.pattern and not re.fullmatch(spec.pattern, cell):
        message = f"malformed identifier ({_got(cell)}; expected pattern {spec.pattern})"
    elif spec.type == "doi" and not DOI.fullmatch(cell):
        hint = "; write the bare DOI, without a URL" if "doi.org/" in cell.lower() else ""
        message = f"not a DOI ({_got(cell)}{hint}; expected 10.NNNN/...)"
    elif spec.type == "pmid" and not PMID.fullmatch(cell):
        message = f"not a PubMed ID ({_got(cell)}; expected digits)"
    elif spec.type == "record" and not RECORD_ID.fullmatch(cell):
        message = (f"not a record id ({_got(cell)}; expected r and 16 hexadecimal digits, the "
                   "id the screening pages and 'review screen export' show)")
    elif spec.type == "url" and not URL.fullmatch(cell):
        message = f"not a web address ({_got(cell)}; expected http:// or https://...)"
    else:
        message = None
    return [message] if message else []


def _rule_problems(rule: Rule, row: pd.Series, schema: ExtractionSchema) -> list[tuple[str, str]]:
    cell = row[rule.field].strip()
    if not cell:
        return []
    if rule.rule == "requires" and rule.needs and not row[rule.needs].strip():
        return [(rule.field, f"reported without {rule.needs} ({_got(cell)}; "
                             f"{rule.needs} is blank)")]
    if rule.rule == "levels_need_sites" and rule.sites_field:
        sites = set(row[rule.sites_field].replace(" ", "").split(schema.list_separator))
        found = []
        for level in cell.replace(" ", "").split(schema.list_separator):
            site = rule.regions.get(level[:1])
            if level and site and site not in sites:
                found.append((rule.field, f"level {level} needs '{site}' in {rule.sites_field} "
                                          f"(got '{_shown(row[rule.sites_field])}')"))
        return found
    return []


def validate_cases(
    frame: pd.DataFrame,
    schema: ExtractionSchema,
    *,
    source: str = "cases.csv",
    locations: Sequence[Location] | None = None,
    latest_year: int | None = None,
) -> list[Problem]:
    """Every problem of an extraction sheet, sorted by place.

    `locations` addresses each row (file, row number) when the frame was assembled from
    several files; by default rows are numbered as in a CSV whose header is row 1.
    """
    frame = frame.fillna("").astype(str)
    places = list(locations) if locations is not None else sheet_locations(frame, source)
    latest_year = latest_year or dt.date.today().year
    separator = schema.list_separator
    problems: list[Problem] = []

    def report(position: int, column: str, message: str) -> None:
        file, row = places[position]
        problems.append(Problem(file, row, column, message))

    first_seen: dict[str, dict[str, int]] = defaultdict(dict)
    for position, (_, row) in enumerate(frame.iterrows()):
        for spec in schema.fields:
            cell = row[spec.name]
            if not cell.strip():
                if spec.required:
                    report(position, spec.name, "required, but blank")
                continue
            for message in check_cell(spec, cell, separator, latest_year):
                report(position, spec.name, message)
            if len(cell) >= CELL_LIMIT:
                report(position, spec.name, f"{len(cell):,} characters; a cell holds fewer "
                                            f"than {CELL_LIMIT:,} (Excel's limit)")
            if spec.unique:
                earlier = first_seen[spec.name].get(cell)
                if earlier is None:
                    first_seen[spec.name][cell] = position
                else:
                    file, number = places[earlier]
                    report(position, spec.name, f"duplicate {spec.name} ({_got(cell)}; "
                                                f"first at {file}:{number})")
        for rule in schema.rules:
            for column, message in _rule_problems(rule, row, schema):
                report(position, column, message)
    problems.extend(_study_problems(frame, schema, places))
    return sorted(problems)


def validated_cases(path: Path, schema: ExtractionSchema, source: str) -> pd.DataFrame:
    """The sheet at `path` (empty when there is none yet), or `DataProblems` with every
    problem; `source` is how rows are addressed in the messages."""
    from review.extraction.sheet import ensure_sheet

    cases = ensure_sheet(path, schema)
    problems = validate_cases(cases, schema, source=source)
    if problems:
        raise DataProblems(problems)
    return cases


def _study_problems(
    frame: pd.DataFrame, schema: ExtractionSchema, places: Sequence[Location]
) -> list[Problem]:
    study = schema.study
    problems = []
    first_row: dict[tuple[str, str], tuple[int, str]] = {}
    for position, (_, row) in enumerate(frame.iterrows()):
        file, number = places[position]
        key = row[study.key].strip()
        patient = row[study.id_field].strip()
        if key and patient and not patient.startswith(key + "_"):
            problems.append(Problem(file, number, study.key,
                                    f"{study.id_field} '{patient}' does not belong to "
                                    f"{study.key} '{key}' (expected '{key}_<n>')"))
        if not key:
            continue
        for name in study.consistent:
            value = row[name].strip()
            earlier = first_row.setdefault((key, name), (position, value))
            if earlier[1] != value:
                first_file, first_number = places[earlier[0]]
                problems.append(Problem(
                    file, number, name,
                    f"rows of {study.key} '{key}' disagree ({_got(value)}; "
                    f"{first_file}:{first_number} has '{_shown(earlier[1])}')",
                ))
    return problems
