"""EndNote XML: the `<xml><records><record>` export of EndNote, Mendeley and Zotero.

Text sits in `<style>` runs that may split one value in several pieces, so every field is the
concatenation of its text. Parsed with lxml without entities, DTDs or network access.
"""

from __future__ import annotations

import io

from lxml import etree

from review.errors import ReviewError
from review.search.readers.pubmed_xml import refuse_entities


def _text(element: etree._Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _all(record: etree._Element, path: str) -> list[str]:
    return [value for element in record.iterfind(path) if (value := _text(element))]


def _fields(record: etree._Element) -> dict[str, object]:
    def first(*paths: str) -> str:
        for path in paths:
            value = _text(record.find(path))
            if value:
                return value
        return ""

    accession = first("accession-num")
    database = " ".join((first("remote-database-name"),
                         first("remote-database-provider"))).lower()
    indexed = any(name in database for name in ("pubmed", "medline", "nlm"))
    pmid = accession if accession.isdigit() and indexed else ""
    kind = record.find("ref-type")
    return {
        "export_id": first("rec-number"), "pmid": pmid,
        "doi": first("electronic-resource-num"),
        "title": first("titles/title"), "abstract": first("abstract"),
        "authors": _all(record, "contributors/authors/author"),
        "journal": first("periodical/full-title", "titles/secondary-title",
                         "periodical/abbr-1", "alt-periodical/full-title"),
        "year": first("dates/year"), "volume": first("volume"),
        "issue": first("number", "issue"), "pages": first("pages"),
        "keywords": _all(record, "keywords/keyword"), "language": first("language"),
        "publication_types": [kind.get("name")] if kind is not None and kind.get("name") else [],
        "extra": {"accession": accession, "database": database},
    }


def read(data: bytes, source_file: str) -> list[tuple[int, dict[str, object]]]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False)
    try:
        root = etree.parse(io.BytesIO(data), parser).getroot()
    except etree.XMLSyntaxError as error:
        raise ReviewError(f"{source_file}:{error.lineno or 1}: malformed or truncated XML "
                          f"({error.msg})") from None
    refuse_entities(root, source_file)
    if root.tag != "xml" or root.find("records") is None:
        raise ReviewError(f"{source_file}:{root.sourceline or 1}: not EndNote XML (expected "
                          f"<xml><records>, found <{root.tag}>)")
    return [(record.sourceline or 1, _fields(record))
            for record in root.iterfind("records/record")]
