"""BibTeX (Zotero, JabRef, Mendeley, Google Scholar, Scopus and Web of Science exports),
parsed with bibtexparser; LaTeX accents and braces are decoded. Entries that repeat a key
are records too (exports of several searches often do); a block that does not parse is an
error at its line."""

from __future__ import annotations

import logging

import bibtexparser
from bibtexparser import middlewares
from bibtexparser.library import Library
from bibtexparser.model import DuplicateBlockKeyBlock, Entry, ParsingFailedBlock

from review.errors import ReviewError

CONFERENCE_ENTRIES = {"inproceedings", "conference", "proceedings"}
# bibtexparser logs every failed block; the failure is reported here, once, as FILE:LINE.
logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)


def _decoded(entry: Entry, library: Library) -> Entry:
    for middleware in (middlewares.RemoveEnclosingMiddleware(),
                       middlewares.LatexDecodingMiddleware()):
        entry = middleware.transform_entry(entry, library)
    return entry


def _fields(entry: Entry) -> dict[str, object]:
    values = {field.key.lower(): " ".join(str(field.value).split()) for field in entry.fields}
    authors = [name.strip() for name in values.get("author", "").split(" and ")
               if name.strip()]
    kind = entry.entry_type.lower()
    return {
        "export_id": entry.key, "pmid": values.get("pmid", ""), "doi": values.get("doi", ""),
        "title": values.get("title", ""), "abstract": values.get("abstract", ""),
        "authors": authors,
        "journal": values.get("journal") or values.get("booktitle") or
        values.get("journaltitle", ""),
        "year": values.get("year") or values.get("date", ""),
        "volume": values.get("volume", ""), "issue": values.get("number") or
        values.get("issue", ""),
        "pages": values.get("pages", "").replace("--", "-").replace("–", "-"),
        "keywords": [word.strip() for word in values.get("keywords", "").replace(";", ",")
                     .split(",") if word.strip()],
        "language": values.get("language") or values.get("langid", ""),
        "publication_types": ["Conference Paper" if kind in CONFERENCE_ENTRIES else kind],
    }


def read(text: str, source_file: str) -> list[tuple[int, dict[str, object]]]:
    library = bibtexparser.parse_string(
        text, parse_stack=[middlewares.ResolveStringReferencesMiddleware(True)])
    entries = []
    for block in library.blocks:
        if isinstance(block, DuplicateBlockKeyBlock):
            block = block.ignore_error_block
        elif isinstance(block, ParsingFailedBlock):
            reason = " ".join((getattr(block.error, "abort_reason", "")
                               or str(block.error) or "syntax error").split())
            raise ReviewError(f"{source_file}:{block.start_line + 1}: not a valid BibTeX "
                              f"entry ({reason})")
        if isinstance(block, Entry):
            entries.append((block.start_line + 1, _fields(_decoded(block, library))))
    return entries
