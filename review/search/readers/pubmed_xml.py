"""PubMed XML: EFetch responses and the web's "Send to: File → XML" export.

Parsed with lxml's iterparse, which keeps memory flat on large files. External entities are
never resolved and no DTD is fetched; a file whose DTD declares entities is refused, as the
parser reports it (not by searching the text, which a comment or the DOCTYPE can fool).
"""

from __future__ import annotations

import io

from lxml import etree

from review.errors import ReviewError

ARTICLE_TAGS = ("PubmedArticle", "PubmedBookArticle")


def _text(element: etree._Element | None) -> str:
    return "".join(element.itertext()) if element is not None else ""


def _year(article: etree._Element) -> str:
    for path in (".//JournalIssue/PubDate/Year", ".//JournalIssue/PubDate/MedlineDate",
                 ".//ArticleDate/Year", ".//Book/PubDate/Year", ".//PubDate/Year"):
        value = article.findtext(path)
        if value:
            return value
    return ""


def article_fields(article: etree._Element) -> dict[str, object]:
    """The normalised fields of one PubmedArticle or PubmedBookArticle element."""
    pmid = article.findtext("MedlineCitation/PMID") or article.findtext("BookDocument/PMID")
    title = _text(article.find(".//ArticleTitle")) or _text(article.find(".//BookTitle"))
    abstract_parts = []
    for part in article.iterfind(".//Abstract/AbstractText"):
        label = part.get("Label")
        content = _text(part).strip()
        abstract_parts.append(f"{label}: {content}" if label else content)
    authors = []
    for author in article.iterfind(".//AuthorList/Author"):
        last, initials = author.findtext("LastName"), author.findtext("Initials")
        collective = author.findtext("CollectiveName")
        if last:
            authors.append(f"{last} {initials}" if initials else last)
        elif collective:
            authors.append(collective)
    pages = article.findtext(".//Pagination/MedlinePgn") or "-".join(
        value for value in (article.findtext(".//Pagination/StartPage"),
                            article.findtext(".//Pagination/EndPage")) if value)
    mesh = []
    for heading in article.iterfind(".//MeshHeadingList/MeshHeading"):
        descriptor = heading.findtext("DescriptorName") or ""
        mesh.append(descriptor)
        mesh += [f"{descriptor}/{q.text}" for q in heading.iterfind("QualifierName") if q.text]
    doi = ""
    for identifier in article.iterfind(".//ArticleIdList/ArticleId"):
        if identifier.get("IdType") == "doi" and identifier.text:
            doi = identifier.text
            break
    if not doi:
        for location in article.iterfind(".//ELocationID"):
            if location.get("EIdType") == "doi" and location.text:
                doi = location.text
                break
    return {
        "line": article.sourceline or 1, "export_id": pmid or "", "pmid": pmid, "doi": doi,
        "title": title, "abstract": " ".join(abstract_parts),
        "authors": authors,
        "journal": article.findtext(".//Journal/Title") or "",
        "year": _year(article),
        "volume": article.findtext(".//JournalIssue/Volume") or "",
        "issue": article.findtext(".//JournalIssue/Issue") or "",
        "pages": pages,
        "publication_types": [t.text or "" for t in article.iterfind(".//PublicationType")],
        "mesh_terms": mesh,
        "keywords": [_text(k) for k in article.iterfind(".//KeywordList/Keyword")],
        "language": article.findtext(".//Language") or "",
        "extra": {"journal_abbreviation": article.findtext(".//Journal/ISOAbbreviation") or ""},
    }


def refuse_entities(element: etree._Element, source_name: str) -> None:
    """Refuse a document whose internal DTD declares entities (general or parameter)."""
    dtd = element.getroottree().docinfo.internalDTD
    declared = [entity.name for entity in dtd.iterentities()] if dtd is not None else []
    if declared:
        raise ReviewError(f"{source_name}:{element.sourceline or 1}: the XML declares "
                          f"entities ({', '.join(declared[:3])}), which are refused (they "
                          "can read local files or reach the network)")


def parse_articles(data: bytes, source_name: str) -> list[dict[str, object]]:
    """Fields of every article in a PubMed XML document; raises ReviewError with the line of
    the first problem for malformed, truncated or unsafe XML."""
    articles = []
    root_checked = False
    try:
        for event, element in etree.iterparse(
            io.BytesIO(data), events=("start", "end"), resolve_entities=False,
            no_network=True, load_dtd=False, huge_tree=False,
        ):
            if not root_checked:
                refuse_entities(element, source_name)
                if element.tag != "PubmedArticleSet":
                    raise ReviewError(f"{source_name}:{element.sourceline}: not PubMed XML "
                                      f"(the root element is <{element.tag}>)")
                root_checked = True
            if event == "end" and element.tag in ARTICLE_TAGS:
                articles.append(article_fields(element))
                element.clear(keep_tail=False)
                while element.getprevious() is not None:
                    del element.getparent()[0]
    except etree.XMLSyntaxError as error:
        line = error.lineno or data.count(b"\n") + 1
        raise ReviewError(f"{source_name}:{line}: malformed or truncated XML "
                          f"({error.msg})") from None
    return articles


def read(data: bytes, source_file: str) -> list[tuple[int, dict[str, object]]]:
    entries = []
    for fields in parse_articles(data, source_file):
        line = int(fields.pop("line"))
        entries.append((line, fields))
    return entries

