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
from dataclasses import dataclass
from typing import Any

import numpy as np

from review.errors import ReviewError
from review.screening.decisions import (
    ADJUDICATOR,
    ADVANCING,
    Decision,
    DecisionStore,
    FinalDecision,
    final_decisions,
    latest_by_reviewer,
)
from review.screening.dedup import DedupResult, deduplicate, kept_records, read_pair_decisions
from review.search.records import Record, RecordStore, identified_via_other_methods
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


def screening_state(workspace: Workspace) -> ScreeningState:
    settle(workspace.root)
    records = RecordStore(workspace.search_dir / "records.jsonl").load()
    database = [r for r in records if not identified_via_other_methods(r)]
    other = [r for r in records if identified_via_other_methods(r)]
    dedup = deduplicate(database, read_pair_decisions(workspace.data_dir / "dedup" /
                                                      "decisions.csv"))
    screened = kept_records(database, dedup)
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

    def to_dict(self) -> dict[str, Any]:
        return {"reviewers": list(self.reviewers), "records": self.records,
                "percent_agreement": round(self.percent, 2), "kappa": round(self.kappa, 4),
                "kappa_ci": [round(self.ci_low, 4), round(self.ci_high, 4)],
                "statistic": self.statistic}


def _votes(decisions: list[Decision]) -> dict[str, dict[str, str]]:
    """record → reviewer → advance or exclude (agreement is on the decision that matters:
    whether the record goes on)."""
    votes = {}
    for record, by_reviewer in latest_by_reviewer(decisions).items():
        cast = {who: "advance" if d.decision in ADVANCING else "exclude"
                for who, d in by_reviewer.items()
                if not who.startswith(f"{ADJUDICATOR}:") and d.decision in
                (*ADVANCING, "exclude")}
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
    categories = ("advance", "exclude")
    ratings = np.array([[categories.index(cast[r]) for r in reviewers] for cast in shared])
    percent = 100 * float(np.mean([len(set(row)) == 1 for row in ratings]))
    if len(reviewers) == 2:
        table = np.zeros((2, 2))
        for first, second in ratings:
            table[first, second] += 1
        result = cohens_kappa(table)
        return Agreement(stage, reviewers, len(shared), percent, float(result.kappa),
                         float(result.kappa_low), float(result.kappa_upp), "Cohen's kappa")
    counts, _ = aggregate_raters(ratings, n_cat=2)
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


def prisma_counts(state: ScreeningState, studies_included: int,
                  cases_included: int, reason_labels: dict[str, str]) -> dict[str, Any]:
    """Every count of the PRISMA 2020 flow diagram."""
    database = [r for r in state.records if not identified_via_other_methods(r)]
    other = [r for r in state.records if identified_via_other_methods(r)]
    title_abstract = state.final["title-abstract"]
    full_text = state.final["full-text"]

    def column(reports: list[Record]) -> dict[str, Any]:
        outcomes = [full_text.get(r.record_id) for r in reports]
        not_retrieved = sum(o is not None and o.decision == "not-retrieved" for o in outcomes)
        assessed = [o for o in outcomes if o is not None and o.decision != "not-retrieved"]
        excluded = Counter(reason_labels.get(o.reason, o.reason or "reason not given")
                           for o in assessed if o.decision == "exclude")
        return {
            "sought": len(reports), "not_retrieved": not_retrieved,
            "assessed": len(reports) - not_retrieved,
            "excluded": dict(sorted(excluded.items())),
            "included": sum(o.decision == "include" for o in assessed),
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
    return {
        "records_identified": len(database),
        "records_identified_other_methods": len(other),
        "identified": dict(sorted(Counter(r.source for r in database).items())),
        "identified_other_methods": dict(sorted(Counter(r.source for r in other).items())),
        "duplicates_removed": state.dedup.duplicates_removed,
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
        "studies_included": studies_included,
        "cases_included": cases_included,
    }


def conflicts(state: ScreeningState, stage: str) -> list[FinalDecision]:
    return [decision for decision in state.final[stage].values()
            if decision.decision == "conflict"]


def prisma_counts_for(workspace: Workspace, state: ScreeningState | None = None
                      ) -> dict[str, Any]:
    """The PRISMA 2020 counts of a workspace: the one source of every count that `review
    status`, `review prisma`, the PRISMA2020 CSV and the report show."""
    from review.extraction.sheet import ensure_sheet

    schema = workspace.protocol.extraction
    cases = ensure_sheet(workspace.cases_path, schema)
    studies = cases[schema.study.key].replace("", None).dropna().nunique()
    labels = {reason.id: reason.label for reason in workspace.protocol.screening.exclusion_reasons}
    return prisma_counts(state or screening_state(workspace), int(studies), len(cases), labels)
