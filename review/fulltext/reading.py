"""Reading a full text: where the protocol's keywords occur in it, and a search of its text.

The text is the one extracted when the PDF was stored; the keyword counts are computed once
per text and protocol (`review.cache`), not on every page view.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from review.cache import cached
from review.fulltext.store import FullText, FullTextStore
from review.workspace import Workspace

SNIPPET_WIDTH = 80
MOST_SNIPPETS = 30


@dataclass(frozen=True)
class KeywordHit:
    keyword: str
    kind: str  # include or exclude
    count: int
    first_page: int | None  # from 1


@dataclass(frozen=True)
class Snippet:
    page: int  # from 1
    before: str
    match: str
    after: str


def _count(text: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> list[KeywordHit]:
    pages = text.split("\f")
    hits = []
    for kind, words in (("include", include), ("exclude", exclude)):
        for word in words:
            pattern = re.compile(re.escape(word), re.IGNORECASE)
            counts = [len(pattern.findall(page)) for page in pages]
            first = next((number for number, count in enumerate(counts, 1) if count), None)
            hits.append(KeywordHit(word, kind, sum(counts), first))
    return hits


def keyword_hits(workspace: Workspace, entry: FullText) -> list[KeywordHit]:
    """How often each of the protocol's screening keywords occurs in the full text, and on
    which page first."""
    store = FullTextStore(workspace)
    screening = workspace.protocol.screening
    return cached(workspace.root, "fulltext-keywords",
                  [store.text_path(entry.sha256), workspace.protocol_path],
                  lambda: _count(store.read_text(entry), screening.include_keywords,
                                 screening.exclude_keywords),
                  lambda hits: [hit.__dict__ for hit in hits],
                  lambda rows: [KeywordHit(**row) for row in rows])


def search_text(text: str, query: str) -> tuple[int, list[Snippet]]:
    """Every occurrence of `query` in the text (any case, white space as any white space):
    how many, and the first few with their context."""
    words = query.split()
    if not words:
        return 0, []
    pattern = re.compile(r"\s+".join(re.escape(word) for word in words), re.IGNORECASE)
    found = 0
    snippets = []
    for number, page in enumerate(text.split("\f"), start=1):
        for match in pattern.finditer(page):
            found += 1
            if len(snippets) < MOST_SNIPPETS:
                before = " ".join(page[max(0, match.start() - SNIPPET_WIDTH):match.start()]
                                  .split())
                after = " ".join(page[match.end():match.end() + SNIPPET_WIDTH].split())
                snippets.append(Snippet(number, before, " ".join(match.group(0).split()),
                                        after))
    return found, snippets
