"""The review protocol: one YAML file that every step of the review reads.

`load_protocol` parses and validates it; every problem is reported with the key path that is
wrong (``extraction.fields[3].type: unknown type 'strng' (allowed: ...)``), so a reviewer who
edits the protocol by hand knows exactly what to change.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from review.errors import ReviewError, ReviewErrors
from review.fileio import read_text

FIELD_TYPES = (
    "text", "identifier", "url", "doi", "pmid", "year", "integer", "number", "code", "codes",
    "record",
)
RULE_KINDS = ("requires", "levels_need_sites")
GROUPING_METHODS = ("glmm", "logit", "freeman_tukey", "arcsine")


@dataclass(frozen=True)
class FieldSpec:
    """One column of the extraction sheet."""

    name: str
    type: str
    description: str = ""
    required: bool = False
    unique: bool = False
    values: tuple[str, ...] = ()
    exclusive: tuple[str, ...] = ()
    pattern: str | None = None
    min: float | None = None
    max: float | None = None
    unit: str | None = None
    renamed_from: tuple[str, ...] = ()
    # Two extractors' numbers agree when they differ by at most half of this.
    precision: float | None = None
    # What people read for a code (forms, lists); the sheet keeps the code.
    labels: dict[str, str] = field(default_factory=dict, compare=False)

    def label(self, code: str) -> str:
        return self.labels.get(code, code)

    @property
    def multi_valued(self) -> bool:
        return self.type == "codes"

    @property
    def coded(self) -> bool:
        return self.type in ("code", "codes")

    @property
    def numeric(self) -> bool:
        return self.type in ("integer", "number", "year")


@dataclass(frozen=True)
class Rule:
    """A cross-field rule of the extraction schema."""

    rule: str
    field: str
    needs: str | None = None
    sites_field: str | None = None
    regions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyKey:
    """How patient rows group into reports, and which report fields must agree."""

    key: str
    id_field: str
    fields: tuple[str, ...]
    consistent: tuple[str, ...]


@dataclass(frozen=True)
class AppraisalItem:
    id: str
    question: str


@dataclass(frozen=True)
class Appraisal:
    tool: str
    answers: tuple[str, ...]
    items: tuple[AppraisalItem, ...]


@dataclass(frozen=True)
class DoubleExtraction:
    """How reports were chosen for a second, independent extraction and how the extractors'
    disagreements were settled; the fields whose agreement is not measured (free text)."""

    selection: str
    resolution: str
    not_compared: tuple[str, ...] = ()


@dataclass(frozen=True)
class DuplicatePatients:
    """The screen for one patient reported twice (in a case report and again in a meeting
    abstract, or in two journals): patients of different reports that agree on every `match`
    field (each known in both), do not differ on any `differ_not` field known in both, and
    whose reports are at most `max_year_gap` years apart in `year_field`."""

    match: tuple[str, ...]
    year_field: str | None = None
    max_year_gap: int = 5
    differ_not: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtractionSchema:
    """The extraction sheet's columns, vocabularies and cross-field rules."""

    unit: str
    list_separator: str
    study: StudyKey
    fields: tuple[FieldSpec, ...]
    rules: tuple[Rule, ...]
    appraisal: Appraisal | None
    double_extraction: DoubleExtraction | None = None
    duplicate_patients: DuplicatePatients | None = None

    @property
    def columns(self) -> list[str]:
        return [spec.name for spec in self.fields]

    @property
    def record_field(self) -> FieldSpec | None:
        """The field that holds each row's screening record id, when the schema has one."""
        return next((spec for spec in self.fields if spec.type == "record"), None)

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass(frozen=True)
class MeshHeading:
    heading: str
    subheading: str | None = None
    major: bool = False
    explode: bool = True


MAX_PROXIMITY_PHRASES = 64


@dataclass(frozen=True)
class ProximityTerm:
    """Words at most `distance` words apart in title or abstract. PubMed matches each word of
    a proximity search exactly (no truncation, no plurals), so each position lists its forms
    and the query asks for every combination."""

    words: tuple[tuple[str, ...], ...]
    distance: int

    @property
    def phrase(self) -> str:
        return " ".join(forms[0] for forms in self.words)

    @property
    def phrases(self) -> list[str]:
        return [" ".join(choice) for choice in itertools.product(*self.words)]

    @property
    def has_forms(self) -> bool:
        return any(len(forms) > 1 for forms in self.words)

    def describe(self) -> str:
        """The words as a reader sees them: 'metastasis/metastases vertebra/vertebral'."""
        return " ".join("/".join(forms) for forms in self.words)


@dataclass(frozen=True)
class SearchConcept:
    id: str
    label: str
    mesh: tuple[MeshHeading, ...] = ()
    tiab: tuple[str, ...] = ()
    tiab_proximity: tuple[ProximityTerm, ...] = ()
    publication_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExcludeBlock:
    label: str
    query: str


@dataclass(frozen=True)
class SearchLimits:
    date_from: str | None
    date_to: str | None
    languages: tuple[str, ...]


@dataclass(frozen=True)
class SearchSpec:
    databases: tuple[str, ...]
    other_methods: tuple[str, ...]
    concepts: tuple[SearchConcept, ...]
    exclude: tuple[ExcludeBlock, ...]
    limits: SearchLimits


@dataclass(frozen=True)
class ExclusionReason:
    id: str
    label: str


SCREENING_ORDERS = ("prioritised", "file", "random")
RANKING_MODELS = ("naive_bayes", "svm", "logistic")


@dataclass(frozen=True)
class Prioritisation:
    """The order records are offered in at title and abstract (full text keeps record
    order), and the model that ranks them by the reviewer's own decisions."""

    order: str = "prioritised"
    model: str = "naive_bayes"
    seed: int = 0


@dataclass(frozen=True)
class StoppingRule:
    """When screening in ranked order may stop: the hypergeometric test of Callaghan and
    Müller-Hansen (2020) rejects, at `confidence`, that recall is below `recall_target`."""

    recall_target: float = 0.95
    confidence: float = 0.95


@dataclass(frozen=True)
class ScreeningSpec:
    stages: tuple[str, ...]
    reviewers: tuple[str, ...]
    exclusion_reasons: tuple[ExclusionReason, ...]
    include_keywords: tuple[str, ...]
    exclude_keywords: tuple[str, ...]
    adjudicators: tuple[str, ...] = ()
    # Who may import exports in the web app, besides the adjudicators.
    managers: tuple[str, ...] = ()
    prioritisation: Prioritisation = Prioritisation()
    stopping: StoppingRule = StoppingRule()


FULLTEXT_SERVICES = ("unpaywall", "pmc")


@dataclass(frozen=True)
class FullTextSpec:
    """Where `review fulltext find` looks for open copies, in order, and the largest PDF the
    store takes."""

    services: tuple[str, ...] = FULLTEXT_SERVICES
    max_megabytes: float = 50.0

    @property
    def max_bytes(self) -> int:
        return int(self.max_megabytes * 1_000_000)


@dataclass(frozen=True)
class SiteRegion:
    id: str
    label: str
    sites: tuple[str, ...]


@dataclass(frozen=True)
class TreatmentGroup:
    id: str
    label: str
    any_of: tuple[str, ...]


@dataclass(frozen=True)
class TreatmentGrouping:
    """Mutually exclusive groups of one treatment field; the first group that matches wins."""

    id: str
    label: str
    field: str
    groups: tuple[TreatmentGroup, ...]


@dataclass(frozen=True)
class SurvivalSpec:
    time_field: str
    status_field: str
    event_value: str
    censored_value: str
    time_unit: str
    landmarks: tuple[float, ...]
    # What the times count from, as the report says it: "the diagnosis of the metastasis".
    origin: str = "the start of follow-up"
    # The code field saying what each patient's time counts from, and its code for `origin`:
    # the main analysis keeps the patients timed from it; the others form a sensitivity one.
    origin_field: str | None = None
    origin_value: str | None = None
    # Below these the report describes instead of testing: deaths in the smallest group for a
    # log-rank test, deaths per model parameter for a Cox model.
    min_events_per_group: int = 5
    min_events_per_parameter: int = 10
    # How a median is read off a curve at exactly 50%: "table" as R's printed survfit table
    # (and survminer, lifelines), or "quantile" as R's quantile.survfit.
    median_rule: str = "table"
    # Times at which a sensitivity analysis places the events that have no time (besides the
    # origin, the worst case).
    missing_time_bounds: tuple[float, ...] = ()


MEDIAN_RULES = ("table", "quantile")
# The bones the report's skeleton map draws; a protocol's body_map maps its site codes onto
# them.
SKELETON_PARTS = ("skull", "orbit", "maxilla", "mandible", "cervical_spine", "thoracic_spine",
                  "lumbar_spine", "spine_unspecified", "sacrum", "clavicle", "scapula",
                  "sternum", "rib", "humerus", "forearm", "hand", "pelvis", "femur",
                  "tibia_fibula", "foot")


@dataclass(frozen=True)
class PoolingSpec:
    method: str
    regions: tuple[str, ...]


@dataclass(frozen=True)
class HeadlineFinding:
    """A coded value the summary counts: '{statement} in 12 of 40 patients for whom this was
    reported'."""

    field: str
    value: str
    statement: str


@dataclass(frozen=True)
class AnalysisSpec:
    sites_field: str
    levels_field: str | None
    characteristics: tuple[str, ...]
    site_regions: tuple[SiteRegion, ...]
    pooling: PoolingSpec | None
    survival: SurvivalSpec | None
    treatment_groupings: tuple[TreatmentGrouping, ...]
    # How the report names who was studied: "patients with <the condition>", and more briefly
    # in caveats (population_short), each as the protocol words it.
    population: str = "patients"
    population_short: str = "patients"
    headline_regions: tuple[str, ...] = ()
    # The region whose patients the vertebral-level table counts (default: the first region).
    levels_region: str | None = None
    headline_findings: tuple[HeadlineFinding, ...] = ()
    # The skeleton map's bones, each with the site codes drawn on it; None: the sites whose
    # codes are the drawing's bone names. A protocol whose sites are no bones gets no map.
    body_map: dict[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Protocol:
    """A validated review protocol."""

    id: str
    version: str
    title: str
    registration: str
    question: dict[str, Any]
    eligibility: dict[str, list[str]]
    search: SearchSpec
    screening: ScreeningSpec
    extraction: ExtractionSchema
    analysis: AnalysisSpec | None
    path: Path | None = None
    fulltext: FullTextSpec = FullTextSpec()


class _Checker:
    """Reads a parsed YAML tree and collects every error with the key path it belongs to."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append((path, message))

    def mapping(
        self, value: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping of keys, got {_kind(value)}")
            return {}
        for key in value:
            if key not in required and key not in optional:
                allowed = ", ".join((*required, *optional))
                self.fail(_join(path, str(key)), f"unknown key (allowed: {allowed})")
        for key in required:
            if key not in value:
                self.fail(_join(path, key), "missing")
        return value

    def free_mapping(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {_kind(value)}")
            return {}
        return value

    def text(self, value: Any, path: str, *, allow_empty: bool = False) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(path, f"must be text, got {_kind(value)}")
            return ""
        text = str(value).strip()
        if not text and not allow_empty:
            self.fail(path, "must not be empty")
        return text

    def optional_text(self, value: Any, path: str) -> str | None:
        return None if value is None else self.text(value, path)

    def texts(self, value: Any, path: str, *, allow_empty: bool = True) -> tuple[str, ...]:
        if value is None:
            value = []
        if not isinstance(value, list):
            self.fail(path, f"must be a list, got {_kind(value)}")
            return ()
        if not value and not allow_empty:
            self.fail(path, "must list at least one entry")
        items = tuple(self.text(item, f"{path}[{i}]") for i, item in enumerate(value))
        self.unique(items, path)
        return items

    def objects(self, value: Any, path: str, *, allow_empty: bool = False) -> list[tuple[str, Any]]:
        if value is None:
            value = []
        if not isinstance(value, list):
            self.fail(path, f"must be a list, got {_kind(value)}")
            return []
        if not value and not allow_empty:
            self.fail(path, "must list at least one entry")
        return [(f"{path}[{i}]", item) for i, item in enumerate(value)]

    def flag(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, got {value!r}")
            return False
        return value

    def number(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"must be a number, got {value!r}")
            return None
        return float(value)

    def unique(self, items: tuple[str, ...] | list[str], path: str) -> None:
        seen: set[str] = set()
        for item in items:
            if item in seen:
                self.fail(path, f"'{item}' is listed twice")
            seen.add(item)

    def member(self, value: str, allowed: tuple[str, ...] | list[str], path: str) -> None:
        if value and value not in allowed:
            self.fail(path, f"'{value}' is not one of: {', '.join(allowed)}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _identifier(check: _Checker, value: Any, path: str) -> str:
    text = check.text(value, path)
    if text and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", text):
        check.fail(path, f"'{text}' must start with a letter and hold only letters, digits, _ or -")
    return text


def _parse_field(check: _Checker, raw: Any, path: str) -> FieldSpec:
    data = check.mapping(
        raw, path, ("name", "type"),
        ("description", "required", "unique", "values", "exclusive", "pattern", "min", "max",
         "unit", "renamed_from", "precision", "labels"),
    )
    name = _identifier(check, data.get("name"), _join(path, "name"))
    kind = check.text(data.get("type"), _join(path, "type"))
    if kind and kind not in FIELD_TYPES:
        check.fail(_join(path, "type"),
                   f"unknown type '{kind}' (allowed: {', '.join(FIELD_TYPES)})")
    values = check.texts(data.get("values"), _join(path, "values"))
    exclusive = check.texts(data.get("exclusive"), _join(path, "exclusive"))
    if kind in ("code", "codes") and not values:
        check.fail(_join(path, "values"), f"a '{kind}' field must list its allowed values")
    if values and kind not in ("code", "codes"):
        check.fail(_join(path, "values"), f"only code and codes fields take values, not '{kind}'")
    if exclusive and kind != "codes":
        check.fail(_join(path, "exclusive"), "only a multi-valued 'codes' field takes exclusive")
    for i, value in enumerate(exclusive):
        check.member(value, values, f"{path}.exclusive[{i}]")
    pattern = check.optional_text(data.get("pattern"), _join(path, "pattern"))
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            check.fail(_join(path, "pattern"), f"not a regular expression: {exc}")
    if kind == "identifier" and pattern is None:
        check.fail(_join(path, "pattern"), "an identifier field needs a pattern")
    low = check.number(data.get("min"), _join(path, "min"))
    high = check.number(data.get("max"), _join(path, "max"))
    if (low is not None or high is not None) and kind not in ("integer", "number"):
        check.fail(path, f"min and max apply to integer and number fields, not '{kind}'")
    if low is not None and high is not None and low > high:
        check.fail(path, f"min {low:g} is above max {high:g}")
    precision = check.number(data.get("precision"), _join(path, "precision"))
    if precision is not None and (kind not in ("integer", "number") or precision <= 0):
        check.fail(_join(path, "precision"),
                   f"a positive step of an integer or number field (here '{kind}')")
    labels = {}
    for code, label in check.free_mapping(data.get("labels") or {}, _join(path, "labels")).items():
        where = f"{path}.labels.{code}"
        check.member(str(code), values, where)
        labels[str(code)] = check.text(label, where)
    return FieldSpec(
        name=name,
        type=kind,
        labels=labels,
        description=check.text(data.get("description", ""), _join(path, "description"),
                               allow_empty=True),
        required=check.flag(data.get("required", False), _join(path, "required")),
        unique=check.flag(data.get("unique", False), _join(path, "unique")),
        values=values,
        exclusive=exclusive,
        pattern=pattern,
        min=low,
        max=high,
        unit=check.optional_text(data.get("unit"), _join(path, "unit")),
        renamed_from=check.texts(_as_list(data.get("renamed_from")),
                                 _join(path, "renamed_from")),
        precision=precision,
    )


def _as_list(value: Any) -> Any:
    """A single text where a list is expected, as a list of one."""
    return [value] if isinstance(value, str) else value


def _parse_rule(check: _Checker, raw: Any, path: str, fields: dict[str, FieldSpec]) -> Rule:
    data = check.mapping(raw, path, ("rule", "field"), ("needs", "sites_field", "regions"))
    kind = check.text(data.get("rule"), _join(path, "rule"))
    check.member(kind, RULE_KINDS, _join(path, "rule"))
    name = check.text(data.get("field"), _join(path, "field"))
    check.member(name, list(fields), _join(path, "field"))
    needs = check.optional_text(data.get("needs"), _join(path, "needs"))
    sites_field = check.optional_text(data.get("sites_field"), _join(path, "sites_field"))
    regions: dict[str, str] = {}
    if kind == "requires":
        if needs is None:
            check.fail(_join(path, "needs"), "missing (the field that must be reported too)")
        else:
            check.member(needs, list(fields), _join(path, "needs"))
    if kind == "levels_need_sites":
        if sites_field is None:
            check.fail(_join(path, "sites_field"), "missing")
        else:
            check.member(sites_field, list(fields), _join(path, "sites_field"))
        raw_regions = check.free_mapping(data.get("regions"), _join(path, "regions"))
        sites = fields.get(sites_field or "")
        for prefix, site in raw_regions.items():
            where = f"{path}.regions.{prefix}"
            regions[str(prefix)] = check.text(site, where)
            if sites is not None:
                check.member(regions[str(prefix)], sites.values, where)
        if not raw_regions:
            check.fail(_join(path, "regions"), "must map level prefixes (C, T, ...) to sites")
    return Rule(rule=kind, field=name, needs=needs, sites_field=sites_field, regions=regions)


def _parse_appraisal(check: _Checker, raw: Any, path: str) -> Appraisal | None:
    if raw is None:
        return None
    data = check.mapping(raw, path, ("tool", "answers", "items"))
    items = []
    for item_path, item in check.objects(data.get("items"), _join(path, "items")):
        item_data = check.mapping(item, item_path, ("id", "question"))
        items.append(AppraisalItem(
            id=_identifier(check, item_data.get("id"), _join(item_path, "id")),
            question=check.text(item_data.get("question"), _join(item_path, "question")),
        ))
    check.unique([item.id for item in items], _join(path, "items"))
    return Appraisal(
        tool=check.text(data.get("tool"), _join(path, "tool")),
        answers=check.texts(data.get("answers"), _join(path, "answers"), allow_empty=False),
        items=tuple(items),
    )


def _parse_double_extraction(check: _Checker, raw: Any, path: str,
                             fields: dict[str, FieldSpec]) -> DoubleExtraction | None:
    if raw is None:
        return None
    data = check.mapping(raw, path, ("selection", "resolution"), ("not_compared",))
    not_compared = check.texts(data.get("not_compared"), _join(path, "not_compared"))
    for i, name in enumerate(not_compared):
        check.member(name, list(fields), f"{path}.not_compared[{i}]")
    return DoubleExtraction(
        selection=check.text(data.get("selection"), _join(path, "selection")),
        resolution=check.text(data.get("resolution"), _join(path, "resolution")),
        not_compared=not_compared,
    )


def _parse_duplicate_patients(check: _Checker, raw: Any, path: str,
                              fields: dict[str, FieldSpec]) -> DuplicatePatients | None:
    if raw is None:
        return None
    data = check.mapping(raw, path, ("match",), ("year_field", "max_year_gap", "differ_not"))
    match = check.texts(data.get("match"), _join(path, "match"), allow_empty=False)
    differ_not = check.texts(data.get("differ_not"), _join(path, "differ_not"))
    for key, names in (("match", match), ("differ_not", differ_not)):
        for i, name in enumerate(names):
            check.member(name, list(fields), f"{path}.{key}[{i}]")
    year_field = data.get("year_field")
    if year_field is not None:
        year_field = check.text(year_field, _join(path, "year_field"))
        check.member(year_field, list(fields), _join(path, "year_field"))
    return DuplicatePatients(match=match, year_field=year_field or None,
                             max_year_gap=_count(check, data.get("max_year_gap", 5),
                                                 _join(path, "max_year_gap")),
                             differ_not=differ_not)


def _parse_extraction(check: _Checker, raw: Any, path: str) -> ExtractionSchema:
    data = check.mapping(
        raw, path, ("unit", "study", "fields"),
        ("list_separator", "rules", "appraisal", "double_extraction", "duplicate_patients"),
    )
    specs = [_parse_field(check, item, item_path)
             for item_path, item in check.objects(data.get("fields"), _join(path, "fields"))]
    check.unique([spec.name for spec in specs], _join(path, "fields"))
    linking = [spec.name for spec in specs if spec.type == "record"]
    if len(linking) > 1:
        check.fail(_join(path, "fields"), f"one field links a row to its screening record; "
                                          f"{', '.join(linking)} are all of type record")
    by_name = {spec.name: spec for spec in specs}
    former: dict[str, str] = {}
    for index, spec in enumerate(specs):
        for old_name in spec.renamed_from:
            where = f"{path}.fields[{index}].renamed_from"
            if old_name in by_name:
                check.fail(where, f"'{old_name}' is still a field of the schema")
            elif old_name in former:
                check.fail(where, f"'{old_name}' is also the former name of '{former[old_name]}'")
            former[old_name] = spec.name

    study_path = _join(path, "study")
    study_data = check.mapping(data.get("study"), study_path, ("key", "id_field", "fields"),
                               ("consistent",))
    study = StudyKey(
        key=check.text(study_data.get("key"), _join(study_path, "key")),
        id_field=check.text(study_data.get("id_field"), _join(study_path, "id_field")),
        fields=check.texts(study_data.get("fields"), _join(study_path, "fields")),
        consistent=check.texts(study_data.get("consistent"), _join(study_path, "consistent")),
    )
    check.member(study.key, list(by_name), _join(study_path, "key"))
    check.member(study.id_field, list(by_name), _join(study_path, "id_field"))
    for key in ("fields", "consistent"):
        for i, name in enumerate(getattr(study, key)):
            check.member(name, list(by_name), f"{study_path}.{key}[{i}]")

    rules = [_parse_rule(check, item, item_path, by_name)
             for item_path, item in check.objects(data.get("rules"), _join(path, "rules"),
                                                  allow_empty=True)]
    separator = check.text(data.get("list_separator", ";"), _join(path, "list_separator"))
    if len(separator) != 1:
        check.fail(_join(path, "list_separator"), "must be one character")
    return ExtractionSchema(
        unit=check.text(data.get("unit"), _join(path, "unit")),
        list_separator=separator,
        study=study,
        fields=tuple(specs),
        rules=tuple(rules),
        appraisal=_parse_appraisal(check, data.get("appraisal"), _join(path, "appraisal")),
        double_extraction=_parse_double_extraction(
            check, data.get("double_extraction"), _join(path, "double_extraction"), by_name),
        duplicate_patients=_parse_duplicate_patients(
            check, data.get("duplicate_patients"), _join(path, "duplicate_patients"), by_name),
    )


def _proximity_words(check: _Checker, data: dict[str, Any], path: str
                     ) -> tuple[tuple[str, ...], ...]:
    """`phrase: metastasis vertebra` (one form per word) or `words:` listing each word's
    forms, e.g. `[[metastasis, metastases], [vertebra, vertebrae, vertebral]]`."""
    if ("phrase" in data) == ("words" in data):
        check.fail(path, "give either phrase (exact words) or words (the forms of each word)")
        return ()
    if "phrase" in data:
        return tuple((word,) for word in check.text(data["phrase"], _join(path, "phrase")).split())
    raw = data["words"]
    if not isinstance(raw, list) or not raw:
        check.fail(_join(path, "words"), "must list the words, each a word or a list of its "
                                         "forms")
        return ()
    words = []
    for index, forms in enumerate(raw):
        where = f"{_join(path, 'words')}[{index}]"
        listed = check.texts(forms if isinstance(forms, list) else [forms], where,
                             allow_empty=False)
        if any(len(form.split()) != 1 for form in listed):
            check.fail(where, "each form is one word")
        words.append(listed)
    combinations = math.prod(len(forms) for forms in words)
    if combinations > MAX_PROXIMITY_PHRASES:
        check.fail(_join(path, "words"), f"{combinations} combinations of forms; at most "
                                         f"{MAX_PROXIMITY_PHRASES}")
    return tuple(words)


def _parse_search(check: _Checker, raw: Any, path: str) -> SearchSpec:
    data = check.mapping(raw, path, ("concepts",),
                         ("databases", "other_methods", "exclude", "limits"))
    concepts = []
    for concept_path, item in check.objects(data.get("concepts"), _join(path, "concepts")):
        concept = check.mapping(item, concept_path, ("id", "label"),
                                ("mesh", "tiab", "tiab_proximity", "publication_types"))
        headings = []
        for mesh_path, mesh in check.objects(concept.get("mesh"), _join(concept_path, "mesh"),
                                             allow_empty=True):
            if isinstance(mesh, str):  # a heading alone: exploded, not major, no subheading
                mesh = {"heading": mesh}
            mesh_data = check.mapping(mesh, mesh_path, ("heading",),
                                      ("subheading", "major", "explode"))
            headings.append(MeshHeading(
                heading=check.text(mesh_data.get("heading"), _join(mesh_path, "heading")),
                subheading=check.optional_text(mesh_data.get("subheading"),
                                               _join(mesh_path, "subheading")),
                major=check.flag(mesh_data.get("major", False), _join(mesh_path, "major")),
                explode=check.flag(mesh_data.get("explode", True), _join(mesh_path, "explode")),
            ))
        proximity = []
        for near_path, near in check.objects(concept.get("tiab_proximity"),
                                             _join(concept_path, "tiab_proximity"),
                                             allow_empty=True):
            near_data = check.mapping(near, near_path, ("distance",), ("phrase", "words"))
            distance = check.number(near_data.get("distance"), _join(near_path, "distance"))
            if distance is not None and (distance < 0 or distance != int(distance)):
                check.fail(_join(near_path, "distance"), "must be a whole number of words ≥ 0")
            words = _proximity_words(check, near_data, near_path)
            if words:
                proximity.append(ProximityTerm(words=words, distance=int(distance or 0)))
        built = SearchConcept(
            id=_identifier(check, concept.get("id"), _join(concept_path, "id")),
            label=check.text(concept.get("label"), _join(concept_path, "label")),
            mesh=tuple(headings),
            tiab=check.texts(concept.get("tiab"), _join(concept_path, "tiab")),
            tiab_proximity=tuple(proximity),
            publication_types=check.texts(concept.get("publication_types"),
                                          _join(concept_path, "publication_types")),
        )
        if not (built.mesh or built.tiab or built.tiab_proximity or built.publication_types):
            check.fail(concept_path, "a concept needs at least one MeSH heading, term or "
                                     "publication type")
        concepts.append(built)
    check.unique([concept.id for concept in concepts], _join(path, "concepts"))
    excludes = []
    for block_path, block in check.objects(data.get("exclude"), _join(path, "exclude"),
                                           allow_empty=True):
        block_data = check.mapping(block, block_path, ("label", "query"))
        excludes.append(ExcludeBlock(
            label=check.text(block_data.get("label"), _join(block_path, "label")),
            query=check.text(block_data.get("query"), _join(block_path, "query")),
        ))
    limits_path = _join(path, "limits")
    limits = check.mapping(data.get("limits") or {}, limits_path, (),
                           ("date_from", "date_to", "languages"))
    dates = {}
    for key in ("date_from", "date_to"):
        value = check.optional_text(limits.get(key), _join(limits_path, key))
        if value is not None and not re.fullmatch(r"\d{4}(/\d{2}(/\d{2})?)?", value):
            check.fail(_join(limits_path, key), f"'{value}' must be YYYY, YYYY/MM or YYYY/MM/DD")
        dates[key] = value
    return SearchSpec(
        databases=check.texts(data.get("databases"), _join(path, "databases")),
        other_methods=check.texts(data.get("other_methods"), _join(path, "other_methods")),
        concepts=tuple(concepts),
        exclude=tuple(excludes),
        limits=SearchLimits(
            date_from=dates["date_from"],
            date_to=dates["date_to"],
            languages=check.texts(limits.get("languages"), _join(limits_path, "languages")),
        ),
    )


def _fraction(check: _Checker, value: Any, path: str, default: float) -> float:
    number = check.number(value, path)
    if number is None:
        return default
    if not 0 < number < 1:
        check.fail(path, f"a fraction between 0 and 1 (such as 0.95), got {number:g}")
    return number


def _parse_prioritisation(check: _Checker, data: dict[str, Any], path: str) -> Prioritisation:
    order = check.text(data.get("order", "prioritised"), _join(path, "order"))
    check.member(order, SCREENING_ORDERS, _join(path, "order"))
    ranking = check.mapping(data.get("ranking") or {}, _join(path, "ranking"), (),
                            ("model", "seed"))
    model = check.text(ranking.get("model", "naive_bayes"), f"{path}.ranking.model")
    check.member(model, RANKING_MODELS, f"{path}.ranking.model")
    seed = ranking.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        check.fail(f"{path}.ranking.seed", f"a whole number ≥ 0, got {_kind(seed)}")
        seed = 0
    return Prioritisation(order=order, model=model, seed=seed)


def _parse_stopping(check: _Checker, raw: Any, path: str) -> StoppingRule:
    data = check.mapping(raw or {}, path, (), ("recall_target", "confidence"))
    return StoppingRule(
        recall_target=_fraction(check, data.get("recall_target"), _join(path, "recall_target"),
                                StoppingRule.recall_target),
        confidence=_fraction(check, data.get("confidence"), _join(path, "confidence"),
                             StoppingRule.confidence),
    )


def _parse_screening(check: _Checker, raw: Any, path: str) -> ScreeningSpec:
    data = check.mapping(raw, path, ("stages", "exclusion_reasons"),
                         ("keywords", "reviewers", "adjudicators", "managers", "order",
                          "ranking", "stopping"))
    stages = check.texts(data.get("stages"), _join(path, "stages"), allow_empty=False)
    for i, stage in enumerate(stages):
        check.member(stage, ("title-abstract", "full-text"), f"{path}.stages[{i}]")
    reasons = []
    for reason_path, item in check.objects(data.get("exclusion_reasons"),
                                           _join(path, "exclusion_reasons")):
        reason = check.mapping(item, reason_path, ("id", "label"))
        reasons.append(ExclusionReason(
            id=_identifier(check, reason.get("id"), _join(reason_path, "id")),
            label=check.text(reason.get("label"), _join(reason_path, "label")),
        ))
    check.unique([reason.id for reason in reasons], _join(path, "exclusion_reasons"))
    keywords = check.mapping(data.get("keywords") or {}, _join(path, "keywords"), (),
                             ("include", "exclude"))
    reviewers = check.texts(data.get("reviewers"), _join(path, "reviewers"))
    adjudicators = check.texts(data.get("adjudicators"), _join(path, "adjudicators"))
    managers = check.texts(data.get("managers"), _join(path, "managers"))
    for key, names in (("reviewers", reviewers), ("adjudicators", adjudicators),
                       ("managers", managers)):
        for i, name in enumerate(names):
            if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", name):
                check.fail(f"{path}.{key}[{i}]", f"'{name}': use lower-case letters, digits, "
                                                 "- or _, starting with a letter")
    return ScreeningSpec(
        stages=stages,
        reviewers=reviewers,
        exclusion_reasons=tuple(reasons),
        include_keywords=check.texts(keywords.get("include"), f"{path}.keywords.include"),
        exclude_keywords=check.texts(keywords.get("exclude"), f"{path}.keywords.exclude"),
        adjudicators=adjudicators,
        managers=managers,
        prioritisation=_parse_prioritisation(check, data, path),
        stopping=_parse_stopping(check, data.get("stopping"), _join(path, "stopping")),
    )


def _parse_fulltext(check: _Checker, raw: Any, path: str) -> FullTextSpec:
    data = check.mapping(raw or {}, path, (), ("services", "max_megabytes"))
    services = (check.texts(data["services"], _join(path, "services")) if "services" in data
                else FullTextSpec.services)
    for i, service in enumerate(services):
        check.member(service, FULLTEXT_SERVICES, f"{path}.services[{i}]")
    limit = check.number(data.get("max_megabytes"), _join(path, "max_megabytes"))
    if limit is not None and not 0 < limit <= 2000:
        check.fail(_join(path, "max_megabytes"), f"a size in MB above 0 and up to 2000, got "
                                                  f"{limit:g}")
    return FullTextSpec(services=services,
                        max_megabytes=limit if limit is not None else FullTextSpec.max_megabytes)


def _origin_field(check: _Checker, data: dict[str, Any], path: str,
                  coded_field: Callable[[Any, str], FieldSpec | None]) -> dict[str, str | None]:
    if ("origin_field" in data) != ("origin_value" in data):
        check.fail(path, "origin_field and origin_value go together: the field that says what "
                         "each time counts from, and its value for the origin")
        return {}
    if "origin_field" not in data:
        return {}
    spec = coded_field(data["origin_field"], _join(path, "origin_field"))
    value = check.text(data["origin_value"], _join(path, "origin_value"))
    if spec is not None:
        check.member(value, spec.values, _join(path, "origin_value"))
    return {"origin_field": spec.name if spec else None, "origin_value": value}


def _count(check: _Checker, value: Any, path: str) -> int:
    number = check.number(value, path)
    if number is not None and (number < 0 or number != int(number)):
        check.fail(path, "must be a whole number ≥ 0")
    return int(number) if number is not None and number >= 0 else 0


def _times(check: _Checker, raw: Any, path: str, *, zero_allowed: bool) -> list[float]:
    """A list of times (above 0, or ≥ 0 when `zero_allowed`), each error at its index."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        check.fail(path, "must be a list of times")
        return []
    times = []
    for i, value in enumerate(raw):
        number = check.number(value, f"{path}[{i}]")
        if number is not None and (number < 0 or (number == 0 and not zero_allowed)):
            check.fail(f"{path}[{i}]", "must be a time ≥ 0" if zero_allowed
                       else "must be a time above 0")
        times.append(number or 0.0)
    return times


def _parse_analysis(
    check: _Checker, raw: Any, path: str, schema: ExtractionSchema
) -> AnalysisSpec | None:
    if raw is None:
        return None
    data = check.mapping(raw, path, ("sites_field",),
                         ("levels_field", "characteristics", "site_regions", "pooling",
                          "survival", "treatment_groupings", "population", "population_short",
                          "headline_regions", "levels_region", "headline_findings",
                          "body_map"))
    fields = {spec.name: spec for spec in schema.fields}

    def coded_field(value: Any, where: str) -> FieldSpec | None:
        name = check.text(value, where)
        spec = fields.get(name)
        if name and spec is None:
            check.fail(where, f"'{name}' is not a field of the extraction schema")
        elif spec is not None and not spec.coded:
            check.fail(where, f"'{name}' is not a coded field")
        return spec

    sites = coded_field(data.get("sites_field"), _join(path, "sites_field"))
    levels_field = None
    if data.get("levels_field") is not None:
        levels = coded_field(data.get("levels_field"), _join(path, "levels_field"))
        levels_field = levels.name if levels else None

    characteristics = check.texts(data.get("characteristics"), _join(path, "characteristics"))
    for i, name in enumerate(characteristics):
        spec = fields.get(name)
        where = f"{path}.characteristics[{i}]"
        if spec is None:
            check.fail(where, f"'{name}' is not a field of the extraction schema")
        elif not (spec.coded or spec.type in ("integer", "number")):
            check.fail(where, f"'{name}' is neither coded nor numeric")

    regions = []
    for region_path, item in check.objects(data.get("site_regions"), _join(path, "site_regions"),
                                           allow_empty=True):
        region = check.mapping(item, region_path, ("id", "label", "sites"))
        members = check.texts(region.get("sites"), _join(region_path, "sites"), allow_empty=False)
        if sites is not None:
            for i, site in enumerate(members):
                check.member(site, sites.values, f"{region_path}.sites[{i}]")
        regions.append(SiteRegion(
            id=_identifier(check, region.get("id"), _join(region_path, "id")),
            label=check.text(region.get("label"), _join(region_path, "label")),
            sites=members,
        ))
    check.unique([region.id for region in regions], _join(path, "site_regions"))

    pooling = None
    if data.get("pooling") is not None:
        pooling_path = _join(path, "pooling")
        pooling_data = check.mapping(data["pooling"], pooling_path, ("method", "regions"))
        method = check.text(pooling_data.get("method"), _join(pooling_path, "method"))
        check.member(method, GROUPING_METHODS, _join(pooling_path, "method"))
        pooled = check.texts(pooling_data.get("regions"), _join(pooling_path, "regions"),
                             allow_empty=False)
        for i, region_id in enumerate(pooled):
            check.member(region_id, [region.id for region in regions],
                         f"{pooling_path}.regions[{i}]")
        pooling = PoolingSpec(method=method, regions=pooled)

    survival = None
    if data.get("survival") is not None:
        survival_path = _join(path, "survival")
        survival_data = check.mapping(
            data["survival"], survival_path,
            ("time_field", "status_field", "event_value", "censored_value"),
            ("time_unit", "landmarks", "origin", "origin_field", "origin_value",
             "min_events_per_group", "min_events_per_parameter", "median_rule",
             "missing_time_bounds"),
        )
        time_name = check.text(survival_data.get("time_field"), _join(survival_path, "time_field"))
        time_spec = fields.get(time_name)
        if time_name and (time_spec is None or time_spec.type != "number"):
            check.fail(_join(survival_path, "time_field"),
                       f"'{time_name}' is not a number field of the extraction schema")
        status = coded_field(survival_data.get("status_field"),
                             _join(survival_path, "status_field"))
        event = check.text(survival_data.get("event_value"), _join(survival_path, "event_value"))
        censored = check.text(survival_data.get("censored_value"),
                              _join(survival_path, "censored_value"))
        if status is not None:
            check.member(event, status.values, _join(survival_path, "event_value"))
            check.member(censored, status.values, _join(survival_path, "censored_value"))
        landmarks = _times(check, survival_data.get("landmarks"),
                           _join(survival_path, "landmarks"), zero_allowed=False)
        bounds = _times(check, survival_data.get("missing_time_bounds"),
                        _join(survival_path, "missing_time_bounds"), zero_allowed=True)
        median_rule = check.text(survival_data.get("median_rule", "table"),
                                 _join(survival_path, "median_rule"))
        check.member(median_rule, MEDIAN_RULES, _join(survival_path, "median_rule"))
        survival = SurvivalSpec(
            time_field=time_name,
            status_field=status.name if status else "",
            event_value=event,
            censored_value=censored,
            time_unit=check.text(survival_data.get("time_unit", "months"),
                                 _join(survival_path, "time_unit")),
            landmarks=tuple(landmarks),
            origin=check.text(survival_data.get("origin", "the start of follow-up"),
                              _join(survival_path, "origin")),
            **_origin_field(check, survival_data, survival_path, coded_field),
            **{key: _count(check, survival_data.get(key, default), _join(survival_path, key))
               for key, default in (("min_events_per_group", 5),
                                    ("min_events_per_parameter", 10))},
            median_rule=median_rule,
            missing_time_bounds=tuple(bounds),
        )

    groupings = []
    for grouping_path, item in check.objects(data.get("treatment_groupings"),
                                             _join(path, "treatment_groupings"), allow_empty=True):
        grouping = check.mapping(item, grouping_path, ("id", "label", "field", "groups"))
        target = coded_field(grouping.get("field"), _join(grouping_path, "field"))
        groups = []
        for group_path, group_item in check.objects(grouping.get("groups"),
                                                    _join(grouping_path, "groups")):
            group = check.mapping(group_item, group_path, ("id", "label", "any_of"))
            any_of = check.texts(group.get("any_of"), _join(group_path, "any_of"),
                                 allow_empty=False)
            if target is not None:
                for i, value in enumerate(any_of):
                    check.member(value, target.values, f"{group_path}.any_of[{i}]")
            groups.append(TreatmentGroup(
                id=_identifier(check, group.get("id"), _join(group_path, "id")),
                label=check.text(group.get("label"), _join(group_path, "label")),
                any_of=any_of,
            ))
        check.unique([group.id for group in groups], _join(grouping_path, "groups"))
        groupings.append(TreatmentGrouping(
            id=_identifier(check, grouping.get("id"), _join(grouping_path, "id")),
            label=check.text(grouping.get("label"), _join(grouping_path, "label")),
            field=target.name if target else "",
            groups=tuple(groups),
        ))
    check.unique([grouping.id for grouping in groupings], _join(path, "treatment_groupings"))
    region_ids = [region.id for region in regions]
    headline_regions = check.texts(data.get("headline_regions"), _join(path, "headline_regions"))
    for i, region_id in enumerate(headline_regions):
        check.member(region_id, region_ids, f"{path}.headline_regions[{i}]")
    levels_region = check.optional_text(data.get("levels_region"), _join(path, "levels_region"))
    if levels_region is not None:
        check.member(levels_region, region_ids, _join(path, "levels_region"))
    headlines = []
    for finding_path, item in check.objects(data.get("headline_findings"),
                                            _join(path, "headline_findings"), allow_empty=True):
        finding = check.mapping(item, finding_path, ("field", "value", "statement"))
        target = coded_field(finding.get("field"), _join(finding_path, "field"))
        value = check.text(finding.get("value"), _join(finding_path, "value"))
        if target is not None:
            check.member(value, target.values, _join(finding_path, "value"))
        headlines.append(HeadlineFinding(field=target.name if target else "", value=value,
                                         statement=check.text(finding.get("statement"),
                                                              _join(finding_path, "statement"))))
    body_map = None
    if data.get("body_map") is not None:
        body_path = _join(path, "body_map")
        raw_map = data["body_map"]
        body_map = {}
        if not isinstance(raw_map, dict):
            check.fail(body_path, "must map each bone of the skeleton map to site codes")
            raw_map = {}
        for part, codes in raw_map.items():
            where = f"{body_path}.{part}"
            check.member(str(part), SKELETON_PARTS, where)
            body_map[str(part)] = check.texts(codes, where, allow_empty=False)
            if sites is not None:
                for i, code in enumerate(body_map[str(part)]):
                    check.member(code, sites.values, f"{where}[{i}]")
    population = check.text(data.get("population", f"{schema.unit}s"), _join(path, "population"))
    return AnalysisSpec(
        sites_field=sites.name if sites else "",
        levels_field=levels_field,
        characteristics=characteristics,
        site_regions=tuple(regions),
        pooling=pooling,
        survival=survival,
        treatment_groupings=tuple(groupings),
        population=population,
        population_short=check.text(data.get("population_short", population),
                                    _join(path, "population_short")),
        headline_regions=headline_regions or (pooling.regions if pooling else
                                              tuple(region_ids[:2])),
        levels_region=levels_region or (region_ids[0] if region_ids else None),
        headline_findings=tuple(headlines),
        body_map=body_map,
    )


def parse_protocol(document: Any, source: str = "protocol", path: Path | None = None,
                   lines: dict[str, int] | None = None) -> Protocol:
    """Validate a parsed protocol document; raise `ReviewError` listing every wrong key, at
    its line when `lines` (from `yaml_lines`) is given."""
    check = _Checker()
    data = check.mapping(
        document, "",
        ("id", "version", "title", "question", "eligibility", "search", "screening",
         "extraction"),
        ("registration", "analysis", "fulltext"),
    )
    question = check.mapping(data.get("question"), "question",
                             ("population", "condition", "outcomes", "designs"),
                             ("statement", "interventions", "comparators", "context"))
    for key in ("statement", "population", "condition", "interventions", "comparators",
                "context"):
        if key in question:
            check.text(question[key], f"question.{key}")
    outcomes = check.mapping(question.get("outcomes"), "question.outcomes", ("primary",),
                             ("secondary",))
    check.texts(outcomes.get("primary"), "question.outcomes.primary", allow_empty=False)
    check.texts(outcomes.get("secondary"), "question.outcomes.secondary")
    check.texts(question.get("designs"), "question.designs", allow_empty=False)
    eligibility = check.mapping(data.get("eligibility"), "eligibility", ("inclusion",),
                                ("exclusion",))
    criteria = {
        key: list(check.texts(eligibility.get(key), f"eligibility.{key}",
                              allow_empty=key == "exclusion"))
        for key in ("inclusion", "exclusion")
    }
    search = _parse_search(check, data.get("search"), "search")
    screening = _parse_screening(check, data.get("screening"), "screening")
    extraction = _parse_extraction(check, data.get("extraction"), "extraction")
    analysis = _parse_analysis(check, data.get("analysis"), "analysis", extraction)
    fulltext = _parse_fulltext(check, data.get("fulltext"), "fulltext")
    protocol = Protocol(
        id=_identifier(check, data.get("id"), "id"),
        version=check.text(data.get("version"), "version"),
        title=check.text(data.get("title"), "title"),
        registration=check.text(data.get("registration", "Not registered"), "registration"),
        question=question,
        eligibility=criteria,
        search=search,
        screening=screening,
        extraction=extraction,
        analysis=analysis,
        path=path,
        fulltext=fulltext,
    )
    if check.errors:
        lines = lines or {}
        shown = [_located(source, lines, path, message) for path, message in check.errors[:20]]
        if len(check.errors) > 20:
            shown.append(f"{source}: and {len(check.errors) - 20} more problems")
        raise ReviewErrors(shown)
    return protocol


def _located(source: str, lines: dict[str, int], path: str, message: str) -> str:
    """`FILE:LINE: key.path: message`, the line of the key or of the nearest enclosing one."""
    enclosing = path
    while enclosing and enclosing not in lines:
        shorter = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", enclosing)
        enclosing = shorter if shorter != enclosing else ""
    where = f"{source}:{lines[enclosing]}" if enclosing in lines else source
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"


def yaml_lines(text: str) -> dict[str, int]:
    """The line of every key and list item of a YAML document, by the key paths the protocol
    errors use (`search.concepts[0].mesh[1]`)."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, path: str) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = _join(path, str(key.value))
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{path}[{index}]")

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if root is not None:
        walk(root, "")
    lines.pop("", None)
    return lines


# A parsed protocol by file, with the file's stamp: a web server reads it on every request.
_LOADED: dict[Path, tuple[tuple[int, int, int], Protocol]] = {}
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_protocol(path: str | os.PathLike) -> Protocol:
    """Read and validate a protocol YAML file (parsed again only when the file changed)."""
    path = Path(path)
    try:
        info = path.stat()
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
    except OSError:
        stamp = None
    cached = _LOADED.get(path.resolve()) if stamp else None
    if cached is not None and cached[0] == stamp:
        return cached[1]
    text = read_text(path)
    try:
        document = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ReviewError(f"{where}: not valid YAML: {problem}") from None
    if document is None:
        raise ReviewError(f"{path}: empty protocol")
    try:
        protocol = parse_protocol(document, source=str(path), path=path)
    except ReviewError:
        # The line of each key is worked out only to say where an error is.
        protocol = parse_protocol(document, source=str(path), path=path,
                                  lines=yaml_lines(text))
    if stamp:
        _LOADED[path.resolve()] = (stamp, protocol)
    return protocol
