"""Speed of the analysis: GLMM pooling of 1,000 studies (goal < 1 s) and the whole
`review analyze` on 10,000 generated patients (goal < 5 s). Prints the figures."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.pooling import pool_proportions
from analysis.review_analysis import analyze_review, write_analysis
from review.extraction.sheet import read_cases
from review.protocol import load_protocol

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = ROOT / "protocols" / "hcc-bone-metastasis.yaml"
CASES = ROOT / "data" / "extraction" / "cases.csv"


def timed(action, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def generated_studies(k: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Study sizes from 1 to 60 and true logits from N(-0.5, 0.8²)."""
    rng = np.random.default_rng(seed)
    totals = rng.integers(1, 61, size=k)
    events = rng.binomial(totals, 1 / (1 + np.exp(-rng.normal(-0.5, 0.8, size=k))))
    return events, totals


def generated_patients(n: int, seed: int = 2) -> pd.DataFrame:
    """Patients resampled from the shipped sheet into studies of 1 to 20 patients."""
    rng = np.random.default_rng(seed)
    shipped = read_cases(CASES, load_protocol(PROTOCOL).extraction)
    rows = shipped.iloc[rng.integers(0, len(shipped), size=n)].reset_index(drop=True)
    sizes = []
    while sum(sizes) < n:
        sizes.append(int(rng.integers(1, 21)))
    study = np.repeat(np.arange(len(sizes)), sizes)[:n]
    rows["study_id"] = [f"gen{s}_2020" for s in study]
    rows["case_id"] = [f"gen{s}_2020_{i}" for i, s in enumerate(study)]
    for column in ("source_title", "source_url", "doi", "pmid", "pub_year"):
        first = rows.groupby("study_id")[column].transform("first")
        rows[column] = first
    return rows


def main() -> None:
    events, totals = generated_studies(1000)
    glmm = timed(lambda: pool_proportions(events, totals, method="glmm"), 5)
    result = pool_proportions(events, totals, method="glmm")
    print(f"pool_proportions GLMM, k = 1000: median {statistics.median(glmm):.3f} s over 5 runs "
          f"(goal < 1 s); estimate {result.estimate:.4f}, tau² {result.tau2:.4f}")

    protocol = load_protocol(PROTOCOL)
    patients = generated_patients(10_000)
    with tempfile.TemporaryDirectory() as scratch:
        def analyze() -> None:
            write_analysis(analyze_review(patients, protocol), Path(scratch))

        whole = timed(analyze, 3)
    print(f"review analyze, 10,000 patients in {patients['study_id'].nunique()} studies: "
          f"median {statistics.median(whole):.2f} s over 3 runs (goal < 5 s)")


if __name__ == "__main__":
    main()
