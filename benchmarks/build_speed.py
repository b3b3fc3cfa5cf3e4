"""Speed of `review build` on the HCC review: a cold build against the floor of merely
importing its libraries (goal: within 2×), and a no-op build (goal: < 0.5 s). Each figure is
the median of several runs of a fresh process, as a user would start it."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = ("import pandas, numpy, scipy.stats, statsmodels.api, lifelines, matplotlib.figure, "
           "openpyxl, yaml")


def seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    floor = seconds([sys.executable, "-c", IMPORTS], 5)
    with tempfile.TemporaryDirectory() as scratch:
        out = str(Path(scratch) / "report")
        build = [sys.executable, "-m", "review", "build", "--quiet", "--out", out]
        cold = seconds([*build, "--force"], 3)
        noop = seconds(build, 5)
    print(f"import floor (pandas, statsmodels, lifelines, matplotlib, ...): {floor:.2f} s")
    print(f"cold build: {cold:.2f} s = {cold / floor:.2f} × the import floor (goal ≤ 2×)")
    print(f"no-op build: {noop:.3f} s (goal < 0.5 s)")


if __name__ == "__main__":
    main()
