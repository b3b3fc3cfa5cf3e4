"""CSV: PubMed's "Send to: File → CSV" export and generic files with a title column."""

from __future__ import annotations

import csv
import io
import re

from review.errors import ReviewError
from review.search.records import Record, make_record

COLUMNS = {
    "pmid": ("pmid", "pubmed id", "pubmed_id"),
    "doi": ("doi",),
    "title": ("title", "article title", "ti", "document title"),
    "abstract": ("abstract", "ab"),
    "authors": ("authors", "author", "au", "author full names"),
    "journal": ("journal/book", "journal", "source title", "source", "so"),
    "year": ("publication year", "year", "py", "date"),
    "volume": ("volume", "vl"),
    "issue": ("issue", "is"),
    "pages": ("pages", "page"),
    "keywords": ("keywords", "author keywords", "kw"),
    "language": ("language", "la"),
}


def _split_authors(value: str) -> list[str]:
    """Authors separated by ';', or by ',' as PubMed writes them ("Smith J, Doe A"); a list
    of "Surname, Initials" pairs is put back together."""
    if ";" in value:
        return [name.strip().rstrip(".") for name in value.split(";")]
    parts = [part.strip().rstrip(".") for part in value.split(",")]
    if len(parts) > 1 and not all(" " in part for part in parts):
        return [", ".join(parts[i:i + 2]) for i in range(0, len(parts), 2)]
    return parts


def read(text: str, source: str, source_file: str) -> list[Record]:
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect, strict=True)
    try:
        header = {name.strip().lower(): name for name in reader.fieldnames or []}
    except csv.Error as error:
        raise ReviewError(f"{source_file}:1: not valid CSV ({error})") from None
    chosen = {field: next((header[alias] for alias in aliases if alias in header), None)
              for field, aliases in COLUMNS.items()}
    if chosen["title"] is None:
        raise ReviewError(f"{source_file}:1: no title column (looked for: "
                          f"{', '.join(COLUMNS['title'])})")
    records = []
    try:
        for row in reader:
            values = {field: (row.get(column) or "") if column else ""
                      for field, column in chosen.items()}
            if not any(value.strip() for value in row.values() if isinstance(value, str)):
                continue
            citation = row.get(header.get("citation", ""), "") or ""
            if not values["doi"]:
                found = re.search(r"doi:\s*(10\.\d{4,9}/\S+?)\.?(\s|$)", citation)
                values["doi"] = found.group(1) if found else ""
            records.append(make_record(
                source, source_file,
                **{**values, "authors": _split_authors(values["authors"]),
                   "keywords": [k.strip() for k in values["keywords"].split(";")]},
            ))
    except csv.Error as error:
        raise ReviewError(f"{source_file}:{reader.line_num}: not valid CSV ({error})") from None
    return records
