"""Derived state stored, not recomputed (issue 20.1): `review status` and the de-duplication
are computed once per state of their inputs, recomputed when any input changes, and a damaged
cache is recomputed with a warning, never trusted."""

from __future__ import annotations

import json

import pytest

from review.cache import cached
from review.screening import flow
from review.search.importing import import_exports
from review.status import _review_status, review_status
from tests.test_search_import import EXPORTS


@pytest.fixture
def workspace(hcc_workspace):
    import_exports(hcc_workspace, [EXPORTS / "pubmed_efetch.xml", EXPORTS / "scopus.ris"],
                   "PubMed")
    return hcc_workspace


@pytest.fixture
def runs(monkeypatch):
    """How many times the de-duplication really ran."""
    counted = []
    real = flow.deduplicate

    def counting(*args, **kwargs):
        counted.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(flow, "deduplicate", counting)
    return counted


def test_a_second_status_is_read_back_equal_without_de_duplicating(workspace, runs):
    first = review_status(workspace)
    assert len(runs) == 1
    second = review_status(workspace)
    assert len(runs) == 1 and second == first
    assert json.loads(json.dumps(_review_status(workspace))) == first  # as computed afresh


@pytest.mark.parametrize("change", ["records", "pair decisions", "screening decision",
                                    "sheet", "protocol"])
def test_changing_any_input_recomputes(workspace, runs, change):
    before = review_status(workspace)
    assert len(runs) == 1
    if change == "records":
        import_exports(workspace, [EXPORTS / "embase.ris"], "Embase")
    elif change == "pair decisions":
        path = workspace.data_dir / "dedup" / "decisions.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("record_a,record_b,duplicate,reviewer\n", encoding="utf-8")
    elif change == "screening decision":
        record = flow.screening_state(workspace).title_abstract[0].record_id
        from review.screening.decisions import Decision, DecisionStore
        DecisionStore(workspace.screening_dir).append([Decision(
            record, "title-abstract", "pilot-team", "include")])
    elif change == "sheet":
        text = workspace.cases_path.read_text(encoding="utf-8")
        workspace.cases_path.write_text(text.rsplit("\n", 2)[0] + "\n", encoding="utf-8")
    else:
        path = workspace.protocol_path
        path.write_text(path.read_text(encoding="utf-8") + "\n# amended\n", encoding="utf-8")
    after = review_status(workspace)
    assert after == json.loads(json.dumps(_review_status(workspace)))
    if change in ("records", "pair decisions"):
        assert len(runs) >= 2  # the de-duplication itself was redone
    if change in ("records", "screening decision", "sheet"):
        assert after != before


def test_a_damaged_cache_is_recomputed_with_a_warning(workspace, runs, capsys):
    expected = review_status(workspace)
    cache = sorted((workspace.root / ".review" / "cache").glob("status-*.json"))
    assert len(cache) == 1
    stored = json.loads(cache[0].read_text())
    stored["result"]["records_screened"] += 1  # a bit flipped, or an edit by hand
    cache[0].write_text(json.dumps(stored))
    assert review_status(workspace) == expected
    assert "a damaged cache (its key or checksum does not match); recomputed" in \
        capsys.readouterr().err
    cache[0].write_text("{not json")
    assert review_status(workspace) == expected
    assert "a damaged cache" in capsys.readouterr().err


def test_only_the_newest_results_of_a_name_are_kept(tmp_path):
    (tmp_path / "input.txt").write_text("0")
    for value in range(6):
        (tmp_path / "input.txt").write_text(str(value))
        assert cached(tmp_path, "square", [tmp_path / "input.txt"], lambda v=value: v * v,
                      lambda r: r, lambda d: d) == value * value
    assert len(list((tmp_path / ".review" / "cache").glob("square-*.json"))) == 3


def test_what_review_dedup_computed_is_what_status_reads(workspace, runs, monkeypatch):
    """`review dedup` de-duplicates once and keeps the result for the files it wrote; the
    status after it, and a page, read that result instead of de-duplicating again. A
    reviewer's verdict changes the stored verdicts, and its result is kept for them too."""
    from review.screening import dedup

    monkeypatch.setattr(dedup, "deduplicate", flow.deduplicate)  # counted as well
    update = dedup.update_dedup(workspace)
    assert len(runs) == 1
    status = review_status(workspace)
    assert len(runs) == 1 and status["duplicates_removed"] == update.result.duplicates_removed
    assert flow.deduplicated_records(workspace).dedup == update.result
    assert len(runs) == 1
    first, second = update.records[0].record_id, update.records[1].record_id
    judged = dedup.update_dedup(workspace, [dedup.PairDecision(first, second, False, "ana")])
    assert len(runs) == 2
    assert flow.deduplicated_records(workspace).dedup == judged.result
    assert len(runs) == 2
    assert json.loads(json.dumps(_review_status(workspace))) == review_status(workspace)
