"""`review status` on a generated workspace (default 100,000 records with known duplicates):
the first call, which de-duplicates and stores the result, and the calls after it, which read
the stored result back while no input has changed. Each runs as its own process, timed with
its peak memory by /usr/bin/time.

    python benchmarks/status_speed.py [RECORDS]

Anchors (issue 20, this machine): 26 s and 1.2 GB per call before results were stored;
goals for a call with nothing changed: ≤ 1.5 s and ≤ 300 MB.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dedup_speed import generate  # noqa: E402

from review.search.records import RecordStore  # noqa: E402


def workspace(folder: Path, size: int) -> Path:
    root = folder / "review"
    shutil.copytree(ROOT / "protocols", root / "protocols")
    (root / "data" / "extraction").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "extraction" / "cases.csv", root / "data" / "extraction")
    records, _ = generate(size)
    RecordStore(root / "data" / "search" / "records.jsonl").add(records)
    return root


def timed_status(root: Path) -> tuple[float, float]:
    """Seconds and peak MB of one `review status` process."""
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "review", "--project",
         str(root), "status"], cwd=ROOT, capture_output=True, text=True, check=True)
    seconds, kilobytes = result.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kilobytes) / 1024


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        root = workspace(Path(folder), size)
        print(f"{size:,} generated records in {time.perf_counter() - started:.1f} s")
        first = timed_status(root)
        again = [timed_status(root) for _ in range(5)]
        print("| review status | seconds | peak MB | anchor (issue 20) | goal |")
        print("|---|---|---|---|---|")
        print(f"| first call (de-duplicates, stores) | {first[0]:.2f} | {first[1]:.0f} | "
              "26 s, 1.2 GB (every call) | — |")
        print(f"| later calls, median of 5 | {statistics.median(s for s, _ in again):.2f} | "
              f"{statistics.median(m for _, m in again):.0f} | 26 s, 1.2 GB | ≤ 1.5 s, "
              "≤ 300 MB |")


if __name__ == "__main__":
    main()
