"""Column names of spreadsheet exports (CSV, TSV, XLSX) mapped to the record schema.

Every vendor names the same field differently: PubMed (`Publication Year`, `Journal/Book`),
Embase (`Author Names`, `Source` holding journal, year, volume, issue and pages in one cell),
Scopus (`Source title`, `Page start`), Web of Science (`Article Title`, `Pubmed Id`), Rayyan
(`key`, `journal`), Covidence (`Published Year`, `Covidence #`), Zotero (`Publication Title`,
`Abstract Note`, PMID inside `Extra`) and ASReview (`record_id`, `primary_title`,
`first_authors` as a list). The first alias present in a header wins.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from review.errors import ReviewError

ALIASES: dict[str, tuple[str, ...]] = {
    "export_id": ("record_id", "id", "key", "covidence #", "ref", "eid", "ut (unique wos id)",
                  "accession number", "embase accession id", "pui"),
    "pmid": ("pmid", "pubmed id", "pubmed_id", "medline pmid", "pubmed"),
    "doi": ("doi", "di"),
    "title": ("title", "article title", "primary_title", "ti", "document title", "t1"),
    "abstract": ("abstract", "abstract note", "notes_abstract", "ab"),
    "authors": ("authors", "author names", "author", "first_authors", "author full names",
                "au", "a1"),
    "journal": ("journal/book", "journal", "source title", "publication title",
                "journal_name", "secondary_title", "journal title", "booktitle", "so", "t2",
                "jo"),
    "year": ("publication year", "published year", "year", "publication_year", "py",
             "year of publication", "date"),
    "volume": ("volume", "vl"),
    "issue": ("issue", "number", "is"),
    "pages": ("pages", "page", "pg"),
    "start_page": ("page start", "start_page", "first page", "beginning page", "bp", "sp"),
    "end_page": ("page end", "end_page", "last page", "ending page", "ep"),
    "keywords": ("keywords", "author keywords", "manual tags", "kw", "de"),
    "language": ("language", "language of original document", "la"),
    "publication_types": ("document type", "publication type", "item type",
                          "type_of_reference", "entrytype", "dt", "ty"),
    # Embase's older CSV puts the whole citation in one cell, as does PubMed's.
    "source_citation": ("source", "citation"),
    "extra": ("extra",),
}
# Embase: "Endoscopic Ultrasound (2014) 3:3 (152-160). Date of Publication: 2014"
EMBASE_SOURCE = re.compile(r"^(?P<journal>.+?)\s*\((?P<year>\d{4})\)\s*(?P<volume>[^:\s(]+)?"
                           r"(?::(?P<issue>[^\s(]+))?\s*(?:\((?P<pages>[^)]*)\))?")
CITATION_DOI = re.compile(r"doi:\s*(10\.\d{4,9}/\S+?)\.?(\s|$)", re.IGNORECASE)
EXTRA_PMID = re.compile(r"PMID:\s*(\d+)", re.IGNORECASE)


def choose_columns(header: Sequence[str]) -> dict[str, list[int]]:
    """For each field the header has, its columns in order of preference (a row whose first
    choice is blank falls back to the next: `booktitle` for a paper without `journal`)."""
    folded = [name.strip().lower() for name in header]
    chosen = {}
    for field, aliases in ALIASES.items():
        indices = [folded.index(alias) for alias in aliases if alias in folded]
        if indices:
            chosen[field] = indices
    return chosen


def split_list(value: str) -> list[str]:
    """A `;`-list, or a Python list literal as ASReview and rispy write it."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            items = None
        if isinstance(items, list):
            return [str(item).strip() for item in items if str(item).strip()]
    return [item.strip() for item in re.split(r"[;\n]", text) if item.strip()]


def split_authors(value: str) -> list[str]:
    """Authors separated by ';', by ' and ' (BibTeX), as a list literal, or by ',' as PubMed
    and Embase write them ("Smith J, Doe A"; "Liu R., Adler D.G."); a list of "Surname,
    Initials" pairs is put back together."""
    text = value.strip()
    if not text:
        return []
    if text.startswith("[") or ";" in text or "\n" in text:
        return [name.rstrip(".") if name.endswith("..") else name for name in split_list(text)]
    if " and " in text:
        return [name.strip() for name in text.split(" and ") if name.strip()]
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) > 1 and not all(" " in part for part in parts):
        return [", ".join(parts[i:i + 2]) for i in range(0, len(parts), 2)]
    return parts


def fields_from_row(row: Sequence[str], columns: dict[str, list[int]]) -> dict[str, object]:
    """The record fields of one spreadsheet row."""

    def cell(field: str) -> str:
        for index in columns.get(field, ()):
            value = str(row[index]).strip() if index < len(row) else ""
            if value:
                return value
        return ""

    fields: dict[str, object] = {
        "export_id": cell("export_id"), "pmid": cell("pmid"), "doi": cell("doi"),
        "title": cell("title"), "abstract": cell("abstract"),
        "authors": split_authors(cell("authors")), "journal": cell("journal"),
        "year": cell("year"), "volume": cell("volume"), "issue": cell("issue"),
        "pages": cell("pages"), "keywords": split_list(cell("keywords")),
        "language": cell("language"),
        "publication_types": split_list(cell("publication_types")),
    }
    if not fields["pages"] and cell("start_page"):
        end = cell("end_page")
        fields["pages"] = f"{cell('start_page')}-{end}" if end else cell("start_page")
    citation = cell("source_citation")
    if citation:
        embase = EMBASE_SOURCE.match(citation)
        if embase and not fields["journal"]:
            for name in ("journal", "year", "volume", "issue", "pages"):
                if not fields[name] and embase.group(name):
                    fields[name] = embase.group(name).strip()
        elif not fields["journal"] and "." not in citation:
            fields["journal"] = citation
        found = CITATION_DOI.search(citation)
        if found and not fields["doi"]:
            fields["doi"] = found.group(1)
    extra = EXTRA_PMID.search(cell("extra"))
    if extra and not fields["pmid"]:
        fields["pmid"] = extra.group(1)
    return fields


def records_from_rows(rows: Sequence[tuple[int, Sequence[str]]], header: Sequence[str],
                      source_file: str) -> list[tuple[int, dict[str, object]]]:
    """(line, fields) of every non-blank row; the header must name a title column."""
    columns = choose_columns(header)
    known = {alias for aliases in ALIASES.values() for alias in aliases}
    first: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        folded = name.strip().lower()
        if folded in known and folded in first:
            # Which of the two holds the field is a guess; the file must say.
            raise ReviewError(f"{source_file}:1: column '{name.strip()}' appears twice "
                              f"(columns {first[folded]} and {number}); rename or remove one")
        first.setdefault(folded, number)
    if "title" not in columns:
        raise ReviewError(f"{source_file}:1: no title column (looked for: "
                          f"{', '.join(ALIASES['title'])}; the header has: "
                          f"{', '.join(name for name in header[:12] if name)})")
    entries = []
    for line, row in rows:
        if not any(str(value).strip() for value in row):
            continue
        if len(row) > len(header) and any(str(value).strip() for value in row[len(header):]):
            raise ReviewError(f"{source_file}:{line}: {len(row)} fields, but the header has "
                              f"{len(header)}")
        if len(row) < len(header):
            # A row cut short is what a truncated download or copy leaves: its record would
            # be stored incomplete.
            raise ReviewError(f"{source_file}:{line}: {len(row)} fields, but the header has "
                              f"{len(header)} (is the file cut short?)")
        entries.append((line, fields_from_row(row, columns)))
    return entries
