"""The outcomes a protocol declares, each overall and by treatment grouping: a binary outcome
as the share of patients with the event (Wilson interval; Fisher's exact test, or the
Fisher–Freeman–Halton test for more than two groups, where every group is large enough), a
categorical one as the patients with each value (ties for the most frequent kept) and with
any value of each of its regions, a
continuous one as median, quartiles (R's default type 7) and range, a time-to-event one as
`analysis.survival.analyze_survival` does the protocol's survival analysis.

The estimators are pure and strict, as lifelines' are: `fit` takes the values (and groups)
of the patients to count, `summary` gives the table. `analyze_outcome` reads them off a
typed extraction sheet as the protocol says.

Example::

    import pandas as pd
    from analysis.outcomes import BinaryOutcome
    recovered = pd.Series([True, False, True, True, False, True])
    management = pd.Series(["surgery", "surgery", "surgery", "antibiotics", "antibiotics",
                            "antibiotics"])
    result = BinaryOutcome(min_per_group=3).fit(recovered, management)
    result.overall.events, result.overall.n        # 4, 6
    result.test.p_value                            # Fisher's exact test: 1.0
    result.summary()                               # one row per group, with the CI
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.special import gammaln
from scipy.stats import fisher_exact

from analysis import figures
from analysis.pooling import PooledProportion, pool_proportions
from analysis.sites import code_label, pooling_refusal, wilson_interval
from analysis.survival import SurvivalAnalysis, analyze_survival, assign_groups
from review.protocol import AnalysisSpec, ExtractionSchema, OutcomeSpec

OVERALL = "overall"


@dataclass(frozen=True)
class Share:
    """Patients with the event among the patients counted, with its confidence interval."""

    group: str
    label: str
    events: int
    n: int
    percent: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ExactTest:
    method: str
    p_value: float


def _share(group: str, label: str, event: np.ndarray, level: float) -> Share:
    events, n = int(event.sum()), len(event)
    if n == 0:
        return Share(group, label, 0, 0, float("nan"), float("nan"), float("nan"))
    low, high = wilson_interval(events, n, level)
    return Share(group, label, events, n, 100 * events / n, 100 * low, 100 * high)


def _checked_groups(group: pd.Series | None, size: int, labels: Mapping[str, str] | None
                    ) -> tuple[np.ndarray | None, dict[str, str]]:
    if group is None:
        return None, {}
    if len(group) != size:
        raise ValueError(f"group: {len(group)} values for {size} patients")
    values = np.asarray(group, dtype=object)
    missing = [i for i, value in enumerate(values) if value is None or value != value]
    if missing:
        raise ValueError(f"group: row {missing[0]} has no group; leave ungrouped patients out")
    present = list(dict.fromkeys(str(value) for value in values))
    labels = dict(labels or {})
    unknown = [value for value in present if value not in labels] if labels else []
    if unknown:
        raise ValueError(f"group: '{unknown[0]}' is not one of the labelled groups: "
                         f"{', '.join(labels)}")
    ordered = [value for value in labels if value in present] if labels else sorted(present)
    return values.astype(str), {value: labels.get(value, value) for value in ordered}


# The exact test enumerates every table with the observed margins; beyond this many it
# gives up rather than approximate (scipy's r x c test is a Monte Carlo one).
MAX_TABLES = 5_000_000
# As R's fisher.test: tables as likely as the observed one, within rounding, count as such.
RELATIVE_TOLERANCE = 1 + 1e-7


def freeman_halton(events: np.ndarray, totals: np.ndarray) -> float | None:
    """The exact p-value of a k x 2 table (events of each group's total) given its margins:
    the probability, under independence, of every table no more likely than the observed one
    (R's fisher.test). None when the tables are too many to enumerate."""
    events, totals = np.asarray(events, dtype=int), np.asarray(totals, dtype=int)
    observed = int(events.sum())

    def log_choose(n: int) -> np.ndarray:
        k = np.arange(n + 1)
        return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)

    # Every partial table of the first groups: its events so far and log-probability.
    sums, logp = np.zeros(1, dtype=int), np.zeros(1)
    for total in totals:
        choose = log_choose(int(total))
        sums = (sums[:, None] + np.arange(total + 1)[None, :]).ravel()
        logp = (logp[:, None] + choose[None, :]).ravel()
        keep = sums <= observed
        sums, logp = sums[keep], logp[keep]
        if len(sums) > MAX_TABLES:
            return None
    every_table = (gammaln(totals.sum() + 1) - gammaln(observed + 1)
                   - gammaln(totals.sum() - observed + 1))
    logp = logp[sums == observed] - every_table
    observed_logp = sum(float(log_choose(int(total))[int(count)])
                        for count, total in zip(events, totals, strict=True)) - every_table
    p_value = float(np.exp(logp[logp <= observed_logp + np.log(RELATIVE_TOLERANCE)]).sum())
    return min(p_value, 1.0)


class BinaryOutcome:
    """The share of patients with the event, overall and by group, with an exact test of
    whether it differs between the groups where every group has `min_per_group` patients."""

    def __init__(self, level: float = 0.95, min_per_group: int = 5) -> None:
        if not 0 < level < 1:
            raise ValueError(f"level: {level} is not between 0 and 1")
        self.level = level
        self.min_per_group = min_per_group
        self.overall: Share | None = None
        self.groups: list[Share] = []
        self.test: ExactTest | None = None
        self.untested: str | None = None

    def fit(self, event: pd.Series, group: pd.Series | None = None,
            labels: Mapping[str, str] | None = None) -> BinaryOutcome:
        """`event`: True/False (or 1/0) per patient, none missing; `group`: each patient's
        group id; `labels`: the groups' labels, in the order they are shown."""
        values = np.asarray(event, dtype=object)
        for index, value in enumerate(values):
            if value is None or value != value or (value not in (0, 1) and
                                                   not isinstance(value, bool)):
                raise ValueError(f"event: row {index} is {value!r}; events must be True/False "
                                 "or 1/0 (leave patients without the outcome out)")
        event_array = values.astype(bool)
        if not len(event_array):
            raise ValueError("event: no patients to count")
        self.overall = _share(OVERALL, "All", event_array, self.level)
        groups, shown = _checked_groups(group, len(event_array), labels)
        if groups is None:
            return self
        self.groups = [_share(key, label, event_array[groups == key], self.level)
                       for key, label in shown.items()]
        self.test, self.untested = self._exact_test()
        return self

    def _exact_test(self) -> tuple[ExactTest | None, str | None]:
        if len(self.groups) < 2:
            return None, "only one group has patients"
        small = [share for share in self.groups if share.n < self.min_per_group]
        if small:
            names = ", ".join(f"{share.label} ({share.n})" for share in small)
            return None, f"fewer than {self.min_per_group} patients in {names}"
        table = np.array([[share.events, share.n - share.events] for share in self.groups])
        if not table[:, 0].any() or not table[:, 1].any():
            return None, "every patient had the same outcome"
        if len(self.groups) == 2:
            return ExactTest("Fisher's exact test", float(fisher_exact(table).pvalue)), None
        p_value = freeman_halton(table[:, 0], table.sum(axis=1))
        if p_value is None:
            return None, (f"more than {MAX_TABLES:,} tables to enumerate for the exact test "
                          "of this many patients")
        return ExactTest("Fisher–Freeman–Halton exact test", p_value), None

    def summary(self) -> pd.DataFrame:
        """One row for all patients, then one per group."""
        if self.overall is None:
            raise ValueError("fit the outcome first")
        return pd.DataFrame([vars(share) for share in [self.overall, *self.groups]])

    def plot(self, xlabel: str = "Patients with the event, % (95% CI)",
             title: str | None = None) -> Figure:
        """The share for all patients and for each group, with its interval."""
        return figures.share_plot(self.summary().assign(panel=""), xlabel, title)


@dataclass(frozen=True)
class Spread:
    """A number's distribution among the patients it is known for."""

    group: str
    label: str
    n: int
    median: float
    q1: float
    q3: float
    min: float
    max: float


def _spread(group: str, label: str, values: np.ndarray) -> Spread:
    if not len(values):
        return Spread(group, label, 0, *([float("nan")] * 5))
    q1, median, q3 = np.percentile(values, [25, 50, 75])  # linear: R's quantile type 7
    return Spread(group, label, len(values), float(median), float(q1), float(q3),
                  float(values.min()), float(values.max()))


class ContinuousOutcome:
    """Median, quartiles and range of a number, overall and by group."""

    def __init__(self) -> None:
        self.overall: Spread | None = None
        self.groups: list[Spread] = []
        # Each patient's value, for all and by group label, for the plot.
        self.values: dict[str, np.ndarray] = {}

    def fit(self, values: pd.Series, group: pd.Series | None = None,
            labels: Mapping[str, str] | None = None) -> ContinuousOutcome:
        """`values`: a known, finite number per patient; `group` and `labels` as for
        `BinaryOutcome.fit`."""
        numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
            dtype=float)
        bad = [i for i, number in enumerate(numbers) if not np.isfinite(number)]
        if bad:
            raise ValueError(f"values: row {bad[0]} is {list(values)[bad[0]]!r}; values must "
                             "be known, finite numbers (leave patients without it out)")
        if not len(numbers):
            raise ValueError("values: no patients to describe")
        self.overall = _spread(OVERALL, "All", numbers)
        self.values = {"All": numbers}
        groups, shown = _checked_groups(group, len(numbers), labels)
        if groups is not None:
            self.groups = [_spread(key, label, numbers[groups == key])
                           for key, label in shown.items()]
            self.values.update({label: numbers[groups == key] for key, label in shown.items()})
        return self

    def summary(self) -> pd.DataFrame:
        if self.overall is None:
            raise ValueError("fit the outcome first")
        return pd.DataFrame([vars(spread) for spread in [self.overall, *self.groups]])

    def plot(self, xlabel: str = "Value", title: str | None = None) -> Figure:
        """Each patient's value over the quartiles, for all and for each group."""
        if self.overall is None:
            raise ValueError("fit the outcome first")
        return figures.spread_plot({label: found for label, found in self.values.items()
                                    if len(found)}, xlabel, title)


@dataclass(frozen=True)
class Category:
    """Patients with one value of a coded outcome (`kind` "value"), or with any value of a
    region (`kind` "region"), among the patients it is known for."""

    kind: str
    value: str
    label: str
    count: int
    n: int
    percent: float
    ci_low: float
    ci_high: float


def _categories(values: list[tuple[str, ...]], categories: Mapping[str, tuple[str, set[str]]],
                kind: str, level: float) -> list[Category]:
    """Each category's patients: those with any of its codes."""
    rows = []
    for value, (label, codes) in categories.items():
        share = _share(value, label, np.array([bool(codes & set(found)) for found in values],
                                              dtype=bool), level)
        rows.append(Category(kind, value, label, share.events, share.n, share.percent,
                             share.ci_low, share.ci_high))
    return rows


class CategoricalOutcome:
    """How many patients have each value of a coded outcome (Wilson intervals), overall and
    by group, and how many have any value of each region (a patient with several of its
    values counts once). A multi-valued field counts a patient once under each of their
    values, so the counts may add up to more than the patients."""

    def __init__(self, categories: Mapping[str, str], level: float = 0.95,
                 regions: Mapping[str, tuple[str, Sequence[str]]] | None = None) -> None:
        """`categories`: each value's label; `regions`: each region's label and values."""
        if not categories:
            raise ValueError("categories: none given")
        self.categories = dict(categories)
        self.region_values = {region: (label, tuple(values))
                              for region, (label, values) in (regions or {}).items()}
        for region, (_, values) in self.region_values.items():
            wrong = [value for value in values if value not in self.categories]
            if not values or wrong:
                raise ValueError(f"regions: '{region}' must list values, each one of: "
                                 f"{', '.join(self.categories)}")
        self.level = level
        self.overall: list[Category] = []
        self.regions: list[Category] = []
        self.groups: dict[str, list[Category]] = {}
        self.group_regions: dict[str, list[Category]] = {}
        self.group_labels: dict[str, str] = {}
        self.multi_valued = False
        self.n = 0

    def _count(self, found: list[tuple[str, ...]]) -> tuple[list[Category], list[Category]]:
        values = {code: (label, {code}) for code, label in self.categories.items()}
        regions = {region: (label, set(codes))
                   for region, (label, codes) in self.region_values.items()}
        return (_categories(found, values, "value", self.level),
                _categories(found, regions, "region", self.level))

    def fit(self, values: pd.Series, group: pd.Series | None = None,
            labels: Mapping[str, str] | None = None) -> CategoricalOutcome:
        """`values`: each patient's value, or tuple of values (a multi-valued field), each
        one of the categories; `group` and `labels` as for `BinaryOutcome.fit`."""
        found = []
        for index, value in enumerate(values):
            codes = value if isinstance(value, tuple) else (value,)
            wrong = [code for code in codes if code not in self.categories]
            if not codes or wrong:
                raise ValueError(f"values: row {index} is {value!r}; each value must be one "
                                 f"of: {', '.join(self.categories)}")
            found.append(tuple(codes))
        if not found:
            raise ValueError("values: no patients to count")
        self.n = len(found)
        self.multi_valued = any(len(codes) > 1 for codes in found)
        self.overall, self.regions = self._count(found)
        groups, self.group_labels = _checked_groups(group, len(found), labels)
        if groups is not None:
            for key in self.group_labels:
                self.groups[key], self.group_regions[key] = self._count(
                    [codes for codes, g in zip(found, groups, strict=True) if g == key])
        return self

    @property
    def most_frequent(self) -> list[Category]:
        """The value with the most patients, or every value tied for it (none when no
        patient has any)."""
        top = max((category.count for category in self.overall), default=0)
        return [category for category in self.overall if top and category.count == top]

    def summary(self) -> pd.DataFrame:
        """One row per region, then per value, for all patients and then for each group."""
        if not self.overall:
            raise ValueError("fit the outcome first")
        rows = [{"group": OVERALL, "group_label": "All", **vars(category)}
                for category in [*self.regions, *self.overall]]
        rows += [{"group": key, "group_label": self.group_labels[key], **vars(category)}
                 for key in self.groups
                 for category in [*self.group_regions[key], *self.groups[key]]]
        return pd.DataFrame(rows)

    def plot(self, xlabel: str = "Patients, % (95% CI)", title: str | None = None) -> Figure:
        """Each region and each value some patient has, with its interval."""
        if not self.overall:
            raise ValueError("fit the outcome first")
        shown = [(category, "Regions") for category in self.regions] + [
            (category, "Values" if self.regions else "") for category in self.overall
            if category.count]
        return figures.share_plot(pd.DataFrame(
            [{"panel": panel, "label": category.label, "events": category.count,
              "n": category.n, "percent": category.percent, "ci_low": category.ci_low,
              "ci_high": category.ci_high} for category, panel in shown]), xlabel, title)


Estimator = BinaryOutcome | ContinuousOutcome | CategoricalOutcome


@dataclass
class OutcomeAnalysis:
    """One declared outcome: overall, by each grouping it names, and who was left out."""

    spec: OutcomeSpec
    # Who is counted, as the report names them.
    counted: str
    overall: Estimator | None
    # The patients counted.
    n: int = 0
    by_grouping: dict[str, Estimator] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    ungrouped: dict[str, int] = field(default_factory=dict)
    # A time-to-event outcome's curves, tests and models (its `overall` stays None).
    survival: SurvivalAnalysis | None = None
    # A categorical outcome's values pooled across reports, and those whose pooled result
    # would mislead, with the reason.
    pooled: dict[str, PooledProportion] = field(default_factory=dict)
    not_pooled: dict[str, str] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Every row of the outcome, with the grouping it belongs to."""
        if self.survival is not None:
            return self.survival.summary()
        if self.overall is None:
            return pd.DataFrame()
        overall = self.overall.summary()
        frames = [overall[overall["group"] == OVERALL].assign(grouping=OVERALL)]
        for grouping, result in self.by_grouping.items():
            rows = result.summary()
            frames.append(rows[rows["group"] != OVERALL].assign(grouping=grouping))
        table = pd.concat(frames, ignore_index=True)
        return table[["grouping", *table.columns.drop("grouping")]]


def _holds(value: Any, wanted: set[str]) -> bool:
    """A code (or any of a multi-valued field's codes) is one of `wanted`."""
    codes = value if isinstance(value, tuple) else (value,)
    return bool(wanted & {str(code) for code in codes})


def _is_known(value: Any) -> bool:
    """Reported: not blank (a missing value, or a multi-valued field with no code)."""
    return value is not None and value == value and value != ()


def analyze_outcome(cases: pd.DataFrame, outcome: OutcomeSpec, spec: AnalysisSpec,
                    schema: ExtractionSchema, *, conf_type: str = "log-log") -> OutcomeAnalysis:
    """The outcome on a typed extraction sheet, as the protocol declares it."""
    counted = spec.population_short or "patients"
    excluded: dict[str, int] = {}
    rows = cases
    if outcome.among is not None:
        among = outcome.among
        counted = among.label or f"{counted} with {among.field} {among.value}"
        inside = rows[among.field].map(lambda value: _is_known(value)
                                       and _holds(value, {among.value}))
        excluded[f"not {counted}"] = int((~inside).sum())
        rows = rows[inside]
    groupings = {grouping.id: grouping for grouping in spec.treatment_groupings}
    if outcome.time_to_event is not None:
        survival = analyze_survival(rows, outcome.time_to_event,
                                    [groupings[grouping] for grouping in outcome.groupings],
                                    conf_type) if len(rows) else None
        if survival is not None:
            excluded.update(survival.excluded)
        return OutcomeAnalysis(outcome, counted, None, survival.usable if survival else 0,
                               excluded=excluded,
                               ungrouped=dict(survival.ungrouped) if survival else {},
                               survival=survival)
    known = rows[outcome.field].map(_is_known)
    excluded[f"{outcome.field} not reported"] = int((~known).sum())
    rows = rows[known]
    result = OutcomeAnalysis(outcome, counted, None, len(rows), excluded=excluded)
    if rows.empty:
        return result

    field_spec = schema.field(outcome.field)

    def estimator() -> Estimator:
        if outcome.kind == "binary":
            return BinaryOutcome(min_per_group=outcome.min_per_group)
        if outcome.kind == "categorical":
            return CategoricalOutcome({code: field_spec.labels.get(code, code_label(code))
                                       for code in field_spec.values},
                                      regions={region.id: (region.label, region.values)
                                               for region in outcome.regions})
        return ContinuousOutcome()

    wanted = set(outcome.events)
    values = (rows[outcome.field].map(lambda value: _holds(value, wanted))
              if outcome.kind == "binary" else rows[outcome.field])
    result.overall = estimator().fit(values.reset_index(drop=True))
    method = spec.pooling.method if spec.pooling else "glmm"
    for code in outcome.pool:
        by_report = pd.DataFrame({"study": rows[schema.study.key].astype(str),
                                  "event": rows[outcome.field].map(
                                      lambda value, code=code: _holds(value, {code}))})
        counts = by_report.groupby("study", sort=True)["event"].agg(["sum", "count"])
        pooled = pool_proportions(counts["sum"], counts["count"], method=method,
                                  labels=list(counts.index))
        reason = pooling_refusal(pooled, method)
        if reason is None:
            result.pooled[code] = pooled
        else:
            result.not_pooled[code] = reason
    for grouping_id in outcome.groupings:
        grouping = groupings[grouping_id]
        group = assign_groups(rows, grouping)
        grouped = group.notna()
        result.ungrouped[grouping_id] = int((~grouped).sum())
        if grouped.any():
            result.by_grouping[grouping_id] = estimator().fit(
                values[grouped].reset_index(drop=True), group[grouped].reset_index(drop=True),
                {item.id: item.label for item in grouping.groups})
    return result
