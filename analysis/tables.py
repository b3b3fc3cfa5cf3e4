"""Descriptive tables: Table 1 of patient characteristics, with explicit denominators."""

from __future__ import annotations

import decimal
import math

import pandas as pd

from analysis.sites import code_label
from review.protocol import ExtractionSchema


def _percent(count: int, total: int) -> str:
    """count/total as a whole percentage, rounded half up (5/8 → 63%)."""
    exact = decimal.Decimal(100 * count) / decimal.Decimal(total)
    return f"{exact.quantize(decimal.Decimal(1), decimal.ROUND_HALF_UP)}%"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NA"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def characteristics_table(
    cases: pd.DataFrame, schema: ExtractionSchema, fields: tuple[str, ...] | list[str]
) -> pd.DataFrame:
    """Table 1: for numeric fields the median (IQR), range and n, for coded fields the
    patients with each value (as the vocabulary's readable label); every row says how many
    patients had the field reported (`reported`) out of all patients (`total`). A coded field
    of which only one value was ever recorded (a "yes" whose "no" nobody wrote down) gives no
    percentage, which would read as 100%: it says in how many patients that value was
    reported."""
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
                        f"range {_number(values.min())}–{_number(values.max())}; "
                        f"n = {reported}")
            else:
                text = "not reported"
            rows.append({"characteristic": label, "value": "median (IQR)", "patients": None,
                         "reported": reported, "total": total, "percent": None,
                         "summary": text})
            continue
        values = column.dropna()
        counts = {code: int(sum(code in (codes if spec.multi_valued else (codes,))
                                for codes in values)) for code in spec.values}
        one_sided = not spec.multi_valued and len(spec.values) > 1 and \
            sum(count > 0 for count in counts.values()) == 1
        for code, count in counts.items():
            if count == 0:
                continue
            if one_sided:
                others = ", ".join(code_label(other) for other in spec.values if other != code)
                rows.append({"characteristic": label, "value": code_label(code),
                             "patients": count, "reported": reported, "total": total,
                             "percent": None,
                             "summary": f"reported in {count} patients ({others.lower()} never "
                                        "recorded)"})
                continue
            rows.append({"characteristic": label, "value": code_label(code), "patients": count,
                         "reported": reported, "total": total, "percent": 100 * count / reported,
                         "summary": f"{count}/{reported} ({_percent(count, reported)})"})
        if reported == 0:
            rows.append({"characteristic": label, "value": "", "patients": None,
                         "reported": 0, "total": total, "percent": None,
                         "summary": "not reported"})
    return pd.DataFrame(rows, columns=["characteristic", "value", "patients", "reported",
                                       "total", "percent", "summary"])
