"""CSV and TSV exports: PubMed, Embase, Scopus, Web of Science, Rayyan, Covidence, Zotero,
ASReview and any file with a title column.

The delimiter is the one (comma, semicolon or tab) under which the header names the most
known columns, then has the most fields: csv.Sniffer guesses from character counts and picks
the comma of an abstract over the semicolons of a European export.
"""

from __future__ import annotations

import csv
import io

from review.errors import ReviewError
from review.search.readers.columns import choose_columns, records_from_rows

DELIMITERS = (",", ";", "\t")
csv.field_size_limit(10_000_000)


def _header(text: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error:
        return []


def find_delimiter(text: str) -> str:
    """The delimiter under which the header makes most sense."""
    def score(delimiter: str) -> tuple[int, int, int]:
        header = _header(text, delimiter)
        return (len(choose_columns(header)), len(header), -DELIMITERS.index(delimiter))
    return max(DELIMITERS, key=score)


def read(text: str, source_file: str) -> list[tuple[int, dict[str, object]]]:
    delimiter = find_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows = []
    try:
        header = [name.strip() for name in next(reader, [])]
        line = reader.line_num + 1
        for row in reader:
            rows.append((line, row))
            line = reader.line_num + 1
    except csv.Error as error:
        raise ReviewError(f"{source_file}:{reader.line_num}: not valid CSV ({error})") from None
    return records_from_rows(rows, header, source_file)
