"""From identified records to included studies: screening sets, agreement, PRISMA 2020.

Records from databases and registers are de-duplicated and screened on title and abstract;
those that advance, and the reports found by other methods (reference lists, web searches),
are sought and assessed in full text. Every count of the PRISMA 2020 flow diagram is derived
here from the record store, the de-duplication decisions, the screening decisions and the
extraction sheet; none is typed.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from review.errors import ReviewError
from review.screening.decisions import (
    ADJUDICATOR,
    Decision,
    DecisionStore,
    FinalDecision,
    final_decisions,
    latest_by_reviewer,
    outcome_of,
)
from review.screening.dedup import (
    DedupResult,
    dedup_folder,
    deduplicate,
    kept_records,
    read_pair_decisions,
    stored_dedup,
)
from review.search.records import (
    Record,
    RecordStore,
    identified_via_other_methods,
)
from review.transaction import settle
from review.workspace import Workspace


@dataclass(frozen=True)
class ScreeningState:
    records: list[Record]
    dedup: DedupResult
    title_abstract: list[Record]
    full_text: list[Record]
    decisions: dict[str, list[Decision]]
    final: dict[str, dict[str, FinalDecision]]

    def candidates(self, stage: str) -> list[Record]:
        return self.title_abstract if stage == "title-abstract" else self.full_text


@dataclass(frozen=True)
class DeduplicatedRecords:
    """The records and their de-duplication: what screening starts from."""

    records: list[Record]
    dedup: DedupResult
    screened: list[Record]
    other: list[Record]


def deduplicated_records(workspace: Workspace) -> DeduplicatedRecords:
    """The records with their de-duplication, computed once per state of the records and
    the pair decisions (see `review.cache`)."""
    settle(workspace.root)
    records = RecordStore(workspace.search_dir / "records.jsonl").load()
    database = [r for r in records if not identified_via_other_methods(r)]
    other = [r for r in records if identified_via_other_methods(r)]
    dedup = stored_dedup(workspace, lambda: deduplicate(database, read_pair_decisions(
        dedup_folder(workspace) / "decisions.csv")))
    return DeduplicatedRecords(records, dedup, kept_records(database, dedup), other)


def screening_state(workspace: Workspace,
                    prepared: DeduplicatedRecords | None = None) -> ScreeningState:
    """Screening as it stands; `prepared` spares the de-duplication when the caller knows the
    records and pair decisions have not changed (the web app, between two clicks)."""
    if prepared is None:
        prepared = deduplicated_records(workspace)
    else:
        settle(workspace.root)
    records, dedup, screened, other = (prepared.records, prepared.dedup, prepared.screened,
                                       prepared.other)
    # A decision made on a record counts for its cluster: a later export or search run can
    # bring a more complete copy that becomes the one kept.
    kept_for = {member: cluster.kept for cluster in dedup.clusters
                for member in cluster.members}
    store = DecisionStore(workspace.screening_dir)
    decisions = {stage: [dataclasses.replace(d, record=kept_for.get(d.record, d.record))
                         for d in store.read(stage)]
                 for stage in ("title-abstract", "full-text")}
    final = {stage: final_decisions(decisions[stage]) for stage in decisions}
    advanced = [r for r in screened
                if final["title-abstract"].get(r.record_id) is not None
                and final["title-abstract"][r.record_id].decision == "include"]
    return ScreeningState(records, dedup, screened, advanced + other, decisions, final)


@dataclass(frozen=True)
class Agreement:
    stage: str
    reviewers: tuple[str, ...]
    records: int
    percent: float
    kappa: float
    ci_low: float
    ci_high: float
    statistic: str

    @property
    def kappa_defined(self) -> bool:
        """Kappa is 0/0 when every reviewer gave every record the same decision."""
        return bool(np.isfinite(self.kappa))

    def to_dict(self) -> dict[str, Any]:
        def number(value: float) -> float | None:
            return round(value, 4) if np.isfinite(value) else None

        return {"reviewers": list(self.reviewers), "records": self.records,
                "percent_agreement": round(self.percent, 2), "kappa": number(self.kappa),
                "kappa_ci": [number(self.ci_low), number(self.ci_high)],
                "statistic": self.statistic}


AGREEMENT_CATEGORIES = ("include", "exclude", "maybe")


def _votes(decisions: list[Decision]) -> dict[str, dict[str, str]]:
    """record → reviewer → what the vote means for the record (on title and abstract a maybe
    goes on, so it agrees with an include; at full text it agrees with nothing but a maybe)."""
    votes = {}
    for record, by_reviewer in latest_by_reviewer(decisions).items():
        cast = {who: outcome_of(d.decision, d.stage) for who, d in by_reviewer.items()
                if not who.startswith(f"{ADJUDICATOR}:") and d.decision in
                AGREEMENT_CATEGORIES}
        if cast:
            votes[record] = cast
    return votes


def agreement(stage: str, decisions: list[Decision]) -> Agreement | None:
    """Cohen's kappa for two reviewers (asymptotic CI from statsmodels), Fleiss' kappa for
    more (bootstrap CI over records, fixed seed), with percent agreement; on the records every
    reviewer decided."""
    from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

    votes = _votes(decisions)
    reviewers = tuple(sorted({who for cast in votes.values() for who in cast}))
    if len(reviewers) < 2:
        return None
    shared = [cast for cast in votes.values() if set(cast) == set(reviewers)]
    if len(shared) < 2:
        return None
    categories = AGREEMENT_CATEGORIES
    ratings = np.array([[categories.index(cast[r]) for r in reviewers] for cast in shared])
    percent = 100 * float(np.mean([len(set(row)) == 1 for row in ratings]))
    if len(reviewers) == 2:
        table = np.zeros((len(categories), len(categories)))
        for first, second in ratings:
            table[first, second] += 1
        if len(np.unique(ratings)) == 1:
            return Agreement(stage, reviewers, len(shared), percent, np.nan, np.nan, np.nan,
                             "Cohen's kappa")
        with np.errstate(invalid="ignore", divide="ignore"):  # its unused z-test of kappa 0
            result = cohens_kappa(table)
        # The asymptotic (Wald) interval can pass ±1 with few records; kappa cannot.
        return Agreement(stage, reviewers, len(shared), percent, float(result.kappa),
                         max(float(result.kappa_low), -1.0), min(float(result.kappa_upp), 1.0),
                         "Cohen's kappa")
    counts, _ = aggregate_raters(ratings, n_cat=len(categories))
    if len(np.unique(ratings)) == 1:
        return Agreement(stage, reviewers, len(shared), percent, np.nan, np.nan, np.nan,
                         "Fleiss' kappa (bootstrap CI)")
    kappa = float(fleiss_kappa(counts))
    generator = random.Random(20201)
    samples = []
    for _ in range(1000):
        rows = [generator.randrange(len(counts)) for _ in range(len(counts))]
        sampled = counts[rows]
        if sampled.sum(axis=0).min() > 0:
            samples.append(fleiss_kappa(sampled))
    low, high = (np.percentile(samples, [2.5, 97.5]) if samples else (np.nan, np.nan))
    return Agreement(stage, reviewers, len(shared), percent, kappa, float(low), float(high),
                     "Fleiss' kappa (bootstrap CI)")


@dataclass(frozen=True)
class StageTeam:
    """Who screened a stage and how: the reviewers, the records any of them decided, those
    two or more decided independently, those an adjudicator settled, and the reviewers'
    agreement (None with one reviewer, or fewer than two records decided by all)."""

    stage: str
    reviewers: tuple[str, ...]
    records: int
    double_screened: int
    adjudicated: int
    agreement: Agreement | None

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "reviewers": list(self.reviewers), "records": self.records,
                "double_screened": self.double_screened, "adjudicated": self.adjudicated,
                "agreement": self.agreement.to_dict() if self.agreement else None}


def stage_team(stage: str, decisions: list[Decision]) -> StageTeam | None:
    """The screening of one stage as the report's Methods describe it; None when no reviewer
    decided a record at that stage."""
    adjudicator = f"{ADJUDICATOR}:"
    votes = list(latest_by_reviewer(decisions).values())
    reviewed = [[who for who in cast if not who.startswith(adjudicator)] for cast in votes]
    adjudicated = sum(any(who.startswith(adjudicator) for who in cast) for cast in votes)
    reviewers = tuple(sorted({who for cast in reviewed for who in cast}))
    if not reviewers:
        return None
    return StageTeam(stage, reviewers, sum(bool(cast) for cast in reviewed),
                     sum(len(cast) >= 2 for cast in reviewed), adjudicated,
                     agreement(stage, decisions))


def prisma_counts(state: ScreeningState, studies_included: int,
                  cases_included: int, reason_labels: dict[str, str],
                  is_extracted: Callable[[Record], bool] | None = None,
                  removed_empty: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Every count of the PRISMA 2020 flow diagram; `is_extracted` tells whether an included
    report has its study in the extraction sheet (without it, included reports beyond the
    number of studies count as not extracted); `removed_empty` counts, by source, the empty
    records the imports left out (identified, then removed before screening)."""
    removed_empty = {source: n for source, n in (removed_empty or {}).items() if n}
    database = [r for r in state.records if not identified_via_other_methods(r)]
    other = [r for r in state.records if identified_via_other_methods(r)]
    title_abstract = state.final["title-abstract"]
    full_text = state.final["full-text"]

    def column(reports: list[Record]) -> dict[str, Any]:
        outcomes = [full_text.get(r.record_id) for r in reports]
        not_retrieved = sum(o is not None and o.decision == "not-retrieved" for o in outcomes)
        # Assessed means decided: a report still awaiting its full-text decision is counted
        # once, as awaiting, so sought = not retrieved + assessed + awaiting at every moment.
        assessed = [o for o in outcomes if o is not None and o.decision in ("include", "exclude")]
        excluded = Counter(reason_labels.get(o.reason, o.reason or "reason not given")
                           for o in assessed if o.decision == "exclude")
        included = [r for r, o in zip(reports, outcomes, strict=True)
                    if o is not None and o.decision == "include"]
        not_extracted = sum(not is_extracted(r) for r in included) if is_extracted else 0
        return {
            "sought": len(reports), "not_retrieved": not_retrieved,
            "assessed": len(assessed),
            "excluded": dict(sorted(excluded.items())),
            "included": len(included),
            "not_extracted": not_extracted,
            "awaiting": sum(o is None or o.decision == "conflict" for o in outcomes),
        }

    screened = state.title_abstract
    if len(database) != len(screened) + state.dedup.duplicates_removed:
        raise ReviewError(f"internal error: {len(database)} records identified, but "
                          f"{len(screened)} kept and {state.dedup.duplicates_removed} "
                          "removed as duplicates")
    ta_outcomes = [title_abstract.get(r.record_id) for r in screened]
    advanced = [r for r, o in zip(screened, ta_outcomes, strict=True)
                if o is not None and o.decision == "include"]
    databases = column(advanced)
    others = column(other)
    identified = Counter(r.source for r in database) + Counter(removed_empty)
    return {
        "records_identified": len(database) + sum(removed_empty.values()),
        "records_identified_other_methods": len(other),
        "identified": dict(sorted(identified.items())),
        "identified_other_methods": dict(sorted(Counter(r.source for r in other).items())),
        "duplicates_removed": state.dedup.duplicates_removed,
        "records_removed_other": sum(removed_empty.values()),
        "records_screened": len(screened),
        "records_excluded": sum(o is not None and o.decision == "exclude" for o in ta_outcomes),
        "records_awaiting_screening": sum(o is None or o.decision == "conflict"
                                          for o in ta_outcomes),
        "reports_sought": databases["sought"],
        "reports_not_retrieved": databases["not_retrieved"],
        "reports_assessed": databases["assessed"],
        "reports_excluded": databases["excluded"],
        "reports_included": databases["included"],
        "other_reports_sought": others["sought"],
        "other_reports_not_retrieved": others["not_retrieved"],
        "other_reports_assessed": others["assessed"],
        "other_reports_excluded": others["excluded"],
        "other_reports_included": others["included"],
        "reports_awaiting_assessment": databases["awaiting"] + others["awaiting"],
        "database_reports_awaiting_assessment": databases["awaiting"],
        "other_reports_awaiting_assessment": others["awaiting"],
        "reports_included_not_extracted": (
            databases["not_extracted"] + others["not_extracted"] if is_extracted else
            max(databases["included"] + others["included"] - studies_included, 0)),
        "studies_included": studies_included,
        "cases_included": cases_included,
    }


def conflicts(state: ScreeningState, stage: str) -> list[FinalDecision]:
    return [decision for decision in state.final[stage].values()
            if decision.decision == "conflict"]
