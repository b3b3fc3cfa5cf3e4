"""De-duplication quality and speed on generated records with known truth, at 10,000 and
100,000 records (goals: precision ≥ 0.995, recall ≥ 0.97, 100,000 records ≤ 60 s); then
200,000 records in a process of their own, generated and de-duplicated, with its CPU time and
peak memory by /usr/bin/time (issue 20: anchor 98 s CPU and 2.7 GB; goals ≤ 45 s CPU and
≤ 1.2 GB).

    python benchmarks/dedup_speed.py

Duplicates differ as exports really do: case and punctuation, diacritics, a dropped letter,
initials against full names, abbreviated journals, a missing DOI or PMID, page ranges 123-9
against 123–129, a year off by one. Look-alikes that are not duplicates are generated too:
the same author's next paper with a numbered title, and an erratum of the article."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from review.screening.dedup import deduplicate
from review.search.records import Record, make_record

VOCABULARY = """
hepatocellular carcinoma metastasis bone spine skull vertebral cervical thoracic lumbar
sacral pelvic rib sternum mandible orbit compression cord fracture pathological
radiotherapy stereotactic surgery decompression stabilization embolization sorafenib
lenvatinib atezolizumab bevacizumab immunotherapy survival prognosis outcome cohort case
report series review presentation rare unusual initial first solitary multiple
osteolytic lesion imaging magnetic resonance tomography scintigraphy biopsy cytology
alpha fetoprotein cirrhosis hepatitis viral alcohol steatohepatitis transplantation
resection ablation chemoembolization recurrence management treatment diagnosis patient
woman man elderly young adult clinical pathological features analysis retrospective
prospective multicenter randomized trial efficacy safety toxicity palliative pain
neurological deficit paraplegia quality life staging classification marker expression
molecular genomic mutation pathway signaling tumour microenvironment immune checkpoint
inhibitor response resistance progression free overall
"""
WORDS = VOCABULARY.split()
POSITIONS = itertools.count(1)
SURNAMES = [f"{a}{b}" for a, b in itertools.product(
    ["Tan", "Kim", "Lee", "Wang", "Smith", "Garcia", "Müller", "Rossi", "Sato", "Kowalski",
     "Novak", "Silva", "Ivanov", "Nguyen", "Ahmed", "Cohen", "Dubois", "Jensen", "Olsen", "Patel"],
    ["", "ova", "ez", "man", "son", "berg", "ini", "ura", "ski", "ić"])]
FIRST_NAMES = ["Anna", "José", "Li", "Mark", "Sara", "Hiro", "Emre", "Zoë", "Omar", "Ines"]
JOURNALS = [("Journal of Hepatology", "J Hepatol"), ("World Journal of Gastroenterology",
            "World J Gastroenterol"), ("Spine Journal", "Spine J"), ("Journal of Neurosurgery",
            "J Neurosurg"), ("European Spine Journal", "Eur Spine J"), ("Clinical Case Reports",
            "Clin Case Rep"), ("Hepatology Research", "Hepatol Res"), ("Cancer Medicine",
            "Cancer Med"), ("BMC Cancer", "BMC Cancer"), ("Radiation Oncology", "Radiat Oncol")]
ACCENTS = str.maketrans("aeiouc", "áéíóúç")


def base_record(rng: random.Random, index: int) -> dict:
    surname = rng.choice(SURNAMES)
    journal = rng.choice(JOURNALS)
    start = rng.randint(1, 1800)
    return {
        "title": " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 14))).capitalize(),
        "authors": [(surname, rng.choice(FIRST_NAMES))] + [
            (rng.choice(SURNAMES), rng.choice(FIRST_NAMES)) for _ in range(rng.randint(0, 5))],
        "journal": journal, "year": rng.randint(1985, 2025), "volume": str(rng.randint(1, 90)),
        "issue": str(rng.randint(1, 12)), "pages": (start, start + rng.randint(2, 15)),
        "doi": f"10.{rng.randint(1000, 9999)}/gen.{index}" if rng.random() < 0.7 else "",
        "pmid": str(20_000_000 + index) if rng.random() < 0.5 else "",
    }


def render(spec: dict, rng: random.Random, source: str, variant: bool) -> Record:
    """One export of a work; a variant is reformatted as another database would."""
    title, authors, pages = spec["title"], spec["authors"], spec["pages"]
    journal = spec["journal"][0]
    page_text = f"{pages[0]}-{pages[1]}"
    year, doi, pmid = spec["year"], spec["doi"], spec["pmid"]
    names = [f"{surname} {first[0]}" for surname, first in authors]
    if variant:
        choice = rng.random
        if choice() < 0.5:
            title = title.upper() if choice() < 0.5 else title.lower()
        if choice() < 0.4:
            title = title.replace(" ", ": ", 1) + "."
        if choice() < 0.3:
            words = title.split()
            position = rng.randrange(len(words))
            words[position] = words[position].translate(ACCENTS)
            title = " ".join(words)
        if choice() < 0.2:  # a typing error: one letter dropped
            cut = rng.randrange(1, len(title) - 1)
            title = title[:cut] + title[cut + 1:]
        if choice() < 0.5:
            names = [f"{surname}, {first}" for surname, first in authors]
        if choice() < 0.6:
            journal = spec["journal"][1]
        if choice() < 0.5:
            doi = ""
        if choice() < 0.5:
            pmid = ""
        if choice() < 0.5:
            end = str(pages[1])
            short = end[len(str(pages[0])) - len(end):] if len(end) == len(str(pages[0])) \
                else end
            page_text = f"{pages[0]}–{short}"
        if choice() < 0.15:
            year += rng.choice((-1, 1))
            pmid = doi = ""
    return make_record(source, "generated", origin="generated", position=next(POSITIONS),
                       title=title, authors=names, journal=journal,
                       year=str(year), volume=spec["volume"], issue=spec["issue"],
                       pages=page_text, doi=doi, pmid=pmid,
                       publication_types=["Journal Article"])


def generate(size: int, seed: int = 7) -> tuple[list[Record], dict[str, int]]:
    """About `size` records: works with 0–2 duplicates, numbered follow-ups and errata."""
    rng = random.Random(seed)
    records: list[Record] = []
    truth: dict[str, int] = {}
    work = 0
    while len(records) < size:
        spec = base_record(rng, work)
        copies = rng.choices((1, 2, 3), weights=(0.6, 0.3, 0.1))[0]
        for copy in range(copies):
            record = render(spec, rng, f"db{copy}", variant=copy > 0)
            records.append(record)
            truth[record.record_id] = work
        work += 1
        if rng.random() < 0.05:  # the same author's numbered follow-up: not a duplicate
            follow = dict(spec, title=spec["title"] + " part 2", doi="", pmid="",
                          year=spec["year"] + 1)
            record = render(follow, rng, "db0", variant=False)
            records.append(record)
            truth[record.record_id] = work
            work += 1
        if rng.random() < 0.02:  # an erratum with the article's title: not a duplicate
            record = make_record("db0", "generated", origin="generated",
                                 position=next(POSITIONS), title=f"Erratum: {spec['title']}",
                                 authors=[spec["authors"][0][0]], year=str(spec["year"]),
                                 journal=spec["journal"][0],
                                 publication_types=["Published Erratum"])
            records.append(record)
            truth[record.record_id] = work
            work += 1
    return records[:size], truth


def pairs_of(groups: dict[object, list[str]]) -> set[frozenset[str]]:
    return {frozenset(pair) for members in groups.values()
            for pair in itertools.combinations(sorted(members), 2)}


def measure(size: int) -> None:
    records, truth = generate(size)
    start = time.perf_counter()
    result = deduplicate(records)
    elapsed = time.perf_counter() - start
    true_groups: dict[int, list[str]] = {}
    for record in records:
        true_groups.setdefault(truth[record.record_id], []).append(record.record_id)
    expected = pairs_of(true_groups)
    found = pairs_of({cluster.cluster_id: list(cluster.members) for cluster in result.clusters})
    precision = len(found & expected) / len(found) if found else 1.0
    recall = len(found & expected) / len(expected) if expected else 1.0
    print(f"{size:>7,} records: {len(expected):,} true duplicate pairs; precision "
          f"{precision:.4f} (goal ≥ 0.995), recall {recall:.4f} (goal ≥ 0.97); "
          f"{len(result.uncertain)} pairs left to a reviewer; {elapsed:.1f} s "
          f"({result.pairs_compared:,} pairs compared)")


def measure_in_own_process(size: int) -> None:
    """Generate and de-duplicate `size` records in a fresh process, timed by /usr/bin/time."""
    run = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", sys.executable, __file__, "--one",
                          str(size)], capture_output=True, text=True, check=True)
    user, system, kilobytes = run.stderr.strip().splitlines()[-1].split()
    print(f"{run.stdout.strip()}; the whole process (generating the records too): "
          f"{float(user) + float(system):.1f} s CPU (anchor 98 s, goal ≤ 45 s), peak "
          f"{int(kilobytes) / 1e6:.2f} GB (anchor 2.7 GB, goal ≤ 1.2 GB)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        records, _ = generate(int(sys.argv[2]))
        started = time.process_time()
        result = deduplicate(records)
        print(f"{len(records):,} records: {time.process_time() - started:.1f} s CPU to "
              f"de-duplicate ({result.pairs_compared:,} pairs compared)")
    else:
        for size in (10_000, 100_000):
            measure(size)
        measure_in_own_process(200_000)
