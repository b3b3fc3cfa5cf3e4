"""Prioritised screening: the undecided records ordered by what a reviewer has decided.

A TF-IDF of each record's title, abstract, keywords and MeSH terms (words and word pairs found
in at least two records, sublinear term frequency, stop words kept: "effect of" and "nudge the"
carry meaning in a title) is built once per set of records; a classifier learns from the
reviewer's own decisions and the adjudicated ones, never from another reviewer's votes, and
scores the rest. The
default, multinomial naive Bayes with class-balanced weights, is ASReview's choice of model;
its features here (word pairs, stop words kept, smoothing 1) were chosen by simulation on the
labelled sets (benchmarks/screening_prioritisation.py). At each retrain it also learns from
100 records drawn at random from those not yet screened, taken as excludes for that fit only,
as Cormack and Grossman's baseline model implementation (BMI) does: most unscreened records
are excludes, and a few decisions alone describe the excludes poorly. Three such draws are
fitted and their log odds averaged, so the order does not hang on the luck of one draw. On
the eight labelled sets (5 seeds) this raised WSS@95 on seven (Nudging 73.0% → 74.6%,
AtypicalAntipsychotics 28.7% → 33.3%, CalciumChannelBlockers 40.3% → 43.7%) and lowered it
on Antihistamines (6.6% → 5.9%, 16 includes in 277). Before there is one include and one
exclude to learn from, the order is a random one fixed by the protocol's seed.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from review.protocol import Prioritisation, Protocol
from review.screening.decisions import (
    DecisionStore,
    final_decisions,
    outcome_of,
    own_decisions,
)
from review.screening.stopping import StoppingVerdict, stopping_verdict

if TYPE_CHECKING:
    from scipy.sparse import spmatrix

    from review.search.records import Record

MODEL_LABELS = {
    "naive_bayes": "multinomial naive Bayes (smoothing 1) with class-balanced weights, with "
                   "100 unscreened records drawn at random taken as excludes at each retrain "
                   "(the mean of three such fits)",
    "svm": "a linear support vector machine (C 0.3) with class-balanced weights",
    "logistic": "logistic regression (C 10) with class-balanced weights",
}
FEATURES = ("TF-IDF of title, abstract, keywords and MeSH terms (words and word pairs in at "
            "least two records, sublinear term frequency)")
MIN_DF_RECORDS = 20
# What of a record its features are built from, with its id.
RECORD_TEXT_FIELDS = operator.attrgetter("record_id", "title", "abstract", "keywords",
                                         "mesh_terms")
PROVISIONAL_EXCLUDES = 100
PROVISIONAL_DRAWS = 3


def record_text(record: Record) -> str:
    """What the model reads of a record."""
    return " ".join((record.title, record.abstract, " ".join(record.keywords),
                     " ".join(record.mesh_terms)))


class TextFeatures:
    """The TF-IDF matrix of a fixed list of texts, built once and reused for every retrain.

    Example::

        features = TextFeatures(["a trial of nudges", "a case of gout", ...])
        ranking = rank_records(features, {0: 1, 1: 0}, Prioritisation())
    """

    def __init__(self, texts: Sequence[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.size = len(texts)
        self.key = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()
        # A term of one record only cannot carry a decision over to another record; in a
        # handful of records every term may be such, so there they all count.
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32,
                                     min_df=2 if len(texts) >= MIN_DF_RECORDS else 1)
        try:
            self.matrix: spmatrix = vectorizer.fit_transform(texts)
        except ValueError:  # every text empty: nothing to learn from, the order stays random
            self.matrix = None


@dataclass(frozen=True)
class Ranking:
    """The undecided records in the order to screen them (indices into the records).

    `method` is "model" when a classifier ordered them, else "random"; `reason` says why a
    random order was used (the cold start)."""

    order: tuple[int, ...]
    method: str
    reason: str = ""

    @property
    def describe(self) -> str:
        if self.method == "model":
            return "ranked by the model, most likely include first"
        return f"random order (seeded): {self.reason}"


def _classifier(model: str, seed: int) -> Any:
    """A scikit-learn classifier, unfitted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.svm import LinearSVC

    if model == "svm":
        return LinearSVC(C=0.3, class_weight="balanced", random_state=seed)
    if model == "logistic":
        return LogisticRegression(C=10, class_weight="balanced", solver="liblinear",
                                  random_state=seed)
    return MultinomialNB(alpha=1.0)


def _scores(features: TextFeatures, labelled: np.ndarray, labels: np.ndarray,
            settings: Prioritisation) -> np.ndarray:
    if settings.model == "naive_bayes":
        return _naive_bayes_scores(features, labelled, labels, settings.seed)
    classifier = _classifier(settings.model, settings.seed)
    classifier.fit(features.matrix[labelled], labels)
    return classifier.decision_function(features.matrix)


def _naive_bayes_scores(features: TextFeatures, labelled: np.ndarray, labels: np.ndarray,
                        seed: int) -> np.ndarray:
    """Each record's log odds of inclusion, averaged over naive Bayes models fitted with
    `PROVISIONAL_DRAWS` draws of provisional excludes, so the order does not hang on the luck
    of one draw. A naive Bayes model's log odds are linear in the features, so the average is
    one linear model, applied once."""
    weights_of_terms = np.zeros(features.matrix.shape[1])
    intercept = 0.0
    unlabelled = np.ones(features.size, dtype=bool)
    unlabelled[labelled] = False
    unlabelled = np.flatnonzero(unlabelled)
    for draw in range(PROVISIONAL_DRAWS):
        rows, targets = _with_provisional_excludes(unlabelled, labelled, labels, seed, draw)
        # Class-balanced: the few includes weigh as much as the many excludes.
        includes = targets.sum()
        sample_weight = np.where(targets == 1, (len(targets) - includes) / includes, 1.0)
        model = _classifier("naive_bayes", seed).fit(features.matrix[rows], targets,
                                                     sample_weight=sample_weight)
        weights_of_terms += model.feature_log_prob_[1] - model.feature_log_prob_[0]
        intercept += model.class_log_prior_[1] - model.class_log_prior_[0]
    return (features.matrix @ weights_of_terms + intercept) / PROVISIONAL_DRAWS


def _with_provisional_excludes(unlabelled: np.ndarray, labelled: np.ndarray,
                               labels: np.ndarray, seed: int, draw: int
                               ) -> tuple[np.ndarray, np.ndarray]:
    """The labelled records and their labels, plus records of `unlabelled` (ascending) drawn
    at random (seeded by the seed, how many are labelled and the draw's number, so the same
    decisions give the same draws) and labelled 0. At most half of the unlabelled records
    are drawn: in a small set, taking all of them as excludes would leave the model nothing
    to tell apart."""
    count = min(PROVISIONAL_EXCLUDES, len(unlabelled) // 2)
    if count == 0:
        return labelled, labels
    drawn = np.random.default_rng([seed, len(labelled), draw]).choice(
        unlabelled, count, replace=False)
    return (np.concatenate([labelled, drawn]),
            np.concatenate([labels, np.zeros(count, dtype=labels.dtype)]))


def random_order(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(size)


def rank_records(features: TextFeatures, labels: Mapping[int, int],
                 settings: Prioritisation, pending: Sequence[int] | None = None) -> Ranking:
    """The `pending` records (default: those without a label), most likely include first;
    `labels` maps a record's index to 1 (include) or 0 (exclude). Ties keep the seeded random
    order, so the same labels and seed give the same order."""
    unlabelled_mask = np.zeros(features.size, dtype=bool)
    if pending is None:
        unlabelled_mask[:] = True
        unlabelled_mask[list(labels)] = False
    else:
        unlabelled_mask[list(pending)] = True
    tie_order = random_order(features.size, settings.seed)
    values = set(labels.values())
    if settings.order == "random" or values != {0, 1} or features.matrix is None:
        reason = ("the protocol asks for a random order" if settings.order == "random" else
                  "the records have no text to learn from" if features.matrix is None else
                  "no decision yet" if not labels else
                  "only includes so far" if values == {1} else "only excludes so far")
        return Ranking(tuple(int(i) for i in tie_order if unlabelled_mask[i]), "random",
                       reason)
    labelled = np.fromiter(labels, dtype=np.int64)
    scores = _scores(features, labelled, np.array([labels[i] for i in labelled]), settings)
    candidates = tie_order[unlabelled_mask[tie_order]]
    ranked = candidates[np.argsort(-scores[candidates], kind="stable")]
    return Ranking(tuple(int(i) for i in ranked), "model")


def reviewer_labels(store: DecisionStore, stage: str, reviewer: str) -> dict[str, int]:
    """record → 1 (include) or 0 (exclude) from what this reviewer may learn from: their own
    latest decisions and the adjudicated final decisions, never another reviewer's votes."""
    labels = {record: int(outcome_of(decision.decision, stage) == "include")
              for record, decision in own_decisions(store, stage, reviewer).items()
              if decision.decision in ("include", "exclude", "maybe")}
    for record, final in final_decisions(store.read(stage)).items():
        if final.adjudicated and final.decision in ("include", "exclude"):
            labels[record] = int(final.decision == "include")
    return labels


def screening_order(records: Sequence[Record], decided: Sequence[str],
                    labels: Mapping[str, int], settings: Prioritisation, stage: str,
                    features: TextFeatures | None) -> tuple[list[Record], Ranking | None]:
    """The stage's records as a reviewer meets them: the ones they decided first (in the
    order they decided them), then the rest in the protocol's order. Full text, and the
    `file` order, keep record order; `features` must be of these records."""
    by_id = {record.record_id: index for index, record in enumerate(records)}
    done = [by_id[record] for record in decided if record in by_id]
    if stage != "title-abstract" or settings.order == "file" or features is None:
        seen = set(done)
        return ([records[i] for i in done]
                + [record for i, record in enumerate(records) if i not in seen]), None
    known = {by_id[record]: label for record, label in labels.items() if record in by_id}
    seen = set(done)
    ranking = rank_records(features, known, settings,
                           pending=[i for i in range(len(records)) if i not in seen])
    return [records[i] for i in done] + [records[i] for i in ranking.order], ranking


@dataclass(frozen=True)
class Queue:
    """One reviewer's records at one stage: the `decided` ones first, then the rest in the
    order to screen them; with the labels of their own inclusions and exclusions in the order
    made (what the stopping rule reads)."""

    records: list[Record]
    ranking: Ranking | None
    own_labels: list[int]
    decided: int

    @property
    def includes(self) -> int:
        return sum(self.own_labels)

    @property
    def order_note(self) -> str:
        return self.ranking.describe if self.ranking else "record order"


class Prioritiser:
    """Orders a stage's records for a reviewer, building the text features once per set of
    records (the slow part) and retraining only the classifier on each call."""

    def __init__(self) -> None:
        self._features: tuple[int, TextFeatures] | None = None
        # (stage, reviewer) → what the last queue was made from, and the queue
        self._queues: dict[tuple[str, str], tuple[tuple, Queue]] = {}

    def features(self, records: Sequence[Record]) -> TextFeatures:
        # In-process only, so Python's hash (its strings' hashes are kept) is key enough;
        # attrgetter makes the tuples without a Python call per record.
        key = hash(tuple(map(RECORD_TEXT_FIELDS, records)))
        if self._features is None or self._features[0] != key:
            self._features = (key, TextFeatures([record_text(record) for record in records]))
        return self._features[1]

    def queue(self, records: Sequence[Record], store: DecisionStore, stage: str,
              reviewer: str, settings: Prioritisation) -> Queue:
        mine = own_decisions(store, stage, reviewer)
        labels = reviewer_labels(store, stage, reviewer)
        ranked = stage == "title-abstract" and settings.order != "file"
        features = self.features(records) if ranked else None
        made_from = (features.key if features else tuple(r.record_id for r in records),
                     tuple((record, d.decision) for record, d in mine.items()),
                     tuple(sorted(labels.items())), settings)
        cached = self._queues.get((stage, reviewer))
        if cached is not None and cached[0] == made_from:
            return cached[1]
        ordered, ranking = screening_order(records, list(mine), labels, settings, stage,
                                           features)
        queue = Queue(ordered, ranking,
                      [int(outcome_of(decision.decision, stage) == "include")
                       for decision in mine.values()
                       if decision.decision in ("include", "exclude", "maybe")],
                      decided=len(mine))
        self._queues[(stage, reviewer)] = (made_from, queue)
        return queue


def queue_verdict(queue: Queue, protocol: Protocol) -> StoppingVerdict:
    """The stopping rule on this reviewer's own decisions, in the order they made them."""
    return stopping_verdict(queue.own_labels, len(queue.records), protocol.screening.stopping)


def queue_status(queue: Queue, total: int, protocol: Protocol) -> str:
    """One line for the screener: decided, includes found, the order and the stopping rule."""
    if queue.ranking is None:
        return f"{queue.decided} decided, {queue.includes} included · record order"
    verdict = queue_verdict(queue, protocol)
    return (f"{queue.decided} of {total} decided, {queue.includes} included · "
            f"{queue.order_note} · stopping rule: {verdict.sentence()}")
