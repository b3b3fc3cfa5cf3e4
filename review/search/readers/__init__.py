"""One reader per export format; `read_export` decodes a file, picks its reader and makes
records of what it returns, or fails with FILE:LINE.

A reader returns `(line, fields)` for every record in file order; the record's id comes from
the file's SHA-256 and that position, so nothing in the content can make two records one.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from review.errors import ReviewError
from review.fileio import UTF8_BOM
from review.search.readers import (
    bibtex,
    csv_export,
    endnote_xml,
    medline,
    pubmed_xml,
    ris,
    wos_plain,
    wos_tab,
    xlsx_export,
)
from review.search.records import Record, is_empty, make_record

# A reader may yield its entries as it reads, so that a large export's fields are made into
# records one by one, never all held at once.
Entries = Iterable[tuple[int, dict[str, object]]]
# Text readers take the decoded text; the others read bytes, so that an XML file's own
# encoding declaration counts and a workbook is a zip archive.
TEXT_READERS: dict[str, Callable[[str, str], Entries]] = {
    "medline": medline.read, "ris": ris.read, "wos-tab": wos_tab.read, "wos-plain": wos_plain.read,
    "csv": csv_export.read, "bibtex": bibtex.read,
}
BYTE_READERS: dict[str, Callable[[bytes, str], Entries]] = {
    "pubmed-xml": pubmed_xml.read, "endnote-xml": endnote_xml.read, "xlsx": xlsx_export.read,
}
NAMES = {"pubmed-xml": "PubMed XML", "medline": "MEDLINE", "ris": "RIS",
         "wos-tab": "Web of Science tab-delimited", "wos-plain": "Web of Science plain text",
         "csv": "CSV/TSV", "xlsx": "XLSX",
         "endnote-xml": "EndNote XML", "bibtex": "BibTeX"}
EXTENSIONS = {".nbib": "medline", ".medline": "medline", ".ris": "ris", ".csv": "csv",
              ".tsv": "csv", ".tab": "csv", ".xlsx": "xlsx", ".bib": "bibtex",
              ".bibtex": "bibtex"}
# Extensions whose format the content decides (for .xml, among the XML formats).
OPEN_EXTENSIONS = {".xml", ".txt", ""}
XML_FORMATS = ("pubmed-xml", "endnote-xml")
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"
UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|"
                            rb"[\xf0-\xf4][\x80-\xbf]{3}")
OVID_RECORD = re.compile(r"^<\d+>\s*$", re.MULTILINE)
ENDNOTE_TAGGED = re.compile(r"^%0 ", re.MULTILINE)


@dataclass(frozen=True)
class Export:
    """One export file as read: its records in file order, with how it was read."""

    path: Path
    format: str
    encoding: str
    sha256: str
    records: list[Record]
    # Lines of the records that hold no bibliographic field (an RIS "TY  -" / "ER  -"
    # pair): not imported, but counted as removed before screening.
    empty_lines: tuple[int, ...] = ()


def _line_of(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


def decode_export(data: bytes, source: str, encoding: str | None = None) -> tuple[str, str]:
    """Text of an export and the encoding used: the one named; UTF-16 with a BOM; UTF-8
    (with or without BOM); else one legacy code page, Windows-1252 (a superset of latin-1).
    A file that mixes UTF-8 with another encoding, or fits no single code page, is refused:
    a wrong guess would change names silently."""
    if encoding:
        try:
            return codecs.decode(data, encoding).removeprefix("\ufeff"), encoding
        except LookupError:
            raise ReviewError(f"{source}: unknown encoding '{encoding}'") from None
        except UnicodeDecodeError as error:
            raise ReviewError(f"{source}:{_line_of(data, error.start)}: not {encoding} text "
                              f"(byte 0x{data[error.start]:02x})") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16").removeprefix("\ufeff"), "utf-16"
        except UnicodeDecodeError as error:
            raise ReviewError(f"{source}: damaged UTF-16 text at byte {error.start}") from None
    if b"\x00" in data[:4096]:
        raise ReviewError(f"{source}:1: a binary file, not a bibliographic export (UTF-16 "
                          "without a byte-order mark? pass --encoding utf-16-le)")
    try:
        return data.removeprefix(UTF8_BOM).decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        line = _line_of(data, error.start)
        if UTF8_MULTIBYTE.search(data):
            raise ReviewError(f"{source}:{line}: mixes UTF-8 with another encoding (byte "
                              f"0x{data[error.start]:02x} is not UTF-8, but earlier or later "
                              "text is); re-export the file as UTF-8") from None
    return _legacy_text(data, source)


# The legacy code pages of Latin-script exports: Western and Central European (Polish, Czech,
# Hungarian…). Others (Cyrillic, Greek) are read only when named with --encoding.
LEGACY_CODE_PAGES = (("cp1252", "windows-1252"), ("cp1250", "windows-1250"))
WORD = re.compile(r"\w+")
# The accented lower-case words of one letter that Western text has (French à, Italian è):
# read in another code page they become letters that stand alone in no language ('ŕ').
ONE_LETTER_WORDS = frozenset("àèé")


def _implausible(text: str) -> int:
    """How many places of a decoded text betray the wrong code page: a symbol inside a word
    ('Ko³odziej'), a currency or number sign opening a lower-case word ('£ukasz'), a run of
    three accented letters, which no Latin-script word has ('Èâàíîâ'), or a lower-case
    accented letter standing alone ('ŕ' for 'à'). Punctuation that opens a word ('¿qué',
    '«nota»') and signs after digits ('37°C') are not counted."""
    count = 0
    for position, character in enumerate(text):
        if ord(character) < 128 or unicodedata.category(character).startswith("L"):
            continue
        before = text[position - 1] if position else " "
        after = text[position + 1] if position + 1 < len(text) else " "
        count += before.isalpha() and after.isalpha()
        count += (not before.isalnum() and after.islower()
                  and unicodedata.category(character) in ("Sc", "No"))
    for word in WORD.findall(text):
        if word.isascii():
            continue
        count += len(re.findall(r"[À-ɏ]{3,}", word))
        count += len(word) == 1 and word.islower() and word not in ONE_LETTER_WORDS
    return count


def _legacy_text(data: bytes, source: str) -> tuple[str, str]:
    """A text in the one legacy code page under which it reads as words; a file that fits
    none, or that two read equally well ('Muñoz' or 'Muńoz'), is refused with the choice."""
    readings, failures = [], []
    for rank, (codec, name) in enumerate(LEGACY_CODE_PAGES):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as error:
            failures.append(error.start)
            continue
        readings.append((_implausible(text), rank, text, name))
    if not readings:
        raise ReviewError(f"{source}:{_line_of(data, failures[0])}: neither UTF-8 nor one "
                          f"legacy code page (byte 0x{data[failures[0]]:02x}); pass "
                          "--encoding with the file's encoding")
    readings.sort()
    score, _, text, name = readings[0]
    rival = next((reading for reading in readings[1:]
                  if reading[0] == score and reading[2] != text), None)
    if rival is not None:
        # Two code pages read the file equally well: a guess could change names silently.
        position = next(i for i, (a, b) in enumerate(zip(text, rival[2], strict=True))
                        if a != b)
        words = [WORD.findall(candidate[max(position - 20, 0):position + 20]) for candidate
                 in (text, rival[2])]
        shown = [next((word for word in found if not word.isascii()), found[0] if found else "")
                 for found in words]
        raise ReviewError(f"{source}:{text[:position].count(chr(10)) + 1}: not UTF-8, and it "
                          f"reads as {name} ('{shown[0]}') or as {rival[3]} ('{shown[1]}'); "
                          f"pass --encoding {name} or --encoding {rival[3]}")
    return text, name


def sniff_format(text: str) -> str | None:
    """The format a text looks like, from its first lines."""
    head = text.lstrip()[:4000]
    if head.startswith("<"):
        if OVID_RECORD.match(head):
            return "ovid"
        if re.search(r"<PubmedArticleSet|<PubmedArticle\b|<PubmedBookArticle\b", head):
            return "pubmed-xml"
        if re.search(r"<xml>\s*<records>|<records>\s*<record>", head):
            return "endnote-xml"
        return "xml"
    if re.match(r"@\s*[A-Za-z]+\s*[{(]", head) or re.search(r"^@(article|book|inproceedings|"
                                                            r"misc|string|preamble)\s*[{(]",
                                                            head, re.MULTILINE | re.IGNORECASE):
        return "bibtex"
    if re.search(r"^PMID- ", head, re.MULTILINE):
        return "medline"
    if re.search(r"^TY  -", head, re.MULTILINE):
        return "ris"
    if ENDNOTE_TAGGED.match(head):
        return "endnote-tagged"
    first = head.split("\n")[0] if head else ""
    if first.startswith("PT\t"):
        return "wos-tab"
    if first.startswith("FN ") or re.match(r"PT [A-Z]\b", first):
        return "wos-plain"
    if "," in first or ";" in first or "\t" in first:
        return "csv"
    return None


def _refuse_unsupported(path: Path, looks: str | None) -> None:
    if looks == "ovid":
        raise ReviewError(f"{path}:1: Ovid's numbered text display is not an export this "
                          "toolkit reads; in Ovid choose Export → RIS (or EndNote XML)")
    if looks == "endnote-tagged":
        raise ReviewError(f"{path}:1: EndNote's tagged (%0) format is not read; export from "
                          "EndNote as RIS or EndNote XML")
    if looks == "xml":
        raise ReviewError(f"{path}:1: XML, but neither PubMed XML nor EndNote XML")


def detect_format(path: Path, text: str, declared: str | None = None) -> str:
    """The format to read a file with: declared, else from the extension, checked against
    the content so that a mislabelled file fails clearly instead of importing nothing."""
    looks = sniff_format(text)
    if declared:
        if declared not in NAMES:
            raise ReviewError(f"unknown format '{declared}' (allowed: {', '.join(NAMES)})")
        expected: str | None = declared
    else:
        suffix = path.suffix.lower()
        expected = looks if suffix in OPEN_EXTENSIONS else EXTENSIONS.get(suffix, looks)
        _refuse_unsupported(path, looks)
        if suffix == ".xml" and looks not in XML_FORMATS:
            raise ReviewError(f"{path}:1: the content looks like {NAMES.get(looks, 'text')}, "
                              f"not XML; pass --format {looks or 'FORMAT'} if that is right")
    if expected is None or expected not in NAMES:
        raise ReviewError(f"{path}:1: not a bibliographic export this toolkit reads "
                          f"({', '.join(NAMES.values())})")
    if looks is not None and looks != expected and not (expected == "csv" and looks == "wos-tab"):
        shown = NAMES.get(looks, looks)
        raise ReviewError(f"{path}:1: the content looks like {shown}, not "
                          f"{NAMES[expected]}; pass --format {looks} if that is right")
    return expected


def _binary_format(path: Path, data: bytes, declared: str | None) -> str | None:
    """'xlsx' for a workbook; an error for other binary files that look like a format."""
    suffix = path.suffix.lower()
    if data.startswith(ZIP_MAGIC):
        if declared not in (None, "xlsx") or suffix not in (".xlsx", *OPEN_EXTENSIONS):
            raise ReviewError(f"{path}:1: a zip archive (an XLSX workbook?), not "
                              f"{NAMES.get(declared or EXTENSIONS.get(suffix, ''), suffix)}")
        return "xlsx"
    if data.startswith(OLE_MAGIC):
        raise ReviewError(f"{path}:1: an Excel 97-2003 (.xls) workbook; save it as .xlsx or "
                          "CSV first")
    if declared == "xlsx" or suffix == ".xlsx":
        raise ReviewError(f"{path}:1: not an XLSX workbook (no zip archive inside)")
    return None


def read_export(path: Path, source: str, *, declared: str | None = None,
                encoding: str | None = None, strict: bool = False) -> Export:
    """Every record of one export file, in file order; a record with no bibliographic field
    is left out and its line kept in `empty_lines` (with `strict`, it refuses the file)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReviewError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReviewError(f"{path}: is a folder, not a file") from None
    except OSError as error:
        raise ReviewError(f"{path}: cannot read: {error.strerror}") from None
    # isspace(), not strip(): strip() would copy a large export just to look at it
    if not data or data.isspace():
        raise ReviewError(f"{path}:1: empty file")
    digest = hashlib.sha256(data).hexdigest()
    kind = _binary_format(path, data, declared)
    used = "binary"
    if kind is None:
        text, used = decode_export(data, str(path), encoding)
        if not text or text.isspace():
            raise ReviewError(f"{path}:1: empty file")
        kind = detect_format(path, text, declared)
        if kind in BYTE_READERS:
            entries = BYTE_READERS[kind](data, str(path))
        else:
            del data  # a text reader needs the text only: a large export is not held twice
            entries = TEXT_READERS[kind](text, str(path))
        del text  # a reader that yields as it reads holds the text until it has read it all
    else:
        entries = BYTE_READERS[kind](data, str(path))
    records, empty_lines = [], []
    for position, (line, fields) in enumerate(entries, start=1):
        # Positions count every entry, empty ones too, so a record's id does not depend on
        # whether an empty record before it was skipped.
        record = make_record(source, path.name, origin=f"sha256:{digest}", position=position,
                             **fields)
        if is_empty(record):
            if strict:
                raise ReviewError(f"{path}:{line}: an empty record (no bibliographic field), "
                                  "refused by --strict; remove it or complete it in the export")
            empty_lines.append(line)
            continue
        records.append(record)
    if not records and not empty_lines:
        raise ReviewError(f"{path}:1: no records found in this {NAMES[kind]} file")
    if not records:
        raise ReviewError(f"{path}:{empty_lines[0]}: every record of this {NAMES[kind]} file "
                          "is empty (no bibliographic field)")
    return Export(path, kind, used, digest, records, tuple(empty_lines))
