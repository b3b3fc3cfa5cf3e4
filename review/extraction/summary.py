"""What a reviewer checks before analysis: size, completeness per field, coded counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from review.extraction.sheet import split_list
from review.protocol import ExtractionSchema


@dataclass(frozen=True)
class ExtractionSummary:
    patients: int
    studies: int
    completeness: pd.DataFrame
    value_counts: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {
            "patients": self.patients,
            "studies": self.studies,
            "completeness": self.completeness.to_dict(orient="records"),
            "value_counts": self.value_counts.to_dict(orient="records"),
        }


def summarize_extraction(frame: pd.DataFrame, schema: ExtractionSchema) -> ExtractionSummary:
    """Patients, studies, % reported per field, and patients per coded value.

    A multi-valued field counts a patient once per value, so its counts can add up to more
    than the patients who reported it.
    """
    frame = frame.fillna("").astype(str)
    total = len(frame)
    completeness = []
    counts = []
    for spec in schema.fields:
        cells = frame[spec.name].str.strip()
        reported = int((cells != "").sum())
        completeness.append({
            "field": spec.name,
            "reported": reported,
            "total": total,
            "percent": round(100 * reported / total, 1) if total else 0.0,
        })
        if not spec.coded:
            continue
        tally = dict.fromkeys(spec.values, 0)
        for cell in cells[cells != ""]:
            for value in set(split_list(cell, schema.list_separator)):
                tally[value] = tally.get(value, 0) + 1
        counts.extend({"field": spec.name, "value": value, "patients": n, "reported": reported}
                      for value, n in tally.items())
    studies = frame[schema.study.key].str.strip()
    return ExtractionSummary(
        patients=total,
        studies=int(studies[studies != ""].nunique()),
        completeness=pd.DataFrame(completeness),
        value_counts=pd.DataFrame(counts, columns=["field", "value", "patients", "reported"]),
    )
