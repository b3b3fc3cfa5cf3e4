"""Pooled proportions against metafor 3.8 reference values (to 1e-4) and edge cases."""

from __future__ import annotations

import math

import pytest

from analysis.pooling import pool_proportions

PRITZ = ([16, 10, 4, 43, 10, 25, 13, 12, 22, 4, 5, 18, 58, 6],
         [17, 12, 8, 58, 10, 42, 14, 12, 41, 5, 6, 23, 68, 10])
NIELWEISE = ([3, 3, 9, 7, 6, 4, 3, 2, 19, 2, 7, 1, 5, 11, 0, 1, 3, 1],
             [117, 35, 195, 136, 157, 139, 177, 39, 103, 122, 64, 58, 175, 180, 105, 262, 362,
              69])
DEBRUIN = ([11, 24, 179, 82, 60, 11, 99, 9, 88, 17, 26, 23, 40],
           [29, 33, 326, 240, 110, 29, 244, 17, 215, 26, 138, 55, 54])


def close(value: float, expected: float, tolerance: float = 1e-4) -> bool:
    return abs(value - expected) <= tolerance


def test_pritz_glmm():
    result = pool_proportions(*PRITZ, method="glmm")
    assert result.method == "glmm" and not result.notes
    assert close(result.estimate, 0.798445)
    assert close(result.ci_low, 0.692403) and close(result.ci_high, 0.874553)
    assert close(result.tau2, 0.589331)
    assert close(result.transformed_estimate, 1.376604)
    assert close(result.transformed_se, 0.288387)


def test_pritz_logit_reml():
    result = pool_proportions(*PRITZ, method="logit", tau2_method="REML")
    assert close(result.estimate, 0.757479)
    assert close(result.ci_low, 0.660522) and close(result.ci_high, 0.833716)
    assert close(result.tau2, 0.364588)
    assert result.notes == ("0.5 added to the cells of 2 studies with 0 or all events",)


def test_pritz_logit_dl():
    result = pool_proportions(*PRITZ, method="logit", tau2_method="DL")
    assert close(result.estimate, 0.757307)
    assert close(result.ci_low, 0.660567) and close(result.ci_high, 0.833428)
    assert close(result.tau2, 0.361558)
    assert close(result.i2, 56.35, 0.005)
    assert close(result.q, 29.7854)


def test_pritz_logit_pm():
    assert close(pool_proportions(*PRITZ, method="logit", tau2_method="PM").tau2, 0.385859)


def test_pritz_logit_reml_hartung_knapp():
    result = pool_proportions(*PRITZ, method="logit", tau2_method="REML", hartung_knapp=True)
    assert close(result.ci_low, 0.648129) and close(result.ci_high, 0.841174)
    assert "Hartung-Knapp" in result.model


def test_pritz_freeman_tukey_dl():
    result = pool_proportions(*PRITZ, method="freeman_tukey", tau2_method="DL")
    assert close(result.estimate, 0.802335)
    assert close(result.ci_low, 0.704668) and close(result.ci_high, 0.886601)
    assert close(result.tau2, 0.023538)


def test_nielweise_control_arm():
    reml = pool_proportions(*NIELWEISE, method="logit", tau2_method="REML")
    assert close(reml.transformed_estimate, -3.3018) and close(reml.transformed_se, 0.2378)
    assert close(reml.tau2, 0.6629)
    assert close(reml.estimate, 0.0355) and close(reml.ci_low, 0.0226)
    assert close(reml.ci_high, 0.0554)
    glmm = pool_proportions(*NIELWEISE, method="glmm")
    assert close(glmm.transformed_estimate, -3.4964) and close(glmm.transformed_se, 0.2570)
    assert close(glmm.tau2, 0.8124)
    assert close(glmm.estimate, 0.0294) and close(glmm.ci_low, 0.0180)
    assert close(glmm.ci_high, 0.0478)


def test_miller_1978_harmonic_mean_back_transformation():
    result = pool_proportions([3, 6, 10, 1], [11, 17, 21, 6], method="freeman_tukey",
                              tau2_method="EE")
    assert close(result.estimate, 0.3595)
    assert result.tau2 == 0


def test_debruin_glmm():
    result = pool_proportions(*DEBRUIN, method="glmm")
    assert close(result.estimate, 0.472076)
    assert close(result.ci_low, 0.382165) and close(result.ci_high, 0.563836)
    assert close(result.tau2, 0.378683)


def test_arcsine_back_transforms_to_the_proportion_for_one_study():
    result = pool_proportions([9], [25], method="arcsine")
    assert close(result.estimate, 9 / 25, 1e-12)


def test_prediction_interval_contains_the_confidence_interval():
    result = pool_proportions(*PRITZ, method="logit", tau2_method="DL")
    assert result.pi_low < result.ci_low < result.estimate < result.ci_high < result.pi_high


@pytest.mark.parametrize(
    ("events", "totals", "reason"),
    [
        ([3], [10], "a single study"),
        ([0, 0, 0], [1, 1, 1], "no study has an event"),
        ([0, 0], [10, 20], "no study has an event"),
        ([1, 1, 1, 1], [1, 1, 1, 1], "every patient in every study has the event"),
    ],
)
def test_glmm_falls_back_to_logit_and_says_why(events, totals, reason):
    result = pool_proportions(events, totals, method="glmm")
    assert result.method == "logit"
    assert result.notes[0].startswith(f"GLMM not fitted: {reason}")
    for value in (result.estimate, result.ci_low, result.ci_high, result.tau2):
        assert math.isfinite(value)
    assert 0 <= result.ci_low <= result.estimate <= result.ci_high <= 1


def test_single_case_studies_are_pooled_by_the_glmm_when_one_study_has_more():
    events, totals = [1, 0, 1, 1, 0, 1, 0, 1, 2], [1] * 8 + [3]
    result = pool_proportions(events, totals, method="glmm")
    assert result.method == "glmm"
    assert 0 < result.ci_low < result.estimate < result.ci_high < 1


def test_only_single_case_studies_cannot_separate_the_variances():
    # As R's rma.glmm: tau² on the boundary, so the GLMM is the patient-level proportion.
    result = pool_proportions([1, 0, 1, 1, 0, 1, 0, 1], [1] * 8, method="glmm")
    assert result.method == "glmm" and result.tau2 == 0.0
    assert result.estimate == pytest.approx(5 / 8)
    assert result.notes[0].startswith("every report describes one patient")


def test_single_study_has_no_heterogeneity():
    result = pool_proportions([3], [10], method="logit")
    assert (result.k, result.tau2, result.q, result.i2) == (1, 0.0, 0.0, 0.0)
    assert math.isnan(result.q_pvalue)


@pytest.mark.parametrize(
    ("events", "totals", "message"),
    [([], [], "no studies"), ([3, 2], [2, 5], "0 ≤ events ≤ total"),
     ([1], [0], "total > 0"), ([1.5], [3], "whole numbers"), ([1, 2], [3], "same length")],
)
def test_bad_counts_are_refused(events, totals, message):
    with pytest.raises(ValueError, match=message):
        pool_proportions(events, totals)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown method 'bayes'"):
        pool_proportions([1], [2], method="bayes")
    with pytest.raises(ValueError, match="unknown tau² method 'HS'"):
        pool_proportions([1], [2], method="logit", tau2_method="HS")


def test_summary_and_forest_plot():
    result = pool_proportions(*DEBRUIN, labels=[f"s{i}" for i in range(13)])
    summary = result.summary()
    assert summary.loc[0, "events"] == sum(DEBRUIN[0])
    assert list(result.studies["study"][:2]) == ["s0", "s1"]
    assert math.isclose(result.studies["weight"].sum(), 100)
    figure = result.plot(title="de Bruin")
    assert len(figure.axes[0].patches) == 1


def test_all_or_none_studies_have_no_glmm_maximum():
    # Every multi-patient study is all-or-none: the likelihood rises for ever with tau.
    result = pool_proportions([1, 0, 1, 0, 2, 0, 4, 3], [1, 1, 1, 1, 2, 2, 4, 3], method="glmm")
    assert result.method == "logit"
    assert "has no maximum" in result.notes[0]


def test_a_fallback_that_corrects_single_patient_reports_is_refused():
    from analysis.sites import pooling_refusal

    # All-or-none reports: the GLMM has no maximum; the logit fallback corrects 4 single ones.
    result = pool_proportions([1, 0, 1, 0, 2, 0, 4, 3], [1, 1, 1, 1, 2, 2, 4, 3], method="glmm")
    reason = pooling_refusal(result, "glmm")
    assert reason.startswith("GLMM not fitted: the likelihood is highest")
    assert "0.5 to the cells of 4 single-patient reports" in reason
    assert pooling_refusal(pool_proportions(*PRITZ, method="glmm"), "glmm") is None
