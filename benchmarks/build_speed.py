"""Speed of `review build` on the HCC review: a cold build against the floor of merely
importing its libraries (goal: within 2×), and a no-op build (goal: < 0.5 s). Each figure is
the median of several runs of a fresh process, as a user would start it.

A cold build recomputes every output but, like Python with its .pyc files, reuses the
templates' compiled code from Jinja's cache under the temporary directory; the first build on
a machine, with that cache empty, is timed too (TMPDIR pointed at an empty folder)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = ("import pandas, numpy, scipy.stats, statsmodels.api, lifelines, matplotlib.figure, "
           "openpyxl, yaml")


def seconds(command: list[str], repeats: int, fresh_tmp: bool = False) -> float:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "TMPDIR": tmp} if fresh_tmp else None
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=env)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    floor = seconds([sys.executable, "-c", IMPORTS], 5)
    with tempfile.TemporaryDirectory() as scratch:
        out = str(Path(scratch) / "report")
        build = [sys.executable, "-m", "review", "build", "--quiet", "--out", out]
        first = seconds([*build, "--force"], 3, fresh_tmp=True)
        cold = seconds([*build, "--force"], 3)
        noop = seconds(build, 5)
    print(f"import floor (pandas, statsmodels, lifelines, matplotlib, ...): {floor:.2f} s")
    print(f"cold build: {cold:.2f} s = {cold / floor:.2f} × the import floor (goal ≤ 2×)")
    print(f"first build on a machine (templates compiled too): {first:.2f} s = "
          f"{first / floor:.2f} × the import floor")
    print(f"no-op build: {noop:.3f} s (goal < 0.5 s)")


if __name__ == "__main__":
    main()
