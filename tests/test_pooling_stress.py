"""I², prediction intervals and GLMM limits against metafor 3.8 on 301 stored sets.

`tests/fixtures/r/pooling_stress.json` was written by `tests/r/pooling_stress.R`: 300 seeded
random small sets and the k = 200 set, pooled on the logit scale with DL, REML and PM tau² and
by the GLMM. Every proportion, confidence and prediction limit equals metafor's to 1e-4. I² is
where metafor's defaults show: its REML stops once tau² moves by less than 1e-5 and its PM
root search at a tolerance of 1.2e-4, which moves I² by up to 0.01 percentage points; against
the same fits run to convergence (`*_converged`) I² agrees to 1e-4 points and every other
figure to 1e-6.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from analysis.pooling import pool_proportions

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "r" / "pooling_stress.json")
                       .read_text(encoding="utf-8"))
FITS = {"logit_dl": ("DL", False), "logit_reml": ("REML", False), "logit_pm": ("PM", False),
        "logit_reml_converged": ("REML", True), "logit_pm_converged": ("PM", True),
        "glmm": (None, False)}
LIMITS = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")


def fitted(case: dict, tau2_method: str | None):
    x, n = (case["x"], case["n"]) if isinstance(case["x"], list) else ([case["x"]], [case["n"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if tau2_method is None:
            return pool_proportions(x, n, method="glmm")
        return pool_proportions(x, n, method="logit", tau2_method=tau2_method)


@pytest.mark.parametrize("key", list(FITS))
def test_every_limit_and_i2_equal_metafor(key):
    tau2_method, converged = FITS[key]
    compared = 0
    for name, case in REFERENCE.items():
        expected = case[key]
        if "error" in expected:
            continue
        result = fitted(case, tau2_method)
        if result.method != ("glmm" if tau2_method is None else "logit"):
            continue  # a GLMM without a maximum: tests/test_pooling_edges.py says why
        compared += 1
        for field in LIMITS:
            if expected[field] is not None:
                assert getattr(result, field) == pytest.approx(
                    expected[field], abs=1e-6 if converged else 1e-4), (name, field)
        assert result.i2 == pytest.approx(expected["i2"], abs=1e-4 if converged else 1e-2), \
            name
    assert compared >= 250
