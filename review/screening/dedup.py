"""De-duplication: records that describe the same work become one cluster.

Stages: `profile` prepares what matching needs of a record (titles without database
annotations, venues without conference suffixes, volume and first page); `candidate_pairs`
blocks (shared PMID, DOI, title words, or year, volume and first page; and, by windows of
titles, first author and year), so cost grows linearly with the records; `compare_records`
decides a pair with rules tuned on real labelled exports (tests/fixtures/dedup/labelled) and
real-world traps: a DOI mistyped onto
another paper, Cochrane review versions (.pub2/.pub3), online-first and issue years, a
conference version and its journal paper, annual introductions with the same title, the same
title in the next volume, errata, replies and retraction notices; `deduplicate` clusters.
Nothing is deleted: a cluster keeps its most complete record and lists every member with the
rule that joined it; uncertain pairs wait for a reviewer, whose verdicts are stored and never
asked again.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz.distance import Indel

from review.cache import cached, remember
from review.errors import ReviewError
from review.fileio import read_text, spreadsheet_safe
from review.search.records import (
    Record,
    RecordStore,
    identified_via_other_methods,
    identity_key,
)
from review.transaction import commit, workspace_lock
from review.workspace import Workspace

NOTICE_TYPES = {"published erratum", "erratum", "correction", "retraction notice",
                "retraction of publication", "comment", "expression of concern"}
# Web of Science titles a correction "Title (vol 360, pg 542, 2009)"; replies end in "Reply".
NOTICE_TITLE_ANYWHERE = re.compile(r"\(vol \d+, pg \w+|(\s-\s|\bauthors?'? |\bin )reply\W*$|"
                                   r"\s-\s?reply to\b|\beditorial comment\W*$",
                                   re.IGNORECASE)
NOTICE_TITLE = re.compile(r"^(correction|erratum|corrigendum|retraction|retracted|comment on|"
                          r"reply to|response to|expression of concern)\b")
CONFERENCE_TYPES = {"congress", "conference abstract", "conference paper", "meeting abstract",
                    "conference review", "proceedings paper", "conf", "cpaper", "abst",
                    "inproceedings"}
GENERIC_TITLES = {"", "unknown", "book review", "editorial", "erratum", "correction",
                  "letter to the editor", "reply", "untitled"}
VENUE_STOP_WORDS = {"of", "the", "and", "for", "in", "on", "de", "la", "y", "der", "die",
                    "des", "du", "et"}
# Database annotations that are not part of a title: "[Review] [45 refs]", "[French]",
# "[Erratum appears in …]" (often cut off), "(Provisional abstract)", "(multiple letters)".
TITLE_ANNOTATIONS = re.compile(
    r"\[[^\]]*\]|\[(erratum|comment|retraction|summary|article)[^\]]*$|"
    r"\((provisional|structured) abstract\)|\(multiple letters?\)|"
    r"\(author'?s transl\)|\(structured abstract\)", re.IGNORECASE)
# Ovid appends the original-language title and language to a translated one: "… LA: Chi",
# "… TO: Espirometria incentivada …".
TRAILING_FIELDS = re.compile(r"\s+(LA|TO|OT|ST):\s.*$")
# Where a venue's name ends and a conference, a translation or a note begins: "Circulation.
# Conference: 84th Scientific Sessions", "Ai zheng = Chinese journal of cancer", "(1946)".
# Words that name a venue's edition or form, not the venue: "Proceedings of the 51st Annual
# Hawaii International Conference" is the Hawaii International Conference.
VENUE_EDITION = re.compile(r"\d+(st|nd|rd|th)?|proceedings|proc|annual|abstracts?")
VENUE_END = re.compile(r"\.\s*(conference|congress|meeting)\b.*$| = .*$|;.*$|\(\d{4}\)|"
                       r"\[[^\]]*\]", re.IGNORECASE)
SAME_TITLE = 0.95
SAME_TITLE_ACROSS_YEARS = 0.97
UNCERTAIN_TITLE = 0.85
CONFLICTING_TITLE = 0.6
# Exact blocks up to this size are compared pair by pair; larger ones (a DOI a whole
# supplement's abstracts share, a title's first words that many share) by windows of titles.
# This size and the window's were chosen by measurement (benchmarks/dedup_blocking.py): with
# them the pairs grow with exponent 1.28 from 50,000 to 200,000 generated records (200 and 5
# gave 1.36), and precision and recall stayed the same on the generated and labelled sets.
MAX_BLOCK = 50
# How many neighbours in title order a record meets in a block searched by windows.
AUTHOR_WINDOW = 4
MAX_ISSUE = 53


@dataclass(frozen=True)
class Verdict:
    """Whether two records are the same work (None: a reviewer must decide), and why."""

    duplicate: bool | None
    rule: str


@dataclass(frozen=True)
class Profile:
    """What matching needs of a record, computed once."""

    record: Record
    title: str
    title_words: frozenset[str]
    title_numbers: tuple[str, ...]
    first_author: frozenset[str]
    authors: frozenset[str]
    venue: tuple[str, ...]
    year: int | None
    volume: str
    issue: str  # the issue's number; '' when unknown or not a plain number ("Suppl 1")
    start_page: str
    pages: tuple[int, int] | None  # a numeric page range; None for e-locators and unknown
    doi_family: str
    notice: bool
    conference: bool
    translated: bool  # MEDLINE brackets a title translated into English

    @property
    def record_id(self) -> str:
        return self.record.record_id


def _surname_tokens(authors: Sequence[str]) -> frozenset[str]:
    """Words of three or more letters in the first author's name, whatever the format
    ("Abrahao, Bruno", "B. Abrahao", "Abrahao B", "Tan A.Schulze A.")."""
    if not authors:
        return frozenset()
    first = identity_key(authors[0])
    tokens = [token for token in first.split() if len(token) >= 3 and token != "unknown"]
    return frozenset(tokens[:3])


def _author_surnames(authors: Sequence[str]) -> frozenset[str]:
    """Surname words of the first three authors, to recognise a first author listed second."""
    return frozenset(word for author in authors[:3] for word in _surname_tokens([author]))


def _venue(journal: str) -> tuple[str, ...]:
    name = VENUE_END.sub("", journal.replace("&", " and ").replace("?", ""))
    return tuple(word for word in identity_key(name).split()
                 if word not in VENUE_STOP_WORDS and not VENUE_EDITION.fullmatch(word))


def _acronym_of(acronym: str, words: tuple[str, ...]) -> bool:
    """Whether a one-word venue abbreviates the others by their first letters or syllables
    ("amcis": AMericas Conference on Information Systems; "hicss")."""
    if not words:
        return not acronym
    if not acronym:
        return False
    word = words[0]
    return any(acronym.startswith(word[:length]) and _acronym_of(acronym[length:], words[1:])
               for length in range(min(len(word), len(acronym)), 0, -1))


def prepared_title(title: str) -> str:
    """A title without database annotations and the brackets MEDLINE puts around a title
    translated into English, folded for matching."""
    text = TRAILING_FIELDS.sub("", title.strip().strip('"').strip())
    if text.startswith("["):
        close = text.find("]")
        if close > len(text) / 2:
            text = text[1:close] + text[close + 1:]
    return identity_key(TITLE_ANNOTATIONS.sub(" ", text))


def _volume(value: str) -> str:
    """A volume's number ("187 ( Pt 1)" and "1)" are 187 and 1); a volume field holding no
    number ("Ph.D.", "SUPPL", "(Jul)") says nothing, so it is unknown, never a different
    volume."""
    found = re.match(r"\s*(\d+)", value)
    return found.group(1) if found else ""


def _issue(value: str) -> str:
    """An issue's number. Larger numbers than a weekly journal's are not issues: exports put
    record and accession numbers in the same field ("number = 1112")."""
    found = re.fullmatch(r"\s*(\d+)\s*", value)
    return str(int(found.group(1))) if found and 0 < int(found.group(1)) <= MAX_ISSUE else ""


def _start_page(pages: str) -> str:
    """The first page's number: "c37" and "37", "e43268" and "43268" are one page."""
    found = re.match(r"\s*[A-Za-z]{0,2}(\d+)", pages)
    return found.group(1).lstrip("0") if found else ""


def _page_range(pages: str) -> tuple[int, int] | None:
    """First and last page of a printed range ("123-9" is 123-129); None for an e-locator
    ("e12724", "a1754") or an article's own numbering ("1-6"), which say nothing about where
    it stands in the volume."""
    found = re.fullmatch(r"\s*(\d+)\s*(?:[-–]+\s*(\d+))?\s*", pages)
    if not found:
        return None
    first = int(found.group(1))
    last_text = found.group(2) or found.group(1)
    if len(last_text) < len(found.group(1)):
        last_text = found.group(1)[: len(found.group(1)) - len(last_text)] + last_text
    last = max(int(last_text), first)
    return None if first == 1 else (first, last)


def same_pages(a: Profile, b: Profile) -> bool | None:
    """True for the same first page, or a single page inside the other's range (an export
    that gives the last page alone); False for two different placed ranges; None when a
    first page is unknown or cannot be placed."""
    if not a.start_page or not b.start_page:
        return None
    if a.start_page == b.start_page:
        return True
    if a.pages is None or b.pages is None:
        return None
    for one, other in ((a.pages, b.pages), (b.pages, a.pages)):
        if one[0] == one[1] and other[0] <= one[0] <= other[1]:
            return True
    return False


def names_match(a: frozenset[str], b: frozenset[str]) -> bool:
    """Surname words that agree up to a letter or two ("Vishnevskii", "Vishnevski")."""
    return any(x == y or (min(len(x), len(y)) >= 5 and Indel.normalized_similarity(x, y) >= 0.85)
               for x in a for y in b)


def _one_lacks_the_subtitle(a: str, b: str) -> bool:
    """The shorter title, of two words or more, begins the longer one."""
    short, long = sorted((a, b), key=len)
    return len(short.split()) >= 2 and long.startswith(f"{short} ")


def contains_title(a: str, b: str) -> bool:
    """One title holds the other, of three words or more: a subtitle, a section heading or a
    second language added ("MEDICAL PROGRESS Atypical…", "…; Efeito da pressão…")."""
    short, long = sorted((a, b), key=len)
    return len(short.split()) >= 3 and f" {short} " in f" {long} "


def profile(record: Record) -> Profile:
    title = prepared_title(record.title)
    if title in GENERIC_TITLES or title == identity_key(record.journal) or (
            record.journal and title.startswith(identity_key(record.journal) + " "
                                                + identity_key(record.journal))):
        title = ""
    kinds = {kind.lower() for kind in record.publication_types}
    return Profile(
        record=record,
        title=title,
        title_words=frozenset(title.split()),
        title_numbers=tuple(re.findall(r"\d+", re.sub(r"(\d) (\d{3})\b", r"\1\2", title))),
        first_author=_surname_tokens(record.authors),
        authors=_author_surnames(record.authors),
        venue=_venue(record.journal),
        year=int(record.year) if record.year.isdigit() else None,
        volume=_volume(record.volume),
        issue=_issue(record.issue),
        start_page=_start_page(record.pages),
        pages=_page_range(record.pages),
        doi_family=re.sub(r"\.pub\d+$", "", record.doi),
        notice=bool(kinds & NOTICE_TYPES) or bool(NOTICE_TITLE.match(title))
        or bool(NOTICE_TITLE_ANYWHERE.search(record.title)),
        translated=record.title.strip().strip('"').startswith("["),
        conference=bool(kinds & CONFERENCE_TYPES),
    )


def venues_compatible(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Equal venues, or one an abbreviation of the other word by word ("Cochrane Database
    Syst Rev" and "Cochrane Database of Systematic Reviews"); unknown venues are compatible."""
    if not a or not b:
        return True
    short, long = sorted((a, b), key=len)
    if len(short) == 1 and len(long) >= 3 and 3 <= len(short[0]) <= 10 \
            and _acronym_of(short[0], long):
        return True
    if len(short) != len(long):
        return " ".join(short) in " ".join(long) and len(short) >= 2
    return all(x.startswith(y) or y.startswith(x) for x, y in zip(short, long, strict=True))


def title_similarity(a: str, b: str) -> float:
    """The normalised Indel similarity of two folded titles (difflib's ratio, computed by
    rapidfuzz)."""
    return 1.0 if a == b else Indel.normalized_similarity(a, b)


def _identifiers_agree(a: Profile, b: Profile, rule: str) -> Verdict:
    if a.title and b.title and title_similarity(a.title, b.title) < CONFLICTING_TITLE:
        if _one_lacks_the_subtitle(a.title, b.title):
            return Verdict(True, f"{rule}; one title lacks the other's subtitle")
        if rule == "same PMID":
            return Verdict(None, "same PMID but different titles")
        return Verdict(False, "same DOI but different titles (a DOI error)")
    return Verdict(True, rule)


def _agreement(a: str, b: str) -> bool | None:
    """True when both are known and equal, False when both are known and differ."""
    return None if not a or not b else a == b


def compare_records(a: Profile, b: Profile) -> Verdict:
    """Decide one pair of records: identifiers and vetoes first, then the bibliographic
    evidence. A record's place in the literature (year, volume and first page) is strong
    evidence: two records at the same place with a similar title, or by the same first
    author with one title translated, are one work whatever their venue spellings say;
    different volumes, or other pages of one volume, are different works."""
    volume, page = _agreement(a.volume, b.volume), same_pages(a, b)
    # Errata and notices share their article's place, so place says nothing about them.
    same_place = bool(volume and page and a.year == b.year and a.year is not None
                      and not a.notice)
    if a.notice != b.notice:
        return Verdict(False, "an erratum, retraction or comment is not the article it "
                              "refers to")
    pmids = a.record.pmid, b.record.pmid
    same_pmid = all(pmids) and pmids[0] == pmids[1]
    same_doi = bool(a.doi_family) and a.doi_family == b.doi_family
    if a.conference != b.conference:
        if same_pmid or same_doi:
            # One identifier for both: a database typed the record differently, or gave the
            # paper its abstract's DOI; a reviewer settles it, never silence.
            verdict = _identifiers_agree(a, b, "same PMID" if same_pmid else "same DOI")
            if verdict.duplicate:
                return Verdict(None, f"{verdict.rule}, but one record is a conference paper "
                                     "and the other is not")
            return verdict
        return Verdict(False, "a conference version is not its journal paper")
    if all(pmids):
        if same_pmid:
            return _identifiers_agree(a, b, "same PMID")
        return Verdict(False, "different PMIDs")
    if a.doi_family and b.doi_family:
        if same_doi:
            rule = "same DOI" if a.record.doi == b.record.doi else \
                "same DOI up to its version suffix"
            return _identifiers_agree(a, b, rule)
        return Verdict(False, "different DOIs")
    if not a.title or not b.title:
        return Verdict(False, "no usable title")
    if "cochrane" in a.venue and "cochrane" in b.venue and a.title == b.title and (
            a.start_page == b.start_page or not (a.start_page and b.start_page)):
        return Verdict(True, "a Cochrane review and its update (same title and review number)")
    if a.year is not None and b.year is not None and abs(a.year - b.year) > 1:
        return Verdict(False, "years more than one apart")
    if volume is False:
        return Verdict(False, "different volumes")
    if _agreement(a.issue, b.issue) is False and not (a.start_page and b.start_page):
        # A recurring column ("Editor's Comments") has one title, author and volume in every
        # issue; where both first pages are known, the pages tell the works apart instead.
        return Verdict(False, "different issues")
    similarity = title_similarity(a.title, b.title)
    same_author = (names_match(a.first_author, b.authors) or names_match(b.first_author, a.authors)
                   if a.first_author and b.first_author else None)
    if volume and page is False:
        if similarity >= SAME_TITLE and same_author:
            return Verdict(None, "same title and first author, but other pages of the volume")
        return Verdict(False, "different pages in the same volume")
    same_numbers = a.title_numbers == b.title_numbers
    # At the same place, "p6INK4a" against "p16(INK4a)" is a typing error, not another work.
    typed_numbers = same_place and similarity >= SAME_TITLE and len(a.title_numbers) == len(
        b.title_numbers) and all(x in y or y in x for x, y in zip(a.title_numbers,
                                                                   b.title_numbers, strict=True))
    venues = venues_compatible(a.venue, b.venue)
    if similarity >= SAME_TITLE and same_numbers and same_author is not False and venues:
        if a.year != b.year and similarity < SAME_TITLE_ACROSS_YEARS:
            return Verdict(None, "near-identical titles in different years")
        return Verdict(True, "same title, first author, year (±1) and venue")
    if not same_numbers and not typed_numbers:
        return Verdict(False, "the titles carry different numbers")
    if same_place:
        if similarity >= SAME_TITLE:
            return Verdict(True, "same year, volume, first page and title")
        if same_author is not False and similarity >= UNCERTAIN_TITLE:
            return Verdict(True, "same year, volume and first page, and a similar title")
        if same_author and (a.translated != b.translated or contains_title(a.title, b.title)):
            return Verdict(True, "same year, volume, first page and first author; one title "
                                 "translated or extended")
        if same_author:
            return Verdict(None, "same year, volume, first page and first author, but "
                                 "different titles (a translation?)")
    if same_author is False:
        return Verdict(False, "different first authors")
    if similarity < UNCERTAIN_TITLE:
        return Verdict(False, "different titles")
    if not venues:
        return Verdict(False, "different venues")
    return Verdict(None, f"similar titles ({similarity:.2f})")


def _title_head(item: Profile) -> tuple[str, ...]:
    words = item.title.split()
    return (" ".join(words[:3]),) if len(words) >= 3 else ()


def _title_tail(item: Profile) -> tuple[str, ...]:
    words = item.title.split()
    return (" ".join(words[-3:]),) if len(words) >= 3 else ()


def _place(item: Profile) -> tuple[tuple[int, str, str], ...]:
    if item.volume and item.start_page and item.year is not None:
        return ((item.year, item.volume, item.start_page),)
    return ()


def _author_years(item: Profile) -> tuple[tuple[str, int], ...]:
    """The first author in the record's year and the next, so that an online-first and an
    issue year one apart still meet."""
    if item.year is None:
        return ()
    return tuple((surname, year) for surname in item.first_author
                 for year in (item.year, item.year + 1))


# Each kind of block: the keys a record has of that kind, and whether a block of at most
# MAX_BLOCK records is compared pair by pair (exact keys) or searched by windows of titles
# (a first author's year, which grows with the search: a common surname in a big export).
BLOCK_KINDS: tuple[tuple[Callable[[Profile], tuple], bool], ...] = (
    (lambda item: (item.record.pmid,) if item.record.pmid else (), True),
    (lambda item: (item.doi_family,) if item.doi_family else (), True),
    (_title_head, True), (_title_tail, True), (_place, True), (_author_years, False))


def _blocks(profiles: Sequence[Profile]) -> Iterator[tuple[list[int], bool]]:
    """Each block of two or more records, with whether to compare it pair by pair (an exact
    block of at most `MAX_BLOCK` records) or by windows of titles. One kind of key at a time,
    so that only one kind's index is held at once."""
    for keys_of, exact in BLOCK_KINDS:
        blocks: dict[object, list[int]] = defaultdict(list)
        for index, item in enumerate(profiles):
            for key in keys_of(item):
                blocks[key].append(index)
        for members in blocks.values():
            if len(members) > 1:
                yield members, exact and len(members) <= MAX_BLOCK


def pair_codes(profiles: Sequence[Profile]) -> np.ndarray:
    """The candidate pairs, each coded `first * len(profiles) + second` (first < second),
    sorted and without repeats: every pair of an exact block; in an author's year and in an
    exact block too large to compare whole, each record with the `AUTHOR_WINDOW` records
    nearest it in title order, and in the order of its title's words read backwards (sorted
    neighbourhood, two passes), so that the pairs grow linearly with the records, not as their
    square. Eight bytes a pair: a set of tuples of millions of pairs took hundreds of MB."""
    size = len(profiles)
    codes = array("q")

    def add(first: int, second: int) -> None:
        codes.append(first * size + second if first < second else second * size + first)

    for members, whole in _blocks(profiles):
        if whole or len(members) <= AUTHOR_WINDOW + 1:
            for i, first in enumerate(members):
                for second in members[i + 1:]:
                    add(first, second)
            continue
        for key in (lambda i: profiles[i].title,
                    lambda i: " ".join(reversed(profiles[i].title.split()))):
            ordered = sorted(members, key=key)
            for i, first in enumerate(ordered):
                for second in ordered[i + 1:i + 1 + AUTHOR_WINDOW]:
                    add(first, second)
    return np.unique(np.frombuffer(codes, dtype=np.int64))


def candidate_pairs(profiles: Sequence[Profile]) -> set[tuple[int, int]]:
    """The candidate pairs of `pair_codes` as (first, second) indices."""
    return {divmod(code, len(profiles)) for code in pair_codes(profiles).tolist()}


def _decoded(codes: np.ndarray, size: int) -> Iterable[tuple[int, int]]:
    """The pairs of `pair_codes`, in order, decoded a slice at a time."""
    for start in range(0, len(codes), 65_536):
        for code in codes[start:start + 65_536].tolist():
            yield divmod(code, size)


@dataclass(frozen=True)
class PairDecision:
    """A reviewer's verdict on an uncertain pair, stored so it is never asked again."""

    record_a: str
    record_b: str
    duplicate: bool
    reviewer: str


@dataclass(frozen=True)
class Cluster:
    cluster_id: str
    kept: str
    members: tuple[str, ...]
    rules: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class DedupResult:
    clusters: list[Cluster]
    uncertain: list[tuple[str, str, str]]
    pairs_compared: int

    @property
    def duplicates_removed(self) -> int:
        return sum(len(cluster.members) - 1 for cluster in self.clusters)


def completeness(record: Record) -> tuple[int, int, int, int]:
    """How complete a record is: identifiers, abstract, then filled fields."""
    filled = sum(bool(getattr(record, name)) for name in (
        "title", "abstract", "authors", "journal", "year", "volume", "issue", "pages",
        "publication_types", "mesh_terms", "keywords", "language"))
    return (bool(record.pmid) + bool(record.doi), bool(record.abstract), filled,
            -len(record.record_id))


def deduplicate(records: Sequence[Record],
                decisions: Iterable[PairDecision] = ()) -> DedupResult:
    """Cluster the records; reviewers' decisions override the rules for their pairs."""
    profiles = [profile(record) for record in records]
    index = {item.record_id: i for i, item in enumerate(profiles)}
    decided = {frozenset((d.record_a, d.record_b)): d for d in decisions}
    parent = list(range(len(profiles)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    joined: list[tuple[int, int, str]] = []
    uncertain = []
    codes = pair_codes(profiles)
    for first, second in _decoded(codes, len(profiles)):
        a, b = profiles[first], profiles[second]
        stored = decided.get(frozenset((a.record_id, b.record_id)))
        if stored is not None:
            verdict = Verdict(stored.duplicate, f"reviewer {stored.reviewer}")
        else:
            verdict = compare_records(a, b)
        if verdict.duplicate is None:
            uncertain.append((a.record_id, b.record_id, verdict.rule))
        elif verdict.duplicate:
            joined.append((first, second, verdict.rule))
            parent[root(first)] = root(second)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(profiles)):
        groups[root(i)].append(i)
    rules_by_group: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
    for first, second, rule in joined:
        rules_by_group[root(first)].append((profiles[first].record_id,
                                            profiles[second].record_id, rule))
    clusters = []
    for group, members in groups.items():
        if len(members) < 2:
            continue
        kept = max((profiles[i].record for i in members), key=completeness)
        ids = tuple(sorted(profiles[i].record_id for i in members))
        clusters.append(Cluster(kept.record_id, kept.record_id, ids,
                                tuple(rules_by_group[group])))
    clusters.sort(key=lambda cluster: index[cluster.kept])
    still_open = [pair for pair in uncertain
                  if root(index[pair[0]]) != root(index[pair[1]])]
    return DedupResult(clusters, still_open, len(codes))


def dedup_to_json(result: DedupResult) -> dict[str, Any]:
    return {"clusters": [dataclasses.asdict(cluster) for cluster in result.clusters],
            "uncertain": [list(pair) for pair in result.uncertain],
            "pairs_compared": result.pairs_compared}


def dedup_from_json(data: dict[str, Any]) -> DedupResult:
    return DedupResult(
        clusters=[Cluster(cluster["cluster_id"], cluster["kept"], tuple(cluster["members"]),
                          tuple(tuple(rule) for rule in cluster["rules"]))
                  for cluster in data["clusters"]],
        uncertain=[tuple(pair) for pair in data["uncertain"]],
        pairs_compared=int(data["pairs_compared"]))


def _dedup_inputs(workspace: Workspace) -> list[Path]:
    return [workspace.search_dir / "records.jsonl", dedup_folder(workspace) / "decisions.csv"]


def stored_dedup(workspace: Workspace, compute: Callable[[], DedupResult]) -> DedupResult:
    """The de-duplication of the workspace's records under its stored pair verdicts:
    `compute()` once per state of the two files, kept in `review.cache`."""
    return cached(workspace.root, "dedup", _dedup_inputs(workspace), compute, dedup_to_json,
                  dedup_from_json)


def kept_records(records: Sequence[Record], result: DedupResult) -> list[Record]:
    """The records that go on to screening: every record not merged into another's cluster."""
    merged_away = {member for cluster in result.clusters for member in cluster.members
                   if member != cluster.kept}
    return [record for record in records if record.record_id not in merged_away]


DECISION_COLUMNS = ["record_a", "record_b", "duplicate", "reviewer"]
AUDIT_COLUMNS = ["cluster_id", "record_id", "kept", "source", "file", "position", "export_id",
                 "pmid", "doi", "year", "title"]
QUEUE_COLUMNS = ["record_a", "record_b", "reason", "title_a", "title_b", "year_a", "year_b",
                 "duplicate"]


def read_pair_decisions(path: Path) -> list[PairDecision]:
    if not path.exists():
        return []
    rows = list(csv.DictReader(io.StringIO(read_text(path))))
    decisions = []
    for number, row in enumerate(rows, start=2):
        verdict = (row.get("duplicate") or "").strip().lower()
        if verdict not in ("yes", "no"):
            raise ReviewError(f"{path}:{number}:duplicate: expected yes or no (got "
                              f"'{verdict}')")
        decisions.append(PairDecision(row["record_a"], row["record_b"], verdict == "yes",
                                      row.get("reviewer") or ""))
    return decisions


def read_filled_queue(path: Path, known: set[str], reviewer: str) -> list[PairDecision]:
    """A reviewer's verdicts from a copy of queue.csv whose duplicate column says yes or no
    (blank rows are left undecided)."""
    decisions = []
    rows = list(csv.DictReader(io.StringIO(read_text(path))))
    for number, row in enumerate(rows, start=2):
        verdict = (row.get("duplicate") or "").strip().lower()
        if not verdict:
            continue
        if verdict not in ("yes", "no"):
            raise ReviewError(f"{path}:{number}:duplicate: expected yes or no (got "
                              f"'{verdict}')")
        if row.get("record_a") not in known or row.get("record_b") not in known:
            raise ReviewError(f"{path}:{number}:record_a: no such pair of records")
        decisions.append(PairDecision(row["record_a"], row["record_b"], verdict == "yes",
                                      reviewer))
    return decisions


def _csv(rows: list[dict], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()}
                     for row in rows)
    return buffer.getvalue().encode("utf-8")


def dedup_files(folder: Path, records: Sequence[Record], result: DedupResult,
                decisions: Sequence[PairDecision]) -> dict[Path, bytes]:
    """The audit (every cluster with the rule that joined each pair), the pending queue and
    the stored decisions, to be written together."""
    by_id = {record.record_id: record for record in records}
    audit = []
    for cluster in result.clusters:
        for member in cluster.members:
            record = by_id[member]
            audit.append({"cluster_id": cluster.cluster_id, "record_id": member,
                          "kept": "yes" if member == cluster.kept else "no",
                          "source": record.source, "file": record.source_file,
                          "position": record.position or "", "export_id": record.export_id,
                          "pmid": record.pmid, "doi": record.doi, "year": record.year,
                          "title": record.title})
        for first, second, rule in cluster.rules:
            audit.append({"cluster_id": cluster.cluster_id, "record_id": f"{first}+{second}",
                          "title": f"joined by: {rule}"})
    queue = [{"record_a": a, "record_b": b, "reason": reason,
              "title_a": by_id[a].title, "title_b": by_id[b].title,
              "year_a": by_id[a].year, "year_b": by_id[b].year, "duplicate": ""}
             for a, b, reason in result.uncertain]
    return {
        folder / "clusters.csv": _csv(audit, AUDIT_COLUMNS),
        folder / "queue.csv": _csv(queue, QUEUE_COLUMNS),
        folder / "decisions.csv": _csv([{"record_a": d.record_a, "record_b": d.record_b,
                                         "duplicate": "yes" if d.duplicate else "no",
                                         "reviewer": d.reviewer} for d in decisions],
                                       DECISION_COLUMNS),
    }


def dedup_folder(workspace: Workspace) -> Path:
    return workspace.data_dir / "dedup"


def database_records(workspace: Workspace) -> list[Record]:
    """The records that de-duplication and title/abstract screening see: all but those
    identified via other methods."""
    return [record for record in RecordStore(workspace.search_dir / "records.jsonl").load()
            if not identified_via_other_methods(record)]


@dataclass(frozen=True)
class DedupUpdate:
    records: list[Record]
    result: DedupResult
    decisions: list[PairDecision]


def update_dedup(workspace: Workspace, verdicts: Iterable[PairDecision] = ()) -> DedupUpdate:
    """Add reviewers' verdicts to the stored ones and rewrite the audit, the queue and the
    verdicts as one change, as the workspace's one writer: verdicts stored meanwhile by
    another reviewer are read inside the lock, so none is lost."""
    folder = dedup_folder(workspace)
    verdicts = list(verdicts)
    with workspace_lock(workspace.root, "dedup"):
        records = database_records(workspace)
        decisions = [*read_pair_decisions(folder / "decisions.csv"), *verdicts]

        def compute() -> DedupResult:
            return deduplicate(records, decisions)

        # With no new verdict the stored result of these files (`review status`'s, say) is
        # the result; one computed here is kept for the files as written, so that the next
        # status or page reads it instead of de-duplicating the records again.
        result = stored_dedup(workspace, compute) if not verdicts else compute()
        commit(workspace.root, dedup_files(folder, records, result, decisions))
        remember(workspace.root, "dedup", _dedup_inputs(workspace), result, dedup_to_json)
    return DedupUpdate(records, result, decisions)
