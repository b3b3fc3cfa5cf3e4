"""Survival from the protocol's time origin, overall and by treatment group.

Kaplan–Meier estimates follow R's survival package: Greenwood variances, confidence bands on
the log-log (default here, as lifelines) or log scale (R survfit's default), medians and their
limits by R's rule (the midpoint of a flat at exactly 0.5), and at-risk counts #(T ≥ t).
Groups are compared by log-rank tests (overall and pairwise, Holm-adjusted) and, where events
allow, a Cox model with Efron ties; a hazard ratio that the data cannot bound is reported as
unbounded, never as a huge number.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from review.protocol import MEDIAN_RULES, SurvivalSpec, TreatmentGrouping

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CONF_TYPES = ("log-log", "log")
TOLERANCE = math.sqrt(np.finfo(float).eps)
EVENTS_PER_PARAMETER = 10


@dataclass(frozen=True)
class KaplanMeierCurve:
    """A Kaplan–Meier curve at every distinct observed time."""

    time: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    survival: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    conf_type: str
    level: float
    median_rule: str = "table"

    @property
    def n(self) -> int:
        return int(self.at_risk[0]) if len(self.at_risk) else 0

    @property
    def total_events(self) -> int:
        return int(self.events.sum())

    def survival_at(self, t: float) -> tuple[float, float, float]:
        """S(t) with its confidence limits. Beyond the last follow-up S(t) is unknown (NaN),
        unless the curve has already reached 0, where it stays (R's `extend = TRUE`); the
        limits of a survival of 0 are undefined on the log-log scale."""
        if len(self.time) == 0:
            return (math.nan, math.nan, math.nan)
        if t > self.time[-1]:
            if self.survival[-1] == 0:
                return (0.0, math.nan, math.nan)
            return (math.nan, math.nan, math.nan)
        index = np.searchsorted(self.time, t, side="right") - 1
        if index < 0:
            return (1.0, 1.0, 1.0)
        return (float(self.survival[index]), float(self.ci_low[index]),
                float(self.ci_high[index]))

    def number_at_risk(self, t: float) -> int:
        """Patients still under observation at t: #(T ≥ t), as R counts them."""
        if len(self.time) == 0:
            return 0
        index = np.searchsorted(self.time, t, side="left")
        return int(self.at_risk[index]) if index < len(self.time) else 0

    def quantile(self, p: float = 0.5) -> tuple[float, float, float]:
        """The time at which survival falls to 1 - p, with its confidence limits (R's rule)."""
        last = float(self.time[-1]) if len(self.time) else math.nan
        return (_crossing(self.time, self.survival, p, last),
                _crossing(self.time, self.ci_low, p, last),
                _crossing(self.time, self.ci_high, p, last))

    @property
    def median_interval(self) -> tuple[float, float, bool] | None:
        """Where the curve is flat at exactly one half, if it is: the flat's start, its end
        (the next drop, or the last follow-up) and whether it ends in a drop."""
        keep = ~np.isnan(self.survival)
        time, survival = self.time[keep], self.survival[keep]
        at_half = np.flatnonzero(np.abs(survival - 0.5) <= TOLERANCE)
        if len(at_half) == 0:
            return None
        below = np.flatnonzero(survival < 0.5 - TOLERANCE)
        if len(below):
            return float(time[at_half[0]]), float(time[below[0]]), True
        return float(time[at_half[0]]), float(time[-1]), False

    def table_median(self) -> tuple[float, float, float]:
        """The median with its limits as R's printed survfit table gives it (survminer and
        lifelines agree): the first time survival is at most one half, or the midpoint of a
        flat at exactly one half that a later drop ends."""
        return (_first_at_half(self.time, self.survival),
                _first_at_half(self.time, self.ci_low),
                _first_at_half(self.time, self.ci_high))

    @property
    def median(self) -> tuple[float, float, float]:
        """The median by the curve's `median_rule`: "table" (R's printed table, default) or
        "quantile" (R's quantile.survfit, which also takes the midpoint of a flat that runs to
        the last follow-up)."""
        return self.table_median() if self.median_rule == "table" else self.quantile(0.5)


def _first_at_half(time: np.ndarray, survival: np.ndarray) -> float:
    """survival's `survmean` rule: the first time the curve is at most one half; when it is
    at exactly one half there and drops below later, the midpoint to that drop."""
    keep = ~np.isnan(survival) & (survival < 0.5 + TOLERANCE)
    times, values = time[keep], survival[keep]
    if len(values) == 0:
        return math.nan
    later_lower = np.flatnonzero(values < values[0])
    if abs(values[0] - 0.5) < TOLERANCE and len(later_lower):
        return float((times[0] + times[later_lower[0]]) / 2)
    return float(times[0])


def _crossing(time: np.ndarray, survival: np.ndarray, p: float, last_time: float) -> float:
    """Where a horizontal line at survival 1 - p meets a step curve.

    A curve that is flat at exactly 1 - p (within √eps) meets it on an interval; the answer is
    the interval's midpoint, which runs to the next drop, or to the last time observed when
    the flat ends the curve.
    """
    keep = ~np.isnan(survival)
    times = np.concatenate([[0.0], time[keep]])
    failure = np.concatenate([[0.0], 1 - survival[keep]])
    first = np.concatenate([[True], failure[1:] != failure[:-1]])
    times, failure = times[first], failure[first]
    if len(failure) == 0 or failure.max() + TOLERANCE < p:
        return math.nan
    reached = np.flatnonzero(failure + TOLERANCE >= p)[0]
    passed = np.flatnonzero(failure - TOLERANCE >= p)
    if len(passed) and passed[0] == reached:
        return float(times[reached])
    if len(passed):
        return float((times[reached] + times[passed[0]]) / 2)
    return float((times[reached] + last_time) / 2)


def _labels_of(values: Sequence[object]) -> list[object]:
    return list(values.index) if isinstance(values, pd.Series) else list(range(len(values)))


def checked_times(values: Sequence[float], name: str = "time") -> np.ndarray:
    """Times as floats, each known, finite and ≥ 0; else a ValueError naming the first bad
    row (its index label, or its position in a plain sequence)."""
    labels = _labels_of(values)
    times = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce") \
        .to_numpy(float)
    for position, value in enumerate(times):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name}: row {labels[position]} is {list(values)[position]!r}; "
                             "times must be known, finite numbers ≥ 0")
    return times


def checked_events(values: Sequence[object], name: str = "event") -> np.ndarray:
    """Events as booleans from 0/1 or True/False; anything else (a missing value, 2,
    'yes') is a ValueError naming the first bad row: map the protocol's event and censored
    values to 1 and 0 first (see `survival_data`)."""
    labels = _labels_of(values)
    events = []
    for position, value in enumerate(list(values)):
        if isinstance(value, (bool, np.bool_)) or (
                isinstance(value, (int, float, np.integer, np.floating))
                and not isinstance(value, bool) and value in (0, 1)):
            events.append(bool(value))
            continue
        raise ValueError(f"{name}: row {labels[position]} is {value!r}; events must be 0/1 "
                         "or True/False (map the event and censored values first)")
    return np.asarray(events, dtype=bool)


def kaplan_meier(
    time: Sequence[float], event: Sequence[bool], *, conf_type: str = "log-log",
    level: float = 0.95, median_rule: str = "table",
) -> KaplanMeierCurve:
    """The Kaplan–Meier estimate with Greenwood confidence bands; strict about its inputs
    (see `checked_times`, `checked_events`).

    Example::

        curve = kaplan_meier([1.6, 4, 9, 13], [1, 0, 1, 1])
        curve.median  # (estimate, lower, upper)
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"unknown conf_type '{conf_type}' (allowed: {', '.join(CONF_TYPES)})")
    if median_rule not in MEDIAN_RULES:
        raise ValueError(f"unknown median_rule '{median_rule}' (allowed: "
                         f"{', '.join(MEDIAN_RULES)})")
    if len(time) != len(event):
        raise ValueError(f"time and event must have the same length ({len(time)} and "
                         f"{len(event)})")
    if len(time) == 0:
        raise ValueError("no patients: time and event are empty")
    t = checked_times(time)
    d = checked_events(event)
    distinct = np.unique(t)
    events = np.array([np.sum(d & (t == u)) for u in distinct], dtype=float)
    censored = np.array([np.sum(~d & (t == u)) for u in distinct], dtype=float)
    at_risk = np.array([np.sum(t >= u) for u in distinct], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1 - events / at_risk)
        greenwood = np.cumsum(np.where(events > 0, events / (at_risk * (at_risk - events)), 0.0))
        se_log = np.sqrt(greenwood)
        z = stats.norm.ppf(1 - (1 - level) / 2)
        if conf_type == "log":
            ci_low = np.where(survival > 0, survival * np.exp(-z * se_log), np.nan)
            ci_high = np.where(survival > 0, np.minimum(1.0, survival * np.exp(z * se_log)),
                               np.nan)
        else:
            log_s = np.log(survival)
            inner = np.log(-log_s)
            half = z * se_log / np.abs(log_s)
            defined = (survival > 0) & (survival < 1)
            ci_low = np.where(defined, np.exp(-np.exp(inner + half)), np.nan)
            ci_high = np.where(defined, np.exp(-np.exp(inner - half)), np.nan)
            ci_low = np.where(survival == 1, 1.0, ci_low)
            ci_high = np.where(survival == 1, 1.0, ci_high)
        infinite = ~np.isfinite(se_log)
        ci_low = np.where(infinite, np.nan, ci_low)
        ci_high = np.where(infinite, np.nan, ci_high)
    return KaplanMeierCurve(distinct, at_risk.astype(int), events.astype(int),
                            censored.astype(int), survival, ci_low, ci_high, conf_type, level,
                            median_rule)


@dataclass(frozen=True)
class LogRankResult:
    chi2: float
    df: int
    p_value: float


def logrank_test(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> LogRankResult:
    """The k-sample log-rank test (as R's survdiff with rho = 0)."""
    labels = sorted(set(group))
    if len(labels) < 2:
        return LogRankResult(math.nan, 0, math.nan)
    observed = np.zeros(len(labels))
    expected = np.zeros(len(labels))
    covariance = np.zeros((len(labels), len(labels)))
    for u in np.unique(time[event]):
        at_risk = time >= u
        n = at_risk.sum()
        d = np.sum(event & (time == u))
        n_g = np.array([np.sum(at_risk & (group == g)) for g in labels], dtype=float)
        d_g = np.array([np.sum(event & (time == u) & (group == g)) for g in labels], dtype=float)
        observed += d_g
        expected += d * n_g / n
        if n > 1:
            factor = d * (n - d) / (n * n * (n - 1))
            covariance += factor * (np.diag(n_g * n) - np.outer(n_g, n_g))
    difference = (observed - expected)[:-1]
    reduced = covariance[:-1, :-1]
    chi2 = float(difference @ np.linalg.pinv(reduced) @ difference)
    df = int(np.linalg.matrix_rank(reduced))
    return LogRankResult(chi2, df, float(stats.chi2.sf(chi2, df)) if df else math.nan)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment: the i-th smallest of m p-values is multiplied by
    m - i + 1, made monotone, and capped at 1."""
    order = np.argsort(p_values, kind="stable")
    m = len(p_values)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p_values[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


@dataclass(frozen=True)
class CoxResult:
    """Hazard ratios of a Cox model (Efron ties), with the reasons to read them carefully."""

    table: pd.DataFrame
    n: int
    events: int
    warnings: tuple[str, ...]
    # Why the model as specified has no estimate (an unbounded or constant term, or no
    # convergence); then the table is empty: refitting without the term would answer another
    # question than the one asked.
    not_estimable: str | None = None
    reference: str | None = None  # the group the hazard ratios compare with
    loglik: float | None = None  # the log partial likelihood at the estimate


def _monotone_direction(time: np.ndarray, event: np.ndarray, x: np.ndarray) -> int:
    """+1 or -1 when the partial likelihood grows without bound in this binary covariate's
    coefficient, whatever the other coefficients: every event that happens while both levels
    are at risk has level 1 (or every one has level 0). 0 when the coefficient is bounded."""
    events_at_level_one = [
        x[i] == 1 for i in np.flatnonzero(event)
        if x[time >= time[i]].min() != x[time >= time[i]].max()
    ]
    if not events_at_level_one:
        return 0
    if all(events_at_level_one):
        return 1
    if not any(events_at_level_one):
        return -1
    return 0


class CoxFit:
    """The maximum of the Cox partial likelihood with Efron's ties, found as R's `coxph`
    finds it: Newton–Raphson from zero with step-halving whenever a step lowers the
    likelihood, until the log likelihood changes by less than 1e-9 relatively. The answer
    does not depend on which level of a grouping is the reference (lifelines' optimiser
    failed for some references where coxph converges).

    Example::

        fit = CoxFit(time, event, covariates)  # arrays: n, n (0/1), n × p
        fit.coef, fit.se, fit.loglik
    """

    MAX_ITERATIONS = 100
    EPSILON = 1e-9

    def __init__(self, time: np.ndarray, event: np.ndarray, covariates: np.ndarray):
        self.time = np.asarray(time, dtype=float)
        self.event = np.asarray(event, dtype=bool)
        x = np.asarray(covariates, dtype=float)
        self.x = x - x.mean(axis=0)  # centred, as coxph: the same model, stabler sums
        self.event_times = np.unique(self.time[self.event])
        beta = np.zeros(self.x.shape[1])
        loglik, gradient, information = self._derivatives(beta)
        self.loglik_null = loglik
        self.converged = False
        self.iterations = 0
        while self.iterations < self.MAX_ITERATIONS:
            self.iterations += 1
            step = np.linalg.solve(information, gradient)
            candidate = beta + step
            new_loglik, new_gradient, new_information = self._derivatives(candidate)
            halvings = 0
            while not np.isfinite(new_loglik) or new_loglik < loglik - 1e-12:
                halvings += 1
                if halvings > 30:
                    raise np.linalg.LinAlgError("step-halving found no better coefficients")
                candidate = (beta + candidate) / 2
                new_loglik, new_gradient, new_information = self._derivatives(candidate)
            done = abs(1 - loglik / new_loglik) <= self.EPSILON if new_loglik else \
                abs(new_loglik - loglik) <= self.EPSILON
            beta, loglik, gradient, information = candidate, new_loglik, new_gradient, \
                new_information
            if done:
                self.converged = True
                break
        self.coef = beta
        self.loglik = loglik
        self.covariance = np.linalg.inv(information)
        self.se = np.sqrt(np.diag(self.covariance))

    def _derivatives(self, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Log partial likelihood (Efron), its gradient and the information matrix."""
        eta = self.x @ beta
        shift = eta.max()
        weight = np.exp(eta - shift)
        p = self.x.shape[1]
        loglik, gradient, information = 0.0, np.zeros(p), np.zeros((p, p))
        for moment in self.event_times:
            at_risk = self.time >= moment
            dying = at_risk & self.event & (self.time == moment)
            tied = int(dying.sum())
            w_risk, w_dying = weight[at_risk], weight[dying]
            x_risk, x_dying = self.x[at_risk], self.x[dying]
            s0_risk, s0_dying = w_risk.sum(), w_dying.sum()
            s1_risk, s1_dying = w_risk @ x_risk, w_dying @ x_dying
            s2_risk = (x_risk * w_risk[:, None]).T @ x_risk
            s2_dying = (x_dying * w_dying[:, None]).T @ x_dying
            loglik += eta[dying].sum() - tied * shift
            gradient += x_dying.sum(axis=0)
            for k in range(tied):
                share = k / tied
                s0 = s0_risk - share * s0_dying
                s1 = s1_risk - share * s1_dying
                s2 = s2_risk - share * s2_dying
                loglik -= math.log(s0)
                mean = s1 / s0
                gradient -= mean
                information += s2 / s0 - np.outer(mean, mean)
        return loglik, gradient, information


def cox_model(frame: pd.DataFrame, level: float = 0.95, event_label: str = "event"
              ) -> CoxResult | None:
    """Fit a Cox model of `time`/`event` on the other columns of `frame` (numeric, complete),
    with Efron's ties, as `survival::coxph` (see `CoxFit`).

    Returns None when there is nothing to estimate (no events or no covariates).
    """
    missing = [name for name in ("time", "event") if name not in frame]
    if missing:
        raise ValueError(f"no column {', '.join(repr(name) for name in missing)} (columns: "
                         f"{', '.join(map(str, frame.columns))})")
    frame = frame.assign(time=checked_times(frame["time"]),
                         event=checked_events(frame["event"]).astype(int))
    covariates = [c for c in frame.columns if c not in ("time", "event")]
    events = int(frame["event"].sum())
    if not covariates or events == 0 or len(frame) < 3:
        return None
    notes = []
    if events < EVENTS_PER_PARAMETER * len(covariates):
        notes.append(f"{events} events for {len(covariates)} parameters (fewer than "
                     f"{EVENTS_PER_PARAMETER} per parameter): estimates are unstable")
    time = frame["time"].to_numpy(float)
    event = frame["event"].to_numpy(bool)
    unbounded = {}
    for name in covariates:
        values = frame[name].to_numpy(float)
        if set(np.unique(values)) <= {0.0, 1.0}:
            direction = _monotone_direction(time, event, values)
            if direction:
                unbounded[name] = direction
    columns = ["term", "coef", "se", "hr", "ci_low", "ci_high", "p_value", "bounded"]
    constant = [name for name in covariates if frame[name].nunique() <= 1]
    if unbounded or constant:
        reasons = [f"the hazard ratio of '{name}' is unbounded (every {event_label} while both "
                   f"levels were at risk was {'in' if direction > 0 else 'outside'} it)"
                   for name, direction in unbounded.items()]
        reasons += [f"'{name}' takes a single value" for name in constant]
        return CoxResult(pd.DataFrame(columns=columns), len(frame), events, tuple(notes),
                         not_estimable="; ".join(reasons) + ", so the model cannot be fitted "
                                                            "as specified")
    try:
        fit = CoxFit(time, event, frame[covariates].to_numpy(float))
    except np.linalg.LinAlgError as error:
        return CoxResult(pd.DataFrame(columns=columns), len(frame), events, tuple(notes),
                         not_estimable="the information matrix is singular, so the terms "
                                       f"{', '.join(covariates)} are not separately "
                                       f"estimable ({error})")
    if not fit.converged:
        notes.append(f"the fit did not converge in {fit.iterations} iterations")
    z = stats.norm.ppf(0.5 + level / 2)
    rows = [{"term": name, "coef": float(coef), "se": float(se), "hr": math.exp(coef),
             "ci_low": math.exp(coef - z * se), "ci_high": math.exp(coef + z * se),
             "p_value": float(2 * stats.norm.sf(abs(coef / se))), "bounded": True}
            for name, coef, se in zip(covariates, fit.coef, fit.se, strict=True)]
    table = pd.DataFrame(rows, columns=columns)
    return CoxResult(table.reset_index(drop=True), len(frame), events, tuple(notes),
                     loglik=fit.loglik)


@dataclass
class SurvivalByGroup:
    """Kaplan–Meier survival by group with log-rank and Cox comparisons.

    ``SurvivalByGroup().fit(frame)`` takes columns ``time``, ``event`` and ``group`` (and any
    numeric covariates named in ``covariates`` for the Cox model); ``summary()`` gives one row
    per group and overall; ``plot()`` draws the curves with an R-style at-risk table.
    """

    conf_type: str = "log-log"
    level: float = 0.95
    landmarks: tuple[float, ...] = (3.0, 6.0, 12.0)
    time_unit: str = "months"
    time_origin: str = "the start of follow-up"
    # Below these, groups are described, not tested: events in the smallest group for the
    # log-rank tests, events per parameter for the Cox model (0: always test).
    min_events_per_group: int = 0
    min_events_per_parameter: int = 0
    median_rule: str = "table"  # see `KaplanMeierCurve.median`
    # How the messages and the plot name the event (one, several) and the analysis.
    event_label: str = "event"
    events_label: str = "events"
    analysis_label: str = "survival"
    curves: dict[str, KaplanMeierCurve] = field(default_factory=dict, init=False)
    overall: KaplanMeierCurve | None = field(default=None, init=False)
    logrank: LogRankResult | None = field(default=None, init=False)
    pairwise: pd.DataFrame | None = field(default=None, init=False)
    cox: CoxResult | None = field(default=None, init=False)
    group_labels: dict[str, str] = field(default_factory=dict, init=False)
    not_tested: list[str] = field(default_factory=list, init=False)

    def fit(
        self,
        frame: pd.DataFrame,
        *,
        covariates: Sequence[str] = (),
        labels: dict[str, str] | None = None,
        reference: str | None = None,
    ) -> SurvivalByGroup:
        """Fit curves and comparisons; rows with a missing group are left out of the groups
        but kept in the overall curve."""
        if frame.empty:
            raise ValueError("no patients with a usable survival time")
        missing = [name for name in ("time", "event", *covariates) if name not in frame]
        if missing:
            raise ValueError(f"no column {', '.join(repr(name) for name in missing)} (columns: "
                             f"{', '.join(map(str, frame.columns))})")
        frame = frame.assign(time=checked_times(frame["time"]),
                             event=checked_events(frame["event"]))
        time = frame["time"].to_numpy(float)
        event = frame["event"].to_numpy(bool)
        self.overall = kaplan_meier(time, event, conf_type=self.conf_type, level=self.level,
                                    median_rule=self.median_rule)
        if "group" not in frame:
            frame = frame.assign(group=pd.Series([None] * len(frame), index=frame.index,
                                                 dtype=object))
        grouped = frame[frame["group"].notna()]
        order = list(dict.fromkeys(labels or {})) if labels else []
        names = [g for g in order if g in set(grouped["group"])] + sorted(
            set(grouped["group"]) - set(order))
        self.group_labels = {name: (labels or {}).get(name, name) for name in names}
        if reference is not None and reference not in names and reference not in (labels or {}):
            raise ValueError(f"reference '{reference}' is not a group (groups: "
                             f"{', '.join(names)})")
        self.curves = {
            name: kaplan_meier(grouped.loc[grouped["group"] == name, "time"],
                               grouped.loc[grouped["group"] == name, "event"],
                               conf_type=self.conf_type, level=self.level,
                               median_rule=self.median_rule)
            for name in names
        }
        g_time = grouped["time"].to_numpy(float)
        g_event = grouped["event"].to_numpy(bool)
        g_group = grouped["group"].to_numpy(object)
        self.not_tested = []
        self.logrank, self.pairwise, self.cox = None, None, None
        fewest = min((curve.total_events for curve in self.curves.values()), default=0)
        if len(names) > 1 and fewest < self.min_events_per_group:
            self.not_tested.append(
                f"No log-rank test: the smallest group has {fewest} "
                f"{self.event_label if fewest == 1 else self.events_label}, and the protocol "
                f"asks for at least {self.min_events_per_group} in every group.")
        elif len(names) > 1:
            self.logrank = logrank_test(g_time, g_event, g_group)
            self.pairwise = self._pairwise(g_time, g_event, g_group, names)
        parameters = max(len(names) - 1, 0) + len(covariates)
        events = int(g_event.sum())
        if parameters and events < self.min_events_per_parameter * parameters:
            self.not_tested.append(
                f"No Cox model: {events} "
                f"{self.event_label if events == 1 else self.events_label} for {parameters} "
                f"parameter{'' if parameters == 1 else 's'}, and the protocol asks for at least "
                f"{self.min_events_per_parameter} {self.events_label} per parameter.")
        else:
            self.cox = self._cox(grouped, names, covariates, reference)
        return self

    def _pairwise(self, time: np.ndarray, event: np.ndarray, group: np.ndarray,
                  names: list[str]) -> pd.DataFrame:
        rows = []
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                chosen = (group == first) | (group == second)
                result = logrank_test(time[chosen], event[chosen], group[chosen])
                rows.append({"group_a": first, "group_b": second, "chi2": result.chi2,
                             "p_value": result.p_value})
        table = pd.DataFrame(rows, columns=["group_a", "group_b", "chi2", "p_value",
                                            "p_holm"])
        testable = table["p_value"].notna()
        if testable.any():
            table.loc[testable, "p_holm"] = holm(table.loc[testable, "p_value"].to_numpy())
        return table

    def _cox(self, grouped: pd.DataFrame, names: list[str], covariates: Sequence[str],
             reference: str | None) -> CoxResult | None:
        if len(names) < 2 and not covariates:
            return None
        base = reference if reference in names else (
            max(names, key=lambda n: self.curves[n].n) if names else None)
        design = pd.DataFrame({"time": grouped["time"].astype(float),
                               "event": grouped["event"].astype(int)})
        for name in names:
            if name != base:
                design[f"group: {self.group_labels[name]}"] = (grouped["group"] == name) \
                    .astype(float)
        for name in covariates:
            cells = grouped[name].replace("", None)
            values = pd.to_numeric(cells, errors="coerce").astype(float)
            unreadable = cells.notna() & values.isna()
            if unreadable.any():
                row = unreadable.idxmax()
                raise ValueError(f"{name}: row {row} is {grouped[name][row]!r}; a covariate "
                                 "must be a number (blank when unknown)")
            design[name] = values
        complete = design.dropna()
        result = cox_model(complete, self.level, self.event_label)
        if result is None:
            return None
        cautions = result.warnings
        if len(complete) < len(design):
            left_out = len(design) - len(complete)
            cautions = (f"{left_out} patients without {', '.join(covariates)} left out",
                         *cautions)
        return dataclasses.replace(result, warnings=cautions,
                                   reference=self.group_labels.get(base) if base else None)

    def summary(self) -> pd.DataFrame:
        """Per group and overall: n, events, median with limits, survival at the landmarks."""
        rows = []
        curves = [("overall", "All patients", self.overall), *(
            (name, self.group_labels[name], curve) for name, curve in self.curves.items())]
        for name, label, curve in curves:
            if curve is None:
                continue
            median, low, high = curve.median
            row = {"group": name, "label": label, "n": curve.n, "events": curve.total_events,
                   "median": median, "median_ci_low": low, "median_ci_high": high}
            for t in self.landmarks:
                s, s_low, s_high = curve.survival_at(t)
                row[f"survival_{t:g}"] = s
                row[f"survival_{t:g}_ci_low"] = s_low
                row[f"survival_{t:g}_ci_high"] = s_high
            rows.append(row)
        return pd.DataFrame(rows)

    def plot(self, ax: Axes | None = None, title: str | None = None) -> Figure:
        """Kaplan–Meier curves with censor marks, medians and an at-risk table."""
        from analysis.figures import kaplan_meier_plot

        return kaplan_meier_plot(self, ax=ax, title=title)


@dataclass
class MissingTimeBounds:
    """How far events without a time could move the curve: Kaplan–Meier with those events
    left out (the complete-case analysis), then placed at the origin (the worst case) and at
    each of the protocol's `placements`.

    ``MissingTimeBounds(placements=(1, 3, 7)).fit(frame, missing_events=11)`` takes the
    columns ``time`` and ``event`` of the patients with a time; ``summary()`` gives one row per
    scenario with n, events, median with limits and survival at the landmarks, and
    ``median_range`` the lowest and highest median over the scenarios.
    """

    placements: tuple[float, ...] = ()
    landmarks: tuple[float, ...] = (3.0, 6.0, 12.0)
    conf_type: str = "log-log"
    level: float = 0.95
    median_rule: str = "table"
    missing_events: int = field(default=0, init=False)
    curves: dict[float | None, KaplanMeierCurve] = field(default_factory=dict, init=False)

    def fit(self, frame: pd.DataFrame, missing_events: int) -> MissingTimeBounds:
        if missing_events < 0:
            raise ValueError(f"missing_events must be ≥ 0 (got {missing_events})")
        for placement in self.placements:
            if not math.isfinite(placement) or placement < 0:
                raise ValueError(f"placements: {placement!r} is not a time ≥ 0")
        time = checked_times(frame["time"])
        event = checked_events(frame["event"])
        options = {"conf_type": self.conf_type, "level": self.level,
                   "median_rule": self.median_rule}
        self.missing_events = missing_events
        self.curves = {None: kaplan_meier(time, event, **options)}
        for placement in sorted({0.0, *map(float, self.placements)}):
            self.curves[placement] = kaplan_meier(
                np.concatenate([time, np.full(missing_events, placement)]),
                np.concatenate([event, np.ones(missing_events, dtype=bool)]), **options)
        return self

    def summary(self) -> pd.DataFrame:
        """One row per scenario: `placed_at` (NaN for the complete case), n, events, median
        with its limits, and survival at each landmark."""
        rows = []
        for placement, curve in self.curves.items():
            median, low, high = curve.median
            row = {"placed_at": math.nan if placement is None else placement, "n": curve.n,
                   "events": curve.total_events, "median": median, "median_ci_low": low,
                   "median_ci_high": high}
            for t in self.landmarks:
                row[f"survival_{t:g}"] = curve.survival_at(t)[0]
            rows.append(row)
        return pd.DataFrame(rows)

    @property
    def median_range(self) -> tuple[float, float]:
        medians = [curve.median[0] for curve in self.curves.values()]
        known = [m for m in medians if not math.isnan(m)]
        return (min(known), max(known)) if known else (math.nan, math.nan)


@dataclass(frozen=True)
class SurvivalData:
    """Patients with a usable survival time, and how many were left out and why."""

    frame: pd.DataFrame
    excluded: dict[str, int]


def survival_data(
    cases: pd.DataFrame, spec: SurvivalSpec, grouping: TreatmentGrouping | None = None,
    id_column: str = "case_id", *, any_origin: bool = False,
) -> SurvivalData:
    """Time, event and treatment group of each patient with a usable survival time.

    `cases` are typed cases (see `review.extraction.sheet.typed_cases`). A time without a
    vital status, or a status without a time, leaves the patient out; both are counted, the
    statuses without a time by status (an event without a time is information lost, and
    leaving it out biases the curve upwards). When the protocol names an origin field, a time
    counted from another event than the origin leaves the patient out too, counted by that
    event, unless `any_origin` (the sensitivity analysis that pools every origin).
    """
    time = pd.to_numeric(cases[spec.time_field], errors="coerce")
    status = cases[spec.status_field]
    known_status = status.isin([spec.event_value, spec.censored_value])
    usable = time.notna() & known_status
    other_origins: dict[str, int] = {}
    if spec.origin_field and not any_origin:
        origin = cases[spec.origin_field].astype(object)
        elsewhere = usable & (origin != spec.origin_value)
        for value, count in origin[elsewhere].fillna("").value_counts(sort=False).items():
            event = "another event" if value == "other" else value.replace("_", " ")
            reason = f"time counted from {event}" if value else "time without its origin recorded"
            other_origins[reason] = int(count)
        usable &= ~elsewhere
    frame = pd.DataFrame({
        id_column: cases.loc[usable, id_column].to_numpy(),
        "time": time[usable].astype(float).to_numpy(),
        "event": (status[usable] == spec.event_value).to_numpy(),
    })
    if grouping is not None:
        frame["group"] = assign_groups(cases.loc[usable], grouping).to_numpy()
    if "age" in cases:
        frame["age"] = pd.to_numeric(cases.loc[usable, "age"]).astype(float).to_numpy()
    if "sex" in cases:
        sex = cases.loc[usable, "sex"]
        frame["male"] = (sex == "M").astype(float).where(sex.notna()).to_numpy()
    excluded = {
        "no time or status reported": int((time.isna() & ~known_status).sum()),
        f"{spec.event_value} without a time": int((time.isna()
                                                   & (status == spec.event_value)).sum()),
        f"{spec.censored_value} without a time": int((time.isna()
                                                      & (status == spec.censored_value)).sum()),
        "time without a status": int((time.notna() & ~known_status).sum()),
        **other_origins,
    }
    return SurvivalData(frame, excluded)


def assign_groups(cases: pd.DataFrame, grouping: TreatmentGrouping) -> pd.Series:
    """Each patient's group: the first group of the grouping that any of their codes match;
    missing when the field is not reported or no group matches."""
    def group_of(codes: tuple[str, ...] | None) -> str | None:
        if not codes:
            return None
        for group in grouping.groups:
            if set(codes) & set(group.any_of):
                return group.id
        return None

    return cases[grouping.field].map(group_of).astype(object)


COX_COVARIATES = ("age", "male")


@dataclass
class SurvivalAnalysis:
    """Survival overall and by each treatment grouping, with who was left out."""

    overall: SurvivalByGroup | None
    by_grouping: dict[str, SurvivalByGroup]
    usable: int
    excluded: dict[str, int]
    ungrouped: dict[str, int]
    # The sensitivity analysis with every time, whatever event it counts from; None when
    # the protocol names no origin field or every time counts from the origin.
    any_origin: SurvivalByGroup | None = None
    # The events without a time placed at the origin and at the protocol's bounds; None
    # when every event has its time.
    missing_times: MissingTimeBounds | None = None

    def summary(self) -> pd.DataFrame:
        """Median and landmarks of every curve: overall, each grouping's groups and the
        every-origin sensitivity analysis, with the grouping each row belongs to."""
        summaries = []
        if self.overall is not None:
            summaries.append(self.overall.summary().assign(grouping="overall"))
        for grouping, result in self.by_grouping.items():
            summary = result.summary()
            summaries.append(summary[summary["group"] != "overall"].assign(grouping=grouping))
        if self.any_origin is not None:
            summaries.append(self.any_origin.summary().assign(grouping="any origin"))
        if not summaries:
            return pd.DataFrame()
        table = pd.concat(summaries, ignore_index=True)
        return table[["grouping", *table.columns.drop("grouping")]]


def analyze_survival(cases: pd.DataFrame, spec: SurvivalSpec,
                     groupings: Sequence[TreatmentGrouping] = (),
                     conf_type: str = "log-log") -> SurvivalAnalysis:
    """A protocol's time-to-event analysis on typed cases: the curve of every patient with a
    usable time, the sensitivity analyses (every origin, events without a time placed at
    bounds), and curves, tests and a Cox model by each grouping."""
    overall_data = survival_data(cases, spec)
    options = {"conf_type": conf_type, "landmarks": spec.landmarks, "time_unit": spec.time_unit,
               "time_origin": spec.origin, "min_events_per_group": spec.min_events_per_group,
               "min_events_per_parameter": spec.min_events_per_parameter,
               "median_rule": spec.median_rule, "event_label": spec.words.event,
               "events_label": spec.words.events, "analysis_label": spec.words.analysis}
    overall = SurvivalByGroup(**options).fit(overall_data.frame) \
        if len(overall_data.frame) else None
    every_origin = survival_data(cases, spec, any_origin=True).frame
    any_origin = None
    if spec.origin_field and len(every_origin) > len(overall_data.frame):
        any_origin = SurvivalByGroup(**{**options, "time_origin": "the event each report "
                                                                  "counts from"}
                                     ).fit(every_origin)
    by_grouping, ungrouped = {}, {}
    for grouping in groupings:
        data = survival_data(cases, spec, grouping)
        grouped = data.frame[data.frame["group"].notna()]
        ungrouped[grouping.id] = len(data.frame) - len(grouped)
        if grouped.empty:
            continue
        labels = {group.id: group.label for group in grouping.groups}
        reference = next((g.id for g in reversed(grouping.groups)
                          if g.id in set(grouped["group"])), None)
        by_grouping[grouping.id] = SurvivalByGroup(**options).fit(
            data.frame, covariates=COX_COVARIATES, labels=labels, reference=reference)
    untimed = overall_data.excluded.get(f"{spec.event_value} without a time", 0)
    missing_times = MissingTimeBounds(
        placements=spec.missing_time_bounds, landmarks=spec.landmarks, conf_type=conf_type,
        median_rule=spec.median_rule).fit(overall_data.frame, untimed) \
        if untimed and len(overall_data.frame) else None
    return SurvivalAnalysis(overall, by_grouping, len(overall_data.frame), overall_data.excluded,
                            ungrouped, any_origin, missing_times)
