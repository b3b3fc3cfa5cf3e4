"""`review import` of a generated RIS export (default 100,000 records with abstracts) against
`rispy.load` of the same file, each in a fresh process timed with its peak memory by
/usr/bin/time, the median of three runs.

    python benchmarks/import_speed.py [RECORDS]

Anchors (issue 20, this machine): `review import` 6.5 s and 659 MB against `rispy.load`
2.4 s and 167 MB at 100,000 records; goal: within 1.5× of rispy's time, memory small.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dedup_speed import generate  # noqa: E402

from review.screening.export import ris_text  # noqa: E402

WORDS = ["patient", "case", "report", "treatment", "outcome", "clinical", "trial", "randomised",
         "cohort", "lesion", "imaging", "surgery", "therapy", "dose", "response", "follow-up",
         "months", "years", "review", "survival", "diagnosis", "biopsy", "symptoms", "pain",
         "fracture", "management", "evidence", "analysis"]


def export_file(folder: Path, size: int) -> Path:
    """An RIS file of `size` generated records, each given an abstract of about 150 words."""
    rng = random.Random(11)
    records, _ = generate(size)
    with_abstracts = [record.__class__(**{**record.__dict__, "abstract": " ".join(
        rng.choices(WORDS, k=150))}) for record in records]
    path = folder / "export.ris"
    path.write_text(ris_text(with_abstracts), encoding="utf-8")
    return path


def timed(command: list[str]) -> tuple[float, float]:
    """Seconds and peak MB of one process."""
    result = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    seconds, kilobytes = result.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kilobytes) / 1024


def median_of(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return (statistics.median(run[0] for run in runs),
            statistics.median(run[1] for run in runs))


def main() -> None:
    if importlib.util.find_spec("rispy") is None:
        sys.exit("the floor is rispy.load: install it beside the project first "
                 "(pip install rispy); it is no dependency of the project")
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        export = export_file(folder, size)
        print(f"{size:,} generated records, {export.stat().st_size / 2**20:.0f} MB of RIS")
        floor = median_of([timed([sys.executable, "-c", "import rispy, sys; "
                                  "print(len(rispy.load(open(sys.argv[1], encoding='utf-8'))))",
                                  str(export)]) for _ in range(3)])
        ours = []
        for _ in range(3):
            workspace = folder / "review"
            shutil.rmtree(workspace, ignore_errors=True)
            shutil.copytree(ROOT / "protocols", workspace / "protocols")
            ours.append(timed([sys.executable, "-m", "review", "--project", str(workspace),
                               "import", str(export), "--source", "Embase"]))
        ours_median = median_of(ours)
        print("| reading the RIS | seconds | peak MB | anchor (issue 20) |")
        print("|---|---|---|---|")
        print(f"| rispy.load | {floor[0]:.2f} | {floor[1]:.0f} | 2.4 s, 167 MB |")
        print(f"| review import | {ours_median[0]:.2f} | {ours_median[1]:.0f} | "
              "6.5 s, 659 MB |")
        print(f"review import takes {ours_median[0] / floor[0]:.2f}× rispy's time "
              "(goal ≤ 1.5×, anchor 2.7×)")


if __name__ == "__main__":
    main()
