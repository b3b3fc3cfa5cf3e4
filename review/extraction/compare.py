"""Double extraction: how far two extractors agree, field by field, and what the consensus kept.

A team's second extractor fills a sheet of their own in the schema's columns; each extractor's
sheet lives in `data/extraction/extractors/<name>.csv` and the consensus is the review's sheet.
Values are compared as the schema reads them: a list as a set ('a;b' equals 'b; a'), a number
by value within the field's precision ('13' equals '13.0'), a blank as a category of its own
(one extractor reporting what the other left blank is a disagreement).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from review.errors import DataProblems, Problem, ReviewError
from review.extraction.sheet import header_problems, split_list, split_sheet
from review.fileio import read_text
from review.protocol import ExtractionSchema, FieldSpec

EXTRACTOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NOT_IN_CONSENSUS = "(not in the consensus sheet)"


def _normalised(spec: FieldSpec, cell: str, separator: str) -> object:
    """The value a cell stands for, so that '13' equals '13.0' and 'a;b' equals 'b; a'."""
    cell = cell.strip()
    if not cell:
        return None
    if spec.multi_valued:
        return frozenset(split_list(cell, separator))
    if spec.numeric:
        try:
            number = float(cell)
        except ValueError:
            return cell
        if spec.precision is not None:
            # Rounded to the field's step, so that the comparison is a category (for kappa).
            return round(number / spec.precision)
        return number
    return cell


@dataclass(frozen=True)
class FieldAgreement:
    """Agreement of two extractors on one field over the patients both extracted."""

    field: str
    compared: int
    agreed: int
    kappa: float

    @property
    def percent(self) -> float:
        return 100 * self.agreed / self.compared if self.compared else math.nan

    @property
    def kappa_defined(self) -> bool:
        """Kappa is 0/0 when both extractors gave every patient one and the same value."""
        return bool(np.isfinite(self.kappa))


def cohen_kappa(first: list[object], second: list[object]) -> float:
    """Cohen's kappa of two raters' categories (any hashable values); NaN when chance
    agreement is 1, i.e. both gave every item the same single category."""
    from statsmodels.stats.inter_rater import cohens_kappa

    categories = sorted(set(first) | set(second), key=repr)
    if len(categories) < 2:
        return math.nan
    index = {category: i for i, category in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)))
    for a, b in zip(first, second, strict=True):
        table[index[a], index[b]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):  # its unused z-test of kappa 0
        return float(cohens_kappa(table).kappa)


@dataclass(frozen=True)
class ExtractionComparison:
    """Where two extraction sheets of the same review disagree, and how much they agree.

    `differences` has one row per patient and field that differ (`case_id`, `field`, `a`,
    `b`, and `consensus` when a consensus sheet was given); `agreement` one row per compared
    field. Example::

        comparison = compare_extractions(first, second, protocol.extraction)
        comparison.agreement_table()      # field, compared, agreed, percent, kappa
    """

    differences: pd.DataFrame
    only_in_a: list[str]
    only_in_b: list[str]
    compared_cases: int
    fields: tuple[FieldAgreement, ...] = ()
    names: tuple[str, str] = ("A", "B")
    compared_studies: tuple[str, ...] = ()
    studies_not_in_consensus: tuple[str, ...] = ()

    @property
    def agree(self) -> bool:
        return self.differences.empty and not self.only_in_a and not self.only_in_b

    @property
    def values_compared(self) -> int:
        return sum(item.compared for item in self.fields)

    @property
    def values_agreed(self) -> int:
        return sum(item.agreed for item in self.fields)

    def agreement_table(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{"field": item.field, "compared": item.compared, "agreed": item.agreed,
              "percent": round(item.percent, 1), "kappa": item.kappa}
             for item in self.fields],
            columns=["field", "compared", "agreed", "percent", "kappa"])

    def summary(self) -> str:
        agreed = (f"{self.values_agreed} of {self.values_compared} values agree; "
                  if self.fields else "")
        return (f"{self.compared_cases} cases in both: {agreed}{len(self.differences)} differing "
                f"field(s) in {self.differences['case_id'].nunique()} case(s); "
                f"{len(self.only_in_a)} only in {self.names[0]}, "
                f"{len(self.only_in_b)} only in {self.names[1]}")

    def to_dict(self) -> dict[str, object]:
        def number(value: float) -> float | None:
            return round(value, 4) if np.isfinite(value) else None

        return {
            "extractors": list(self.names),
            "cases_compared": self.compared_cases,
            "studies_compared": list(self.compared_studies),
            "studies_not_in_consensus": list(self.studies_not_in_consensus),
            "values_compared": self.values_compared,
            "values_agreed": self.values_agreed,
            "fields": [{"field": item.field, "compared": item.compared, "agreed": item.agreed,
                        "percent": number(item.percent), "kappa": number(item.kappa)}
                       for item in self.fields],
            "differences": self.differences.to_dict(orient="records"),
            "only_in_a": self.only_in_a,
            "only_in_b": self.only_in_b,
        }


def compare_extractions(
    a: pd.DataFrame, b: pd.DataFrame, schema: ExtractionSchema,
    consensus: pd.DataFrame | None = None, names: tuple[str, str] = ("A", "B"),
) -> ExtractionComparison:
    """Every field where the two sheets disagree for the same case, the agreement per field
    (percent and Cohen's kappa), unmatched cases, and with `consensus` the value it kept.

    Identifiers (the keys rows are matched by) and the fields the protocol's
    `double_extraction.not_compared` names (free text) are not compared.
    """
    key = schema.study.id_field
    not_compared = set(schema.double_extraction.not_compared
                       if schema.double_extraction else ())
    specs = [spec for spec in schema.fields
             if spec.type != "identifier" and spec.name not in not_compared]
    rows_a = {row[key]: row for _, row in a.fillna("").iterrows()}
    rows_b = {row[key]: row for _, row in b.fillna("").iterrows()}
    kept = ({row[key]: row for _, row in consensus.fillna("").iterrows()}
            if consensus is not None else None)
    shared = sorted(case for case in rows_a if case in rows_b)
    differences = []
    fields = []
    for spec in specs:
        left = [_normalised(spec, rows_a[case][spec.name], schema.list_separator)
                for case in shared]
        right = [_normalised(spec, rows_b[case][spec.name], schema.list_separator)
                 for case in shared]
        fields.append(FieldAgreement(spec.name, len(shared),
                                     sum(x == y for x, y in zip(left, right, strict=True)),
                                     cohen_kappa(left, right) if shared else math.nan))
    for case in shared:
        for spec in specs:
            first, second = rows_a[case][spec.name], rows_b[case][spec.name]
            if _normalised(spec, first, schema.list_separator) == _normalised(
                    spec, second, schema.list_separator):
                continue
            row = {"case_id": case, "field": spec.name, "a": first, "b": second}
            if kept is not None:
                row["consensus"] = kept[case][spec.name] if case in kept else NOT_IN_CONSENSUS
            differences.append(row)
    columns = ["case_id", "field", "a", "b", *(["consensus"] if kept is not None else [])]
    study_key = schema.study.key
    studies = sorted({rows_a[case][study_key] for case in shared})
    return ExtractionComparison(
        differences=pd.DataFrame(differences, columns=columns),
        only_in_a=sorted(set(rows_a) - set(rows_b)),
        only_in_b=sorted(set(rows_b) - set(rows_a)),
        compared_cases=len(shared),
        fields=tuple(fields),
        names=names,
        compared_studies=tuple(studies),
        studies_not_in_consensus=tuple(
            study for study in studies
            if kept is not None and not any(row[study_key] == study for row in kept.values())),
    )


def read_extractor_sheet(path: str | os.PathLike, schema: ExtractionSchema) -> pd.DataFrame:
    """One extractor's sheet: the schema's columns (any further column, such as the page the
    extractor read, is kept in the file and ignored here)."""
    source = str(path)
    text = read_text(path)
    if not text.strip():
        raise ReviewError(f"{source}: empty file (expected the extraction sheet's columns)")
    header, records, ragged = split_sheet(text, source)
    problems = [problem for problem in header_problems(header, schema.columns, source)
                if not problem.message.startswith("unknown column")] + ragged
    if problems:
        raise DataProblems(problems)
    frame = pd.DataFrame(records, columns=header, dtype=object)
    key = schema.study.id_field
    seen: dict[str, int] = {}
    for number, case in enumerate(frame[key], start=2):
        if not case.strip():
            raise DataProblems([Problem(source, number, key, "blank")])
        if case in seen:
            raise DataProblems([Problem(source, number, key,
                                        f"'{case}' also on row {seen[case]}")])
        seen[case] = number
    return frame[schema.columns].reset_index(drop=True)


def extractor_sheets(folder: Path, schema: ExtractionSchema) -> dict[str, pd.DataFrame]:
    """Every extractor's sheet in `folder`, by extractor (the file name without .csv)."""
    if not folder.is_dir():
        return {}
    sheets = {}
    for path in sorted(folder.glob("*.csv")):
        if not EXTRACTOR_NAME.fullmatch(path.stem):
            raise ReviewError(f"{path}: an extractor's sheet is named <extractor>.csv with "
                              "letters, digits, '.', '_' or '-'")
        sheets[path.stem] = read_extractor_sheet(path, schema)
    return sheets


def compare_extractors(folder: Path, consensus: pd.DataFrame, schema: ExtractionSchema
                       ) -> ExtractionComparison | None:
    """The double extraction of a workspace: its two extractors' sheets compared, with the
    consensus sheet's values; None when the review has fewer than two extractor sheets."""
    sheets = extractor_sheets(folder, schema)
    if len(sheets) < 2:
        return None
    if len(sheets) > 2:
        raise ReviewError(f"{folder}: {len(sheets)} extractor sheets ({', '.join(sheets)}); "
                          "agreement (Cohen's kappa) is measured between two extractors, so "
                          "keep two sheets here")
    (first, a), (second, b) = sheets.items()
    return compare_extractions(a, b, schema, consensus=consensus, names=(first, second))
