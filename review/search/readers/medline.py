"""PubMed's MEDLINE format (.nbib, .txt: "Send to: Citation manager" or format=medline),
parsed with Biopython's Bio.Medline."""

from __future__ import annotations

import io
import re

from Bio import Medline

from review.errors import ReviewError
from review.search.records import Record, make_record

TAG_LINE = re.compile(r"^([A-Z][A-Z0-9 ]{3})- ")


def _doi(entry: dict[str, object]) -> str:
    for key in ("LID", "AID"):
        values = entry.get(key) or []
        for value in [values] if isinstance(values, str) else values:
            if value.endswith("[doi]"):
                return value.removesuffix("[doi]").strip()
    return ""


def _list(entry: dict[str, object], key: str) -> list[str]:
    value = entry.get(key) or []
    return [value] if isinstance(value, str) else list(value)


def read(text: str, source: str, source_file: str) -> list[Record]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.startswith("      ") and not TAG_LINE.match(line):
            raise ReviewError(f"{source_file}:{number}: not a MEDLINE line (expected "
                              f"'TAG - value', got '{line[:40]}')")
    records = []
    for entry in Medline.parse(io.StringIO(text)):
        if "PMID" not in entry:
            raise ReviewError(f"{source_file}: a MEDLINE record without a PMID")
        records.append(make_record(
            source, source_file,
            pmid=entry.get("PMID"), doi=_doi(entry), title=entry.get("TI") or entry.get("BTI"),
            abstract=entry.get("AB"), authors=_list(entry, "AU"),
            journal=entry.get("JT") or entry.get("TA"), year=entry.get("DP"),
            volume=entry.get("VI"), issue=entry.get("IP"), pages=entry.get("PG"),
            publication_types=_list(entry, "PT"), mesh_terms=_list(entry, "MH"),
            keywords=_list(entry, "OT"), language=(_list(entry, "LA") or [""])[0],
            extra={"journal_abbreviation": entry.get("TA") or ""},
        ))
    return records
