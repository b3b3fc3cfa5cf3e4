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


GROUPS = json.loads((Path(__file__).parent / "fixtures" / "r" / "cox_reference.json")
                    .read_text(encoding="utf-8"))


@pytest.mark.parametrize("reference", ["none", "radiotherapy", "surgery"])
def test_every_reference_level_gives_coxphs_model(reference):
    from analysis.survival import SurvivalByGroup

    frame = pd.DataFrame(GROUPS["data"]).rename(columns={"status": "event"})
    cox = SurvivalByGroup().fit(frame, reference=reference).cox
    expected = GROUPS["fits"][reference]
    assert cox.not_estimable is None and cox.reference == reference
    table = cox.table.set_index("term")
    assert list(table.index) == [f"group: {term}" for term in expected["terms"]]
    for column, key in (("coef", "coef"), ("se", "se"), ("ci_low", "ci_low"),
                        ("ci_high", "ci_high"), ("p_value", "p")):
        assert table[column].tolist() == pytest.approx(expected[key], abs=1e-6), column
    assert cox.loglik == pytest.approx(expected["loglik"], abs=1e-6)


def test_the_hazard_ratios_of_two_references_are_reciprocal():
    from analysis.survival import SurvivalByGroup

    frame = pd.DataFrame(GROUPS["data"]).rename(columns={"status": "event"})
    by_none = SurvivalByGroup().fit(frame, reference="none").cox.table.set_index("term")
    by_surgery = SurvivalByGroup().fit(frame, reference="surgery").cox.table.set_index("term")
    assert by_surgery.loc["group: none", "hr"] == pytest.approx(
        1 / by_none.loc["group: surgery", "hr"], rel=1e-9)


def test_a_reference_that_is_no_group_is_refused():
    from analysis.survival import SurvivalByGroup

    frame = pd.DataFrame(GROUPS["data"]).rename(columns={"status": "event"})
    with pytest.raises(ValueError, match=r"reference 'zzz' is not a group \(groups: none, "
                                         r"radiotherapy, surgery\)"):
        SurvivalByGroup().fit(frame, reference="zzz")
