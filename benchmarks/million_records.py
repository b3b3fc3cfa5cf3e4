"""The million-record path: 1,000,000 generated records with known duplicates (those of
`dedup_speed.py`) written as one RIS export, then `review import`, `review dedup` and
`review status`, each in a fresh process timed with its peak memory by /usr/bin/time.

    python benchmarks/million_records.py [RECORDS]

Goal (issue 20): import + dedup + status ≤ 15 minutes in all, peak ≤ 8 GB, on this machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dedup_speed import generate  # noqa: E402

from review.screening.export import ris_text  # noqa: E402


def timed(step: str, command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak GB and the last line printed of one process."""
    result = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], cwd=ROOT,
                            capture_output=True, text=True)
    seconds, kilobytes = result.stderr.strip().splitlines()[-1].split()
    said = (result.stdout.strip().splitlines() or [""])[-1]
    if result.returncode != 0:
        said = f"failed (exit {result.returncode}): {result.stderr.strip().splitlines()[0]}"
    print(f"| {step} | {float(seconds):.1f} | {int(kilobytes) / 1e6:.2f} | {said[:90]} |",
          flush=True)
    return float(seconds), int(kilobytes) / 1e6, said


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        records, _ = generate(size)
        export = folder / "export.ris"
        export.write_text(ris_text(records), encoding="utf-8")
        del records
        print(f"{size:,} generated records, {export.stat().st_size / 1e6:.0f} MB of RIS, in "
              f"{time.perf_counter() - started:.0f} s\n")
        workspace = folder / "review"
        shutil.copytree(ROOT / "protocols", workspace / "protocols")
        review = [sys.executable, "-m", "review", "--project", str(workspace)]
        print("| step | seconds | peak GB | what it said |")
        print("|---|---|---|---|")
        steps = [timed("import", [*review, "import", str(export), "--source", "Embase"]),
                 timed("dedup", [*review, "dedup"]),
                 timed("status", [*review, "status"])]
        total = sum(seconds for seconds, _, _ in steps)
        peak = max(gigabytes for _, gigabytes, _ in steps)
        print(f"\nin all {total / 60:.1f} min, peak {peak:.2f} GB (goal ≤ 15 min, ≤ 8 GB)")


if __name__ == "__main__":
    main()
