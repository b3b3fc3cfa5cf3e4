"""The Cox model against stored survival 3.5 output (`tests/r/cox_edges.R`, Efron ties).

R's coxph iterates until the log partial likelihood changes by less than 1e-9 (relative);
the fit here goes further, so coefficients, standard errors and limits agree to 1e-6.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.survival import cox_model

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "r" / "cox_edges.json")
                       .read_text(encoding="utf-8"))


def frame_of(case: dict) -> pd.DataFrame:
    data = pd.DataFrame(case["data"]).rename(columns={"status": "event"})
    return data[["time", "event", *case["terms"]]].astype(float)


@pytest.mark.parametrize("name", [name for name in REFERENCE if name != "near_separation"])
def test_cox_matches_r(name):
    case = REFERENCE[name]
    result = cox_model(frame_of(case))
    assert result.not_estimable is None
    table = result.table.set_index("term")
    for index, term in enumerate(case["terms"]):
        row = table.loc[term]
        assert row.coef == pytest.approx(case["coef"][index], abs=1e-6)
        assert row.se == pytest.approx(case["se"][index], abs=1e-6)
        assert row.ci_low == pytest.approx(case["ci_low"][index], abs=1e-6)
        assert row.ci_high == pytest.approx(case["ci_high"][index], abs=1e-6)
        assert row.p_value == pytest.approx(case["p"][index], abs=1e-6)


def test_where_r_warns_of_an_infinite_coefficient_the_model_is_not_estimable():
    # R: "Loglik converged before variable 1; coefficient may be infinite".
    result = cox_model(frame_of(REFERENCE["near_separation"]))
    assert result.table.empty
    assert "'group' is unbounded" in result.not_estimable
