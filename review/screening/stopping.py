"""When prioritised screening may stop: the hypergeometric test of Callaghan and Müller-Hansen
(2020, "Statistical stopping criteria for automated screening in systematic reviews",
Systematic Reviews 9:273), as in their buscarpy.

The records screened last are treated as a random sample (an "urn") of themselves and every
record not yet screened. Under the null hypothesis that recall is still below the target, the
urn plus the unscreened records hold at least `ceil(found / target) - found_before_urn`
includes; the test asks how likely so few includes in the urn would then be. Screening may
stop when that is unlikely for some urn (p below 1 - confidence). With records ranked by
likely inclusion, the unscreened ones hold fewer includes than a random sample would, so the
test errs on the safe side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from review.protocol import StoppingRule


def h0_p_value(labels: Sequence[int], total: int, recall_target: float) -> float:
    """The smallest p, over every urn of the last 1, 2, ... screened records, of seeing as
    few includes in it as were seen if recall were below `recall_target`; `labels` are the
    screened records' 1 (include) / 0 in the order they were screened, of `total` records."""
    from scipy.stats import hypergeom

    seen = np.asarray(labels, dtype=np.int64)
    if len(seen) == 0:
        return 1.0
    if len(seen) > total:
        raise ValueError(f"{len(seen)} records screened of {total}")
    found = int(seen.sum())
    in_urn = seen[::-1].cumsum()
    urn_sizes = np.arange(1, len(seen) + 1)
    population = total - (len(seen) - urn_sizes)
    # The fewest includes the urn and the unscreened records must hold under the null.
    needed = np.floor(found / recall_target + 1 - (found - in_urn)).astype(np.int64)
    possible = needed <= population
    p = np.zeros(len(seen))
    p[possible] = hypergeom.cdf(in_urn[possible], population[possible], needed[possible],
                                urn_sizes[possible])
    return float(p.min())


@dataclass(frozen=True)
class StoppingVerdict:
    """The stopping rule's verdict after `screened` of `total` records.

    `recall_bound` is the highest recall that the screened records show with the rule's
    confidence (the same test, solved for the target); 0 when they show none."""

    stop: bool
    p_value: float
    recall_target: float
    confidence: float
    screened: int
    included: int
    total: int
    recall_bound: float

    @property
    def remaining(self) -> int:
        return self.total - self.screened

    def sentence(self) -> str:
        target, confidence = _percent(self.recall_target), _percent(self.confidence)
        if self.stop:
            return (f"may stop: recall of at least {target} is shown with {confidence} "
                    f"confidence (p = {self.p_value:.3f}); {self.remaining} records would "
                    "remain unscreened and must be reported as such")
        bound = (f"recall is at least {_percent(self.recall_bound)} with {confidence} "
                 "confidence" if self.recall_bound > 0 else "no recall is shown yet")
        return (f"keep screening: {bound}, short of the {target} target "
                f"(p = {self.p_value:.3f})")

    def to_dict(self) -> dict[str, object]:
        return {"stop": self.stop, "p_value": round(self.p_value, 6),
                "recall_target": self.recall_target, "confidence": self.confidence,
                "screened": self.screened, "included": self.included,
                "remaining": self.remaining, "total": self.total,
                "recall_bound": round(self.recall_bound, 4),
                "rule": "hypergeometric test (Callaghan & Müller-Hansen 2020)"}


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def recall_bound(labels: Sequence[int], total: int, confidence: float) -> float:
    """The highest recall target, in tenths of a percentage point, that the test accepts at
    `confidence`; p grows with the target, so a binary search finds it."""
    alpha = 1 - confidence

    def shown(permille: int) -> bool:
        return h0_p_value(labels, total, permille / 1000) < alpha

    if not shown(1):
        return 0.0
    low, high = 1, 999  # shown(low) holds; find the last permille that is shown
    if shown(high):
        return high / 1000
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if shown(middle) else (low, middle)
    return low / 1000


def stopping_verdict(labels: Sequence[int], total: int, rule: StoppingRule) -> StoppingVerdict:
    """Whether screening may stop after the `labels` screened (in order) of `total` records.

    Example::

        stopping_verdict([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], 20,
                         StoppingRule(recall_target=0.5, confidence=0.95)).stop
    """
    p = h0_p_value(labels, total, rule.recall_target)
    return StoppingVerdict(
        stop=p < 1 - rule.confidence, p_value=p, recall_target=rule.recall_target,
        confidence=rule.confidence, screened=len(labels), included=int(sum(labels)),
        total=total, recall_bound=recall_bound(labels, total, rule.confidence))
