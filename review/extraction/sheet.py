"""The extraction sheet on disk: one CSV row per patient, in the protocol's columns.

Cells are kept as text exactly as typed (blank = not reported) so that validation can point at
what the extractor wrote; `typed_cases` turns a validated sheet into analysis-ready columns.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from review.errors import DataProblems, Problem, ReviewError
from review.fileio import read_text, write_atomically
from review.protocol import ExtractionSchema

Location = tuple[str, int]
# Long cells are the validator's to report, at their cell, not the CSV parser's to refuse.
csv.field_size_limit(10_000_000)


MIGRATE_HINT = ("the sheet's columns are not the protocol schema's: 'review extract migrate' "
                "adds new fields blank, renames a column named in a field's renamed_from and "
                "removes blank columns the schema dropped")


def header_problems(
    header: Sequence[str], expected: Sequence[str], source: str, what: str = "column"
) -> list[Problem]:
    """Missing, unknown and repeated columns, with the likely intended name for a typo."""
    problems = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(Problem(source, 1, name, f"{what} appears twice"))
        seen.add(name)
    unknown = [name for name in header if name not in expected]
    missing = [name for name in expected if name not in header]
    for name in unknown:
        guess = difflib.get_close_matches(name.strip(), missing, n=1, cutoff=0.6)
        hint = f" (renamed from '{guess[0]}'?)" if guess else ""
        problems.append(Problem(source, 1, name, f"unknown {what}{hint}"))
    for name in missing:
        problems.append(Problem(source, 1, name, f"missing {what}"))
    return problems


def split_sheet(text: str, source: str) -> tuple[list[str], list[list[str]], list[Problem]]:
    """A sheet's header, its non-blank rows, and a problem for every row whose cells do not
    match the header (the header is row 1)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, [])
        rows = list(reader)
    except csv.Error as exc:
        raise ReviewError(f"{source}:{reader.line_num}: not valid CSV: {exc}") from None
    ragged = [Problem(source, number, "", f"{len(row)} cells, but the header has {len(header)}")
              for number, row in enumerate(rows, start=2)
              if len(row) != len(header) and any(cell.strip() for cell in row)]
    return header, [row for row in rows if any(cell.strip() for cell in row)], ragged


def parse_cases_csv(text: str, schema: ExtractionSchema, source: str) -> pd.DataFrame:
    """Parse sheet text into a DataFrame of strings in schema column order."""
    if not text.strip():
        raise ReviewError(f"{source}: empty file (expected a header row with the columns "
                          f"{', '.join(schema.columns[:3])}, ...)")
    header, records, ragged = split_sheet(text, source)
    if len(header) == 1 and ";" in header[0] and len(schema.columns) > 1:
        raise ReviewError(f"{source}:1: the header is separated by ';', not ','; "
                          "save the sheet as comma-separated CSV")
    problems = header_problems(header, schema.columns, source)
    if problems and len(set(header)) == len(header):
        problems.append(Problem(source, 1, "", MIGRATE_HINT))
    problems += ragged
    if problems:
        raise DataProblems(problems)
    frame = pd.DataFrame(records, columns=header, dtype=object)
    return frame[schema.columns].reset_index(drop=True)


def read_cases(
    path: str | os.PathLike, schema: ExtractionSchema, encoding: str | None = None
) -> pd.DataFrame:
    """Read an extraction sheet CSV; blank lines are skipped, row numbers count the header."""
    return parse_cases_csv(read_text(path, encoding), schema, str(path))


def row_version(cells: Sequence[object]) -> str:
    """A short fingerprint of one row's cells: a workbook and a web form carry the version of
    each row they were made from, so that a save can tell whether the row changed since."""
    text = json.dumps(["" if cell is None else str(cell) for cell in cells], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def sheet_locations(frame: pd.DataFrame, source: str) -> list[Location]:
    """Row addresses of a sheet read from one file: the header is row 1."""
    return [(source, number) for number in range(2, len(frame) + 2)]


def format_cases_csv(frame: pd.DataFrame, schema: ExtractionSchema) -> str:
    """The sheet as CSV text in schema column order, quoting only where needed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(schema.columns)
    for row in frame[schema.columns].itertuples(index=False):
        writer.writerow(["" if cell is None else str(cell) for cell in row])
    return buffer.getvalue()


def write_cases(path: str | os.PathLike, frame: pd.DataFrame, schema: ExtractionSchema) -> None:
    write_atomically(path, format_cases_csv(frame, schema))


def empty_cases(schema: ExtractionSchema) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in schema.columns})


def split_list(cell: str, separator: str) -> list[str]:
    return [item.strip() for item in cell.split(separator) if item.strip()]


def typed_cases(frame: pd.DataFrame, schema: ExtractionSchema) -> pd.DataFrame:
    """Analysis-ready columns of a validated sheet.

    Integers and years become nullable Int64, numbers float, multi-valued codes tuples of
    codes; every blank ("not reported") becomes a missing value, never an empty list or "no".
    """
    typed = {}
    for spec in schema.fields:
        cells = frame[spec.name].fillna("").astype(str).str.strip()
        if spec.type in ("integer", "year"):
            typed[spec.name] = pd.to_numeric(cells.replace("", None)).astype("Int64")
        elif spec.type == "number":
            typed[spec.name] = pd.to_numeric(cells.replace("", None)).astype(float)
        elif spec.multi_valued:
            typed[spec.name] = pd.Series(
                [tuple(split_list(cell, schema.list_separator)) if cell else None
                 for cell in cells],
                index=frame.index, dtype=object,
            )
        else:
            typed[spec.name] = pd.Series([cell or None for cell in cells], index=frame.index,
                                         dtype=object)
    return pd.DataFrame(typed, index=frame.index)


def study_table(frame: pd.DataFrame, schema: ExtractionSchema) -> pd.DataFrame:
    """One row per report, derived from the patient rows (never typed twice).

    Columns: the study key, the schema's study fields, `patients`, and `extraction_basis`
    (the single basis of its patients, or `mixed`) and `countries` when the sheet has them.
    """
    key = schema.study.key
    columns = [key, *schema.study.fields]
    rows = []
    for study, patients in frame.groupby(key, sort=True):
        row = {name: _first_reported(patients[name]) for name in columns}
        row[key] = study
        row["patients"] = len(patients)
        if "extraction_basis" in patients:
            bases = sorted({value for value in patients["extraction_basis"] if value})
            row["extraction_basis"] = bases[0] if len(bases) == 1 else "mixed"
        if "country" in patients:
            row["countries"] = "; ".join(sorted({value for value in patients["country"] if value}))
        rows.append(row)
    extra = [name for name, needs in (("extraction_basis", "extraction_basis"),
                                      ("countries", "country")) if needs in frame]
    return pd.DataFrame(rows, columns=[*columns, "patients", *extra])


def _first_reported(cells: pd.Series) -> str:
    for cell in cells:
        if cell:
            return cell
    return ""


def ensure_sheet(path: Path, schema: ExtractionSchema) -> pd.DataFrame:
    """The sheet at `path`, or an empty one when the review has no sheet yet."""
    if not path.exists():
        return empty_cases(schema)
    return read_cases(path, schema)
