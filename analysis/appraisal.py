"""The critical appraisal as a result: each report's answers and overall judgement, the
traffic-light figure, and the analyses repeated on the reports judged at the best level.

`AppraisalAnalysis` follows the other results: built by `fit` from one appraisal per report
(`review.extraction.appraisal.report_appraisals`), read through `summary` and drawn by `plot`.
The restricted analysis is the sensitivity analysis the appraisal exists for: do the review's
findings rest on its weakest reports?
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

from analysis import figures
from review.extraction.appraisal import judge_reports, report_appraisals
from review.protocol import Appraisal, Protocol

if TYPE_CHECKING:
    from analysis.review_analysis import ReviewAnalysis
    from analysis.survival import SurvivalAnalysis


@dataclass
class AppraisalAnalysis:
    """One appraisal per report, judged by the protocol's rule."""

    spec: Appraisal
    judged: pd.DataFrame = field(default_factory=pd.DataFrame)

    def fit(self, counted: pd.DataFrame) -> AppraisalAnalysis:
        if counted.empty:
            raise ValueError("no appraisal to judge: the table has no report")
        missing = [column for column in ("study_id", *(item.id for item in self.spec.items))
                   if column not in counted.columns]
        if missing:
            raise ValueError(f"the appraisal table has no column {', '.join(missing)}")
        self.judged = judge_reports(counted, self.spec)
        return self

    @property
    def levels(self) -> pd.DataFrame:
        """Reports at each judgement level, best first, and those not judged."""
        counts = self.judged["judgement"].value_counts()
        rows = [{"judgement": level.label, "reports": int(counts.get(level.label, 0))}
                for level in self.spec.judgement.levels]
        unjudged = int((self.judged["judgement"] == "").sum())
        if unjudged:
            rows.append({"judgement": "not judged (an item unanswered)", "reports": unjudged})
        return pd.DataFrame(rows)

    def kept(self) -> list[str]:
        """The reports judged at the best level, which the restricted analysis keeps."""
        best = self.spec.judgement.best.label
        return sorted(self.judged.loc[self.judged["judgement"] == best, "study_id"])

    def summary(self) -> pd.DataFrame:
        return self.judged.copy()

    def plot(self, title: str | None = None) -> Figure:
        return figures.traffic_light_plot(self.judged, self.spec, title=title)


def _share(events: int, n: int) -> str:
    return f"{events}/{n} ({100 * events / n:.0f}%)" if n else "none counted"


def _timed_findings(found: dict[str, str], survival: SurvivalAnalysis | None, heading: str,
                    unit_word: str) -> None:
    """A time-to-event analysis's median and landmarks, each measure under `heading`."""
    if survival is None or survival.overall is None:
        return
    overall = survival.overall
    table = overall.summary().iloc[0]
    unit = overall.time_unit
    n, events = int(table["n"]), int(table["events"])
    counted = (f"{n} {unit_word}{'s' if n != 1 else ''}, {events} "
               f"{overall.event_label if events == 1 else overall.events_label}")
    median = f"{table['median']:g}" if pd.notna(table["median"]) else "not reached"
    found[f"{heading}Median {overall.analysis_label}, {unit}"] = f"{median} ({counted})"
    for landmark in overall.landmarks:
        value = table.get(f"survival_{landmark:g}")
        label = f"{overall.analysis_label} at {landmark:g} {unit}"
        found[f"{heading}{label[:1].upper()}{label[1:]}"] = (
            f"{100 * value:.0f}%" if pd.notna(value) else "not estimable")


def _findings(analysis: ReviewAnalysis) -> dict[str, str]:
    """The review's main figures, each as the report prints it, by measure."""
    spec = analysis.protocol.analysis
    schema = analysis.protocol.extraction
    found = {f"{schema.unit.capitalize()}s": str(len(analysis.cases)),
             "Reports": str(analysis.cases[schema.study.key].nunique())}
    for row in analysis.site_frequencies.itertuples(index=False):
        if row.kind == "region":
            found[f"{spec.words.sites}: {row.label}"] = _share(row.patients, row.denominator)
    _timed_findings(found, analysis.survival, "", schema.unit)
    for result in analysis.outcomes.values():
        _timed_findings(found, result.survival, f"{result.spec.label}: ", schema.unit)
        overall = result.overall.overall if result.overall else None
        if overall is None:
            continue
        if result.spec.kind == "binary":
            found[result.spec.label] = _share(overall.events, overall.n)
        elif result.spec.kind == "continuous":
            found[f"{result.spec.label}, median"] = f"{overall.median:g} (n = {overall.n})"
    return found


def restricted_comparison(full: ReviewAnalysis, restricted: ReviewAnalysis) -> pd.DataFrame:
    """The main findings side by side: all reports, and only those judged at the best level."""
    every, kept = _findings(full), _findings(restricted)
    return pd.DataFrame([{"measure": measure, "all_reports": value,
                          "restricted": kept.get(measure, "not available in these reports")}
                         for measure, value in every.items()])


# The traffic light's file stem: the report's template names it, and a build draws it early.
TRAFFIC_LIGHT = "appraisal_traffic_light"


def judged_appraisal(protocol: Protocol, appraisal: pd.DataFrame | None
                     ) -> AppraisalAnalysis | None:
    """Each report's appraisal judged by the protocol's rule; None without a rule, without
    answers or without a report to judge."""
    spec = protocol.extraction.appraisal
    if spec is None or spec.judgement is None or appraisal is None:
        return None
    counted = report_appraisals(appraisal, spec)
    return None if counted.empty else AppraisalAnalysis(spec).fit(counted)
