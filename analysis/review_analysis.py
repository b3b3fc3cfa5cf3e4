"""The whole analysis of a review, from the extraction sheet to tables and figures.

`analyze_review` is pure (sheet and protocol in, `ReviewAnalysis` out); `analysis_tables` and
`analysis_figures` name every output; `write_analysis` is the file edge.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis import figures
from analysis.appraisal import (
    TRAFFIC_LIGHT,
    AppraisalAnalysis,
    judged_appraisal,
    restricted_comparison,
)
from analysis.outcomes import BinaryOutcome, OutcomeAnalysis, analyze_outcome
from analysis.pooling import PooledProportion
from analysis.rendering import FigureRendering
from analysis.sites import (
    body_map_frequencies,
    pooled_region_proportions,
    pooling_refusal,
    site_frequencies,
    sites_per_patient,
    vertebral_levels,
)
from analysis.survival import SurvivalAnalysis, analyze_survival
from analysis.tables import characteristics_table
from review.extraction.sheet import study_table, typed_cases
from review.extraction.summary import summarize_extraction
from review.figure_style import figure_files
from review.fileio import safe_csv, write_files_atomically
from review.protocol import Protocol


@dataclass
class ReviewAnalysis:
    protocol: Protocol
    cases: pd.DataFrame
    studies: pd.DataFrame
    characteristics: pd.DataFrame
    completeness: pd.DataFrame
    site_frequencies: pd.DataFrame
    # Patients per bone of the skeleton map; empty when no site is a bone (no map is drawn).
    body_map: pd.DataFrame
    sites_per_patient: pd.DataFrame
    vertebral_levels: pd.DataFrame | None
    pooled: dict[str, PooledProportion]
    # Regions the protocol pools whose pooled result would mislead, with the reason.
    not_pooled: dict[str, str]
    survival: SurvivalAnalysis | None
    notes: list[str] = field(default_factory=list)
    # The protocol's declared outcomes, by id, in its order.
    outcomes: dict[str, OutcomeAnalysis] = field(default_factory=dict)
    # Each report's appraisal judged by the protocol's rule; None without a rule or answers.
    appraisal: AppraisalAnalysis | None = None
    # The same analyses on the reports judged at the rule's best level (the sensitivity
    # analysis); None when the protocol asks for none or no report reaches that level.
    restricted: ReviewAnalysis | None = None

    @functools.cached_property
    def restricted_findings(self) -> pd.DataFrame | None:
        """The main findings on all reports beside those on the best-judged reports; None
        without the restricted analysis. Computed once, for the table and the page."""
        return None if self.restricted is None else restricted_comparison(self, self.restricted)


def _appraised(raw_cases: pd.DataFrame, protocol: Protocol, appraisal: pd.DataFrame | None,
               options: dict[str, str]) -> tuple[AppraisalAnalysis | None, ReviewAnalysis | None]:
    judged = judged_appraisal(protocol, appraisal)
    if judged is None:
        return None, None
    spec = judged.spec
    kept = judged.kept()
    if not spec.judgement.sensitivity or not kept:
        return judged, None
    restricted = raw_cases[raw_cases[protocol.extraction.study.key].isin(kept)]
    return judged, analyze_review(restricted.reset_index(drop=True), protocol, **options)


def analyze_review(raw_cases: pd.DataFrame, protocol: Protocol, *,
                   conf_type: str = "log-log", interval: str = "wilson",
                   appraisal: pd.DataFrame | None = None) -> ReviewAnalysis:
    """Every analysis the protocol asks for, on a validated extraction sheet; with the
    appraisal table (one row per report and appraiser), each report's judgement and the
    analyses repeated on the reports judged at the best level."""
    schema = protocol.extraction
    spec = protocol.analysis
    if spec is None:
        raise ValueError(f"the protocol '{protocol.id}' has no analysis section")
    cases = typed_cases(raw_cases, schema)
    levels = vertebral_levels(cases, spec, schema.field(spec.levels_field)) \
        if spec.levels_field else None
    notes = []
    fitted = pooled_region_proportions(cases, spec, schema.study.key) if len(cases) else {}
    not_pooled = {region: reason for region, result in fitted.items()
                  if (reason := pooling_refusal(result, spec.pooling.method)) is not None}
    pooled = {region: result for region, result in fitted.items() if region not in not_pooled}
    for region, result in pooled.items():
        notes += [f"pooled {region}: {note}" for note in result.notes]
    notes += [f"not pooled {region}: {reason}" for region, reason in not_pooled.items()]
    judged, restricted = _appraised(raw_cases, protocol, appraisal,
                                    {"conf_type": conf_type, "interval": interval})
    return ReviewAnalysis(
        protocol=protocol,
        cases=cases,
        studies=study_table(raw_cases, schema),
        characteristics=characteristics_table(cases, schema, spec.characteristics),
        completeness=summarize_extraction(raw_cases, schema).completeness,
        site_frequencies=site_frequencies(cases, spec, schema.field(spec.sites_field),
                                          method=interval),
        body_map=body_map_frequencies(cases, spec, schema.field(spec.sites_field)),
        sites_per_patient=sites_per_patient(cases, spec),
        vertebral_levels=levels,
        pooled=pooled,
        not_pooled=not_pooled,
        survival=analyze_survival(cases, spec.survival, spec.treatment_groupings, conf_type)
        if len(cases) and spec.survival is not None else None,
        notes=notes,
        outcomes={outcome.id: analyze_outcome(cases, outcome, spec, schema,
                                              conf_type=conf_type)
                  for outcome in spec.outcomes},
        appraisal=judged,
        restricted=restricted,
    )


def _survival_tables(survival: SurvivalAnalysis, prefix: str) -> dict[str, pd.DataFrame]:
    tables = {}
    for grouping, result in survival.by_grouping.items():
        if result.logrank is not None:
            tables[f"{prefix}_logrank_{grouping}"] = pd.DataFrame([{
                "chi2": result.logrank.chi2, "df": result.logrank.df,
                "p_value": result.logrank.p_value}])
        if result.pairwise is not None and len(result.pairwise):
            tables[f"{prefix}_pairwise_{grouping}"] = result.pairwise
        if result.cox is not None:
            tables[f"{prefix}_cox_{grouping}"] = result.cox.table
    summary = survival.summary()
    if len(summary):
        tables[f"{prefix}_summary"] = summary
    if survival.missing_times is not None:
        tables[f"{prefix}_missing_times"] = survival.missing_times.summary()
    tables[f"{prefix}_exclusions"] = pd.DataFrame(
        [{"reason": reason, "patients": count} for reason, count in survival.excluded.items()]
        + [{"reason": f"usable, but no group of '{grouping}'", "patients": count}
           for grouping, count in survival.ungrouped.items()])
    return tables


def analysis_tables(analysis: ReviewAnalysis) -> dict[str, pd.DataFrame]:
    """Every table, by file stem."""
    tables = {
        "studies": analysis.studies,
        "characteristics": analysis.characteristics,
        "completeness": analysis.completeness,
        "site_frequencies": analysis.site_frequencies,
        "sites_per_patient": analysis.sites_per_patient,
    }
    if analysis.vertebral_levels is not None:
        tables["vertebral_levels"] = analysis.vertebral_levels
    for region, result in analysis.pooled.items():
        tables[f"pooled_{region}"] = result.summary()
        tables[f"pooled_{region}_studies"] = result.studies
    if analysis.survival is not None:
        tables.update(_survival_tables(analysis.survival, "survival"))
    for outcome_id, result in analysis.outcomes.items():
        prefix = f"outcome_{outcome_id}"
        if result.survival is not None:
            # Its curves' table and who was left out are the outcome's own, below.
            tables.update({name: table for name, table in
                           _survival_tables(result.survival, prefix).items()
                           if name not in (f"{prefix}_summary", f"{prefix}_exclusions")})
        tables[prefix] = result.summary()
        tests = [{"grouping": grouping, "method": found.test.method if found.test else "",
                  "p_value": found.test.p_value if found.test else float("nan"),
                  "not_tested": found.untested or ""}
                 for grouping, found in result.by_grouping.items()
                 if isinstance(found, BinaryOutcome)]
        if tests:
            tables[f"outcome_{outcome_id}_tests"] = pd.DataFrame(tests)
        if result.pooled or result.not_pooled:
            tables[f"{prefix}_pooled"] = pd.DataFrame(
                [{"value": code, **pooled.summary().iloc[0].to_dict(), "not_pooled": ""}
                 for code, pooled in result.pooled.items()]
                + [{"value": code, "not_pooled": reason}
                   for code, reason in result.not_pooled.items()])
        tables[f"outcome_{outcome_id}_exclusions"] = pd.DataFrame(
            [{"reason": reason, "patients": count} for reason, count in result.excluded.items()]
            + [{"reason": f"no group of '{grouping}'", "patients": count}
               for grouping, count in result.ungrouped.items()])
    if analysis.appraisal is not None:
        tables["appraisal_judgements"] = analysis.appraisal.summary()
        tables["appraisal_levels"] = analysis.appraisal.levels
    if analysis.restricted_findings is not None:
        tables["appraisal_sensitivity"] = analysis.restricted_findings
    return tables


def _outcome_figures(analysis: ReviewAnalysis, outcome_id: str, outcome: OutcomeAnalysis
                     ) -> dict[str, Callable[[], Figure]]:
    """A declared outcome's figure: its shares or values, for all the patients counted and,
    one figure per grouping, by group (a time-to-event outcome's curves are drawn apart)."""
    if outcome.overall is None:
        return {}
    spec = outcome.spec
    if spec.kind == "continuous":
        unit = spec.unit or analysis.protocol.extraction.field(spec.field).unit
        axis = f"{spec.label}" + (f", {unit}" if unit else "")
    elif spec.kind == "binary":
        axis = f"{spec.label}: % of the {outcome.counted} (95% CI)"
    else:
        axis = f"% of the {outcome.n} {outcome.counted} (95% CI)"
    if spec.kind == "categorical" or not outcome.by_grouping:
        return {f"outcome_{outcome_id}": functools.partial(outcome.overall.plot, axis)}
    return {f"outcome_{outcome_id}_{grouping}": functools.partial(result.plot, axis)
            for grouping, result in outcome.by_grouping.items()}


def figure_builders(analysis: ReviewAnalysis) -> dict[str, Callable[[], Figure]]:
    """How to draw every figure, by file stem, the largest first; nothing is drawn until a
    builder is called."""
    labels = {region.id: region.label for region in analysis.protocol.analysis.site_regions}
    builders: dict[str, Callable[[], Figure]] = {
        "site_frequencies": lambda: figures.site_frequency_plot(analysis.site_frequencies),
        "reports_per_year": lambda: figures.reports_per_year_plot(analysis.studies),
    }
    if analysis.body_map["drawn"].any():
        builders["skeleton_map"] = lambda: figures.skeleton_map(analysis.body_map)
    levels = analysis.vertebral_levels
    if levels is not None and levels["denominator"].any():
        where = labels.get(analysis.protocol.analysis.levels_region or "", "the region")
        builders["vertebral_levels"] = lambda: figures.vertebral_levels_plot(levels, where)
    for region, result in analysis.pooled.items():
        # A forest of mostly one-patient reports is a barcode of 0–100% intervals: it informs
        # only when most reports have several patients.
        if (result.studies["total"] > 1).mean() >= 0.5:
            builders[f"forest_{region}"] = functools.partial(
                result.plot, title=labels.get(region, region))
    for outcome_id, outcome in analysis.outcomes.items():
        builders.update(_outcome_figures(analysis, outcome_id, outcome))
        for code, result in outcome.pooled.items():
            if (result.studies["total"] > 1).mean() >= 0.5:
                label = next(category.label for category in outcome.overall.overall
                             if category.value == code)
                builders[f"forest_outcome_{outcome_id}_{code}"] = functools.partial(
                    result.plot, title=f"{outcome.spec.label}: {label}")
    names = {g.id: g.label for g in analysis.protocol.analysis.treatment_groupings}
    timed = [("survival", analysis.survival)] + [
        (f"outcome_{outcome_id}", result.survival)
        for outcome_id, result in analysis.outcomes.items()]
    for prefix, survival in timed:
        if survival is None:
            continue
        if survival.overall is not None:
            builders[f"{prefix}_overall"] = functools.partial(survival.overall.plot,
                                                              title="All patients")
        for grouping, result in survival.by_grouping.items():
            builders[f"{prefix}_{grouping}"] = functools.partial(
                result.plot, title=f"By {names[grouping].lower()}")
    if analysis.appraisal is not None:
        builders[TRAFFIC_LIGHT] = analysis.appraisal.plot
    return largest_first(builders)


def largest_first(builders: dict[str, Callable[[], Figure]]
                  ) -> dict[str, Callable[[], Figure]]:
    """The builders with the largest figures first, so that workers drawing them in order
    finish together: the traffic light (a row per report) before the forest plots (a row per
    study), then the other large ones."""
    return dict(sorted(builders.items(), key=lambda item: _cost_order(item[0])))


def _cost_order(name: str) -> int:
    for rank, prefixes in enumerate((("appraisal_",), ("forest_",),
                                     ("site_frequencies", "prisma", "skeleton"))):
        if name.startswith(prefixes):
            return rank
    return 3


def analysis_figures(analysis: ReviewAnalysis) -> dict[str, Figure]:
    """Every figure, drawn, by file stem."""
    return {name: build() for name, build in figure_builders(analysis).items()}


def render_figures(analysis: ReviewAnalysis, workers: int | None = None,
                   extra: dict[str, Callable[[], Figure]] | None = None
                   ) -> dict[str, dict[str, bytes]]:
    """SVG and PNG bytes of every figure (and of `extra` ones), drawn in parallel where the
    platform can fork; in this process with `workers=1`."""
    builders = largest_first({**figure_builders(analysis), **(extra or {})})
    if workers == 1:
        return {name: figure_files(build()) for name, build in builders.items()}
    with FigureRendering() as rendering:
        rendering.start(builders, workers)
        return rendering.files()


def table_csv(table: pd.DataFrame) -> bytes:
    """CSV with stable float formatting, so the same numbers give the same bytes."""
    return safe_csv(table, float_format="%.6g").encode("utf-8")


def write_analysis(analysis: ReviewAnalysis, out_dir: Path) -> list[Path]:
    """Write tables/<name>.csv and figures/<name>.svg|png under out_dir, all at once."""
    outputs: dict[Path, bytes] = {}
    for name, table in analysis_tables(analysis).items():
        outputs[out_dir / "tables" / f"{name}.csv"] = table_csv(table)
    for name, files in render_figures(analysis).items():
        for kind, data in files.items():
            outputs[out_dir / "figures" / f"{name}.{kind}"] = data
    write_files_atomically(outputs)
    return sorted(outputs)


def format_time(value: float) -> str:
    """A median or its limit; an undefined one was not reached while patients were followed."""
    return "not reached" if math.isnan(value) else f"{value:g}"


def _percent(value: float) -> str:
    return "NA" if math.isnan(value) else f"{value:.1f}%"


def headline(analysis: ReviewAnalysis) -> list[str]:
    """The main results in a few lines, as `review analyze` prints them."""
    lines = [f"{len(analysis.cases)} patients from {len(analysis.studies)} reports"]
    regions = analysis.site_frequencies[analysis.site_frequencies["kind"] == "region"]
    for row in regions.itertuples(index=False):
        lines.append(f"  {row.label}: {row.patients}/{row.denominator} ({_percent(row.percent)}; "
                     f"95% CI {_percent(row.ci_low)}–{_percent(row.ci_high)})")
    for region, result in analysis.pooled.items():
        lines.append(f"  pooled {region} ({result.method}): {100 * result.estimate:.1f}% "
                     f"(95% CI {100 * result.ci_low:.1f}–{100 * result.ci_high:.1f}), "
                     f"tau² {result.tau2:.2f}, k = {result.k}")
    survival = analysis.survival
    if survival is not None and survival.overall is not None:
        median, low, high = survival.overall.overall.median
        lines.append(f"{survival.overall.analysis_label}: {survival.usable} patients with a "
                     "usable time "
                     f"({sum(survival.excluded.values())} without); median "
                     f"{format_time(median)} {survival.overall.time_unit} (95% CI "
                     f"{format_time(low)}–"
                     f"{format_time(high)})")
    return lines
