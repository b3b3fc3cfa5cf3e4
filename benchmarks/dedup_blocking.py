"""How de-duplication's candidate pairs grow with the records, on the generated records of
`dedup_speed.py`, beside the anchor measured before the author blocks were windowed (issue
20: 1,830 pairs at 2,000 records, 10.8 million at 200,000, growing with exponent 1.96), and
the exponent from 50,000 to 200,000 against issue 20's goal (≤ 1.3).

    .venv/bin/python benchmarks/dedup_blocking.py [SIZES...]
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dedup_speed import generate

from review.screening.dedup import pair_codes, profile

ANCHOR = {2_000: 1_830, 200_000: 10_756_079}


def main(sizes: list[int]) -> None:
    measured = {}
    for size in sizes:
        records, _ = generate(size)
        profiles = [profile(record) for record in records]
        start = time.perf_counter()
        measured[size] = len(pair_codes(profiles))
        anchor = f"; anchor {ANCHOR[size]:,}" if size in ANCHOR else ""
        print(f"{size:>9,} records: {measured[size]:>12,} candidate pairs in "
              f"{time.perf_counter() - start:.1f} s{anchor}", flush=True)
    sizes = sorted(measured)
    for smaller, larger in itertools.pairwise(sizes):
        growth = math.log(measured[larger] / measured[smaller]) / math.log(larger / smaller)
        goal = " (goal ≤ 1.3)" if (smaller, larger) == (50_000, 200_000) else ""
        print(f"growth exponent {smaller:,} to {larger:,}: {growth:.2f}{goal}; anchor 1.96 "
              "from 2,000 to 200,000; 1 is linear")


if __name__ == "__main__":
    main([int(size) for size in sys.argv[1:]] or [2_000, 50_000, 200_000])
