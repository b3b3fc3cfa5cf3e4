"""PubMed's MEDLINE format (.nbib, .txt: "Send to: Citation manager" or format=medline),
parsed with Biopython's Bio.Medline."""

from __future__ import annotations

import io
import re

from Bio import Medline

from review.errors import ReviewError

TAG_LINE = re.compile(r"^([A-Z][A-Z0-9 ]{3})- ")
TAGGED_DOI = re.compile(r"(10\.\d{4,9}/\S+)\s*\[doi\]")


def _doi(entry: dict[str, object]) -> str:
    """The DOI tagged [doi] in LID or AID, whatever comes before it (a [pii] often does, and
    Bio.Medline joins repeated LID lines into one value)."""
    for key in ("LID", "AID"):
        for value in _list(entry, key):
            found = TAGGED_DOI.search(value)
            if found:
                return found.group(1)
    return ""


def _list(entry: dict[str, object], key: str) -> list[str]:
    value = entry.get(key) or []
    return [value] if isinstance(value, str) else list(value)


def read(text: str, source_file: str) -> list[tuple[int, dict[str, object]]]:
    starts = []
    tagged = False
    # Not splitlines(): values may hold U+2028, which is no line break in MEDLINE.
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip():
            tagged = False
            continue
        if line.startswith("      "):
            if not tagged:
                raise ReviewError(f"{source_file}:{number}: a continuation line outside a "
                                  "MEDLINE record (a record starts with 'PMID- ')")
            continue
        if not TAG_LINE.match(line):
            raise ReviewError(f"{source_file}:{number}: not a MEDLINE line (expected "
                              f"'TAG - value', got '{line[:40]}')")
        if not tagged:
            starts.append(number)
        tagged = True
    records = []
    for start, entry in zip(starts, Medline.parse(io.StringIO(text)), strict=True):
        if "PMID" not in entry:
            raise ReviewError(f"{source_file}:{start}: a MEDLINE record without a PMID")
        records.append((start, dict(
            export_id=entry.get("PMID"), pmid=entry.get("PMID"), doi=_doi(entry),
            title=entry.get("TI") or entry.get("BTI"),
            abstract=entry.get("AB"), authors=_list(entry, "AU"),
            journal=entry.get("JT") or entry.get("TA"), year=entry.get("DP"),
            volume=entry.get("VI"), issue=entry.get("IP"), pages=entry.get("PG"),
            publication_types=_list(entry, "PT"), mesh_terms=_list(entry, "MH"),
            keywords=_list(entry, "OT"), language=(_list(entry, "LA") or [""])[0],
            extra={"journal_abbreviation": entry.get("TA") or ""},
        )))
    return records
