"""The review protocol: one YAML file that every step of the review reads.

The protocol is a tree of typed pydantic models: `Protocol.model_validate` checks a parsed
document against them, `protocol_schema()` publishes them as a JSON Schema for editors, and
`load_protocol` reports every problem of a file at once, at its line and key path
(``p.yaml:41: extraction.fields[3].type: 'strng' is not one of: text, ...``), so a reviewer
who edits the protocol by hand knows exactly what to change.

Example::

    from review.protocol import load_protocol
    protocol = load_protocol("protocols/my-review.yaml")
    protocol.screening.stages          # ('title-abstract', 'full-text')
    protocol.extraction.field("age")   # a FieldSpec: type, vocabulary, bounds
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic import Strict as _Strict
from pydantic_core import InitErrorDetails, PydanticCustomError

from review.errors import ReviewError, ReviewErrors
from review.fileio import read_text, write_atomically
from review.protocol_format import FORMAT, SCHEMA_FILE, upgraded_document

FIELD_TYPES = (
    "text", "identifier", "url", "doi", "pmid", "year", "integer", "number", "code", "codes",
    "record",
)
RULE_KINDS = ("requires", "levels_need_sites")
GROUPING_METHODS = ("glmm", "logit", "freeman_tukey", "arcsine")
SCREENING_STAGES = ("title-abstract", "full-text")
SCREENING_ORDERS = ("prioritised", "file", "random")
RANKING_MODELS = ("naive_bayes", "svm", "logistic")
FULLTEXT_SERVICES = ("unpaywall", "pmc")
MEDIAN_RULES = ("table", "quantile")
OUTCOME_KINDS = ("binary", "categorical", "continuous", "time_to_event")
# The bones the report's skeleton map draws; a protocol's body_map maps its site codes onto
# them.
SKELETON_PARTS = ("skull", "orbit", "maxilla", "mandible", "cervical_spine", "thoracic_spine",
                  "lumbar_spine", "spine_unspecified", "sacrum", "clavicle", "scapula",
                  "sternum", "rib", "humerus", "forearm", "hand", "pelvis", "femur",
                  "tibia_fibula", "foot")
MAX_PROXIMITY_PHRASES = 64

IDENTIFIER = r"^[A-Za-z][A-Za-z0-9_-]*$"
PERSON = r"^[a-z][a-z0-9_-]{0,39}$"
SEARCH_DATE = r"^\d{4}(/\d{2}(/\d{2})?)?$"
ONE_WORD = r"^\S+$"
# What a reviewer reads when a text does not have the shape its key asks for.
_PATTERN_MESSAGES = {
    IDENTIFIER: "'{value}' must start with a letter and hold only letters, digits, _ or -",
    PERSON: "'{value}': use lower-case letters, digits, - or _, starting with a letter",
    SEARCH_DATE: "'{value}' must be YYYY, YYYY/MM or YYYY/MM/DD",
    ONE_WORD: "'{value}': each form is one word",
}


def _problem(message: str) -> PydanticCustomError:
    # The message travels as context: a template would read braces in it (a regex) as fields.
    return PydanticCustomError("protocol", "{message}", {"message": message})


def not_one_of(value: str, allowed: Iterable[str]) -> str:
    """`'laser' is not one of: surgery, radiotherapy` and the closest allowed value."""
    allowed = list(allowed)
    close = difflib.get_close_matches(value, allowed, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"'{value}' is not one of: {', '.join(allowed)}{hint}"


class _Problems:
    """The rules one model breaks, each at its key path below the model, raised together."""

    def __init__(self) -> None:
        self.found: list[InitErrorDetails] = []

    def add(self, loc: tuple[str | int, ...], message: str) -> None:
        self.found.append(InitErrorDetails(type=_problem(message), loc=loc, input=None))

    def member(self, value: str | None, allowed: Iterable[str],
               loc: tuple[str | int, ...]) -> None:
        allowed = list(allowed)
        if value and value not in allowed:
            self.add(loc, not_one_of(value, allowed))

    def members(self, values: Sequence[str], allowed: Iterable[str],
                loc: tuple[str | int, ...]) -> None:
        allowed = list(allowed)
        for index, value in enumerate(values):
            self.member(value, allowed, (*loc, index))

    def unique_ids(self, ids: Sequence[str], loc: tuple[str | int, ...]) -> None:
        for index, value in enumerate(ids):
            if value in ids[:index]:
                self.add(loc, f"'{value}' is listed twice")

    def raise_any(self, title: str) -> None:
        if self.found:
            raise ValidationError.from_exception_data(title, self.found)


def _none_as_empty(value: Any) -> Any:
    """`key:` with nothing after it is an empty list."""
    return [] if value is None else value


def _none_as_mapping(value: Any) -> Any:
    return {} if value is None else value


def _one_as_list(value: Any) -> Any:
    """A single text where a list is expected, as a list of one."""
    return [value] if isinstance(value, str) else _none_as_empty(value)


def _unique(items: tuple[Any, ...]) -> tuple[Any, ...]:
    for index, item in enumerate(items):
        if item in items[:index]:
            raise _problem(f"'{item}' is listed twice")
    return items


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
FreeText = Annotated[str, StringConstraints(strip_whitespace=True)]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                              pattern=IDENTIFIER)]
Person = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=PERSON)]
Number = Annotated[float, _Strict()]
Flag = Annotated[bool, _Strict()]
Count = Annotated[int, _Strict(), Field(ge=0)]


def _listed(item: Any, *, at_least_one: bool = False, one_as_list: bool = False,
            distinct: bool = False) -> Any:
    """A list of `item` (kept as a tuple), `key:` alone meaning none; the schema says what a
    file may hold, the before-validator reads it so."""
    schema_input = (Annotated[list[item], Field(min_length=1)] if at_least_one
                    else list[item] | None)
    if one_as_list:
        schema_input = item | schema_input
    return Annotated[
        tuple[item, ...],
        Field(min_length=1 if at_least_one else 0),
        BeforeValidator(_one_as_list if one_as_list else _none_as_empty,
                        json_schema_input_type=schema_input),
        *([AfterValidator(_unique)] if distinct else []),
    ]


def _texts(item: Any, *, at_least_one: bool = False, one_as_list: bool = False) -> Any:
    """A list of distinct texts."""
    return _listed(item, at_least_one=at_least_one, one_as_list=one_as_list, distinct=True)


def _mapping(kind: Any) -> Any:
    """A mapping (a model, or a dict) that `key:` alone leaves empty."""
    return Annotated[kind, BeforeValidator(_none_as_mapping,
                                           json_schema_input_type=kind | None)]


Texts = _texts(Text)
SomeTexts = _texts(Text, at_least_one=True)
FormerNames = _texts(Text, one_as_list=True)
People = _texts(Person)


def _above_zero_time(value: float) -> float:
    if value <= 0:
        raise _problem("must be a time above 0")
    return value


def _time_or_zero(value: float) -> float:
    if value < 0:
        raise _problem("must be a time ≥ 0")
    return value


def _fraction(value: float) -> float:
    if not 0 < value < 1:
        raise _problem(f"a fraction between 0 and 1 (such as 0.95), got {value:g}")
    return value


def _megabytes(value: float) -> float:
    if not 0 < value <= 2000:
        raise _problem(f"a size in MB above 0 and up to 2000, got {value:g}")
    return value


LandmarkTime = Annotated[Number, AfterValidator(_above_zero_time),
                         WithJsonSchema({"type": "number", "exclusiveMinimum": 0})]
BoundTime = Annotated[Number, AfterValidator(_time_or_zero),
                      WithJsonSchema({"type": "number", "minimum": 0})]
Fraction = Annotated[Number, AfterValidator(_fraction),
                     WithJsonSchema({"type": "number", "exclusiveMinimum": 0,
                                     "exclusiveMaximum": 1})]


class _Model(BaseModel):
    """A part of the protocol: frozen once read, strict about its keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


class Outcomes(_Model):
    primary: SomeTexts
    secondary: Texts = ()


class Question(_Model):
    """The review question, PICO-style, as the protocol words it."""

    statement: Text | None = None
    population: Text
    condition: Text
    interventions: Text | None = None
    comparators: Text | None = None
    context: Text | None = None
    outcomes: Outcomes
    designs: SomeTexts


class Eligibility(_Model):
    inclusion: SomeTexts
    exclusion: Texts = ()


class FieldSpec(_Model):
    """One column of the extraction sheet."""

    name: Identifier
    type: Literal[FIELD_TYPES]
    description: FreeText = ""
    required: Flag = False
    unique: Flag = False
    values: Texts = ()
    exclusive: Texts = ()
    pattern: Text | None = None
    min: Number | None = None
    max: Number | None = None
    unit: Text | None = None
    renamed_from: FormerNames = ()
    # Two extractors' numbers agree when they differ by at most half of this.
    precision: Number | None = None
    # What people read for a code (forms, lists); the sheet keeps the code.
    labels: _mapping(dict[str, Text]) = Field(
        default_factory=dict)

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

    @model_validator(mode="after")
    def _fits_its_type(self) -> FieldSpec:
        problems = _Problems()
        kind = self.type
        if self.coded and not self.values:
            problems.add(("values",), f"a '{kind}' field must list its allowed values")
        if self.values and not self.coded:
            problems.add(("values",), f"only code and codes fields take values, not '{kind}'")
        if self.exclusive and kind != "codes":
            problems.add(("exclusive",), "only a multi-valued 'codes' field takes exclusive")
        problems.members(self.exclusive, self.values, ("exclusive",))
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                problems.add(("pattern",), f"not a regular expression: {exc}")
        elif kind == "identifier":
            problems.add(("pattern",), "an identifier field needs a pattern")
        bounded = kind in ("integer", "number")
        if (self.min is not None or self.max is not None) and not bounded:
            problems.add((), f"min and max apply to integer and number fields, not '{kind}'")
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.add((), f"min {self.min:g} is above max {self.max:g}")
        if self.precision is not None and (not bounded or self.precision <= 0):
            problems.add(("precision",),
                         f"a positive step of an integer or number field (here '{kind}')")
        for code in self.labels:
            problems.member(code, self.values, ("labels", code))
        problems.raise_any("FieldSpec")
        return self


class Rule(_Model):
    """A cross-field rule of the extraction schema."""

    rule: Literal[RULE_KINDS]
    field: Text
    needs: Text | None = None
    sites_field: Text | None = None
    regions: _mapping(dict[str, Text]) = Field(
        default_factory=dict)

    @model_validator(mode="after")
    def _has_what_its_kind_needs(self) -> Rule:
        problems = _Problems()
        if self.rule == "requires" and self.needs is None:
            problems.add(("needs",), "missing (the field that must be reported too)")
        if self.rule == "levels_need_sites":
            if self.sites_field is None:
                problems.add(("sites_field",), "missing")
            if not self.regions:
                problems.add(("regions",), "must map level prefixes (C, T, ...) to sites")
        problems.raise_any("Rule")
        return self


class StudyKey(_Model):
    """How patient rows group into reports, and which report fields must agree."""

    key: Text
    id_field: Text
    fields: Texts = ()
    consistent: Texts = ()


class AppraisalItem(_Model):
    id: Identifier
    question: Text
    # The tool's heading for the item (Murad et al.'s selection, ascertainment, causality,
    # reporting), shown over its column of the traffic-light figure.
    domain: Text | None = None


Share = Annotated[Number, Field(ge=0, le=1)]


class JudgementLevel(_Model):
    """One overall judgement: a report takes the first level, in the protocol's order, whose
    share of favourable answers it reaches and whose required items it answers favourably."""

    label: Text
    at_least: Share
    required: Texts = ()


class AppraisalJudgement(_Model):
    """How a report's answers make its overall judgement. Answers neither favourable,
    unfavourable nor not counted (such as "Unclear") count against the share and are drawn
    amber; not-counted answers leave the item out of the share."""

    favourable: SomeTexts
    unfavourable: Texts = ()
    not_counted: Texts = ()
    levels: Annotated[tuple[JudgementLevel, ...], Field(min_length=2)]
    # Repeat the analyses on the reports judged at the first level only.
    sensitivity: Flag = True

    @property
    def best(self) -> JudgementLevel:
        return self.levels[0]


class Appraisal(_Model):
    tool: Text
    answers: SomeTexts
    items: Annotated[tuple[AppraisalItem, ...], Field(min_length=1)]
    # Who answers and from what (the full text, two appraisers and a consensus, ...), as the
    # Methods say it.
    procedure: Text | None = None
    judgement: AppraisalJudgement | None = None

    @model_validator(mode="after")
    def _items_are_distinct(self) -> Appraisal:
        problems = _Problems()
        problems.unique_ids([item.id for item in self.items], ("items",))
        if self.judgement is not None:
            judgement = self.judgement
            roles = {}
            for role in ("favourable", "unfavourable", "not_counted"):
                problems.members(getattr(judgement, role), self.answers, ("judgement", role))
                for index, answer in enumerate(getattr(judgement, role)):
                    if answer in roles:
                        problems.add(("judgement", role, index),
                                     f"'{answer}' is already {roles[answer]}")
                    roles.setdefault(answer, role.replace("_", " "))
            items = [item.id for item in self.items]
            for index, level in enumerate(judgement.levels):
                problems.members(level.required, items,
                                 ("judgement", "levels", index, "required"))
                if index and level.at_least > judgement.levels[index - 1].at_least:
                    problems.add(("judgement", "levels", index, "at_least"),
                                 "levels go from the best to the worst: a level may not ask "
                                 "for a larger share than the one before it")
            last = judgement.levels[-1]
            if last.at_least or last.required:
                problems.add(("judgement", "levels", len(judgement.levels) - 1),
                             "the last level must take every report: at_least: 0 and "
                             "no required items")
        problems.raise_any("Appraisal")
        return self


class DoubleExtraction(_Model):
    """How reports were chosen for a second, independent extraction and how the extractors'
    disagreements were settled; the fields whose agreement is not measured (free text)."""

    selection: Text
    resolution: Text
    not_compared: Texts = ()


class DuplicatePatients(_Model):
    """The screen for one patient reported twice (in a case report and again in a meeting
    abstract, or in two journals): patients of different reports that agree on every `match`
    field (each known in both), do not differ on any `differ_not` field known in both, and
    whose reports are at most `max_year_gap` years apart in `year_field`."""

    match: SomeTexts
    year_field: Text | None = None
    max_year_gap: Count = 5
    differ_not: Texts = ()


class ExtractionSchema(_Model):
    """The extraction sheet's columns, vocabularies and cross-field rules."""

    unit: Text
    list_separator: Annotated[str, StringConstraints(min_length=1, max_length=1)] = ";"
    study: StudyKey
    fields: Annotated[tuple[FieldSpec, ...], Field(min_length=1)]
    rules: _listed(Rule) = ()
    appraisal: Appraisal | None = None
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

    @model_validator(mode="after")
    def _names_its_own_fields(self) -> ExtractionSchema:
        problems = _Problems()
        names = self.columns
        problems.unique_ids(names, ("fields",))
        linking = [spec.name for spec in self.fields if spec.type == "record"]
        if len(linking) > 1:
            problems.add(("fields",), f"one field links a row to its screening record; "
                                      f"{', '.join(linking)} are all of type record")
        former: dict[str, str] = {}
        for index, spec in enumerate(self.fields):
            for old_name in spec.renamed_from:
                where = ("fields", index, "renamed_from")
                if old_name in names:
                    problems.add(where, f"'{old_name}' is still a field of the schema")
                elif old_name in former:
                    problems.add(where, f"'{old_name}' is also the former name of "
                                        f"'{former[old_name]}'")
                former[old_name] = spec.name
        problems.member(self.study.key, names, ("study", "key"))
        problems.member(self.study.id_field, names, ("study", "id_field"))
        problems.members(self.study.fields, names, ("study", "fields"))
        problems.members(self.study.consistent, names, ("study", "consistent"))
        for index, rule in enumerate(self.rules):
            problems.member(rule.field, names, ("rules", index, "field"))
            if rule.rule == "requires":
                problems.member(rule.needs, names, ("rules", index, "needs"))
            else:
                problems.member(rule.sites_field, names, ("rules", index, "sites_field"))
                if rule.sites_field in names:
                    allowed = self.field(rule.sites_field).values
                    for prefix, site in rule.regions.items():
                        problems.member(site, allowed, ("rules", index, "regions", prefix))
        if self.double_extraction is not None:
            problems.members(self.double_extraction.not_compared, names,
                             ("double_extraction", "not_compared"))
        if self.duplicate_patients is not None:
            screen = self.duplicate_patients
            problems.members(screen.match, names, ("duplicate_patients", "match"))
            problems.members(screen.differ_not, names, ("duplicate_patients", "differ_not"))
            problems.member(screen.year_field, names, ("duplicate_patients", "year_field"))
        problems.raise_any("ExtractionSchema")
        return self


def _heading_alone(value: Any) -> Any:
    """A heading alone: exploded, not major, no subheading."""
    return {"heading": value} if isinstance(value, str) else value


class MeshHeading(_Model):
    heading: Text
    subheading: Text | None = None
    major: Flag = False
    explode: Flag = True


def _phrase_as_words(value: Any) -> Any:
    """`phrase: metastasis vertebra` is `words:` with one form per word."""
    if not isinstance(value, dict):
        return value
    if ("phrase" in value) == ("words" in value):
        raise _problem("give either phrase (exact words) or words (the forms of each word)")
    if "phrase" not in value:
        return value
    phrase = value["phrase"]
    if isinstance(phrase, bool) or not isinstance(phrase, (str, int, float)):
        raise _problem(f"phrase must be text, got {_kind(phrase)}")
    words = {key: item for key, item in value.items() if key != "phrase"}
    return {**words, "words": [[word] for word in str(phrase).split()]}


Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=ONE_WORD)]
# One position of a proximity search: a word, or the list of its forms.
Forms = _texts(Word, at_least_one=True, one_as_list=True)


def _add_phrase(schema: dict[str, Any]) -> None:
    schema["properties"]["phrase"] = {
        "type": "string", "description": "The exact words, one form each (instead of words)."}
    schema["oneOf"] = [{"required": ["phrase"]}, {"required": ["words"]}]


class ProximityTerm(_Model):
    """Words at most `distance` words apart in title or abstract. PubMed matches each word of
    a proximity search exactly (no truncation, no plurals), so each position lists its forms
    and the query asks for every combination."""

    model_config = ConfigDict(json_schema_extra=_add_phrase)

    words: Annotated[tuple[Forms, ...],
                     Field(min_length=1)] = ()
    distance: Count

    @model_validator(mode="before")
    @classmethod
    def _from_phrase(cls, value: Any) -> Any:
        return _phrase_as_words(value)

    @field_validator("words")
    @classmethod
    def _few_combinations(cls, words: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        combinations = math.prod(len(forms) for forms in words)
        if combinations > MAX_PROXIMITY_PHRASES:
            raise _problem(f"{combinations} combinations of forms; at most "
                           f"{MAX_PROXIMITY_PHRASES}")
        return words

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


# A MeSH heading, or its name alone.
MeshEntry = Annotated[MeshHeading, BeforeValidator(
    _heading_alone, json_schema_input_type=Text | MeshHeading)]


class SearchConcept(_Model):
    id: Identifier
    label: Text
    mesh: _listed(MeshEntry) = ()
    tiab: Texts = ()
    tiab_proximity: _listed(ProximityTerm) = ()
    publication_types: Texts = ()

    @model_validator(mode="after")
    def _searches_something(self) -> SearchConcept:
        if not (self.mesh or self.tiab or self.tiab_proximity or self.publication_types):
            raise _problem("a concept needs at least one MeSH heading, term or publication "
                           "type")
        return self


class ExcludeBlock(_Model):
    label: Text
    query: Text


SearchDate = Annotated[str, StringConstraints(strip_whitespace=True, pattern=SEARCH_DATE)]


class SearchLimits(_Model):
    date_from: SearchDate | None = None
    date_to: SearchDate | None = None
    languages: Texts = ()


class SearchSpec(_Model):
    databases: Texts = ()
    other_methods: Texts = ()
    concepts: Annotated[tuple[SearchConcept, ...], Field(min_length=1)]
    exclude: _listed(ExcludeBlock) = ()
    limits: _mapping(SearchLimits) = SearchLimits()

    @model_validator(mode="after")
    def _concepts_are_distinct(self) -> SearchSpec:
        problems = _Problems()
        problems.unique_ids([concept.id for concept in self.concepts], ("concepts",))
        problems.raise_any("SearchSpec")
        return self


class ExclusionReason(_Model):
    id: Identifier
    label: Text


class Prioritisation(_Model):
    """The order records are offered in at title and abstract (full text keeps record
    order), and the model that ranks them by the reviewer's own decisions."""

    order: Literal[SCREENING_ORDERS] = "prioritised"
    model: Literal[RANKING_MODELS] = "naive_bayes"
    seed: Count = 0


class Ranking(_Model):
    """The model that ranks the title-and-abstract queue, and its seed."""

    model: Literal[RANKING_MODELS] = "naive_bayes"
    seed: Count = 0


class StoppingRule(_Model):
    """When screening in ranked order may stop: the hypergeometric test of Callaghan and
    Müller-Hansen (2020) rejects, at `confidence`, that recall is below `recall_target`."""

    recall_target: Fraction = 0.95
    confidence: Fraction = 0.95


class Keywords(_Model):
    """Words the screener highlights in titles and abstracts."""

    include: Texts = ()
    exclude: Texts = ()


Stages = _texts(Literal[SCREENING_STAGES], at_least_one=True)


class ScreeningSpec(_Model):
    stages: Stages
    reviewers: People = ()
    exclusion_reasons: Annotated[tuple[ExclusionReason, ...], Field(min_length=1)]
    keywords: _mapping(Keywords) = Keywords()
    adjudicators: People = ()
    # Who may import exports in the web app, besides the adjudicators.
    managers: People = ()
    order: Literal[SCREENING_ORDERS] = "prioritised"
    ranking: _mapping(Ranking) = Ranking()
    stopping: _mapping(StoppingRule) = StoppingRule()

    @property
    def include_keywords(self) -> tuple[str, ...]:
        return self.keywords.include

    @property
    def exclude_keywords(self) -> tuple[str, ...]:
        return self.keywords.exclude

    @property
    def prioritisation(self) -> Prioritisation:
        return Prioritisation(order=self.order, model=self.ranking.model, seed=self.ranking.seed)

    @model_validator(mode="after")
    def _reasons_are_distinct(self) -> ScreeningSpec:
        problems = _Problems()
        problems.unique_ids([reason.id for reason in self.exclusion_reasons],
                            ("exclusion_reasons",))
        problems.raise_any("ScreeningSpec")
        return self


Services = _texts(Literal[FULLTEXT_SERVICES])


class FullTextSpec(_Model):
    """Where `review fulltext find` looks for open copies, in order, and the largest PDF the
    store takes."""

    services: Services = FULLTEXT_SERVICES
    max_megabytes: Annotated[Number, AfterValidator(_megabytes),
                             WithJsonSchema({"type": "number", "exclusiveMinimum": 0,
                                             "maximum": 2000})] = 50.0

    @property
    def max_bytes(self) -> int:
        return int(self.max_megabytes * 1_000_000)


class SiteRegion(_Model):
    id: Identifier
    label: Text
    sites: SomeTexts


class TreatmentGroup(_Model):
    id: Identifier
    label: Text
    any_of: SomeTexts


class TreatmentGrouping(_Model):
    """Mutually exclusive groups of one treatment field; the first group that matches wins."""

    id: Identifier
    label: Text
    field: Text
    groups: Annotated[tuple[TreatmentGroup, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _groups_are_distinct(self) -> TreatmentGrouping:
        problems = _Problems()
        problems.unique_ids([group.id for group in self.groups], ("groups",))
        problems.raise_any("TreatmentGrouping")
        return self


class EventWords(_Model):
    """How the report words the time-to-event analysis, as the protocol's event is said:
    "3 deaths", "alive at 12 months", "patients who died", "a vital status", "Survival by
    treatment". The defaults speak of death, the event of a survival analysis; a review of
    another event (time to surgery, to recurrence) words its own."""

    event: Text = "death"
    events: Text = "deaths"
    # Those without the event at a landmark: "alive at 12 months".
    event_free: Text = "alive"
    # Those who had it: "patients who died".
    had_event: Text = "died"
    # The field saying whether the event happened: "a vital status".
    status: Text = "vital status"
    # The analysis itself: "Survival by treatment", "Kaplan–Meier survival".
    analysis: Text = "survival"

    def count(self, number: int) -> str:
        """`1 death`, `3 deaths`."""
        return f"{number} {self.event if number == 1 else self.events}"


class SurvivalSpec(_Model):
    time_field: Text
    status_field: Text
    event_value: Text
    censored_value: Text
    time_unit: Text = "months"
    landmarks: _listed(LandmarkTime) = ()
    # What the times count from, as the report says it: "the diagnosis of the metastasis".
    origin: Text = "the start of follow-up"
    # The code field saying what each patient's time counts from, and its code for `origin`:
    # the main analysis keeps the patients timed from it; the others form a sensitivity one.
    origin_field: Text | None = None
    origin_value: Text | None = None
    # Below these the report describes instead of testing: deaths in the smallest group for a
    # log-rank test, deaths per model parameter for a Cox model.
    min_events_per_group: Count = 5
    min_events_per_parameter: Count = 10
    # How a median is read off a curve at exactly 50%: "table" as R's printed survfit table
    # (and survminer, lifelines), or "quantile" as R's quantile.survfit.
    median_rule: Literal[MEDIAN_RULES] = "table"
    # Times at which a sensitivity analysis places the events that have no time (besides the
    # origin, the worst case).
    missing_time_bounds: _listed(BoundTime) = ()
    words: _mapping(EventWords) = EventWords()

    @model_validator(mode="after")
    def _origin_is_whole(self) -> SurvivalSpec:
        if (self.origin_field is None) != (self.origin_value is None):
            raise _problem("origin_field and origin_value go together: the field that says "
                           "what each time counts from, and its value for the origin")
        return self


class PoolingSpec(_Model):
    method: Literal[GROUPING_METHODS]
    regions: SomeTexts


class HeadlineFinding(_Model):
    """A coded value the summary counts: '{statement} in 12 of 40 patients for whom this was
    reported'."""

    field: Text
    value: Text
    statement: Text


class Among(_Model):
    """The patients a binary outcome is counted among: those whose `field` is `value`."""

    field: Text
    value: Text
    # How the report names them ("patients with a neurological deficit"); by default the
    # field and value as the protocol codes them.
    label: Text | None = None


class OutcomeRegion(_Model):
    """Values of a categorical outcome counted together: a patient with any of `values` is
    counted once in the region ("Lumbosacral": L1 to S1)."""

    id: Identifier
    label: Text
    values: SomeTexts


class OutcomeSpec(_Model):
    """An outcome the protocol declares, reported in its own section in the protocol's order:
    `binary` (the share of patients whose `field` holds one of `events`, with Wilson CIs,
    overall and by each of `groupings`, and an exact test where every group has at least
    `min_per_group` patients), `categorical` (patients with each value of a coded field, a
    multi-valued one counting a patient under each of its values, ties for the most
    frequent named, and with each of its `regions`), `continuous` (median, quartiles and
    range of a number field) or `time_to_event` (Kaplan–Meier curves, log-rank tests and Cox
    models as the `survival` analysis, from its own `time_to_event` block of time and status
    fields, unit, origin and landmarks). `among` restricts any of them to the patients it names."""

    id: Identifier
    label: Text
    kind: Literal[OUTCOME_KINDS]
    field: Text | None = None
    time_to_event: SurvivalSpec | None = None
    events: _texts(Text, one_as_list=True) = ()
    among: Among | None = None
    groupings: Texts = ()
    min_per_group: Count = 5
    # What a continuous outcome counts in (default: the field's unit).
    unit: Text | None = None
    # Values of a categorical outcome whose share is also pooled across reports (each report
    # a study, by the protocol's pooling method, GLMM without one): a sensitivity analysis.
    pool: Texts = ()
    regions: tuple[OutcomeRegion, ...] = ()

    @model_validator(mode="after")
    def _fits_its_kind(self) -> OutcomeSpec:
        problems = _Problems()
        if self.kind == "binary" and not self.events:
            problems.add(("events",), "a binary outcome lists the values that count as the "
                                      "event")
        if self.kind != "binary" and self.events:
            problems.add(("events",), "only a binary outcome takes events")
        if self.kind != "continuous" and self.unit is not None:
            problems.add(("unit",), "only a continuous outcome takes a unit")
        if self.kind != "categorical" and self.pool:
            problems.add(("pool",), "only a categorical outcome pools its values")
        if self.kind != "categorical" and self.regions:
            problems.add(("regions",), "only a categorical outcome groups its values into "
                                       "regions")
        problems.unique_ids([region.id for region in self.regions], ("regions",))
        timed = self.kind == "time_to_event"
        if timed and self.time_to_event is None:
            problems.add(("time_to_event",), "a time_to_event outcome needs its time_to_event "
                                             "block: time_field, status_field, event_value, "
                                             "censored_value")
        if not timed and self.time_to_event is not None:
            problems.add(("time_to_event",), "only a time_to_event outcome takes this block")
        if timed and self.field is not None:
            problems.add(("field",), "a time_to_event outcome names its fields in its "
                                     "time_to_event block")
        if not timed and self.field is None:
            problems.add(("field",), "missing")
        problems.raise_any("OutcomeSpec")
        return self


class SiteWords(_Model):
    """How the report names the sites and levels, as the protocol's condition is said:
    "Metastatic sites", "patients with a metastasis there", "Vertebral levels"."""

    sites: Text = "Sites"
    # What a patient has at a site, with its article: "a metastasis", "an abscess".
    finding: Text = "a finding"
    sites_per_patient: Text = "Sites per patient"
    levels: Text = "Levels"
    level: Text = "level"

    @property
    def the_finding(self) -> str:
        """'the metastasis' for 'a metastasis'."""
        return re.sub(r"^(a|an)\s+", "the ", self.finding)


class AnalysisSpec(_Model):
    sites_field: Text
    levels_field: Text | None = None
    characteristics: Texts = ()
    site_regions: _listed(SiteRegion) = ()
    pooling: PoolingSpec | None = None
    survival: SurvivalSpec | None = None
    treatment_groupings: _listed(TreatmentGrouping) = ()
    # How the report names who was studied: "patients with <the condition>", and more briefly
    # in caveats (population_short), each as the protocol words it; by default the
    # extraction's unit, in the plural.
    population: Text | None = None
    population_short: Text | None = None
    # The regions the summary names (default: the pooled regions, else the first two).
    headline_regions: Texts = ()
    # The region whose patients the vertebral-level table counts (default: the first region).
    levels_region: Text | None = None
    headline_findings: _listed(HeadlineFinding) = ()
    # The skeleton map's bones, each with the site codes drawn on it; None: the sites whose
    # codes are the drawing's bone names. A protocol whose sites are no bones gets no map.
    body_map: dict[Text, SomeTexts] | None = Field(
        default=None, json_schema_extra={"propertyNames": {"enum": list(SKELETON_PARTS)}})
    # The outcomes reported each in its own section, in this order.
    outcomes: _listed(OutcomeSpec) = ()
    words: _mapping(SiteWords) = SiteWords()

    def reading(self, schema: ExtractionSchema) -> AnalysisSpec:
        """This analysis checked against the extraction schema whose fields it names, with
        its defaults filled in; raises `ValidationError` naming each wrong reference (all of
        them at once, so the checks of its own parts are made here too)."""
        problems = _Problems()
        fields = {spec.name: spec for spec in schema.fields}
        region_ids = tuple(region.id for region in self.site_regions)
        problems.unique_ids(region_ids, ("site_regions",))
        problems.unique_ids([grouping.id for grouping in self.treatment_groupings],
                            ("treatment_groupings",))
        if self.pooling is not None:
            problems.members(self.pooling.regions, region_ids, ("pooling", "regions"))
        problems.members(self.headline_regions, region_ids, ("headline_regions",))
        problems.member(self.levels_region, region_ids, ("levels_region",))
        for part in self.body_map or {}:
            problems.member(part, SKELETON_PARTS, ("body_map", part))

        def coded(name: str | None, loc: tuple[str | int, ...]) -> FieldSpec | None:
            if name is None:
                return None
            spec = fields.get(name)
            if spec is None:
                problems.add(loc, f"'{name}' is not a field of the extraction schema")
            elif not spec.coded:
                problems.add(loc, f"'{name}' is not a coded field")
            return spec

        sites = coded(self.sites_field, ("sites_field",))
        site_codes = sites.values if sites is not None else None
        coded(self.levels_field, ("levels_field",))
        for index, name in enumerate(self.characteristics):
            spec = fields.get(name)
            if spec is None:
                problems.add(("characteristics", index),
                             f"'{name}' is not a field of the extraction schema")
            elif not (spec.coded or spec.type in ("integer", "number")):
                problems.add(("characteristics", index), f"'{name}' is neither coded nor numeric")
        if site_codes is not None:
            for index, region in enumerate(self.site_regions):
                problems.members(region.sites, site_codes, ("site_regions", index, "sites"))
            for part, codes in (self.body_map or {}).items():
                problems.members(codes, site_codes, ("body_map", part))
        def timed(survival: SurvivalSpec, where: tuple[str | int, ...]) -> None:
            time_spec = fields.get(survival.time_field)
            if time_spec is None or time_spec.type != "number":
                problems.add((*where, "time_field"), f"'{survival.time_field}' is not a "
                                                     "number field of the extraction schema")
            status = coded(survival.status_field, (*where, "status_field"))
            if status is not None and status.coded:
                problems.member(survival.event_value, status.values, (*where, "event_value"))
                problems.member(survival.censored_value, status.values,
                                (*where, "censored_value"))
            origin = coded(survival.origin_field, (*where, "origin_field"))
            if origin is not None and origin.coded:
                problems.member(survival.origin_value, origin.values, (*where, "origin_value"))

        if self.survival is not None:
            timed(self.survival, ("survival",))
        for index, grouping in enumerate(self.treatment_groupings):
            target = coded(grouping.field, ("treatment_groupings", index, "field"))
            if target is not None and target.coded:
                for number, group in enumerate(grouping.groups):
                    problems.members(group.any_of, target.values,
                                     ("treatment_groupings", index, "groups", number, "any_of"))
        for index, finding in enumerate(self.headline_findings):
            target = coded(finding.field, ("headline_findings", index, "field"))
            if target is not None and target.coded:
                problems.member(finding.value, target.values,
                                ("headline_findings", index, "value"))
        grouping_ids = [grouping.id for grouping in self.treatment_groupings]
        problems.unique_ids([outcome.id for outcome in self.outcomes], ("outcomes",))
        for index, outcome in enumerate(self.outcomes):
            where = ("outcomes", index)
            problems.members(outcome.groupings, grouping_ids, (*where, "groupings"))
            spec = fields.get(outcome.field)
            if outcome.time_to_event is not None:
                timed(outcome.time_to_event, (*where, "time_to_event"))
            elif spec is None:
                problems.add((*where, "field"),
                             f"'{outcome.field}' is not a field of the extraction schema")
            elif outcome.kind in ("binary", "categorical"):
                if not spec.coded:
                    problems.add((*where, "field"), f"'{outcome.field}' is not a coded field")
                problems.members(outcome.events, spec.values, (*where, "events"))
                problems.members(outcome.pool, spec.values, (*where, "pool"))
                for number, region in enumerate(outcome.regions):
                    problems.members(region.values, spec.values,
                                     (*where, "regions", number, "values"))
            elif spec.type not in ("integer", "number"):
                problems.add((*where, "field"),
                             f"'{outcome.field}' is not an integer or number field")
            if outcome.among is not None:
                among = coded(outcome.among.field, (*where, "among", "field"))
                if among is not None and among.coded:
                    problems.member(outcome.among.value, among.values,
                                    (*where, "among", "value"))
        problems.raise_any("AnalysisSpec")
        population = self.population or f"{schema.unit}s"
        return self.model_copy(update={
            "population": population,
            "population_short": self.population_short or population,
            "headline_regions": self.headline_regions or (
                self.pooling.regions if self.pooling else region_ids[:2]),
            "levels_region": self.levels_region or (region_ids[0] if region_ids else None),
        })


class Protocol(_Model):
    """A validated review protocol."""

    model_config = ConfigDict(title="Review protocol", json_schema_extra={
        "$schema": "https://json-schema.org/draft/2020-12/schema"})

    # The format the file is written in: an older one is upgraded when read.
    protocol_format: Annotated[int, _Strict(), Field(ge=1, le=FORMAT)] = FORMAT
    id: Identifier
    version: Text
    title: Text
    registration: Text = "Not registered"
    question: Question
    eligibility: Eligibility
    search: SearchSpec
    screening: ScreeningSpec
    extraction: ExtractionSchema
    analysis: AnalysisSpec | None = None
    fulltext: _mapping(FullTextSpec) = FullTextSpec()
    _path: Path | None = PrivateAttr(default=None)
    _notes: tuple[str, ...] = PrivateAttr(default=())

    @property
    def path(self) -> Path | None:
        """The file the protocol was read from, if any."""
        return self._path

    @property
    def notes(self) -> tuple[str, ...]:
        """What reading the file changed in memory (an older format upgraded)."""
        return self._notes

    @field_validator("analysis")
    @classmethod
    def _analysis_reads_the_schema(cls, analysis: AnalysisSpec | None,
                                   info: ValidationInfo) -> AnalysisSpec | None:
        schema = info.data.get("extraction")
        if analysis is None or schema is None:
            return analysis
        return analysis.reading(schema)


def protocol_schema() -> dict[str, Any]:
    """The JSON Schema of a protocol file, for editors (YAML language server) and validators."""
    return Protocol.model_json_schema(mode="validation")


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _unwrapped(annotation: Any) -> Any:
    """The type under `Annotated[...]` and `X | None`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or type(annotation).__name__ == "UnionType":
            annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        else:
            return annotation


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model whose keys live at `loc` of a protocol document."""
    current: Any = Protocol
    for part in loc:
        current = _unwrapped(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return None
            current = info.annotation
        elif get_origin(current) in (tuple, list):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrapped(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _message(error: Any) -> str:
    """One pydantic error as a reviewer reads it."""
    kind, value, context = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "protocol":
        return str(context["message"])
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        model = _model_at(error["loc"][:-1])
        # The schema's keys, not the model's fields: a key read before validation (a
        # proximity term's phrase) is allowed too.
        allowed = list(model.model_json_schema()["properties"]) if model else []
        close = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key{hint} (allowed: {', '.join(allowed)})"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", context.get("expected", ""))
        return not_one_of(str(value), allowed)
    if kind == "string_pattern_mismatch":
        template = _PATTERN_MESSAGES.get(context.get("pattern", ""), "'{value}' is malformed")
        return template.format(value=value)
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be one character, got '{value}'"
    if kind == "string_type":
        return f"must be text, got {_kind(value)}"
    if kind == "too_short":
        return "must list at least one entry"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, got {_kind(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of keys, got {_kind(value)}"
    if kind == "bool_type":
        return f"must be true or false, got {value!r}"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"a whole number, got {value!r}"
    if kind == "greater_than_equal":
        return f"a whole number ≥ {context['ge']}, got {value!r}"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, got {value!r}"
    return str(error["msg"])


def _path_of(loc: Sequence[str | int]) -> str:
    """`('search', 'concepts', 1, 'mesh', 0)` as `search.concepts[1].mesh[0]`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "[key]":
            path = f"{path}.{part}" if path else str(part)
    return path


def parse_protocol(document: Any, source: str = "protocol", path: Path | None = None,
                   lines: dict[str, int] | None = None) -> Protocol:
    """Validate a parsed protocol document; raise `ReviewError` listing every wrong key, at
    its line when `lines` (from `yaml_lines`) is given."""
    document, notes = upgraded_document(document, source)
    try:
        protocol = Protocol.model_validate(document)
    except ValidationError as invalid:
        lines = lines or {}
        errors = invalid.errors(include_url=False)
        shown = [_located(source, lines, _path_of(error["loc"]), _message(error))
                 for error in errors[:20]]
        if len(errors) > 20:
            shown.append(f"{source}: and {len(errors) - 20} more problems")
        raise ReviewErrors(shown) from None
    protocol._path = path
    protocol._notes = tuple(notes)
    return protocol


def _located(source: str, lines: dict[str, int], path: str, message: str) -> str:
    """`FILE:LINE: key.path: message`, the line of the key or of the nearest enclosing one."""
    enclosing = path
    while enclosing and enclosing not in lines:
        shorter = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", enclosing)
        enclosing = shorter if shorter != enclosing else ""
    where = f"{source}:{lines[enclosing]}" if enclosing in lines else source
    return f"{where}: {path}: {message}" if path else f"{where}: {message}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


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


def read_protocol_document(path: Path) -> tuple[str, Any]:
    """A protocol file's text and its parsed YAML; a YAML error is one line at its place."""
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
    return text, document


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
    text, document = read_protocol_document(path)
    try:
        protocol = parse_protocol(document, source=str(path), path=path)
    except ReviewError:
        # The line of each key is worked out only to say where an error is.
        protocol = parse_protocol(document, source=str(path), path=path,
                                  lines=yaml_lines(text))
    if stamp:
        _LOADED[path.resolve()] = (stamp, protocol)
    return protocol


def protocol_schema_text() -> str:
    """The JSON Schema as the committed `protocol.schema.json` holds it."""
    return json.dumps(protocol_schema(), indent=2, ensure_ascii=False) + "\n"


def write_protocol_schema(protocol_path: Path) -> Path:
    """Write the current JSON Schema beside a protocol, where its `$schema` comment points."""
    target = protocol_path.parent / SCHEMA_FILE
    write_atomically(target, protocol_schema_text())
    return target
