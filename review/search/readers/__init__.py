"""One reader per export format; each returns normalised records or fails with FILE:LINE."""

from __future__ import annotations

import re
from pathlib import Path

from review.errors import ReviewError
from review.fileio import UTF8_BOM
from review.search.readers import csv_export, medline, pubmed_xml, ris, wos_tab
from review.search.records import Record

# Text readers; PubMed XML is read from bytes, so that its own encoding declaration counts.
READERS = {
    "medline": medline.read,
    "ris": ris.read,
    "wos-tab": wos_tab.read,
    "csv": csv_export.read,
}
EXTENSIONS = {".xml": "pubmed-xml", ".nbib": "medline", ".ris": "ris", ".csv": "csv"}
NAMES = {"pubmed-xml": "PubMed XML", "medline": "MEDLINE", "ris": "RIS",
         "wos-tab": "Web of Science tab-delimited", "csv": "CSV"}


def decode_export(data: bytes, source: str, encoding: str | None = None) -> tuple[str, str]:
    """Text of an export and the encoding used: UTF-8 (with or without BOM), else
    Windows-1252 (a superset of latin-1, which older exporters write)."""
    if b"\x00" in data[:4096]:
        raise ReviewError(f"{source}:1: a binary file, not a bibliographic export")
    if encoding:
        try:
            return data.decode(encoding).removeprefix("\ufeff"), encoding
        except (LookupError, UnicodeDecodeError) as error:
            raise ReviewError(f"{source}: cannot decode as {encoding}: {error}") from None
    try:
        return data.removeprefix(UTF8_BOM).decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252"), "windows-1252"
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise ReviewError(f"{source}:{line}: neither UTF-8 nor latin-1 text") from None


def sniff_format(text: str) -> str | None:
    """The format a text looks like, from its first lines."""
    head = text.lstrip()[:4000]
    if head.startswith("<"):
        return "pubmed-xml"
    if re.search(r"^PMID- ", head, re.MULTILINE):
        return "medline"
    if re.search(r"^TY  -", head, re.MULTILINE):
        return "ris"
    first = head.splitlines()[0] if head else ""
    if first.startswith("PT\t") or first.startswith("FN "):
        return "wos-tab"
    if "," in first or ";" in first:
        return "csv"
    return None


def detect_format(path: Path, text: str, declared: str | None = None) -> str:
    """The format to read a file with: declared, else from the extension, checked against
    the content so that a mislabelled file fails clearly instead of importing nothing."""
    looks = sniff_format(text)
    if declared:
        if declared not in NAMES:
            raise ReviewError(f"unknown format '{declared}' (allowed: {', '.join(NAMES)})")
        expected = declared
    else:
        expected = EXTENSIONS.get(path.suffix.lower()) or looks
        if path.suffix.lower() == ".txt" and looks in ("medline", "wos-tab", "ris"):
            expected = looks
    if expected is None:
        raise ReviewError(f"{path}:1: not a bibliographic export this toolkit reads "
                          f"({', '.join(NAMES.values())})")
    if looks is not None and looks != expected:
        raise ReviewError(f"{path}:1: the content looks like {NAMES[looks]}, not "
                          f"{NAMES[expected]}; pass --format {looks} if that is right")
    return expected


def read_export(path: Path, source: str, *, declared: str | None = None,
                encoding: str | None = None) -> tuple[list[Record], str, str]:
    """Records of one export file, the format and the encoding it was read with."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReviewError(f"{path}: no such file") from None
    except OSError as error:
        raise ReviewError(f"{path}: cannot read: {error.strerror}") from None
    if not data.strip():
        raise ReviewError(f"{path}:1: empty file")
    text, used = decode_export(data, str(path), encoding)
    kind = detect_format(path, text, declared)
    if kind == "pubmed-xml":
        records = pubmed_xml.read_bytes(data, source, str(path))
    else:
        records = READERS[kind](text, source, str(path))
    if not records:
        raise ReviewError(f"{path}:1: no records found in this {NAMES[kind]} file")
    return records, kind, used
