"""Pooled proportions across studies, to the standard of R's metafor and meta::metaprop.

Methods:
- ``glmm``: the binomial–normal random-intercept model fitted by maximum likelihood with
  adaptive Gauss–Hermite quadrature (7 nodes, as metafor's ``rma.glmm`` via lme4). It uses the
  exact binomial likelihood, so single-case studies (0/1, 1/1) need no continuity correction.
- ``logit``: inverse variance on the logit scale; 0.5 is added to the cells of studies with 0
  or all events only.
- ``freeman_tukey``: the Freeman–Tukey double arcsine, back-transformed with the harmonic
  mean of the sample sizes (Miller 1978).
- ``arcsine``: the variance-stabilising arcsine square root.

For the inverse-variance methods tau² is estimated by DerSimonian–Laird (``DL``), REML or
Paule–Mandel (``PM``), or fixed at 0 (``EE``, equal effects); Hartung–Knapp intervals are
optional. When the GLMM cannot be fitted the result falls back to the logit model and says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from statsmodels.stats.proportion import proportion_confint

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

METHODS = ("glmm", "logit", "freeman_tukey", "arcsine")
TAU2_METHODS = ("DL", "REML", "PM", "EE")
QUADRATURE_NODES = 7
# A between-study SD of 20 on the logit scale means every study is all-or-none: an estimate
# that reaches it is a likelihood without a maximum, not a finding.
MAX_TAU = 20.0


class NoMaximumError(ArithmeticError):
    """The GLMM likelihood has no finite maximum for these data."""


@dataclass(frozen=True)
class PooledProportion:
    """A pooled proportion with its heterogeneity, per-study table and forest plot."""

    method: str
    tau2_method: str
    k: int
    estimate: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    tau2: float
    i2: float
    q: float
    q_pvalue: float
    transformed_estimate: float
    transformed_se: float
    hartung_knapp: bool
    level: float
    studies: pd.DataFrame
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def model(self) -> str:
        """The model in words, as a methods section names it."""
        names = {
            "glmm": "random-intercept logistic regression (binomial-normal GLMM, maximum "
                    f"likelihood, adaptive Gauss-Hermite quadrature with {QUADRATURE_NODES} "
                    "nodes)",
            "logit": "inverse-variance random-effects model on the logit scale",
            "freeman_tukey": "inverse-variance random-effects model on the Freeman-Tukey double "
                             "arcsine scale (harmonic-mean back-transformation)",
            "arcsine": "inverse-variance random-effects model on the arcsine scale",
        }
        text = names[self.method]
        if self.method != "glmm":
            text += {"DL": ", tau² by DerSimonian-Laird", "REML": ", tau² by REML",
                     "PM": ", tau² by Paule-Mandel", "EE": " with equal effects (tau² = 0)"}[
                self.tau2_method]
            if self.hartung_knapp:
                text += ", Hartung-Knapp confidence interval"
        return text

    def summary(self) -> pd.DataFrame:
        """One row: the estimate with its intervals and heterogeneity."""
        return pd.DataFrame([{
            "method": self.method, "tau2_method": self.tau2_method, "k": self.k,
            "events": int(self.studies["events"].sum()),
            "total": int(self.studies["total"].sum()),
            "estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high,
            "pi_low": self.pi_low, "pi_high": self.pi_high, "tau2": self.tau2, "i2": self.i2,
            "q": self.q, "q_pvalue": self.q_pvalue,
        }])

    def plot(self, ax: Axes | None = None, title: str | None = None) -> Figure:
        """The forest plot; returns the matplotlib Figure."""
        from analysis.figures import forest_plot

        return forest_plot(self, ax=ax, title=title)


def _as_counts(events: Sequence[float], totals: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(events, dtype=float)
    n = np.asarray(totals, dtype=float)
    if x.shape != n.shape or x.ndim != 1:
        raise ValueError("events and totals must be sequences of the same length")
    if len(x) == 0:
        raise ValueError("no studies to pool")
    if np.any(n <= 0) or np.any(x < 0) or np.any(x > n):
        raise ValueError("every study needs 0 ≤ events ≤ total and total > 0")
    if np.any(x != np.round(x)) or np.any(n != np.round(n)):
        raise ValueError("events and totals must be whole numbers")
    return x, n


def _transform(method: str, x: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Effect sizes, their sampling variances, and how many studies were corrected."""
    if method == "logit":
        extreme = (x == 0) | (x == n)
        xc = np.where(extreme, x + 0.5, x)
        nc = np.where(extreme, n + 1.0, n)
        return np.log(xc / (nc - xc)), 1 / xc + 1 / (nc - xc), int(extreme.sum())
    if method == "freeman_tukey":
        y = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
        return y, 1 / (4 * n + 2), 0
    if method == "arcsine":
        return np.arcsin(np.sqrt(x / n)), 1 / (4 * n), 0
    raise ValueError(f"unknown method '{method}' (allowed: {', '.join(METHODS)})")


def _back_transform(method: str, value: np.ndarray | float, harmonic_n: float) -> np.ndarray:
    value = np.asarray(value, dtype=float)
    if method in ("logit", "glmm"):
        return special.expit(value)
    if method == "arcsine":
        return np.sin(np.clip(value, 0, np.pi / 2)) ** 2
    # Miller (1978), as metafor's transf.ipft.hm: the inverse of the mean double arcsine,
    # which is 0 below the transform of 0 events and 1 above that of n events (for the
    # harmonic mean n); in between the formula is monotone.
    t = np.asarray(value, dtype=float)
    sine = np.sin(2 * t)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = 1 - (sine + (sine - 1 / sine) / harmonic_n) ** 2
        p = 0.5 * (1 - np.sign(np.cos(2 * t)) * np.sqrt(np.clip(inner, 0, None)))
    lowest = 0.5 * math.asin(math.sqrt(1 / (harmonic_n + 1)))
    highest = 0.5 * (math.asin(math.sqrt(harmonic_n / (harmonic_n + 1))) + math.pi / 2)
    p = np.where(t < lowest, 0.0, np.where(t > highest, 1.0, p))
    return np.clip(p, 0, 1)


def _q_statistic(y: np.ndarray, v: np.ndarray) -> float:
    w = 1 / v
    mean = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mean) ** 2))


def _generalised_q(tau2: float, y: np.ndarray, v: np.ndarray) -> float:
    w = 1 / (v + tau2)
    mean = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mean) ** 2))


def estimate_tau2(y: np.ndarray, v: np.ndarray, method: str) -> float:
    """Between-study variance on the transformed scale."""
    k = len(y)
    if method == "EE" or k < 2:
        return 0.0
    if method == "DL":
        w = 1 / v
        c = np.sum(w) - np.sum(w**2) / np.sum(w)
        return max(0.0, (_q_statistic(y, v) - (k - 1)) / c)
    if method == "PM":
        if _generalised_q(0.0, y, v) <= k - 1:
            return 0.0
        high = 1.0
        while _generalised_q(high, y, v) > k - 1:
            high *= 10
        return float(optimize.brentq(lambda t: _generalised_q(t, y, v) - (k - 1), 0.0, high,
                                     xtol=1e-14, rtol=1e-14))
    if method == "REML":
        def negative_restricted_loglik(tau2: float) -> float:
            w = 1 / (v + tau2)
            mean = np.sum(w * y) / np.sum(w)
            return 0.5 * float(np.sum(np.log(v + tau2)) + math.log(np.sum(w))
                               + np.sum(w * (y - mean) ** 2))

        spread = float(np.var(y)) + float(np.max(v))
        found = optimize.minimize_scalar(negative_restricted_loglik, bounds=(0.0, 10 * spread),
                                         method="bounded",
                                         options={"xatol": 1e-12, "maxiter": 1000})
        tau2 = float(found.x)
        if negative_restricted_loglik(0.0) <= negative_restricted_loglik(tau2):
            return 0.0
        return tau2
    raise ValueError(f"unknown tau² method '{method}' (allowed: {', '.join(TAU2_METHODS)})")


def _i_squared(tau2: float, v: np.ndarray) -> float:
    """metafor's I²: tau² over tau² plus the typical within-study variance (Higgins 2002)."""
    k = len(v)
    if k < 2:
        return 0.0
    w = 1 / v
    typical = (k - 1) * np.sum(w) / (np.sum(w) ** 2 - np.sum(w**2))
    return float(100 * tau2 / (tau2 + typical))


def _study_table(x: np.ndarray, n: np.ndarray, labels: Sequence[str] | None,
                 weights: np.ndarray, level: float) -> pd.DataFrame:
    low, high = proportion_confint(x, n, alpha=1 - level, method="beta")
    return pd.DataFrame({
        "study": list(labels) if labels is not None else [f"study {i + 1}" for i in range(len(x))],
        "events": x.astype(int),
        "total": n.astype(int),
        "proportion": x / n,
        "ci_low": np.asarray(low, dtype=float),
        "ci_high": np.asarray(high, dtype=float),
        "weight": 100 * weights / np.sum(weights),
    })


def _pool_inverse_variance(
    method: str, x: np.ndarray, n: np.ndarray, tau2_method: str, hartung_knapp: bool,
    level: float, labels: Sequence[str] | None, notes: list[str],
) -> PooledProportion:
    y, v, corrected = _transform(method, x, n)
    if corrected:
        notes.append(f"0.5 added to the cells of {corrected} stud"
                     f"{'y' if corrected == 1 else 'ies'} with 0 or all events")
    k = len(y)
    tau2 = estimate_tau2(y, v, tau2_method)
    w = 1 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    se = math.sqrt(1 / np.sum(w))
    alpha = 1 - level
    if hartung_knapp and k > 1:
        se = math.sqrt(float(np.sum(w * (y - mu) ** 2)) / ((k - 1) * np.sum(w)))
        critical = stats.t.ppf(1 - alpha / 2, k - 1)
    else:
        critical = stats.norm.ppf(1 - alpha / 2)
    pi_half = critical * math.sqrt(se**2 + tau2)
    harmonic_n = float(stats.hmean(n))
    back = lambda value: float(_back_transform(method, value, harmonic_n))  # noqa: E731
    q = _q_statistic(y, v) if k > 1 else 0.0
    return PooledProportion(
        method=method, tau2_method=tau2_method, k=k,
        estimate=back(mu), ci_low=back(mu - critical * se), ci_high=back(mu + critical * se),
        pi_low=back(mu - pi_half), pi_high=back(mu + pi_half),
        tau2=tau2, i2=_i_squared(tau2, v), q=q,
        q_pvalue=float(stats.chi2.sf(q, k - 1)) if k > 1 else float("nan"),
        transformed_estimate=mu, transformed_se=se, hartung_knapp=hartung_knapp, level=level,
        studies=_study_table(x, n, labels, w, level), notes=tuple(notes),
    )


class _BinomialNormalLikelihood:
    """Marginal log-likelihood of the random-intercept logistic model by adaptive GHQ."""

    def __init__(self, x: np.ndarray, n: np.ndarray):
        self.x, self.n = x, n
        nodes, weights = np.polynomial.hermite.hermgauss(QUADRATURE_NODES)
        self.nodes, self.log_weights = nodes, np.log(weights)
        self.log_binomial = (special.gammaln(n + 1) - special.gammaln(x + 1)
                             - special.gammaln(n - x + 1))

    def _joint(self, z: np.ndarray, mu: float, tau: float) -> np.ndarray:
        """log of binomial kernel times standard normal density at nodes z (k × nodes)."""
        eta = mu + tau * z
        return (self.x[:, None] * eta - self.n[:, None] * np.logaddexp(0, eta) - 0.5 * z**2
                - 0.5 * math.log(2 * math.pi))

    def modes(self, mu: float, tau: float) -> np.ndarray:
        """Each study's conditional mode of its standardised random effect.

        The log joint density is strictly concave in z, so its gradient
        tau·(x − n·p(z)) − z falls monotonically and has one root, which lies between
        tau·(x − n) and tau·x. Newton steps are kept inside that bracket (bisecting when a step
        would leave it), so the search converges at any tau, from the same start every time:
        plain Newton overshoots and flips between modes when tau is large."""
        low = tau * (self.x - self.n)
        high = tau * self.x
        z = np.clip(np.zeros_like(self.x), low, high)
        for _ in range(200):
            p = special.expit(mu + tau * z)
            gradient = tau * (self.x - self.n * p) - z
            low = np.where(gradient > 0, z, low)
            high = np.where(gradient < 0, z, high)
            curvature = -(tau**2) * self.n * p * (1 - p) - 1
            newton = z - gradient / curvature
            inside = (newton > low) & (newton < high)
            moved = np.where(inside, newton, (low + high) / 2)
            if np.max(np.abs(moved - z)) < 1e-13:
                return moved
            z = moved
        return z

    def loglik(self, mu: float, tau: float) -> float:
        z = self.modes(mu, tau)
        p = special.expit(mu + tau * z)
        scale = 1 / np.sqrt(tau**2 * self.n * p * (1 - p) + 1)
        points = z[:, None] + math.sqrt(2) * scale[:, None] * self.nodes[None, :]
        terms = self._joint(points, mu, tau) + self.nodes[None, :] ** 2 + self.log_weights
        # logsumexp by hand: scipy's checks cost ten times the sum on seven nodes
        largest = terms.max(axis=1)
        log_integral = (largest + np.log(np.exp(terms - largest[:, None]).sum(axis=1))
                        + np.log(math.sqrt(2) * scale))
        return float(np.sum(self.log_binomial + log_integral))


def _derivatives(function: Callable[[np.ndarray], float], point: np.ndarray,
                 step: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient and Hessian of a smooth function of a few parameters."""
    size = len(point)
    centre = function(point)
    gradient = np.zeros(size)
    hessian = np.zeros((size, size))
    unit = np.eye(size) * step
    for i in range(size):
        forward, backward = function(point + unit[i]), function(point - unit[i])
        gradient[i] = (forward - backward) / (2 * step)
        hessian[i, i] = (forward - 2 * centre + backward) / step**2
        for j in range(i):
            hessian[i, j] = hessian[j, i] = (
                function(point + unit[i] + unit[j]) - function(point + unit[i] - unit[j])
                - function(point - unit[i] + unit[j]) + function(point - unit[i] - unit[j])
            ) / (4 * step**2)
    return gradient, hessian


def _fit_glmm(x: np.ndarray, n: np.ndarray) -> tuple[float, float, float]:
    """ML estimates (mu, tau²) and the standard error of mu from the observed information.

    The likelihood is maximised over tau by its profile (for each tau the best mu, found
    exactly: the marginal likelihood is log-concave in mu): a grid up to MAX_TAU finds the
    highest region, a bounded search refines it. A profile highest at MAX_TAU has no maximum
    (a local one on the way, where a local optimiser such as lme4's may stop, is lower); one
    highest at 0 puts tau² on the boundary."""
    likelihood = _BinomialNormalLikelihood(x, n)

    def best_mu(tau: float, tolerance: float = 1e-11) -> tuple[float, float]:
        found = optimize.minimize_scalar(lambda m: -likelihood.loglik(m, tau),
                                         bounds=(-40.0, 40.0), method="bounded",
                                         options={"xatol": tolerance, "maxiter": 500})
        return float(found.x), float(found.fun)

    # The grid only has to find the highest region, so its inner searches can be coarse.
    taus = np.concatenate([[0.0], np.geomspace(1e-3, MAX_TAU, 32)])
    profile = np.array([best_mu(float(tau), 1e-5)[1] for tau in taus])
    best = int(np.argmin(profile))
    if best == len(taus) - 1:
        all_or_none = bool(np.all((x[n > 1] == 0) | (x[n > 1] == n[n > 1])))
        raise NoMaximumError(
            "the likelihood is highest at ever larger between-study variance"
            + (" (within each study the patients all have, or all lack, the outcome)"
               if all_or_none else f" (to tau² = {MAX_TAU ** 2:g} and beyond)")
            + ", so it has no maximum; a local maximum on the way is lower")
    low, high = float(taus[max(best - 1, 0)]), float(taus[best + 1])
    refined = optimize.minimize_scalar(lambda t: best_mu(t)[1], bounds=(low, high),
                                       method="bounded", options={"xatol": 1e-10,
                                                                  "maxiter": 500})
    tau = float(refined.x)
    if best == 0 and best_mu(0.0)[1] <= refined.fun:
        tau = 0.0
    if tau < 1e-6:  # at tau = 0 the model is one binomial proportion, solved exactly
        return _boundary_fit(x, n)
    mu = best_mu(tau)[0]

    def objective(theta: np.ndarray) -> float:
        return -likelihood.loglik(theta[0], math.exp(theta[1]))

    # At the optimum the variance of mu does not depend on how tau is parametrised.
    hessian = _derivatives(objective, np.array([mu, math.log(tau)]))[1]
    se = math.sqrt(np.linalg.inv(hessian)[0, 0])
    if not all(math.isfinite(value) for value in (mu, tau, se)):
        raise FloatingPointError("non-finite estimates")
    return mu, tau**2, se


def _pool_glmm(x: np.ndarray, n: np.ndarray, level: float, labels: Sequence[str] | None,
               tau2_method: str, hartung_knapp: bool) -> PooledProportion:
    k = len(x)
    reason = None
    if k < 2:
        reason = "a single study"
    elif np.all(x == 0):
        reason = "no study has an event"
    elif np.all(x == n):
        reason = "every patient in every study has the event"
    if reason is None and np.all(n == 1):
        # One patient per study: every tau² fits equally well (the likelihood is flat along a
        # ridge), and R's rma.glmm reports the boundary tau² = 0, which is the patient-level
        # logistic model: the crude proportion with a Wald interval on the logit scale.
        return _glmm_result(x, n, level, labels, *_boundary_fit(x, n), notes=(
            "every report describes one patient, so the between-report variance is not "
            "identified; it is set to 0, which makes this the patient-level proportion",))
    if reason is None:
        try:
            mu, tau2, se = _fit_glmm(x, n)
        except NoMaximumError as error:
            reason = str(error)
        except (FloatingPointError, np.linalg.LinAlgError) as error:
            reason = f"the likelihood could not be maximised ({error})"
        else:
            if se > 20 or abs(mu) > 20:
                reason = "the estimate diverges (the data are too extreme)"
    if reason is not None:
        fallback = _pool_inverse_variance("logit", x, n, tau2_method, hartung_knapp, level,
                                          labels, [])
        note = f"GLMM not fitted: {reason}; inverse-variance logit model used instead"
        return PooledProportion(**{**fallback.__dict__,
                                   "notes": (note, *fallback.notes)})
    return _glmm_result(x, n, level, labels, mu, tau2, se)


def _boundary_fit(x: np.ndarray, n: np.ndarray) -> tuple[float, float, float]:
    """ML at tau² = 0: the logit of the crude proportion and its standard error."""
    proportion = float(np.sum(x) / np.sum(n))
    return (float(special.logit(proportion)), 0.0,
            math.sqrt(1 / (float(np.sum(n)) * proportion * (1 - proportion))))


def _glmm_result(x: np.ndarray, n: np.ndarray, level: float, labels: Sequence[str] | None,
                 mu: float, tau2: float, se: float, notes: tuple[str, ...] = ()
                 ) -> PooledProportion:
    k = len(x)
    alpha = 1 - level
    critical = stats.norm.ppf(1 - alpha / 2)
    pi_half = critical * math.sqrt(se**2 + tau2)
    y, v, _ = _transform("logit", x, n)
    q = _q_statistic(y, v)
    weights = 1 / (v + tau2)
    return PooledProportion(
        method="glmm", tau2_method="ML", k=k,
        estimate=float(special.expit(mu)),
        ci_low=float(special.expit(mu - critical * se)),
        ci_high=float(special.expit(mu + critical * se)),
        pi_low=float(special.expit(mu - pi_half)), pi_high=float(special.expit(mu + pi_half)),
        tau2=tau2, i2=_i_squared(tau2, v), q=q, q_pvalue=float(stats.chi2.sf(q, k - 1)),
        transformed_estimate=mu, transformed_se=se, hartung_knapp=False, level=level,
        studies=_study_table(x, n, labels, weights, level), notes=notes,
    )


def pool_proportions(
    events: Sequence[float],
    totals: Sequence[float],
    *,
    method: str = "glmm",
    tau2_method: str = "REML",
    hartung_knapp: bool = False,
    level: float = 0.95,
    labels: Sequence[str] | None = None,
) -> PooledProportion:
    """Pool one proportion across studies.

    `tau2_method` applies to the inverse-variance methods (and to the logit fallback of the
    GLMM); the GLMM estimates tau² by maximum likelihood. Study weights in the per-study table
    are inverse-variance weights on the logit scale for the GLMM, as meta::metaprop shows them.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}' (allowed: {', '.join(METHODS)})")
    if tau2_method not in TAU2_METHODS:
        raise ValueError(f"unknown tau² method '{tau2_method}' "
                         f"(allowed: {', '.join(TAU2_METHODS)})")
    if not 0 < level < 1:
        raise ValueError("level must lie between 0 and 1")
    x, n = _as_counts(events, totals)
    if labels is not None and len(labels) != len(x):
        raise ValueError("labels must name every study")
    if method == "glmm":
        return _pool_glmm(x, n, level, labels, tau2_method, hartung_knapp)
    return _pool_inverse_variance(method, x, n, tau2_method, hartung_knapp, level, labels, [])
