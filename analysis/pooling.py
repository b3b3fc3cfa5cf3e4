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
    # Miller (1978), as metafor's transf.ipft.hm: the inverse of the mean double arcsine.
    t = np.clip(value, 0, np.pi / 2)
    sine = np.sin(2 * t)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = 1 - (sine + (sine - 1 / sine) / harmonic_n) ** 2
        p = 0.5 * (1 - np.sign(np.cos(2 * t)) * np.sqrt(np.clip(inner, 0, None)))
    p = np.where(t == 0, 0.0, np.where(t == np.pi / 2, 1.0, p))
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
        self.modes = np.zeros_like(x)

    def _joint(self, z: np.ndarray, mu: float, tau: float) -> np.ndarray:
        """log of binomial kernel times standard normal density at nodes z (k × nodes)."""
        eta = mu + tau * z
        return (self.x[:, None] * eta - self.n[:, None] * np.logaddexp(0, eta) - 0.5 * z**2
                - 0.5 * math.log(2 * math.pi))

    def loglik(self, mu: float, tau: float) -> float:
        z = self.modes.copy()
        for _ in range(50):
            p = special.expit(mu + tau * z)
            gradient = tau * (self.x - self.n * p) - z
            curvature = -(tau**2) * self.n * p * (1 - p) - 1
            step = gradient / curvature
            z = z - step
            if np.max(np.abs(step)) < 1e-12:
                break
        self.modes = z
        p = special.expit(mu + tau * z)
        scale = 1 / np.sqrt(tau**2 * self.n * p * (1 - p) + 1)
        points = z[:, None] + math.sqrt(2) * scale[:, None] * self.nodes[None, :]
        terms = self._joint(points, mu, tau) + self.nodes[None, :] ** 2 + self.log_weights
        log_integral = special.logsumexp(terms, axis=1) + np.log(math.sqrt(2) * scale)
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


def _minimise_newton(function: Callable[[np.ndarray], float], start: np.ndarray,
                     ceiling: float, max_iterations: int = 60) -> tuple[np.ndarray, bool]:
    """Damped Newton minimisation with backtracking (a scaled gradient step wherever the
    Hessian is not positive definite). Returns the point and whether it is a minimum: the
    gradient vanishes there with a positive definite Hessian, and the second parameter has
    stayed below `ceiling`."""
    point, value = start.astype(float), function(start)
    for _ in range(max_iterations):
        gradient, hessian = _derivatives(function, point)
        try:
            np.linalg.cholesky(hessian)
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            step = gradient / max(float(np.max(np.abs(np.diag(hessian)))), 1.0)
        scale = 1.0
        while scale > 1e-10:
            candidate = point - scale * step
            new_value = function(candidate)
            if math.isfinite(new_value) and new_value <= value:
                break
            scale /= 2
        else:
            break
        moved = float(np.max(np.abs(candidate - point)))
        point, value = candidate, new_value
        if moved < 1e-9 or not point[1] < ceiling:
            break
    gradient, hessian = _derivatives(function, point)
    try:
        np.linalg.cholesky(hessian)
        definite = True
    except np.linalg.LinAlgError:
        definite = False
    converged = definite and float(np.max(np.abs(gradient))) < 1e-4 and point[1] < ceiling
    return point, converged


def _fit_glmm(x: np.ndarray, n: np.ndarray) -> tuple[float, float, float]:
    """ML estimates (mu, tau²) and the standard error of mu from the observed information."""
    likelihood = _BinomialNormalLikelihood(x, n)
    y, v, _ = _transform("logit", x, n)
    start_tau2 = estimate_tau2(y, v, "DL")
    start = np.array([float(np.sum(y / (v + start_tau2)) / np.sum(1 / (v + start_tau2))),
                      math.log(math.sqrt(start_tau2) + 0.1)])

    def objective(theta: np.ndarray) -> float:
        return -likelihood.loglik(theta[0], math.exp(theta[1]))

    def without_heterogeneity(theta: np.ndarray) -> float:
        return -likelihood.loglik(theta[0], 0.0)

    found, converged = _minimise_newton(objective, start, ceiling=math.log(MAX_TAU))
    mu, log_tau = (float(value) for value in found)
    boundary_mu = float(optimize.minimize_scalar(
        lambda m: without_heterogeneity(np.array([m]))).x)
    boundary = np.array([boundary_mu])
    at_boundary = log_tau < -8 or \
        without_heterogeneity(boundary) <= objective(np.array([mu, log_tau]))
    if not converged and not at_boundary:
        raise NoMaximumError(
            "the likelihood keeps rising as the between-study variance grows (within each "
            "study the patients all have, or all lack, the outcome), so it has no maximum")
    if at_boundary:
        mu, tau = boundary_mu, 0.0
        se = math.sqrt(1 / _derivatives(without_heterogeneity, boundary)[1][0, 0])
    else:
        tau = math.exp(log_tau)
        # At the optimum the variance of mu does not depend on how tau is parametrised.
        hessian = _derivatives(objective, np.array([mu, log_tau]))[1]
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
    elif np.all(n == 1):
        reason = ("every study has a single patient, so the between-study variance cannot be "
                  "told apart from the within-study variance")
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
        studies=_study_table(x, n, labels, weights, level), notes=(),
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
