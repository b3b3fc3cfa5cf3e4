"""Pooled proportions at the edges against stored metafor 3.8 output.

`tests/fixtures/r/pooling_edges.json` was written by `tests/r/pooling_edges.R` (R 4.2.2,
metafor 3.8-1): the edge sets of issue 12 and 40 seeded random small sets. R is not needed to
run these tests. The Freeman–Tukey results agree to 1e-6. R's REML (Fisher scoring) stops
once tau² changes by less than 1e-5 (so near 0 it stops at a tau² of a few 1e-6), so tau² and
the proportions it moves are compared to 1e-5. The GLMM likelihood is flat around its optimum
in tau², where R's optimiser (lme4's) and ours stop at slightly different points: the test is
that our optimum is at least as high as R's, to 1e-9 in log-likelihood, with the proportions
within 1e-4 and tau² within 1e-4 (relative); most agree far closer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from analysis.pooling import _BinomialNormalLikelihood, pool_proportions

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "r" / "pooling_edges.json")
                       .read_text(encoding="utf-8"))
METHODS = {"freeman_tukey_dl": {"method": "freeman_tukey", "tau2_method": "DL"},
           "logit_reml": {"method": "logit", "tau2_method": "REML"},
           "glmm": {"method": "glmm"}}
FIELDS = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")
TOLERANCES = {"freeman_tukey_dl": (1e-6, 1e-6, 0.0), "logit_reml": (1e-5, 1e-5, 0.0),
              "glmm": (1e-4, 1e-6, 1e-4)}  # proportions, tau² absolute, tau² relative


def counts(case: dict) -> tuple[list[float], list[float]]:
    x, n = case["x"], case["n"]
    return (x, n) if isinstance(x, list) else ([x], [n])


CASES = [(name, key) for name in REFERENCE for key in METHODS
         if "error" not in REFERENCE[name][key]]
FAILED_IN_R = [(name, key) for name in REFERENCE for key in METHODS
               if "error" in REFERENCE[name][key]]


@pytest.mark.parametrize(("name", "key"), CASES)
def test_matches_metafor(name, key):
    expected = REFERENCE[name][key]
    result = pool_proportions(*counts(REFERENCE[name]), **METHODS[key])
    assert result.method == METHODS[key]["method"], result.notes
    proportions, tau2_absolute, tau2_relative = TOLERANCES[key]
    for field in FIELDS:
        if expected[field] is not None:
            assert getattr(result, field) == pytest.approx(expected[field],
                                                           abs=proportions), field
    assert result.tau2 == pytest.approx(expected["tau2"], abs=tau2_absolute, rel=tau2_relative)


@pytest.mark.parametrize("name", [name for name, key in CASES if key == "glmm"])
def test_the_glmm_optimum_is_at_least_as_high_as_rs(name):
    case = REFERENCE[name]
    x, n = (np.array(values, dtype=float) for values in counts(case))
    likelihood = _BinomialNormalLikelihood(x, n)
    ours = pool_proportions(x, n, method="glmm")
    at_ours = likelihood.loglik(ours.transformed_estimate, math.sqrt(ours.tau2))
    at_r = likelihood.loglik(case["glmm"]["beta"], math.sqrt(case["glmm"]["tau2"]))
    assert at_ours >= at_r - 1e-9


@pytest.mark.parametrize(("name", "key"), FAILED_IN_R)
def test_where_r_cannot_fit_the_reason_is_said(name, key):
    result = pool_proportions(*counts(REFERENCE[name]), **METHODS[key])
    if key == "glmm":
        assert result.method == "logit"
        assert result.notes[0].startswith("GLMM not fitted: ")
    else:  # R's Fisher scoring diverged; the bounded REML search still finds the optimum
        assert math.isfinite(result.tau2) and 0 <= result.estimate <= 1


def test_single_patient_reports_pool_to_the_patient_level_proportion():
    result = pool_proportions([1, 0, 0, 1, 0, 1, 0, 0, 0, 1], [1] * 10, method="glmm")
    assert (result.estimate, result.tau2) == (pytest.approx(0.4), 0.0)
    assert "not identified" in result.notes[0]


def test_freeman_tukey_limits_stay_ordered_at_zero_and_one():
    for events in ([0] * 5, [1] * 5, [0, 1]):
        result = pool_proportions(events, [1] * len(events), method="freeman_tukey",
                                  tau2_method="DL")
        assert result.ci_low <= result.estimate <= result.ci_high
