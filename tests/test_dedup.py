"""De-duplication on the shared real-world pairs, clusters, the audit and the review queue."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest

from review.screening.dedup import (
    PairDecision,
    compare_records,
    deduplicate,
    kept_records,
    profile,
)
from review.search.records import make_record

POSITIONS = itertools.count(1)
CASES = json.loads((Path(__file__).parent / "fixtures" / "dedup" / "pair_cases.json")
                   .read_text(encoding="utf-8"))["cases"]


def from_bibtex(raw: dict, source: str):
    """A bib-dedupe test record as the record an RIS or BibTeX import would give."""
    authors = raw.get("author") or ""
    names = authors.split(" and ") if " and " in authors else authors.split(";")
    kinds = {"inproceedings": ["Conference Paper"], "article": ["Journal Article"]}.get(
        raw.get("ENTRYTYPE", ""), [])
    if raw.get("booktitle"):
        kinds = ["Conference Paper"]
    return make_record(source, "pair_cases.json", origin=source, position=next(POSITIONS),
                       title=raw.get("title"), authors=names,
                       year=raw.get("year"), journal=raw.get("journal") or raw.get("booktitle"),
                       doi=raw.get("doi"), volume=raw.get("volume"), issue=raw.get("number"),
                       pages=raw.get("pages"), publication_types=kinds)


def test_the_shared_set_has_ten_duplicates_and_fifteen_look_alikes():
    assert len(CASES) == 25
    assert sum(case["expected_duplicate"] for case in CASES) == 10


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_every_shared_pair_is_decided_correctly(case):
    verdict = compare_records(profile(from_bibtex(case["record_a"], "A")),
                              profile(from_bibtex(case["record_b"], "B")))
    assert verdict.duplicate is case["expected_duplicate"], verdict.rule


def record(source: str, **fields):
    base = {"title": "Spinal metastasis of hepatocellular carcinoma treated with SBRT",
            "authors": ["Tamaki T", "Tomita K"], "journal": "World Journal of Gastroenterology",
            "year": "2007", "volume": "13", "pages": "2758-60"}
    return make_record(source, "test", origin="test", position=next(POSITIONS),
                       **{**base, **fields})


def test_clusters_keep_the_most_complete_record_and_delete_nothing():
    full = record("PubMed", pmid="17569150", doi="10.3748/wjg.v13.i19.2758",
                  abstract="An abstract.")
    bare = record("Embase", title="SPINAL METASTASIS OF HEPATOCELLULAR CARCINOMA TREATED WITH "
                                  "SBRT.", journal="World J Gastroenterol", pages="2758–2760",
                  authors=["Tamaki, Takeshi"])
    other = record("Embase", title="Skull metastasis of hepatocellular carcinoma",
                   doi="10.1000/other")
    result = deduplicate([bare, full, other])
    [cluster] = result.clusters
    assert cluster.kept == full.record_id
    assert set(cluster.members) == {full.record_id, bare.record_id}
    assert cluster.rules[0][2] == "same title, first author, year (±1) and venue"
    assert [r.record_id for r in kept_records([bare, full, other], result)] == \
        [full.record_id, other.record_id]


def test_erratum_and_conference_abstract_never_merge_with_the_article():
    article = record("PubMed", doi="10.1/x")
    erratum = record("PubMed", title="Erratum: Spinal metastasis of hepatocellular carcinoma "
                                     "treated with SBRT", publication_types=["Published Erratum"])
    notice = record("Embase", publication_types=["Retraction Notice"])
    abstract = record("Embase", publication_types=["Conference Abstract"])
    result = deduplicate([article, erratum, notice, abstract])
    assert result.clusters == []


def test_same_doi_with_different_titles_is_not_merged():
    first = record("PubMed", doi="10.1/same")
    second = record("Embase", doi="10.1/same", title="Cardiac rehabilitation after surgery")
    assert deduplicate([first, second]).clusters == []


def test_uncertain_pairs_wait_for_a_reviewer_whose_verdict_is_kept():
    first = record("PubMed", title="Spinal metastasis of hepatocellular carcinoma treated "
                                   "with stereotactic body radiotherapy")
    second = record("Embase", title="Spinal metastases of hepatocellular carcinoma treated "
                                    "by stereotactic radiotherapy")
    result = deduplicate([first, second])
    assert len(result.uncertain) == 1 and result.clusters == []
    decided = deduplicate([first, second], [PairDecision(first.record_id, second.record_id,
                                                         True, "ana")])
    assert decided.uncertain == [] and len(decided.clusters) == 1
    assert decided.clusters[0].rules[0][2] == "reviewer ana"


def test_dedup_cli_writes_audit_and_queue_and_reads_a_filled_queue(hcc_workspace, run_cli):
    from review.search.records import RecordStore
    first = record("PubMed", title="Spinal metastasis of hepatocellular carcinoma treated "
                                   "with stereotactic body radiotherapy")
    second = record("Embase", title="Spinal metastases of hepatocellular carcinoma treated "
                                    "by stereotactic radiotherapy")
    twin = record("Embase", pmid="", doi="")
    original = record("PubMed", pmid="1")
    RecordStore(hcc_workspace.search_dir / "records.jsonl").add([first, second, twin,
                                                                 original])
    status, out, _ = run_cli("--project", hcc_workspace.root, "dedup")
    assert status == 0 and "1 duplicates removed" in out and "1 uncertain pairs" in out
    folder = hcc_workspace.data_dir / "dedup"
    audit = (folder / "clusters.csv").read_text()
    assert "joined by: same title, first author, year (±1) and venue" in audit
    rows = list(csv.DictReader((folder / "queue.csv").open()))
    rows[0]["duplicate"] = "yes"
    filled = folder / "filled.csv"
    with filled.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    status, out, _ = run_cli("--project", hcc_workspace.root, "dedup", "review", "--reviewer",
                             "pilot-team", "--file", filled)
    assert status == 0 and "0 uncertain pairs remain" in out
    status, out, _ = run_cli("--project", hcc_workspace.root, "dedup")
    assert "2 duplicates removed" in out and "0 uncertain pairs" in out
