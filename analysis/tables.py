"""Descriptive tables: Table 1 of patient characteristics, with explicit denominators."""

from __future__ import annotations

import math

import pandas as pd

from analysis.sites import code_label
from review.protocol import ExtractionSchema


def _number(value: float) -> str:
    if math.isnan(value):
        return "NA"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def characteristics_table(
    cases: pd.DataFrame, schema: ExtractionSchema, fields: tuple[str, ...] | list[str]
) -> pd.DataFrame:
    """Table 1: for numeric fields the median (IQR) and range, for coded fields the patients
    with each value; every row says how many patients had the field reported (`reported`)
    out of all patients (`total`)."""
    total = len(cases)
    rows = []
    for name in fields:
        spec = schema.field(name)
        column = cases[name]
        reported = int(column.notna().sum())
        label = code_label(name) + (f", {spec.unit}" if spec.unit else "")
        if spec.numeric:
            values = column.dropna().astype(float)
            if len(values):
                q1, median, q3 = values.quantile([0.25, 0.5, 0.75])
                text = (f"{_number(median)} ({_number(q1)}–{_number(q3)}); "
                        f"range {_number(values.min())}–{_number(values.max())}")
            else:
                text = "not reported"
            rows.append({"characteristic": label, "value": "median (IQR)", "patients": None,
                         "reported": reported, "total": total, "percent": None,
                         "summary": text})
            continue
        values = column.dropna()
        for code in spec.values:
            count = int(sum(code in (codes if spec.multi_valued else (codes,))
                            for codes in values))
            if count == 0:
                continue
            percent = 100 * count / reported
            rows.append({"characteristic": label, "value": code, "patients": count,
                         "reported": reported, "total": total, "percent": percent,
                         "summary": f"{count}/{reported} ({percent:.0f}%)"})
        if reported == 0:
            rows.append({"characteristic": label, "value": "", "patients": None,
                         "reported": 0, "total": total, "percent": None,
                         "summary": "not reported"})
    return pd.DataFrame(rows, columns=["characteristic", "value", "patients", "reported",
                                       "total", "percent", "summary"])
