"""Replaying a labelled review as a reviewer who always answers truthfully, the way the field
validates prioritised screening (ASReview's simulation mode), with the stopping rule watched
after every decision.

Figures: WSS@r (work saved over random screening at recall r: the share of records left
unscreened when r of the includes are found, minus 1 - r; Cohen et al. 2006), RRF@10 (recall
after 10% of the records), recall after 10/25/50% screened, and where the stopping rule first
says stop with the recall reached there. The prior records count as screened.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from review.errors import ReviewError, one_line
from review.protocol import Prioritisation, StoppingRule
from review.screening.ranking import TextFeatures, random_order, rank_records, record_text
from review.screening.stopping import h0_p_value

RECALL_POINTS = (10, 25, 50)


@dataclass(frozen=True)
class LabelledSet:
    """A labelled review: each record's text and its 0/1 label."""

    source: str
    texts: tuple[str, ...]
    labels: tuple[int, ...]

    @property
    def included(self) -> int:
        return sum(self.labels)


TABLES = (".csv", ".tsv", ".tab", ".xlsx", ".xlsm")
ASREVIEW_LABELS = {"relevant": 1, "irrelevant": 0}


def read_labelled(path: str | os.PathLike, label_column: str = "label_included",
                  drop_missing_abstracts: bool = False) -> LabelledSet:
    """A labelled set from CSV, TSV or XLSX with `title`, `abstract` (either may be missing,
    not both) and a 0/1 label column, or from an RIS export labelled by ASReview LAB (its
    N1 notes ASReview_relevant and ASReview_irrelevant); every problem named with the file,
    row and column."""
    source = str(path)
    suffix = Path(source).suffix.lower()
    if suffix not in TABLES:
        return _labelled_export(Path(source), drop_missing_abstracts)
    try:
        if suffix in (".xlsx", ".xlsm"):
            frame = pd.read_excel(source, dtype=str).fillna("")
        else:
            frame = pd.read_csv(source, dtype=str, keep_default_na=False,
                                sep="\t" if suffix in (".tsv", ".tab") else ",")
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise ReviewError(f"{source}: not a readable labelled table ({one_line(error)})") from None
    columns = {name.strip().lower(): name for name in frame.columns}
    if label_column.lower() not in columns:
        raise ReviewError(f"{source}: no label column '{label_column}' (columns: "
                          f"{', '.join(frame.columns[:12])}); name it with --label-column")
    label_name = columns[label_column.lower()]
    text_columns = [columns[name] for name in ("title", "abstract") if name in columns]
    if not text_columns:
        raise ReviewError(f"{source}: no 'title' or 'abstract' column to learn from")
    labels = []
    for row, value in enumerate(frame[label_name], start=2):
        value = value.strip()
        if value not in ("0", "1", "0.0", "1.0"):
            raise ReviewError(f"{source}:{row}:{label_name}: '{value}' is not a label "
                              "(0 or 1)")
        labels.append(int(float(value)))
    frame = frame.assign(_label=labels)
    if drop_missing_abstracts:
        if "abstract" not in columns:
            raise ReviewError(f"{source}: no 'abstract' column, so none can be dropped")
        frame = frame[frame[columns["abstract"]].str.strip() != ""]
    texts = frame[text_columns].agg(" ".join, axis=1).str.strip()
    if not texts.str.len().any():
        raise ReviewError(f"{source}: {', '.join(text_columns)}: every record is blank")
    return _with_both_labels(LabelledSet(source, tuple(texts),
                                         tuple(int(v) for v in frame["_label"])),
                             f"{label_name}: ", "labelled 1")


def _with_both_labels(labelled: LabelledSet, where: str, include: str) -> LabelledSet:
    """The set, once it is known to hold includes and excludes both (`include` names how an
    include is labelled, `where` the column it is in)."""
    if labelled.included == 0:
        raise ReviewError(f"{labelled.source}: {where}no record is {include} (included)")
    if labelled.included == len(labelled.labels):
        raise ReviewError(f"{labelled.source}: {where}every record is {include}; there is "
                          "nothing to rank")
    return labelled


def _labelled_export(path: Path, drop_missing_abstracts: bool) -> LabelledSet:
    """The records of any export `review import` reads, each labelled by ASReview's note."""
    from review.search.readers import NAMES, read_export

    export = read_export(path, "simulation")
    if export.format != "ris":
        raise ReviewError(f"{path}: a {NAMES[export.format]} file carries no labels; give a "
                          "CSV, TSV or XLSX with a label column, or an RIS export labelled by "
                          "ASReview LAB (N1 notes ASReview_relevant / ASReview_irrelevant)")
    texts, labels = [], []
    for record in export.records:
        label = record.extra.get("asreview_label", "")
        if label not in ASREVIEW_LABELS:
            raise ReviewError(f"{path}: record {record.position} ('{record.title[:60]}'): "
                              f"{'not seen by' if label else 'no label from'} ASReview "
                              "(an N1 note ASReview_relevant or ASReview_irrelevant); a "
                              "simulation needs every record labelled")
        if drop_missing_abstracts and not record.abstract:
            continue
        texts.append(record_text(record))  # what the model reads of an imported record
        labels.append(ASREVIEW_LABELS[label])
    return _with_both_labels(LabelledSet(str(path), tuple(texts), tuple(labels)), "",
                             "labelled ASReview_relevant")


@dataclass(frozen=True)
class SimulationResult:
    """One simulated screening of a labelled set."""

    records: int
    included: int
    seed: int
    wss95: float
    wss100: float
    rrf10: float
    recall_at: dict[int, float]
    stop_screened: int
    stop_recall: float
    seconds_per_retrain: float
    seconds: float
    order: tuple[int, ...] = field(repr=False)

    @property
    def stop_saving(self) -> float:
        """The share of records the stopping rule left unscreened."""
        return 1 - self.stop_screened / self.records

    def to_dict(self) -> dict[str, object]:
        return {"records": self.records, "included": self.included, "seed": self.seed,
                "wss95": round(self.wss95, 4), "wss100": round(self.wss100, 4),
                "rrf10": round(self.rrf10, 4),
                "recall_at": {str(k): round(v, 4) for k, v in self.recall_at.items()},
                "stop": {"screened": self.stop_screened, "recall": round(self.stop_recall, 4)},
                "seconds_per_retrain": round(self.seconds_per_retrain, 5),
                "seconds": round(self.seconds, 3)}


def _figures(labels: np.ndarray, order: list[int]) -> tuple[float, float, float, dict]:
    found = np.cumsum(labels[order])
    total, included = len(order), int(labels.sum())

    def wss(recall: float) -> float:
        screened = int(np.searchsorted(found, math.ceil(recall * included))) + 1
        return (total - screened) / total - (1 - recall)

    def recall_after(percent: int) -> float:
        screened = max(1, math.floor(total * percent / 100))
        return float(found[screened - 1]) / included

    return (float(wss(0.95)), float(wss(1.0)), recall_after(10),
            {percent: recall_after(percent) for percent in RECALL_POINTS})


def simulate(labelled: LabelledSet, settings: Prioritisation | None = None,
             rule: StoppingRule | None = None, seed: int = 0, prior_included: int = 1,
             prior_excluded: int = 1, features: TextFeatures | None = None
             ) -> SimulationResult:
    """Screen the set in the model's order, retraining after each decision for the first 100
    and then after every 1% more of the screened records (as background retraining lets a
    reviewer run ahead of the model); the priors are drawn at random with `seed`."""
    started = time.perf_counter()
    labels = np.array(labelled.labels)
    size = len(labels)
    if prior_included > labelled.included or prior_excluded > size - labelled.included:
        raise ReviewError(f"{labelled.source}: cannot draw {prior_included} included and "
                          f"{prior_excluded} excluded prior records from "
                          f"{labelled.included} included of {size}")
    features = features or TextFeatures(labelled.texts)
    rule = rule or StoppingRule()
    model = (settings or Prioritisation()).model
    settings = Prioritisation(order="prioritised", model=model, seed=seed)
    generator = np.random.default_rng(seed)
    order = [int(i) for i in generator.choice(np.flatnonzero(labels == 1), prior_included,
                                              replace=False)]
    order += [int(i) for i in generator.choice(np.flatnonzero(labels == 0), prior_excluded,
                                               replace=False)]
    known = {i: int(labels[i]) for i in order}
    stop_screened, retrains, training = size, 0, 0.0
    while len(order) < size:
        tick = time.perf_counter()
        ranking = rank_records(features, known, settings)
        training += time.perf_counter() - tick
        retrains += 1
        batch = 1 if len(order) < 100 else max(1, len(order) // 100)
        for index in ranking.order[:batch]:
            order.append(index)
            known[index] = int(labels[index])
            if stop_screened == size and h0_p_value(labels[order], size,
                                                    rule.recall_target) < 1 - rule.confidence:
                stop_screened = len(order)
    wss95, wss100, rrf10, recall_at = _figures(labels, order)
    return SimulationResult(
        records=size, included=int(labels.sum()), seed=seed, wss95=wss95, wss100=wss100,
        rrf10=rrf10, recall_at=recall_at, stop_screened=int(stop_screened),
        stop_recall=float(labels[order[:stop_screened]].sum() / labels.sum()),
        seconds_per_retrain=training / max(retrains, 1),
        seconds=time.perf_counter() - started, order=tuple(order))


def random_screening(labelled: LabelledSet, seed: int = 0) -> tuple[float, float]:
    """WSS@95 and RRF@10 of screening in a random order, the baseline."""
    labels = np.array(labelled.labels)
    wss95, _, rrf10, _ = _figures(labels, [int(i) for i in random_order(len(labels), seed)])
    return wss95, rrf10


def summarise(results: list[SimulationResult], recall_target: float) -> dict[str, object]:
    """Means (and per-seed lists) of several seeds' simulations, for --json."""
    def mean(values: list[float]) -> float:
        return round(statistics.fmean(values), 4)

    def spread(values: list[float]) -> float:
        return round(statistics.stdev(values), 4) if len(values) > 1 else 0.0

    first = results[0]
    return {
        "records": first.records, "included": first.included,
        "seeds": [r.seed for r in results],
        "wss95": mean([r.wss95 for r in results]), "wss95_sd": spread([r.wss95 for r in results]),
        "wss100": mean([r.wss100 for r in results]),
        "rrf10": mean([r.rrf10 for r in results]), "rrf10_sd": spread([r.rrf10 for r in results]),
        "recall_at": {str(k): mean([r.recall_at[k] for r in results]) for k in RECALL_POINTS},
        "stop": {"screened": mean([r.stop_screened for r in results]),
                 "recall": mean([r.stop_recall for r in results]),
                 "runs_reaching_target": sum(r.stop_recall >= recall_target for r in results)},
        "seconds": mean([r.seconds for r in results]),
        "seconds_per_retrain": mean([r.seconds_per_retrain for r in results]),
        "per_seed": [r.to_dict() for r in results],
    }
