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


@pytest.mark.parametrize(("events", "message"), [
    (["dead", "alive", "dead"], r"event: row 0 is 'dead'; events must be 0/1 or True/False"),
    ([1, float("nan"), 0], r"event: row 1 is nan"),
    ([1, 2, 0], r"event: row 1 is 2;"),
    (["yes", "no", "yes"], r"event: row 0 is 'yes'"),
])
def test_kaplan_meier_refuses_events_that_are_not_0_or_1(events, message):
    from analysis.survival import kaplan_meier

    with pytest.raises(ValueError, match=message):
        kaplan_meier([1.0, 2.5, 4.0], events)


@pytest.mark.parametrize(("times", "message"), [
    ([1.0, float("nan"), 3.0], r"time: row 1 is nan; times must be known, finite numbers ≥ 0"),
    ([1.0, -2.0, 3.0], r"time: row 1 is -2.0"),
    ([1.0, float("inf"), 3.0], r"time: row 1 is inf"),
    (["1", "soon", "3"], r"time: row 1 is 'soon'"),
])
def test_kaplan_meier_refuses_times_that_are_not_known_and_non_negative(times, message):
    from analysis.survival import kaplan_meier

    with pytest.raises(ValueError, match=message):
        kaplan_meier(times, [1, 0, 1])


def test_empty_input_missing_columns_and_unreadable_covariates_are_errors():
    from analysis.survival import SurvivalByGroup, kaplan_meier

    with pytest.raises(ValueError, match="no patients: time and event are empty"):
        kaplan_meier([], [])
    frame = pd.DataFrame(GROUPS["data"])  # "status", not "event"
    with pytest.raises(ValueError, match=r"no column 'event' \(columns: time, status, group\)"):
        SurvivalByGroup().fit(frame)
    with pytest.raises(ValueError, match=r"no column 'event'"):
        cox_model(frame.drop(columns="group"))
    frame = frame.rename(columns={"status": "event"}).assign(
        age=["61", "x", *["50"] * (len(frame) - 2)])
    with pytest.raises(ValueError, match=r"age: row 1 is 'x'; a covariate must be a number"):
        SurvivalByGroup().fit(frame, covariates=["age"])
    events = pd.Series([1, 0, "dead"], index=[10, 11, 12])
    with pytest.raises(ValueError, match=r"event: row 12 is 'dead'"):
        kaplan_meier(pd.Series([1.0, 2.0, 3.0], index=[10, 11, 12]), events)


def test_where_lifelines_converges_it_agrees_with_the_newton_raphson_fit():
    """lifelines (a required library) is the independent check: with 'none' as the reference
    its optimiser converges on this set, and the two fits agree."""
    from lifelines import CoxPHFitter

    from analysis.survival import SurvivalByGroup

    frame = pd.DataFrame(GROUPS["data"]).rename(columns={"status": "event"})
    ours = SurvivalByGroup().fit(frame, reference="none").cox.table.set_index("term")
    design = frame.assign(radiotherapy=(frame.group == "radiotherapy").astype(float),
                          surgery=(frame.group == "surgery").astype(float))
    fitter = CoxPHFitter().fit(design[["time", "event", "radiotherapy", "surgery"]], "time",
                               "event", fit_options={"precision": 1e-12, "r_precision": 1e-14,
                                                     "max_steps": 500})
    for term in ("radiotherapy", "surgery"):
        assert ours.loc[f"group: {term}", "coef"] == pytest.approx(
            fitter.params_[term], abs=1e-5)
        assert ours.loc[f"group: {term}", "se"] == pytest.approx(
            fitter.standard_errors_[term], abs=1e-5)
