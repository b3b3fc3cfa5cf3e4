"""Prioritised screening on labelled reviews, side by side with random order and with ASReview's
published figures: the simulation `review screen simulate` runs, several seeds per set.

    python benchmarks/screening_prioritisation.py ../shared/data/screening [--seeds 5]
        [--stop-seeds 20] [--keep-missing-abstracts]

Arguments are labelled CSV files or folders of them (title, abstract, label_included). Records
without an abstract are dropped, as in the published simulation studies, unless
--keep-missing-abstracts. Per set it prints WSS@95 and RRF@10 (mean of --seeds runs, with the
range), the same for random order, the stopping rule's recall and saving (over --stop-seeds
runs: how many reached 95% recall) and the anchor where one is published.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from review.protocol import Prioritisation, StoppingRule  # noqa: E402
from review.screening.ranking import TextFeatures  # noqa: E402
from review.screening.simulation import (  # noqa: E402
    random_screening,
    read_labelled,
    simulate,
)

# ASReview (Ferdinands et al. 2020), naive Bayes + TF-IDF, mean of 15 runs, records without an
# abstract and duplicates removed; as quoted in the shared sets' README.
PUBLISHED_WSS95 = {"nagtegaal2019_nudging": 0.717}
PUBLISHED_RRF10 = {"nagtegaal2019_nudging": 0.653}


def labelled_files(arguments: list[str]) -> list[Path]:
    files = []
    for argument in arguments:
        path = Path(argument)
        files += sorted(path.glob("*.csv")) if path.is_dir() else [path]
    return files


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def spread(values: list[float]) -> str:
    return f"{percent(statistics.fmean(values))} ({percent(min(values))}–{percent(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--stop-seeds", type=int, default=20)
    parser.add_argument("--keep-missing-abstracts", action="store_true")
    parser.add_argument("--model", default="naive_bayes")
    args = parser.parse_args()
    rule = StoppingRule()
    print(f"model {args.model}; WSS/RRF over {args.seeds} seeds, stopping rule over "
          f"{args.stop_seeds} seeds (target {percent(rule.recall_target)} recall, "
          f"{percent(rule.confidence)} confidence); priors 1 include + 1 exclude\n")
    header = ("| set | records | incl. | WSS@95 | random WSS@95 | published WSS@95 | RRF@10 | "
              "random RRF@10 | stop recall (runs ≥ 95%) | stop saving | s/run | ms/retrain |")
    print(header)
    print("|" + "---|" * 12)
    for path in labelled_files(args.paths):
        labelled = read_labelled(path, drop_missing_abstracts=not args.keep_missing_abstracts)
        features = TextFeatures(labelled.texts)
        settings = Prioritisation(model=args.model)
        started = time.perf_counter()
        runs = [simulate(labelled, settings, rule, seed, features=features)
                for seed in range(max(args.seeds, args.stop_seeds))]
        seconds = (time.perf_counter() - started) / len(runs)
        figures = runs[:args.seeds]
        stops = runs[:args.stop_seeds]
        baseline = [random_screening(labelled, seed) for seed in range(args.seeds)]
        name = path.stem
        reached = sum(run.stop_recall >= rule.recall_target for run in stops)
        print(f"| {name} | {len(labelled.labels):,} | {labelled.included} | "
              f"{spread([r.wss95 for r in figures])} | "
              f"{percent(statistics.fmean(b[0] for b in baseline))} | "
              f"{percent(PUBLISHED_WSS95[name]) if name in PUBLISHED_WSS95 else '—'} | "
              f"{spread([r.rrf10 for r in figures])} | "
              f"{percent(statistics.fmean(b[1] for b in baseline))}"
              f"{' (published ' + percent(PUBLISHED_RRF10[name]) + ')' if name in PUBLISHED_RRF10 else ''} | "  # noqa: E501
              f"{spread([r.stop_recall for r in stops])} ({reached}/{len(stops)}) | "
              f"{spread([r.stop_saving for r in stops])} | {seconds:.1f} | "
              f"{1000 * statistics.fmean(r.seconds_per_retrain for r in runs):.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
