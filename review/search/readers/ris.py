"""RIS, as Embase, Scopus, Web of Science, Ovid, Zotero and EndNote write it.

Vendors disagree on tags (title in TI or T1, journal in T2, JO, JF or JA, abstract in AB or N2,
year in PY, Y1 or DA) and some wrap long fields over several lines; all of that is read here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from review.errors import ReviewError

# A tag line: "XY  -" with its value after a space, or with nothing but white space after it.
# Matched at the line's start only, the value sliced off: no capture groups to build.
TAG = re.compile(r"[A-Z][A-Z0-9]  -(?: |\s*$)")
PMID_NOTE = re.compile(r"(?:PMID|PubMed ID)\s*:?\s*(\d{1,9})", re.IGNORECASE)
DOI_IN_TEXT = re.compile(r"(10\.\d{4,9}/[^\s\"<>]+)")
DOI_LIKE = re.compile(r"10\.\d{4}")
TITLE_TAGS = ("TI", "T1", "CT", "ST")
JOURNAL_TAGS = ("T2", "JF", "JO", "JA", "J2", "J1")
ABSTRACT_TAGS = ("AB", "N2")
YEAR_TAGS = ("PY", "Y1", "DA", "Y2")
AUTHOR_TAGS = ("AU", "A1")


def _first(fields: dict[str, list[str]], tags: tuple[str, ...]) -> str:
    for tag in tags:
        if fields.get(tag):
            return fields[tag][0]
    return ""


def _indexed_by_pubmed(fields: dict[str, list[str]]) -> bool:
    database = " ".join(fields.get("DB", []) + fields.get("DP", [])).lower()
    return any(name in database for name in ("medline", "pubmed", "nlm"))


def _pmid(fields: dict[str, list[str]]) -> str:
    for tag in ("AN", "C5", "M2", "N1", "U2"):
        for value in fields.get(tag, ()):
            match = PMID_NOTE.search(value)
            if match:
                return match.group(1)
            if tag == "AN" and value.strip().isdigit() and _indexed_by_pubmed(fields):
                return value.strip()
    return ""


def _doi(fields: dict[str, list[str]]) -> str:
    if fields.get("DO"):
        return fields["DO"][0]
    for tag in ("M3", "N1", "UR", "L2", "LK"):
        for value in fields.get(tag, []):
            match = DOI_IN_TEXT.search(value)
            if match:
                return match.group(1)
    return ""


def _fields(fields: dict[str, list[str]]) -> dict[str, object]:
    start, end = _first(fields, ("SP",)), _first(fields, ("EP",))
    pages = f"{start}-{end}" if start and end and end != start else start
    kinds = [value for tag in ("TY", "M3") for value in fields.get(tag, [])
             if not DOI_LIKE.search(value)]
    return dict(
        export_id=_first(fields, ("ID", "AN")), pmid=_pmid(fields), doi=_doi(fields),
        title=_first(fields, TITLE_TAGS), abstract=_first(fields, ABSTRACT_TAGS),
        authors=[a for tag in AUTHOR_TAGS for a in fields.get(tag, [])],
        journal=_first(fields, JOURNAL_TAGS), year=_first(fields, YEAR_TAGS),
        volume=_first(fields, ("VL", "VO")), issue=_first(fields, ("IS", "CP")), pages=pages,
        publication_types=kinds, keywords=fields.get("KW", []),
        language=_first(fields, ("LA",)),
        extra={"accession": _first(fields, ("AN",)), "database": _first(fields, ("DB",)),
               "asreview_label": _asreview_label(fields)},
    )


# ASReview LAB writes each record's label into an N1 note of its RIS export.
ASREVIEW_LABEL = re.compile(r"\bASReview_(relevant|irrelevant|not_seen)\b")


def _asreview_label(fields: dict[str, list[str]]) -> str:
    """'relevant', 'irrelevant' or 'not_seen' where ASReview labelled the record, else ''."""
    for note in fields.get("N1", []):
        found = ASREVIEW_LABEL.search(note)
        if found:
            return found.group(1)
    return ""


# Ovid's RIS numbers its records ("1." on a line before TY) and writes links after ER (an NL
# tag, "Link to the Ovid Full Text or citation:", a URL) that belong to no record.
OVID_NUMBER = re.compile(r"^(\d+)\.\s*$")
OVID_LINK = "Link to the Ovid Full Text or citation:"


# Lines are split a megabyte of text at a time: a list of every line of a large export held
# the whole text a second time.
SPLIT_CHUNK = 1 << 20


def _lines(text: str) -> Iterator[str]:
    """The text's lines, split at LF only (an abstract may hold U+2028, which is no line break
    in RIS), with the CR of a CRLF ending dropped."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + SPLIT_CHUNK)
        end = len(text) if end == -1 else end
        chunk = text[start:end]
        if end < len(text) and chunk.endswith("\r"):  # the CR of the LF that ends the chunk
            chunk = chunk[:-1]
        yield from chunk.replace("\r\n", "\n").split("\n")
        start = end + 1


def read(text: str, source_file: str) -> Iterator[tuple[int, dict[str, object]]]:
    """Each record's first line and fields, in file order, as the file is read."""
    fields: dict[str, list[str]] | None = None
    started = 0
    last_tag = ""
    lines = _lines(text)
    first = next((line for line in _lines(text) if line.strip()), "")
    numbered = bool(OVID_NUMBER.match(first.strip()))
    numbers: list[tuple[int, int]] = []
    records = 0
    for number, line in enumerate(lines, start=1):
        if numbered and fields is None:
            counted = OVID_NUMBER.match(line.strip())
            if counted:
                numbers.append((number, int(counted.group(1))))
                continue
            if not line.startswith("TY  -"):
                continue  # Ovid's links between a record's ER and the next number
        if TAG.match(line):
            tag, value = line[:2], line[6:].strip()
            if tag == "TY":
                if fields is not None:
                    raise ReviewError(f"{source_file}:{number}: a new record (TY) starts "
                                      f"before the record of line {started} ended (no ER)")
                fields, started = {"TY": [value]}, number
            elif tag == "ER":
                if fields is None:
                    raise ReviewError(f"{source_file}:{number}: ER without a record (no TY)")
                records += 1
                yield started, _fields(fields)
                fields = None
            elif fields is None:
                raise ReviewError(f"{source_file}:{number}: tag {tag} outside a record "
                                  "(records start with TY)")
            else:
                fields.setdefault(tag, []).append(value)
            last_tag = tag
        elif line.strip() and fields is not None:
            if line.startswith(OVID_LINK):
                continue  # Ovid's label of the link that follows: part of no field
            if last_tag in ("TY", "ER"):
                raise ReviewError(f"{source_file}:{number}: not an RIS line "
                                  f"('{line.strip()[:40]}')")
            fields[last_tag][-1] = f"{fields[last_tag][-1]} {line.strip()}"
    if fields is not None:
        raise ReviewError(f"{source_file}:{started}: the record starting here has no ER line "
                          "(truncated file?)")
    if numbered:
        for index, (number, value) in enumerate(numbers, start=1):
            if value != index:
                raise ReviewError(f"{source_file}:{number}: Ovid's record number {value}, "
                                  f"where {index} was expected (records missing?)")
        if len(numbers) != records:
            raise ReviewError(f"{source_file}: Ovid numbered {len(numbers)} records but "
                              f"{records} were found (a record without TY … ER?)")
