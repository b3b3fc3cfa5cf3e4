"""De-duplication on real labelled exports, against bib-dedupe in the same run.

For every set in tests/fixtures/dedup/labelled/ (real database exports with every duplicate
group labelled by hand; see its README) this prints records, true works, pairwise precision
and recall, works wrongly merged, duplicates left, the review-queue size and the time, for
`review`'s de-duplication and, when a Python with bib-dedupe is given, for bib-dedupe.
Goals: precision ≥ 0.999 and recall ≥ 0.99 on every set, at least as accurate as bib-dedupe
and at least 10× faster.

bib-dedupe is not a dependency of the project: install it in an environment of its own,

    python3 -m venv /tmp/bib-dedupe && /tmp/bib-dedupe/bin/pip install bib-dedupe

and pass `--bib-dedupe /tmp/bib-dedupe/bin/python` (or set BIB_DEDUPE_PYTHON).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from review.screening.dedup import deduplicate  # noqa: E402
from review.search.readers import read_export  # noqa: E402

SETS = ROOT / "tests" / "fixtures" / "dedup" / "labelled"
# Run in bib-dedupe's own environment: its documented pipeline, timed from prep to clusters.
BIB_DEDUPE = textwrap.dedent("""
    import json, sys, time
    import pandas as pd
    from bib_dedupe.bib_dedupe import block, match, prep
    from bib_dedupe.cluster import get_connected_components
    from bib_dedupe.constants.fields import DUPLICATE_LABEL
    records = pd.read_csv(sys.argv[1], dtype=str).fillna("")
    start = time.perf_counter()
    matched = match(block(prep(records, verbosity_level=0), verbosity_level=0),
                    verbosity_level=0)
    groups = get_connected_components(matched)
    seconds = time.perf_counter() - start
    maybe = int((matched[DUPLICATE_LABEL] == "maybe").sum()) if len(matched) else 0
    print(json.dumps({"groups": [list(map(str, g)) for g in groups], "maybe": maybe,
                      "seconds": seconds}))
""")


@dataclass(frozen=True)
class Score:
    tool: str
    records: int
    works: int
    precision: float
    recall: float
    wrongly_merged: int
    duplicates_left: int
    queue: int
    seconds: float


def pairs(groups: Iterable[Iterable[str]]) -> set[frozenset[str]]:
    return {frozenset(pair) for group in groups
            for pair in itertools.combinations(sorted(set(group)), 2)}


def true_groups(folder: Path) -> list[list[str]]:
    lines = (folder / "merged_record_ids.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.strip().strip('"').split(";") for line in lines if line.strip()]


def score(tool: str, ids: list[str], truth: list[list[str]], found: list[list[str]],
          queue: int, seconds: float) -> Score:
    work_of = {record: index for index, group in enumerate(truth) for record in group}
    for record in ids:
        work_of.setdefault(record, len(work_of) + len(ids))
    expected, detected = pairs(truth), pairs(found)
    cluster_of = {record: index for index, group in enumerate(found) for record in group}
    wrongly_merged = sum(len({work_of[record] for record in group}) > 1 for group in found)
    # A duplicate is left when a true work's records end in more than one cluster.
    left = 0
    for group in truth:
        clusters = Counter(cluster_of.get(record, f"alone:{record}") for record in group)
        left += len(clusters) - 1
    return Score(tool, len(ids), len(set(work_of.values())),
                 len(detected & expected) / len(detected) if detected else 1.0,
                 len(detected & expected) / len(expected) if expected else 1.0,
                 wrongly_merged, left, queue, seconds)


def run_review(folder: Path) -> Score:
    records = read_export(folder / "records.csv", folder.name).records
    start = time.perf_counter()
    result = deduplicate(records)
    seconds = time.perf_counter() - start
    export_id = {record.record_id: record.export_id for record in records}
    found = [[export_id[member] for member in cluster.members] for cluster in result.clusters]
    return score("review", [record.export_id for record in records], true_groups(folder),
                 found, len(result.uncertain), seconds)


def run_bib_dedupe(python: str, folder: Path) -> Score:
    completed = subprocess.run([python, "-c", BIB_DEDUPE, str(folder / "records.csv")],
                               capture_output=True, text=True, check=True)
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    ids = [record.export_id for record in
           read_export(folder / "records.csv", folder.name).records]
    return score("bib-dedupe", ids, true_groups(folder), answer["groups"], answer["maybe"],
                 answer["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bib-dedupe", default=os.environ.get("BIB_DEDUPE_PYTHON"),
                        metavar="PYTHON", help="a Python interpreter with bib-dedupe installed")
    parser.add_argument("--set", action="append", help="only these sets")
    args = parser.parse_args()
    folders = sorted(path for path in SETS.iterdir() if path.is_dir()
                     and (not args.set or path.name in args.set))
    print(f"{'set':<20} {'tool':<11} {'records':>7} {'works':>6} {'precision':>9} "
          f"{'recall':>7} {'wrongly merged':>14} {'dups left':>9} {'queue':>6} {'seconds':>8}")
    for folder in folders:
        rows = [run_review(folder)]
        if args.bib_dedupe:
            rows.append(run_bib_dedupe(args.bib_dedupe, folder))
        for row in rows:
            print(f"{folder.name:<20} {row.tool:<11} {row.records:>7,} {row.works:>6,} "
                  f"{row.precision:>9.4f} {row.recall:>7.4f} {row.wrongly_merged:>14} "
                  f"{row.duplicates_left:>9} {row.queue:>6} {row.seconds:>8.2f}")
        if len(rows) == 2:
            print(f"{'':<20} speed-up {rows[1].seconds / rows[0].seconds:.1f}× "
                  "(goal ≥ 10×)")
    if not args.bib_dedupe:
        print("bib-dedupe not run: pass --bib-dedupe PYTHON (see this file's docstring)")


if __name__ == "__main__":
    main()
