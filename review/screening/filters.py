"""A reviewer's view of the records of a stage narrowed by what they decided, tagged, where
the records come from, when, what they say, whether a full text is attached, and (for
adjudicators, who see every vote) whether they are in conflict. The same filter serves the
web page, its bulk actions and `review screen list`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from review.errors import ReviewError
from review.screening.decisions import Decision, DecisionStore, own_decisions
from review.screening.flow import ScreeningState
from review.screening.tags import TagStore
from review.search.records import Record

DECISION_CHOICES = ("undecided", "include", "exclude", "maybe", "not-retrieved")
YEARS = re.compile(r"(\d{4})(?:\s*-\s*(\d{4}))?")


@dataclass(frozen=True)
class RecordFilter:
    """Every criterion given must hold; empty ones are not applied."""

    decision: str = ""  # the reviewer's own latest decision, or "undecided"
    tag: str = ""
    source: str = ""
    year: str = ""  # 2019, or a range 2015-2020
    keyword: str = ""  # in the title, abstract or keywords, any case
    fulltext: str = ""  # "yes" or "no"
    conflict: str = ""  # "yes": in conflict (adjudicators only)

    def __post_init__(self) -> None:
        if self.decision and self.decision not in DECISION_CHOICES:
            raise ReviewError(f"filter decision '{self.decision}' is not one of: "
                              f"{', '.join(DECISION_CHOICES)}")
        if self.year and not YEARS.fullmatch(self.year.strip()):
            raise ReviewError(f"filter year '{self.year}': a year (2019) or a range "
                              "(2015-2020)")
        for name in ("fulltext", "conflict"):
            if getattr(self, name) not in ("", "yes", "no"):
                raise ReviewError(f"filter {name} '{getattr(self, name)}': yes or no")

    @property
    def empty(self) -> bool:
        return not any(getattr(self, item.name) for item in fields(self))

    def describe(self) -> str:
        """The filter in words, for a bulk decision's note and the confirmation."""
        parts = [f"{item.name} {getattr(self, item.name)}" for item in fields(self)
                 if getattr(self, item.name)]
        return ", ".join(parts) or "no filter"

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> RecordFilter:
        """From `key=value` pairs (the CLI's --filter, a page's query), unknown keys refused."""
        names = {item.name for item in fields(cls)}
        values: dict[str, str] = {}
        for key, value in pairs:
            if key not in names:
                raise ReviewError(f"unknown filter '{key}' (filters: {', '.join(sorted(names))})")
            values[key] = " ".join(str(value).split())
        return cls(**values)


def parse_filter_options(options: Iterable[str]) -> RecordFilter:
    pairs = []
    for option in options:
        key, equals, value = option.partition("=")
        if not equals:
            raise ReviewError(f"--filter {option}: write KEY=VALUE (e.g. decision=include)")
        pairs.append((key.strip(), value))
    return RecordFilter.from_pairs(pairs)


def _in_years(year: str, wanted: str) -> bool:
    found = YEARS.fullmatch(wanted.strip())
    first, last = found.group(1), found.group(2) or found.group(1)
    return year.isdigit() and first <= year <= last


def filter_records(records: Iterable[Record], rule: RecordFilter, *,
                   own: Mapping[str, Decision], tags: Mapping[str, set[str]],
                   fulltexts: set[str] = frozenset(), conflicts: set[str] | None = None
                   ) -> list[Record]:
    """The records that satisfy `rule`, in their order; `own` is the reviewer's latest
    decision per record, `tags` their tags; `conflicts` is given only to adjudicators."""
    if rule.conflict and conflicts is None:
        raise ReviewError("only an adjudicator filters by conflict: a reviewer never learns "
                          "another's decision")
    keyword = rule.keyword.lower()
    chosen = []
    for record in records:
        decided = own.get(record.record_id)
        if rule.decision == "undecided" and decided is not None:
            continue
        if rule.decision not in ("", "undecided") and (decided is None
                                                       or decided.decision != rule.decision):
            continue
        if rule.tag and rule.tag.lower() not in {t.lower() for t in
                                                 tags.get(record.record_id, ())}:
            continue
        if rule.source and rule.source.lower() != record.source.lower():
            continue
        if rule.year and not _in_years(record.year, rule.year):
            continue
        if keyword and keyword not in " ".join((record.title, record.abstract,
                                                *record.keywords)).lower():
            continue
        if rule.fulltext and (record.record_id in fulltexts) != (rule.fulltext == "yes"):
            continue
        if rule.conflict and (record.record_id in (conflicts or set())) != \
                (rule.conflict == "yes"):
            continue
        chosen.append(record)
    return chosen


@dataclass(frozen=True)
class ReviewerView:
    """A reviewer's filtered records with their own decisions and tags."""

    records: list[Record]
    own: dict[str, Decision]
    tags: dict[str, set[str]]


def reviewer_view(state: ScreeningState, screening_dir: Path, stage: str, reviewer: str,
                  rule: RecordFilter, *, fulltexts: set[str] = frozenset(),
                  sees_conflicts: bool = False) -> ReviewerView:
    """The records of `stage` that `rule` keeps for `reviewer`, read from their own decision
    and tag files; conflicts are offered only to one who `sees_conflicts` (an adjudicator)."""
    own = own_decisions(DecisionStore(screening_dir), stage, reviewer)
    tags = TagStore(screening_dir).tags(reviewer)
    conflicting = {record for record, final in state.final[stage].items()
                   if final.decision == "conflict"} if sees_conflicts else None
    chosen = filter_records(state.candidates(stage), rule, own=own, tags=tags,
                            fulltexts=fulltexts, conflicts=conflicting)
    return ReviewerView(chosen, own, tags)
