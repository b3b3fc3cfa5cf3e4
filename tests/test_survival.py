"""Kaplan–Meier, log-rank and Cox against R survival 3.5 (the aml data) and edge cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.survival import SurvivalByGroup, holm, kaplan_meier, logrank_test

MAINTAINED = [(9, 1), (13, 1), (13, 0), (18, 1), (23, 1), (28, 0), (31, 1), (34, 1), (45, 0),
              (48, 1), (161, 0)]
NONMAINTAINED = [(5, 1), (5, 1), (8, 1), (8, 1), (12, 1), (16, 0), (23, 1), (27, 1), (30, 1),
                 (33, 1), (43, 1), (45, 1)]


def aml() -> pd.DataFrame:
    rows = [{"time": t, "event": bool(e), "group": "Maintained"} for t, e in MAINTAINED]
    rows += [{"time": t, "event": bool(e), "group": "Nonmaintained"} for t, e in NONMAINTAINED]
    return pd.DataFrame(rows)


def curve(data, conf_type="log-log"):
    return kaplan_meier([t for t, _ in data], [e for _, e in data], conf_type=conf_type)


def same(found: tuple, expected: tuple) -> bool:
    return all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(found, expected,
                                                                           strict=True))


@pytest.mark.parametrize(
    ("data", "conf_type", "expected"),
    [
        (MAINTAINED, "log-log", (31, 13, math.nan)),
        (MAINTAINED, "log", (31, 18, math.nan)),
        (NONMAINTAINED, "log-log", (23, 5, 33)),
        (NONMAINTAINED, "log", (23, 8, math.nan)),
    ],
)
def test_medians_and_limits_match_r(data, conf_type, expected):
    assert same(curve(data, conf_type).median, expected)


def test_at_risk_counts_match_r():
    assert [curve(MAINTAINED).number_at_risk(t) for t in (0, 10, 20, 30, 40, 50)] == \
        [11, 10, 7, 5, 3, 1]
    assert [curve(NONMAINTAINED).number_at_risk(t) for t in (0, 10, 20, 30, 40, 50)] == \
        [12, 8, 6, 4, 2, 0]


def test_logrank_matches_r_survdiff():
    frame = aml()
    result = logrank_test(frame.time.to_numpy(), frame.event.to_numpy(), frame.group.to_numpy())
    assert abs(result.chi2 - 3.3964) < 1e-4
    assert result.df == 1


def test_cox_efron_matches_r_coxph():
    result = SurvivalByGroup().fit(aml(), reference="Maintained")
    row = result.cox.table.set_index("term").loc["group: Nonmaintained"]
    assert abs(row.coef - 0.91553) < 1e-4
    assert abs(row.se - 0.51193) < 1e-4
    assert row.bounded


@pytest.mark.parametrize(("n", "median"), [(4, 2.5), (6, 3.5)])
def test_median_on_an_exact_half_is_the_midpoint(n, median):
    assert curve([(t, 1) for t in range(1, n + 1)]).median[0] == median


def test_flat_half_at_the_end_is_its_start_as_rs_table_and_its_midpoint_by_quantile():
    flat = curve([(1, 1), (2, 1), (3, 0), (9, 0)])
    assert flat.median[0] == 2  # summary(survfit)$table, survminer, lifelines
    assert flat.quantile(0.5)[0] == (2 + 9) / 2  # quantile.survfit


def test_median_not_reached_is_nan():
    assert math.isnan(curve([(1, 1), (2, 0), (10, 0)]).median[0])


def test_survival_at_landmarks_and_beyond_follow_up():
    km = curve(MAINTAINED)
    assert km.survival_at(10)[0] == pytest.approx(10 / 11)
    assert km.survival_at(0)[0] == 1.0
    assert all(math.isnan(v) for v in km.survival_at(200))


def test_log_band_is_r_survfit_default():
    km = curve(MAINTAINED, "log")
    s, low, high = km.survival_at(9)
    se = math.sqrt(1 / (11 * 10))
    assert low == pytest.approx(s * math.exp(-1.959964 * se), rel=1e-6)
    assert high == pytest.approx(min(1.0, s * math.exp(1.959964 * se)), rel=1e-6)


def test_group_of_one_patient():
    result = SurvivalByGroup().fit(pd.DataFrame({"time": [5.0, 3.0, 8.0, 2.0],
                                                 "event": [True, False, True, True],
                                                 "group": ["a", "b", "b", "b"]}))
    summary = result.summary().set_index("group")
    assert summary.loc["a", "n"] == 1
    assert summary.loc["a", "median"] == 5.0
    assert result.logrank.df == 1


def test_all_censored_has_no_median_and_no_test():
    frame = pd.DataFrame({"time": [3.0, 6.0, 9.0, 4.0], "event": [False] * 4,
                          "group": ["a", "a", "b", "b"]})
    result = SurvivalByGroup().fit(frame)
    summary = result.summary()
    assert summary["median"].isna().all()
    assert (summary["events"] == 0).all()
    assert result.logrank.df == 0 and math.isnan(result.logrank.p_value)
    assert result.cox is None


def test_group_where_nobody_dies_makes_the_model_not_estimable():
    frame = pd.DataFrame({"time": [1.0, 2, 3, 4, 5, 6, 7, 8],
                          "event": [True, True, True, False, False, False, False, False],
                          "group": ["a", "a", "a", "a", "b", "b", "b", "b"]})
    cox = SurvivalByGroup(event_label="death").fit(frame, reference="a").cox
    assert cox.table.empty
    assert cox.not_estimable == ("the hazard ratio of 'group: b' is unbounded (every death "
                                 "while both levels were at risk was outside it), so the model "
                                 "cannot be fitted as specified")


def test_an_unbounded_term_is_never_dropped_and_the_rest_refitted():
    # The group is unbounded; a model of age alone would answer another question.
    frame = pd.DataFrame({"time": [1.0, 2, 3, 4, 5, 6, 7, 8],
                          "event": [True, True, True, True, False, True, False, True],
                          "group": ["a", "a", "a", "a", "b", "b", "b", "b"],
                          "age": [50.0, 61, 72, 45, 58, 66, 53, 70]})
    cox = SurvivalByGroup().fit(frame, covariates=["age"], reference="b").cox
    assert cox.table.empty and "'group: a' is unbounded" in cox.not_estimable


def test_the_cox_model_names_its_reference_group():
    cox = SurvivalByGroup().fit(aml(), reference="Maintained",
                                labels={"Maintained": "Maintained chemotherapy",
                                        "Nonmaintained": "No maintenance"}).cox
    assert cox.reference == "Maintained chemotherapy"
    assert list(cox.table.term) == ["group: No maintenance"]


def test_missing_covariates_are_left_out_and_counted():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"time": rng.uniform(1, 30, 40).round(1),
                          "event": rng.uniform(size=40) < 0.7,
                          "group": ["a", "b"] * 20,
                          "age": [float("nan") if i % 5 == 0 else 50.0 + i for i in range(40)]})
    cox = SurvivalByGroup().fit(frame, covariates=["age"]).cox
    assert cox.n == 32
    assert cox.warnings[0] == "8 patients without age left out"
    assert any("per parameter" in note for note in cox.warnings)


def test_patients_without_a_group_stay_in_the_overall_curve():
    frame = aml().assign(group=lambda f: f.group.where(f.index % 4 != 0, None))
    result = SurvivalByGroup().fit(frame)
    summary = result.summary().set_index("group")
    assert summary.loc["overall", "n"] == 23
    assert summary.loc["Maintained", "n"] + summary.loc["Nonmaintained", "n"] == 17


def test_pairwise_tests_are_holm_adjusted():
    frame = pd.concat([aml(), aml().assign(group="Third", time=lambda f: f.time * 2)],
                      ignore_index=True)
    pairwise = SurvivalByGroup().fit(frame).pairwise
    assert len(pairwise) == 3
    p = sorted(pairwise["p_value"])
    assert sorted(pairwise["p_holm"])[0] == pytest.approx(min(1, 3 * p[0]))


def test_no_usable_patients_is_a_clear_error():
    with pytest.raises(ValueError, match="no patients with a usable survival time"):
        SurvivalByGroup().fit(pd.DataFrame({"time": [], "event": []}))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unknown conf_type"):
        kaplan_meier([1], [True], conf_type="plain")
    with pytest.raises(ValueError, match="times must be known"):
        kaplan_meier([-1], [True])


def test_holm_adjustment_by_hand():
    # p = 0.01, 0.04, 0.03: ×3, ×2 then monotone, ×1 then monotone
    assert list(holm(np.array([0.01, 0.04, 0.03]))) == pytest.approx([0.03, 0.06, 0.06])
    assert list(holm(np.array([0.5, 0.9]))) == [1.0, 1.0]


def test_groups_too_small_are_described_not_tested():
    from analysis.survival import SurvivalByGroup

    frame = pd.DataFrame({"time": [1.0, 2, 3, 4, 5, 6, 7, 8], "event": [1, 1, 0, 1, 1, 0, 1, 0],
                          "group": ["a", "a", "a", "a", "b", "b", "b", "b"]})
    tested = SurvivalByGroup().fit(frame)
    assert tested.logrank is not None and tested.cox is not None and not tested.not_tested
    described = SurvivalByGroup(min_events_per_group=5, min_events_per_parameter=10,
                                event_label="death", events_label="deaths").fit(frame)
    assert described.logrank is None and described.pairwise is None and described.cox is None
    assert described.not_tested == [
        "No log-rank test: the smallest group has 2 deaths, and the protocol asks for at least "
        "5 in every group.",
        "No Cox model: 5 deaths for 1 parameter, and the protocol asks for at least 10 deaths "
        "per parameter."]
    # Without words from a protocol, the estimator speaks of events.
    neutral = SurvivalByGroup(min_events_per_group=5).fit(frame)
    assert neutral.not_tested[0].startswith("No log-rank test: the smallest group has 2 events")
    assert described.curves["a"].n == 4  # the curves are still drawn and summarised


def test_survival_after_the_last_time_is_zero_once_the_curve_reached_zero():
    from analysis.survival import kaplan_meier

    ended = kaplan_meier(np.array([1.0, 2.0, 3.0]), np.array([True, False, True]))
    assert ended.survival_at(3.0)[0] == 0.0
    assert ended.survival_at(10.0)[0] == 0.0  # R: summary(fit, times = 10, extend = TRUE)
    censored = kaplan_meier(np.array([1.0, 2.0, 3.0]), np.array([True, True, False]))
    assert math.isnan(censored.survival_at(10.0)[0])


def test_report_numbers_round_as_readers_do():
    from review.report.wording import p_text, percent

    assert percent(62.5, 0) == "63%" and percent(0.125 * 100, 0) == "13%"
    assert percent(43.45, 1) == "43.5%" and percent(float("nan")) == "not estimable"
    assert p_text(0.708964) == "0.709" and p_text(0.0004) == "< 0.001"


def test_kaplan_meier_plot_draws_bands_and_no_median_line_between_deaths():
    from analysis.survival import SurvivalByGroup

    # One death at 1.6 and one patient censored at 64: S = 0.5 from 1.6 on. R's printed
    # table gives the median 1.6, the death; its quantile() the midpoint 32.8, where nothing
    # happened, so no line points at it.
    frame = pd.DataFrame({"time": [1.6, 64.0], "event": [True, False]})
    for rule, median, lines in (("table", 1.6, 1), ("quantile", 32.8, 0)):
        result = SurvivalByGroup(median_rule=rule).fit(frame)
        assert result.overall.median[0] == pytest.approx(median)
        curve_axes = result.plot().axes[0]
        assert len(curve_axes.collections) == 1  # the confidence band
        dotted = [line for line in curve_axes.lines if line.get_linestyle() == ":"]
        assert len(dotted) == lines


def test_a_median_on_a_flat_half_names_its_interval():
    from analysis.survival import kaplan_meier

    flat = kaplan_meier(np.array([1.6, 64.0]), np.array([True, False]))
    assert flat.median_interval == (1.6, 64.0, False) and flat.median[0] == 1.6
    assert flat.quantile(0.5)[0] == pytest.approx(32.8)
    assert kaplan_meier(np.array([1.0, 2.0, 3.0]), np.array([True, True, True])
                        ).median_interval is None


KM_MEDIANS = json.loads((Path(__file__).parent / "fixtures" / "r" / "km_medians.json")
                        .read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", list(KM_MEDIANS))
def test_medians_as_rs_printed_table_and_as_its_quantile(name):
    """tests/r/km_medians.R: summary(survfit)$table and quantile.survfit, with NA as NaN."""
    case = KM_MEDIANS[name]
    data = pd.DataFrame(case["data"])
    expected = [math.nan if v is None else v for v in case["table"]]
    by_quantile = [math.nan if v is None else v for v in case["quantile"]]
    curve = kaplan_meier(data.time, data.status.astype(bool), conf_type=case["conf_type"])
    assert list(curve.median) == pytest.approx(expected, nan_ok=True, abs=1e-9)
    assert list(curve.table_median()) == pytest.approx(expected, nan_ok=True, abs=1e-9)
    quantile_curve = kaplan_meier(data.time, data.status.astype(bool),
                                  conf_type=case["conf_type"], median_rule="quantile")
    assert list(quantile_curve.median) == pytest.approx(by_quantile, nan_ok=True, abs=1e-9)


def test_a_protocol_may_choose_the_quantile_rule_and_nothing_else(tmp_path):
    from review.errors import ReviewError
    from review.protocol import load_protocol
    from tests.conftest import PROTOCOL_PATH

    with pytest.raises(ValueError, match="unknown median_rule 'mean'"):
        kaplan_meier([1, 2], [1, 0], median_rule="mean")
    text = PROTOCOL_PATH.read_text(encoding="utf-8")
    for rule, works in (("quantile", True), ("mean", False)):
        path = tmp_path / f"{rule}.yaml"
        path.write_text(text.replace("    time_unit: months",
                                     f"    time_unit: months\n    median_rule: {rule}", 1))
        if works:
            assert load_protocol(path).analysis.survival.median_rule == "quantile"
        else:
            with pytest.raises(ReviewError, match=r"analysis\.survival\.median_rule: 'mean' "
                                                  r"is not one of: table, quantile"):
                load_protocol(path)


def test_missing_time_bounds_place_the_untimed_deaths_and_give_the_median_range():
    from analysis.survival import MissingTimeBounds

    frame = pd.DataFrame({"time": [2.0, 5.0, 9.0, 14.0, 20.0], "event": [1, 0, 1, 1, 0]})
    bounds = MissingTimeBounds(placements=(3, 7), landmarks=(6,)).fit(frame, missing_events=2)
    summary = bounds.summary()
    assert list(summary.placed_at.fillna(-1)) == [-1, 0, 3, 7]
    assert list(summary.n) == [5, 7, 7, 7] and list(summary.events) == [3, 5, 5, 5]
    for placement in (0.0, 3.0, 7.0):  # each scenario is the curve of the augmented data
        placed = kaplan_meier([2, 5, 9, 14, 20, placement, placement], [1, 0, 1, 1, 0, 1, 1])
        row = summary[summary.placed_at == placement].iloc[0]
        assert row["median"] == placed.median[0]
        assert row.survival_6 == placed.survival_at(6)[0]
    # by hand: at 3, deaths at 2, 3, 3 of 7 → S = 4/7 after 3; 5 censored; 9: 3/4 → 3/7 < 1/2
    assert summary[summary.placed_at == 3].iloc[0]["median"] == 9
    assert bounds.median_range == (summary["median"].min(), summary["median"].max())
    with pytest.raises(ValueError, match=r"placements: -1 is not a time ≥ 0"):
        MissingTimeBounds(placements=(-1,)).fit(frame, 2)


def test_the_shipped_review_bounds_its_median_by_the_deaths_without_a_time(protocol,
                                                                           shipped_cases):
    from analysis.review_analysis import analyze_review

    bounds = analyze_review(shipped_cases, protocol).survival.missing_times
    assert bounds.missing_events == 10 and protocol.analysis.survival.missing_time_bounds == (
        1, 3, 7)
    medians = {placed: curve.median[0] for placed, curve in bounds.curves.items()}
    assert medians == {None: 10.5, 0.0: 1.3, 1.0: 1.3, 3.0: 3.0, 7.0: 7.0}


def test_missing_time_bounds_in_the_protocol_are_times(tmp_path):
    from review.errors import ReviewError
    from review.protocol import load_protocol
    from tests.conftest import PROTOCOL_PATH

    path = tmp_path / "bad.yaml"
    path.write_text(PROTOCOL_PATH.read_text(encoding="utf-8").replace(
        "missing_time_bounds: [1, 3, 7]", "missing_time_bounds: [1, -3, soon]", 1))
    with pytest.raises(ReviewError) as caught:
        load_protocol(path)
    lines = str(caught.value).splitlines()
    assert any(line.endswith("analysis.survival.missing_time_bounds[1]: must be a time ≥ 0")
               for line in lines)
    assert any("analysis.survival.missing_time_bounds[2]" in line for line in lines)
