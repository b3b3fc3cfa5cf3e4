"""A worked example of the Python API, as an analyst would use it in a notebook.

Run it from the repository root with the project's environment:

    .venv/bin/python docs/worked_example.py [OUTPUT_FOLDER]

It loads the shipped workspace, turns its extraction sheet into analysis-ready columns, fits
the survival and proportion estimators on DataFrames of its own, and saves two figures.
The test suite runs it (tests/test_docs.py), so every line here works.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import pandas as pd

from analysis.pooling import pool_proportions
from analysis.survival import MissingTimeBounds, SurvivalByGroup, kaplan_meier, survival_data
from review.extraction.duplicates import read_decisions, screen_duplicates
from review.extraction.sheet import read_cases, study_table, typed_cases
from review.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


def main(out: Path) -> None:
    # 1. A workspace: its protocol (typed) and its extraction sheet (text cells, as typed).
    workspace = Workspace(ROOT)
    protocol = workspace.protocol
    schema = protocol.extraction
    cases = read_cases(workspace.cases_path, schema)
    print(f"{protocol.title}: {len(cases)} {schema.unit}s "
          f"from {len(study_table(cases, schema))} reports")

    # 2. Analysis-ready columns: numbers as numbers, lists as tuples, blanks as missing.
    typed = typed_cases(cases, schema)
    print(f"median age {typed['age'].median():g} (reported for {typed['age'].notna().sum()})")

    # 3. Survival on a DataFrame of one's own: columns time, event and (optionally) group.
    spec = protocol.analysis.survival
    frame = survival_data(typed, spec).frame
    curve = kaplan_meier(frame["time"], frame["event"])
    median, low, high = curve.median
    upper = "not reached" if math.isnan(high) else f"{high:g}"
    print(f"Kaplan-Meier: n = {curve.n}, {curve.total_events} events, median {median:g} "
          f"{spec.time_unit} (95% CI {low:g} to {upper})")
    mine = pd.DataFrame({"time": [2.0, 3.5, 6.0, 7.0, 9.0, 12.0, 15.0, 20.0],
                         "event": [1, 1, 0, 1, 1, 0, 1, 0],
                         "group": ["a", "b", "a", "b", "a", "b", "a", "b"]})
    by_group = SurvivalByGroup(landmarks=(6.0, 12.0)).fit(mine, reference="a")
    print(by_group.summary()[["label", "n", "events", "median"]].to_string(index=False))
    hazard = by_group.cox.table.iloc[0]
    print(f"Cox (Efron): {hazard.term} HR {hazard.hr:.3f} "
          f"({hazard.ci_low:.3f}-{hazard.ci_high:.3f}), p = {hazard.p_value:.3f}, "
          f"reference {by_group.cox.reference}")
    by_group.plot(title="Two made-up groups").savefig(out / "survival.png", dpi=100)

    # 4. The events without a time, placed at the origin and at chosen times.
    untimed = int(((typed[spec.time_field].isna())
                   & (typed[spec.status_field] == spec.event_value)).sum())
    bounds = MissingTimeBounds(placements=(1, 3, 7)).fit(frame, untimed)
    low_median, high_median = bounds.median_range
    print(f"{untimed} events without a time: medians from {low_median:g} to "
          f"{high_median:g} {spec.time_unit}")

    # 5. A proportion pooled across reports (GLMM, logit or Freeman-Tukey), with its plot.
    pooled = pool_proportions([3, 1, 4, 0, 2], [5, 2, 6, 3, 4], method="logit",
                              tau2_method="REML", labels=["A", "B", "C", "D", "E"])
    print(f"pooled {pooled.estimate:.3f} ({pooled.ci_low:.3f}-{pooled.ci_high:.3f}), "
          f"I² {pooled.i2:.1f}%, {pooled.model}")
    pooled.plot(title="A pooled proportion").savefig(out / "forest.png", dpi=100)

    # 6. Patients who may be reported twice, with the reviewers' decisions.
    screen = screen_duplicates(cases, schema, read_decisions(workspace.duplicate_decisions_path))
    print(f"possible duplicate patients: {len(screen.pairs)} pairs, "
          f"{len(screen.decided(None))} awaiting a decision")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    target.mkdir(parents=True, exist_ok=True)
    main(target)
    print(f"figures in {target}")
