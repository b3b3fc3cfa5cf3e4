"""Double extraction: where two extractors' sheets disagree, for the consensus meeting."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from review.extraction.sheet import split_list
from review.protocol import ExtractionSchema, FieldSpec


def _normalised(spec: FieldSpec, cell: str, separator: str) -> object:
    """The value a cell stands for, so that '13' equals '13.0' and 'a;b' equals 'b; a'."""
    cell = cell.strip()
    if not cell:
        return None
    if spec.multi_valued:
        return frozenset(split_list(cell, separator))
    if spec.numeric:
        try:
            return float(cell)
        except ValueError:
            return cell
    return cell


@dataclass(frozen=True)
class ExtractionComparison:
    """Disagreements between two extraction sheets of the same review."""

    differences: pd.DataFrame
    only_in_a: list[str]
    only_in_b: list[str]
    compared_cases: int

    @property
    def agree(self) -> bool:
        return self.differences.empty and not self.only_in_a and not self.only_in_b

    def summary(self) -> str:
        return (f"{self.compared_cases} cases in both: {len(self.differences)} differing "
                f"field(s) in {self.differences['case_id'].nunique()} case(s); "
                f"{len(self.only_in_a)} only in A, {len(self.only_in_b)} only in B")


def compare_extractions(
    a: pd.DataFrame, b: pd.DataFrame, schema: ExtractionSchema
) -> ExtractionComparison:
    """Every field where the two sheets disagree for the same case, and unmatched cases."""
    key = schema.study.id_field
    rows_a = {row[key]: row for _, row in a.fillna("").iterrows()}
    rows_b = {row[key]: row for _, row in b.fillna("").iterrows()}
    shared = [case for case in rows_a if case in rows_b]
    differences = []
    for case in sorted(shared):
        for spec in schema.fields:
            if spec.name == key:
                continue
            left, right = rows_a[case][spec.name], rows_b[case][spec.name]
            if _normalised(spec, left, schema.list_separator) != _normalised(
                spec, right, schema.list_separator
            ):
                differences.append({"case_id": case, "field": spec.name, "a": left, "b": right})
    return ExtractionComparison(
        differences=pd.DataFrame(differences, columns=["case_id", "field", "a", "b"]),
        only_in_a=sorted(set(rows_a) - set(rows_b)),
        only_in_b=sorted(set(rows_b) - set(rows_a)),
        compared_cases=len(shared),
    )
