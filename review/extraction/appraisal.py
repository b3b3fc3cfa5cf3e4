"""The critical appraisal table: one row per report and appraiser, the protocol's items."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from review.errors import DataProblems, Problem, ReviewError
from review.extraction.sheet import header_problems
from review.fileio import read_text
from review.protocol import Appraisal


def appraisal_columns(appraisal: Appraisal) -> list[str]:
    return ["study_id", "appraiser", *(item.id for item in appraisal.items), "notes"]


def read_appraisal(path: Path, appraisal: Appraisal) -> pd.DataFrame:
    """data/extraction/appraisal.csv, or an empty table when nobody has appraised yet."""
    columns = appraisal_columns(appraisal)
    if not path.exists():
        return pd.DataFrame(columns=columns, dtype=object)
    text = read_text(path)
    if not text.strip():
        raise ReviewError(f"{path}:1: empty file (expected the header "
                          f"{','.join(columns[:3])},...; delete the file if nobody has "
                          "appraised yet)")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as error:
        raise ReviewError(f"{path}:{reader.line_num}: not valid CSV ({error})") from None
    problems = header_problems(header, columns, str(path))
    problems += [Problem(str(path), number, "", f"{len(row)} cells, but the header has "
                                                f"{len(header)}")
                 for number, row in rows if len(row) != len(header) and any(row)]
    if problems:
        raise DataProblems(problems)
    frame = pd.DataFrame([row for _, row in rows if any(cell.strip() for cell in row)],
                         columns=header, dtype=object)
    return frame[columns].reset_index(drop=True)
