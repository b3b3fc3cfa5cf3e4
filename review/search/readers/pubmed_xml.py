"""PubMed XML: EFetch responses and the web's "Send to: File → XML" export.

Parsed with lxml's iterparse, which keeps memory flat on large files. External entities are
never resolved and no DTD is fetched; a file whose DTD declares entities is refused, as the
parser reports it (not by searching the text, which a comment or the DOCTYPE can fool).
"""

from __future__ import annotations

import io
from collections.abc import Iterable

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


def _doi(identifiers: Iterable[etree._Element], locations: Iterable[etree._Element]) -> str:
    for identifier in identifiers:
        if identifier.get("IdType") == "doi" and identifier.text:
            return identifier.text
    for location in locations:
        if location.get("EIdType") == "doi" and location.text:
            return location.text
    return ""


def _authors(authors: Iterable[etree._Element]) -> list[str]:
    found = []
    for author in authors:
        last, initials = author.findtext("LastName"), author.findtext("Initials")
        collective = author.findtext("CollectiveName")
        if last:
            found.append(f"{last} {initials}" if initials else last)
        elif collective:
            found.append(collective)
    return found


def _abstract(parts: Iterable[etree._Element]) -> str:
    texts = []
    for part in parts:
        label = part.get("Label")
        content = _text(part).strip()
        texts.append(f"{label}: {content}" if label else content)
    return " ".join(texts)


def _mesh(headings: Iterable[etree._Element]) -> list[str]:
    mesh = []
    for heading in headings:
        descriptor = heading.findtext("DescriptorName") or ""
        mesh.append(descriptor)
        mesh += [f"{descriptor}/{q.text}" for q in heading.iterfind("QualifierName") if q.text]
    return mesh


def _children(element: etree._Element | None) -> dict[object, etree._Element]:
    """An element's first child of each tag, found in one pass over its children."""
    first: dict[object, etree._Element] = {}
    for child in element if element is not None else ():
        first.setdefault(child.tag, child)
    return first


def _child_text(children: dict[object, etree._Element], tag: str) -> str:
    child = children.get(tag)
    return (child.text or "") if child is not None else ""


def article_fields(article: etree._Element) -> dict[str, object]:
    """The normalised fields of one PubmedArticle or PubmedBookArticle element.

    A journal article is read by its children's fixed paths: a descendant search walks the
    whole article, its reference list too (whose DOIs are other works'), once per field. The
    single fields are taken from each level's children, found in one pass, not by a path
    search per field."""
    citation = article.find("MedlineCitation")
    journal_article = citation.find("Article") if citation is not None else None
    if article.tag != "PubmedArticle" or journal_article is None:
        return _any_article_fields(article)
    cited = _children(citation)
    parts = _children(journal_article)
    journal = _children(parts.get("Journal"))
    issue = _children(journal.get("JournalIssue"))
    date = _children(issue.get("PubDate"))
    pagination = _children(parts.get("Pagination"))
    pmid = _child_text(cited, "PMID")
    year = (_child_text(date, "Year") or _child_text(date, "MedlineDate")
            or _child_text(_children(parts.get("ArticleDate")), "Year") or _year(article))
    pages = _child_text(pagination, "MedlinePgn") or "-".join(
        value for value in (_child_text(pagination, "StartPage"),
                            _child_text(pagination, "EndPage")) if value)
    return {
        "line": article.sourceline or 1, "export_id": pmid or "", "pmid": pmid,
        "doi": _doi(article.iterfind("PubmedData/ArticleIdList/ArticleId"),
                    journal_article.iterfind("ELocationID")),
        "title": _text(parts.get("ArticleTitle")),
        "abstract": _abstract(journal_article.iterfind("Abstract/AbstractText")),
        "authors": _authors(journal_article.iterfind("AuthorList/Author")),
        "journal": _child_text(journal, "Title"),
        "year": year,
        "volume": _child_text(issue, "Volume"),
        "issue": _child_text(issue, "Issue"),
        "pages": pages,
        "publication_types": [t.text or "" for t in
                              journal_article.iterfind("PublicationTypeList/PublicationType")],
        "mesh_terms": _mesh(citation.iterfind("MeshHeadingList/MeshHeading")),
        "keywords": [_text(k) for k in citation.iterfind("KeywordList/Keyword")],
        "language": _child_text(parts, "Language"),
        "extra": {"journal_abbreviation": _child_text(journal, "ISOAbbreviation")},
    }


def _any_article_fields(article: etree._Element) -> dict[str, object]:
    """A book article, or an article of unusual shape: each field wherever it is."""
    pmid = article.findtext("MedlineCitation/PMID") or article.findtext("BookDocument/PMID")
    title = _text(article.find(".//ArticleTitle")) or _text(article.find(".//BookTitle"))
    pages = article.findtext(".//Pagination/MedlinePgn") or "-".join(
        value for value in (article.findtext(".//Pagination/StartPage"),
                            article.findtext(".//Pagination/EndPage")) if value)
    doi = _doi(article.iterfind(".//ArticleIdList/ArticleId"), article.iterfind(".//ELocationID"))
    return {
        "line": article.sourceline or 1, "export_id": pmid or "", "pmid": pmid, "doi": doi,
        "title": title, "abstract": _abstract(article.iterfind(".//Abstract/AbstractText")),
        "authors": _authors(article.iterfind(".//AuthorList/Author")),
        "journal": article.findtext(".//Journal/Title") or "",
        "year": _year(article),
        "volume": article.findtext(".//JournalIssue/Volume") or "",
        "issue": article.findtext(".//JournalIssue/Issue") or "",
        "pages": pages,
        "publication_types": [t.text or "" for t in article.iterfind(".//PublicationType")],
        "mesh_terms": _mesh(article.iterfind(".//MeshHeadingList/MeshHeading")),
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
    options = {"resolve_entities": False, "no_network": True, "load_dtd": False,
               "huge_tree": False}
    articles = []
    try:
        # The root alone first (the parser stops after its start tag), then only the
        # articles' end events: the parser skips every other element without a Python call.
        for _, root in etree.iterparse(io.BytesIO(data), events=("start",), **options):
            refuse_entities(root, source_name)
            if root.tag != "PubmedArticleSet":
                raise ReviewError(f"{source_name}:{root.sourceline}: not PubMed XML "
                                  f"(the root element is <{root.tag}>)")
            break
        for _, element in etree.iterparse(io.BytesIO(data), events=("end",), tag=ARTICLE_TAGS,
                                          **options):
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

