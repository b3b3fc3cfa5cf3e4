"""The review's report as one self-contained HTML page.

The page is Jinja2 templates (`templates/`, autoescaped), one per section kind, filled with
the result objects of the analysis; this module orders the sections and gives the templates
their helpers: data tables, figures, and the numbers a sentence needs (a region's row, the
tied levels). Text from records or the extraction sheet is escaped by the templates or, in
the tables built here, by `text()`, which escapes as they do; links are built only to doi.org
and pubmed.ncbi.nlm.nih.gov from validated identifiers; figures are inlined SVG with their
element ids made unique per figure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, StrictUndefined
from jinja2.bccache import Bucket
from markupsafe import Markup, escape

from analysis.review_analysis import ReviewAnalysis, format_time
from analysis.survival import (
    CoxResult,
    KaplanMeierCurve,
    MissingTimeBounds,
    SurvivalAnalysis,
    SurvivalByGroup,
)
from review.extraction.appraisal import CONSENSUS, appraisal_agreement, report_appraisals
from review.extraction.compare import ExtractionComparison
from review.extraction.duplicates import DuplicateScreen
from review.extraction.validate import DOI, PMID
from review.protocol import Appraisal, EventWords, Protocol, SurvivalSpec, TreatmentGrouping
from review.report.markdown import format_cell
from review.report.wording import (
    capitalised,
    in_sentence,
    join_words,
    p_text,
    percent,
    plural,
)
from review.screening.flow import StageTeam
from review.screening.ranking import FEATURES, MODEL_LABELS

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
margin:0 auto;max-width:62rem;padding:1.5rem 1.25rem 4rem;color:#1a1a1a;line-height:1.5}
h1{font-size:1.7rem;line-height:1.25;margin-bottom:.25rem}
h2{font-size:1.3rem;margin-top:2.5rem;border-bottom:2px solid #0072B2;padding-bottom:.2rem}
h3{font-size:1.05rem;margin-top:1.6rem}
.meta{color:#555;font-size:.9rem}
nav ol{columns:2;font-size:.92rem}
table{border-collapse:collapse;margin:.8rem 0 1.2rem;font-size:.86rem;width:100%}
th,td{border:1px solid #ccc;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#eef3f8}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:1.2rem 0}
figure svg{max-width:100%;height:auto}
figcaption{font-size:.88rem;color:#333}
.findings li{margin:.3rem 0}
.missing{background:#fff8e6;border-left:4px solid #E69F00;padding:.5rem .8rem}
.note{font-size:.88rem;color:#444}
code{font-size:.85rem;background:#f4f4f4;padding:0 .2rem}
.scroll{overflow-x:auto}
@media print{body{max-width:none;padding:0}nav{display:none}h2{break-after:avoid}
figure,table{break-inside:avoid}a{color:inherit;text-decoration:none}}
"""


def text(value: object) -> str:
    """Any value as escaped HTML text, escaped as the templates escape it."""
    return str(escape(format_cell(value)))


class _CompiledTemplates(FileSystemBytecodeCache):
    """The templates' compiled code, kept as Python keeps .pyc files (compiling them took a
    tenth of a cold build), in Jinja's folder under the temporary directory: private to the
    user, written atomically, keyed by each template's source. A cache that cannot be read
    or written is passed over: it never fails a build."""

    def load_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().load_bytecode(bucket)

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _compiled_templates() -> _CompiledTemplates | None:
    try:
        return _CompiledTemplates()
    except (OSError, RuntimeError):  # no private temporary folder: compile on every build
        return None


TEMPLATES = Environment(loader=PackageLoader("review.report", "templates"), autoescape=True,
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                        bytecode_cache=_compiled_templates())
TEMPLATES.globals.update(percent=percent, plural=plural, number=format_cell, p_text=p_text,
                         capitalised=capitalised, in_sentence=in_sentence)


def _table_markup(frame: pd.DataFrame, columns: dict[str, str] | None = None,
                  numeric: Iterable[str] = ()) -> Markup:
    return Markup(table_html(frame, columns, numeric))


def _figure_markup(figures: dict[str, bytes], name: str, caption: str) -> Markup:
    return Markup(_Page.figure_markup(figures, name, caption))


def _macros(template: str) -> Any:
    """A template's macros, each callable with its result objects, returning markup."""
    return TEMPLATES.get_template(template).module


def doi_link(doi: str) -> Markup:
    """A link to the DOI resolver for a valid DOI; anything else as text."""
    doi = doi.strip()
    if not DOI.fullmatch(doi):
        return escape(doi)
    url = "https://doi.org/" + urllib.parse.quote(doi, safe="/")
    return Markup('<a href="{}">doi:{}</a>').format(url, doi)


def pubmed_link(pmid: str) -> Markup:
    """A link to PubMed for a valid PMID; anything else as text."""
    pmid = pmid.strip()
    if not PMID.fullmatch(pmid):
        return escape(pmid)
    return Markup('<a href="https://pubmed.ncbi.nlm.nih.gov/{}/">PMID {}</a>').format(pmid, pmid)


def _once_per_group(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The column's value on the first row of each run of equal values only."""
    repeated = frame[column].eq(frame[column].shift())
    return frame.assign(**{column: frame[column].where(~repeated, "")})


def table_html(frame: pd.DataFrame, columns: dict[str, str] | None = None,
               numeric: Iterable[str] = ()) -> str:
    """A data table; `columns` renames (and selects) columns, `numeric` right-aligns."""
    columns = columns or {name: name for name in frame.columns}
    numeric = set(numeric)
    head = "".join(f"<th>{text(label)}</th>" for label in columns.values())
    body = []
    for _, row in frame.iterrows():
        cells = "".join(
            f'<td class="num">{text(row[name])}</td>' if name in numeric else
            f"<td>{text(row[name])}</td>" for name in columns)
        body.append(f"<tr>{cells}</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


_SVG_PREAMBLE = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_SVG_ID = re.compile(r'\bid="([^"]+)"')
# Where an SVG names an identifier: its definition, a link to it, a url() of it.
_SVG_REFERENCE = re.compile(r'(id="|href="#)([^"]+)(")|url\(#([^)]+)\)')


def inline_svg(svg: bytes, prefix: str, label: str) -> str:
    """An SVG file as an inline element: no XML preamble or metadata, ids made unique."""
    markup = _SVG_METADATA.sub("", _SVG_PREAMBLE.sub("", svg.decode("utf-8"), count=1))
    identifiers = set(_SVG_ID.findall(markup))

    def unique(found: re.Match) -> str:
        opening, name, closing = (found.group(1, 2, 3) if found.group(1) is not None
                                  else ("url(#", found.group(4), ")"))
        return f"{opening}{prefix}-{name}{closing}" if name in identifiers else found.group(0)

    # One pass over the markup, not three per identifier: a figure has hundreds of them.
    markup = _SVG_REFERENCE.sub(unique, markup)
    return markup.replace("<svg ", f'<svg role="img" aria-label="{text(label)}" ', 1)


@dataclass(frozen=True)
class ReportInputs:
    """Everything the page shows, computed before rendering."""

    analysis: ReviewAnalysis
    figures: dict[str, bytes]
    appraisal: pd.DataFrame | None
    prisma: dict | None
    build_day: str
    versions: dict[str, str]
    searches: list[dict]
    imports: list[dict] = dataclasses.field(default_factory=list)
    double_extraction: ExtractionComparison | None = None
    duplicates: DuplicateScreen | None = None
    # Who screened each stage, and how far they agreed.
    screening: list[StageTeam] = dataclasses.field(default_factory=list)


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.sections: list[tuple[str, str]] = []

    def add(self, *markup: str) -> None:
        self.parts.extend(markup)

    def add_rendered(self, markup: object) -> None:
        """A template's output: its lines end in newlines, and the page joins its parts with
        them."""
        self.parts.append(str(markup).rstrip("\n"))

    def section(self, anchor: str, title: str) -> None:
        self.sections.append((anchor, title))
        self.add(f'<section id="{anchor}"><h2>{text(title)}</h2>')

    def end(self) -> None:
        self.add("</section>")

    def figure(self, figures: dict[str, bytes], name: str, caption: str) -> None:
        if name in figures:
            self.add(self.figure_markup(figures, name, caption))

    @staticmethod
    def figure_markup(figures: dict[str, bytes], name: str, caption: str) -> str:
        """A figure with its caption, or nothing when the build drew no such figure."""
        if name not in figures:
            return ""
        # The caption is markup; the SVG's label is its text, escaped once.
        return "\n".join((f'<figure id="figure-{name}">',
                           inline_svg(figures[name], name, Markup(caption).striptags()),
                           f"<figcaption>{caption}</figcaption></figure>"))

    def missing(self, message: str) -> None:
        self.add(f'<p class="missing">{message}</p>')


TEMPLATES.globals.update(table=_table_markup, figure=_figure_markup)


def _region_row(region_id: str, analysis: ReviewAnalysis) -> pd.Series | None:
    """A region's row of the site frequencies, or None for a region not counted."""
    table = analysis.site_frequencies
    found = table[(table["kind"] == "region") & (table["id"] == region_id)]
    return found.iloc[0] if len(found) else None


def _coded_count(cases: pd.DataFrame, field: str, value: str) -> tuple[int, int]:
    """Patients with a coded value, and patients for whom the field was reported."""
    column = cases[field].dropna()
    hits = sum(value in (cell if isinstance(cell, tuple) else (cell,)) for cell in column)
    return int(hits), len(column)


def _publication_years(studies: pd.DataFrame) -> tuple[int, int] | None:
    """The first and last year of publication, or None when no year is known."""
    years = pd.to_numeric(studies["pub_year"], errors="coerce").dropna()
    return (int(years.min()), int(years.max())) if len(years) else None


def _most_frequent_level(levels: pd.DataFrame) -> tuple[pd.Series, list[str]]:
    """The level table's row with the most patients, and every level tied with it."""
    top = levels.sort_values("patients", ascending=False, kind="stable").iloc[0]
    return top, [str(level) for level in levels.loc[levels["patients"] == top["patients"],
                                                    "level"]]


TEMPLATES.filters["region_row"] = _region_row
TEMPLATES.globals.update(coded_count=_coded_count, publication_years=_publication_years,
                         most_frequent_level=_most_frequent_level, join_words=join_words,
                         time=format_time, is_nan=math.isnan)


def _prisma(page: _Page, inputs: ReportInputs) -> None:
    counts = inputs.prisma
    diagram = teams = excluded_table = ""
    if counts is not None:
        diagram = page.figure_markup(inputs.figures, "prisma_flow", "PRISMA 2020 flow diagram.")
        if inputs.screening:
            teams = str(_macros("screening.html").teams(inputs.screening))
        excluded = {**counts["reports_excluded"], **{
            f"{reason} (other methods)": n
            for reason, n in counts["other_reports_excluded"].items()}}
        if excluded:
            excluded_table = table_html(
                pd.DataFrame([{"reason": r, "n": n} for r, n in excluded.items()]),
                {"reason": "Reports excluded, by reason", "n": "Reports"}, numeric=["n"])
    page.add_rendered(_macros("prisma.html").body(
        counts, inputs.analysis.protocol.search.other_methods, Markup(diagram), Markup(teams),
        Markup(excluded_table)))


def _concepts(protocol: Protocol) -> pd.DataFrame:
    """The search's concepts, one row each, as the Methods table shows them."""
    return pd.DataFrame([{
        "concept": concept.label,
        "mesh": "; ".join(h.heading + (f"/{h.subheading}" if h.subheading else "")
                          for h in concept.mesh),
        "terms": "; ".join([*concept.tiab, *(f'"{p.describe()}" within {p.distance} words'
                                             for p in concept.tiab_proximity)]),
        "types": "; ".join(concept.publication_types)} for concept in protocol.search.concepts])


def _methods(page: _Page, inputs: ReportInputs) -> None:
    protocol = inputs.analysis.protocol
    page.section("methods", "Methods")
    page.add_rendered(_macros("methods.html").body(
        protocol, inputs, inputs.analysis, _concepts(protocol), POOLING_NAMES, FEATURES,
        MODEL_LABELS))
    page.end()


def _pooled(page: _Page, inputs: ReportInputs) -> None:
    analysis = inputs.analysis
    labels = {region.id: region.label for region in analysis.protocol.analysis.site_regions}
    page.section("pooled", "Pooled proportions across reports (sensitivity analysis)")
    crude = analysis.site_frequencies.set_index(["kind", "id"])
    patient_level = {region: crude.loc[("region", region)] if ("region", region) in crude.index
                     else None for region in analysis.pooled}
    page.add_rendered(_macros("pooled.html").body(analysis, labels, patient_level,
                                                  inputs.figures))
    page.end()


POOLING_NAMES = {"glmm": "binomial-normal GLMM (random-intercept logistic model)",
                 "logit": "inverse-variance logit model",
                 "freeman_tukey": "inverse-variance Freeman–Tukey model"}


def _landmark_cell(value: float, last_follow_up: float | None, unit: str) -> str:
    """A landmark's survival, or why it cannot be estimated."""
    if not math.isnan(value):
        return percent(100 * value, 0)
    if last_follow_up is None or math.isnan(last_follow_up):
        return "not estimable"
    return f"not estimable: last follow-up {format_time(last_follow_up)} {unit}"


def _survival_columns(summary: pd.DataFrame, first: dict[str, str],
                      landmarks: tuple[float, ...], unit: str, words: EventWords,
                      last_follow_up: Sequence[float | None] | None = None) -> dict[str, str]:
    """The median and landmark cells of a survival summary as text, added to `summary`, and
    the table's columns with their headers; `last_follow_up` (each row's longest time) says
    why a landmark beyond it cannot be estimated."""
    last_follow_up = last_follow_up or [None] * len(summary)
    summary["median_text"] = [
        f"{format_time(m)} ({format_time(lo)}–{format_time(hi)})"
        for m, lo, hi in zip(summary["median"], summary["median_ci_low"],
                             summary["median_ci_high"], strict=True)]
    columns = {**first, "n": "Patients", "events": capitalised(words.events),
               "median_text": f"Median, {unit} (95% CI)"}
    for t in landmarks:
        name = f"survival_{t:g}"
        summary[f"{name}_text"] = [_landmark_cell(v, last, unit) for v, last in
                                   zip(summary[name], last_follow_up, strict=True)]
        columns[f"{name}_text"] = f"{capitalised(words.event_free)} at {t:g} {unit}"
    return columns


def _survival_table(result: SurvivalByGroup, landmarks: tuple[float, ...],
                    words: EventWords) -> str:
    unit = text(result.time_unit)
    summary = result.summary()
    curves = {"overall": result.overall, **result.curves}
    last_times = [float(curves[group].time[-1])
                  if group in curves and len(curves[group].time) else None
                  for group in summary["group"]]
    columns = _survival_columns(summary, {"label": "Group"}, landmarks, unit, words,
                                last_times)
    return table_html(summary, columns, numeric=["n", "events"])


def _median_flats(result: SurvivalByGroup) -> list[tuple[str, float, KaplanMeierCurve, float,
                                                          float, bool]]:
    """Each row of the survival table whose curve is flat at 50%: its label, median, curve,
    where the flat starts and ends, and whether a later drop ends it."""
    summary = result.summary()
    curves = {"overall": result.overall, **result.curves}
    flats = []
    for group, label, median in zip(summary["group"], summary["label"], summary["median"],
                                    strict=True):
        curve = curves.get(group)
        interval = curve.median_interval if curve is not None else None
        if interval is not None:
            flats.append((label, median, curve, *interval))
    return flats


def _missing_times_table(bounds: MissingTimeBounds, landmarks: tuple[float, ...],
                         unit: str, words: EventWords) -> str:
    """The sensitivity analysis of the events without a time, with the range it gives."""
    unit = text(unit)
    summary = bounds.summary()
    summary["scenario"] = [
        "Left out (the curves above)" if math.isnan(at) else
        "At the origin (worst case)" if at == 0 else f"At {format_time(at)} {unit}"
        for at in summary["placed_at"]]
    last_times = [float(curve.time[-1]) if len(curve.time) else None
                  for curve in (bounds.curves.get(None if math.isnan(at) else at)
                                for at in summary["placed_at"]) if curve is not None]
    columns = _survival_columns(summary, {"scenario": f"{capitalised(words.events)} without a "
                                                      "time"}, landmarks, unit, words,
                                last_times if len(last_times) == len(summary) else None)
    return table_html(summary, columns, numeric=["n", "events"])


def _survival(page: _Page, inputs: ReportInputs) -> None:
    analysis = inputs.analysis
    spec = analysis.protocol.analysis.survival
    words = spec.words if spec is not None else EventWords()
    page.section("survival", f"{capitalised(words.analysis)} by treatment")
    _time_to_event(page, inputs.figures, analysis.survival, spec,
                   analysis.protocol.analysis.treatment_groupings, "survival")
    page.end()


def _pairwise_table(result: SurvivalByGroup) -> Markup:
    pairs = result.pairwise.assign(a=result.pairwise["group_a"].map(result.group_labels),
                                   b=result.pairwise["group_b"].map(result.group_labels),
                                   chi2=result.pairwise["chi2"].map("{:.2f}".format),
                                   p_value=result.pairwise["p_value"].map(p_text),
                                   p_holm=result.pairwise["p_holm"].map(p_text))
    return Markup(table_html(pairs, {"a": "Group", "b": "versus", "chi2": "χ²",
                                     "p_value": "p", "p_holm": "p (Holm)"},
                             numeric=["chi2", "p_value", "p_holm"]))


def _cox_table(cox: CoxResult) -> Markup:
    shown = cox.table.assign(
        hr_text=lambda f: [(f"{hr:.2f} ({lo:.2f}–{hi:.2f})" if bounded else "unbounded")
                           for hr, lo, hi, bounded in zip(f["hr"], f["ci_low"], f["ci_high"],
                                                          f["bounded"], strict=True)],
        p_value=lambda f: f["p_value"].map(p_text))
    return Markup(table_html(shown, {"term": "Term", "hr_text": "Hazard ratio (95% CI)",
                                     "p_value": "p"}, numeric=["p_value"]))


def _time_to_event(page: _Page, figures: dict[str, bytes], survival: SurvivalAnalysis | None,
                   spec: SurvivalSpec | None, groupings: Sequence[TreatmentGrouping],
                   figure_prefix: str) -> None:
    """Curves, tables, tests and models of a time-to-event analysis, in the words of its
    protocol block."""
    words = spec.words if spec is not None else EventWords()
    page.add_rendered(_macros("time_to_event.html").body(
        survival, spec, words, groupings, figures, figure_prefix))


def _appraisers(appraisal: pd.DataFrame) -> list[str]:
    """Who appraised, the consensus row left out."""
    return sorted(set(appraisal.loc[appraisal["appraiser"] != CONSENSUS, "appraiser"]))


def _answer_counts(answers: pd.DataFrame, spec: Appraisal) -> pd.DataFrame:
    """Reports giving each answer to each item."""
    rows = []
    for item in spec.items:
        counts = answers[item.id].value_counts()
        rows.append({"item": item.question,
                     **{answer: int(counts.get(answer, 0)) for answer in spec.answers}})
    return pd.DataFrame(rows)


TEMPLATES.globals.update(
    appraisers_of=_appraisers, answer_counts=_answer_counts,
    answer_columns=lambda spec: {"item": "Item", **{answer: answer for answer in spec.answers}})


def _appraisal(page: _Page, inputs: ReportInputs) -> None:
    schema = inputs.analysis.protocol.extraction
    spec, appraisal = schema.appraisal, inputs.appraisal
    recorded = spec is not None and appraisal is not None and not appraisal.empty
    page.section("appraisal", "Critical appraisal")
    page.add_rendered(_macros("appraisal.html").section(
        spec, appraisal, report_appraisals(appraisal, spec) if recorded else None,
        appraisal_agreement(appraisal, spec) if recorded else None, inputs.analysis,
        inputs.figures, schema.unit))
    page.end()


def _outcomes(page: _Page, inputs: ReportInputs) -> None:
    """One section per declared outcome, in the protocol's order."""
    analysis = inputs.analysis
    spec = analysis.protocol.analysis
    groupings = {grouping.id: grouping.label for grouping in spec.treatment_groupings}
    macros = _macros("outcome.html")
    for outcome_id, result in analysis.outcomes.items():
        page.section(f"outcome-{outcome_id}", result.spec.label)
        if result.spec.kind == "binary":
            page.add(str(macros.binary(result, groupings, inputs.figures)))
        elif result.spec.kind == "categorical":
            page.add(str(macros.categorical(result, groupings, inputs.figures)))
            for code in result.pooled:
                page.figure(inputs.figures, f"forest_outcome_{outcome_id}_{code}",
                            f"Forest plot: {text(result.spec.label)}, "
                            f"{text(macros.label_of(result.overall, code))}, by report.")
        elif result.spec.kind == "time_to_event":
            page.add(str(macros.timed(result)))
            chosen = [grouping for grouping in spec.treatment_groupings
                      if grouping.id in result.spec.groupings]
            _time_to_event(page, inputs.figures, result.survival, result.spec.time_to_event,
                           chosen, f"outcome_{outcome_id}")
        else:
            unit = result.spec.unit or analysis.protocol.extraction.field(
                result.spec.field).unit or ""
            page.add(str(macros.continuous(result, groupings, unit, inputs.figures)))
        page.end()


def _double_extraction(page: _Page, inputs: ReportInputs) -> None:
    schema = inputs.analysis.protocol.extraction
    if inputs.double_extraction is None or schema.double_extraction is None:
        return
    page.section("double-extraction", "Agreement of the two extractors")
    page.add(str(_macros("double_extraction.html").results(
        inputs.double_extraction, schema.double_extraction, schema.unit)))
    page.end()


TEMPLATES.globals.update(
    doi_link=doi_link, pubmed_link=pubmed_link, median_flats=_median_flats,
    survival_table=lambda *args: Markup(_survival_table(*args)),
    missing_times_table=lambda *args: Markup(_missing_times_table(*args)),
    pairwise_table=_pairwise_table, cox_table=_cox_table)


def render_report(inputs: ReportInputs) -> str:
    """The whole report page."""
    analysis = inputs.analysis
    protocol = analysis.protocol
    figures = inputs.figures
    page = _Page()

    sections = _macros("sections.html")
    words = protocol.analysis.words

    page.section("summary", "Summary of findings")
    page.add_rendered(sections.summary(analysis))
    page.end()

    page.section("prisma", "Study selection (PRISMA 2020)")
    _prisma(page, inputs)
    page.end()

    _methods(page, inputs)

    page.section("studies", "Included studies")
    page.add_rendered(sections.studies(analysis))
    page.end()

    page.section("characteristics", "Patient characteristics (Table 1)")
    page.add_rendered(sections.characteristics(
        analysis, _once_per_group(analysis.characteristics, "characteristic")))
    page.end()

    page.section("sites", words.sites)
    regions = analysis.site_frequencies.assign(
        ci=lambda f: [f"{percent(lo)}–{percent(hi)}" for lo, hi in zip(f["ci_low"], f["ci_high"],
                                                                       strict=True)],
        share=lambda f: [percent(p) for p in f["percent"]])
    page.add_rendered(sections.sites(
        analysis, figures, regions[(regions["kind"] == "region") | (regions["patients"] > 0)]))
    page.end()

    _pooled(page, inputs)

    page.section("levels", words.levels)
    page.add_rendered(sections.levels(analysis, figures))
    page.end()

    _survival(page, inputs)
    _outcomes(page, inputs)
    _double_extraction(page, inputs)
    _appraisal(page, inputs)

    page.section("completeness", "Data completeness")
    page.add_rendered(sections.completeness(analysis))
    page.end()

    page.section("years", "Reports by year")
    page.figure(figures, "reports_per_year", "Included reports by year of publication.")
    page.end()

    page.section("limitations", "Limitations")
    page.add_rendered(sections.limitations(analysis, inputs.double_extraction))
    page.end()

    return TEMPLATES.get_template("page.html").render(
        protocol=protocol, inputs=inputs, sections=page.sections, style=Markup(STYLE),
        body=Markup("\n".join(page.parts))) + "\n"
