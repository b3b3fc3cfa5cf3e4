"""Prioritised screening: ranking by a reviewer's own decisions (blind, reproducible, with a
seeded cold start), the hypergeometric stopping rule, and the simulation of labelled sets."""

from __future__ import annotations

import csv
import json
import math
import random
import re
import shutil
from pathlib import Path

import pytest

from review.protocol import Prioritisation, StoppingRule
from review.screening.decisions import Decision, DecisionStore
from review.screening.flow import screening_state
from review.screening.ranking import Prioritiser, TextFeatures, rank_records
from review.screening.simulation import read_labelled, simulate
from review.screening.stopping import h0_p_value, stopping_verdict
from review.search.importing import import_exports
from review.workspace import Workspace
from tests.conftest import ROOT

SAMPLE = Path(__file__).parent / "fixtures" / "screening" / "nudging_cc0_sample.csv"
RELEVANT = ["vertebral", "metastasis", "hepatocellular", "spinal", "compression", "osseous"]
OTHER = ["asthma", "inhaler", "children", "wheeze", "allergy", "pollen", "cohort", "trial"]
COMMON = ["patient", "case", "study", "report", "treatment", "outcome", "clinical", "year"]


def labelled_rows(count: int, included: int, seed: int = 7) -> list[dict[str, str]]:
    """Generated records: the included ones speak of one topic, the others of another, both
    with common words, so a model can learn the difference from a few decisions."""
    generator = random.Random(seed)
    rows = []
    for index in range(count):
        topic = RELEVANT if index < included else OTHER
        words = generator.choices(topic, k=6) + generator.choices(COMMON, k=8)
        generator.shuffle(words)
        rows.append({"title": " ".join(words[:6]), "abstract": " ".join(words),
                     "label_included": str(int(index < included))})
    generator.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def screening_workspace(hcc_workspace, tmp_path) -> Workspace:
    """The HCC workspace with reviewers ana and ben, an adjudicator, and 2,000 imported
    records of which 100 are on the review's topic."""
    path = hcc_workspace.protocol_path
    path.write_text(path.read_text().replace(
        "reviewers: [pilot-team]", "reviewers: [pilot-team, ana, ben]\n  adjudicators: [judge]"))
    rows = labelled_rows(2000, 100)
    export = write_csv(tmp_path / "export.csv", [
        {"Title": row["title"], "Abstract": row["abstract"], "Year": "2020",
         "Authors": f"Author{i} A"} for i, row in enumerate(rows)])
    import_exports(hcc_workspace, [export], "Embase")
    return Workspace(hcc_workspace.root)


def on_topic(record) -> bool:
    return sum(word in RELEVANT for word in record.abstract.split()) >= 3


def decide(workspace: Workspace, reviewer: str, choices: dict[str, str],
           role: str = "reviewer") -> None:
    DecisionStore(workspace.screening_dir).append([
        Decision(record, "title-abstract", reviewer, choice,
                 "no_bone_metastasis" if choice == "exclude" else "", role=role,
                 time=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}")
        for i, (record, choice) in enumerate(choices.items())])


def queue_of(workspace: Workspace, reviewer: str, prioritiser: Prioritiser | None = None):
    records = screening_state(workspace).candidates("title-abstract")
    return (prioritiser or Prioritiser()).queue(
        records, DecisionStore(workspace.screening_dir), "title-abstract", reviewer,
        workspace.protocol.screening.prioritisation)


def first_decisions(workspace: Workspace) -> dict[str, str]:
    """Two on-topic includes and three off-topic excludes, from the start of record order."""
    records = screening_state(workspace).candidates("title-abstract")
    includes = [r.record_id for r in records if on_topic(r)][:2]
    excludes = [r.record_id for r in records if not on_topic(r)][:3]
    return {**dict.fromkeys(includes, "include"), **dict.fromkeys(excludes, "exclude")}


def test_after_a_few_decisions_the_likely_includes_come_first(screening_workspace):
    cold = queue_of(screening_workspace, "ana")
    assert cold.ranking.method == "random" and cold.ranking.reason == "no decision yet"
    decide(screening_workspace, "ana", first_decisions(screening_workspace))
    queue = queue_of(screening_workspace, "ana")
    assert queue.ranking.method == "model"
    assert (queue.decided, queue.includes) == (5, 2)
    upcoming = queue.records[queue.decided:queue.decided + 50]
    assert sum(on_topic(record) for record in upcoming) == 50
    # In record order, the first 50 undecided records hold about 5% on topic.
    decided = first_decisions(screening_workspace)
    in_file_order = [r for r in screening_state(screening_workspace).candidates(
        "title-abstract") if r.record_id not in decided][:50]
    assert sum(on_topic(record) for record in in_file_order) < 15


def test_a_reviewers_order_ignores_another_reviewers_votes(screening_workspace):
    decide(screening_workspace, "ana", first_decisions(screening_workspace))
    before = [r.record_id for r in queue_of(screening_workspace, "ana").records]
    records = screening_state(screening_workspace).candidates("title-abstract")
    # ben decides 300 records, every one against the topic: a model that read his votes
    # would turn ana's order upside down.
    decide(screening_workspace, "ben", {r.record_id: "include" if not on_topic(r) else "exclude"
                                        for r in records[:300]})
    assert [r.record_id for r in queue_of(screening_workspace, "ana").records] == before
    # An adjudicated final decision is the review's, and ana's model learns from it.
    conflict = next(record for record, choice in first_decisions(screening_workspace).items()
                    if choice == "include")
    decide(screening_workspace, "ben", {conflict: "exclude"})
    decide(screening_workspace, "judge", {conflict: "exclude"}, role="adjudicator")
    assert queue_of(screening_workspace, "ana").includes == 2  # her own decisions stand
    assert [r.record_id for r in queue_of(screening_workspace, "ana").records] != before


def test_same_decisions_and_seed_give_the_same_order(screening_workspace):
    decide(screening_workspace, "ana", first_decisions(screening_workspace))
    first = [r.record_id for r in queue_of(screening_workspace, "ana").records]
    again = [r.record_id for r in queue_of(screening_workspace, "ana").records]
    assert first == again
    path = screening_workspace.protocol_path
    path.write_text(path.read_text().replace("  adjudicators: [judge]",
                                             "  adjudicators: [judge]\n  ranking: {seed: 5}"))
    reseeded = Workspace(screening_workspace.root)
    assert reseeded.protocol.screening.prioritisation.seed == 5
    # The seed draws the records taken as provisional excludes, so it changes the order, and
    # the cold start: ben, who decided nothing, meets another random order ...
    assert [r.record_id for r in queue_of(reseeded, "ana").records] != first
    cold = [r.record_id for r in queue_of(screening_workspace, "ben").records]
    assert [r.record_id for r in queue_of(reseeded, "ben").records] != cold
    # ... and the first seed again gives the first order, byte for byte.
    path.write_text(path.read_text().replace("ranking: {seed: 5}", "ranking: {seed: 0}"))
    assert [r.record_id for r in queue_of(Workspace(screening_workspace.root), "ana").records
            ] == first


def test_cold_start_and_one_class_fall_back_to_a_seeded_random_order():
    features = TextFeatures([row["abstract"] for row in labelled_rows(200, 20)])
    settings = Prioritisation(seed=3)
    nothing = rank_records(features, {}, settings)
    assert nothing.method == "random" and nothing.reason == "no decision yet"
    assert nothing.order == rank_records(features, {}, settings).order
    assert nothing.order != rank_records(features, {}, Prioritisation(seed=4)).order
    assert sorted(nothing.order) == list(range(200))
    only_excludes = rank_records(features, {0: 0, 1: 0}, settings)
    assert (only_excludes.method, only_excludes.reason) == ("random", "only excludes so far")
    assert only_excludes.describe.startswith("random order (seeded)")
    assert 0 not in only_excludes.order and len(only_excludes.order) == 198
    empty = TextFeatures(["", "", ""])
    assert rank_records(empty, {0: 1, 1: 0}, settings).reason == \
        "the records have no text to learn from"


def test_file_order_and_full_text_are_not_ranked(screening_workspace):
    path = screening_workspace.protocol_path
    path.write_text(path.read_text().replace("  adjudicators: [judge]",
                                             "  adjudicators: [judge]\n  order: file"))
    workspace = Workspace(screening_workspace.root)
    decided = first_decisions(workspace)
    decide(workspace, "ana", decided)
    queue = queue_of(workspace, "ana")
    assert queue.ranking is None
    records = screening_state(workspace).candidates("title-abstract")
    undecided = [r for r in records if r.record_id not in decided]
    assert queue.records[queue.decided:] == undecided


def hypergeometric_cdf(k: int, population: int, successes: int, draws: int) -> float:
    return sum(math.comb(successes, i) * math.comb(population - successes, draws - i)
               for i in range(k + 1)) / math.comb(population, draws)


def test_stopping_rule_arithmetic_equals_a_hand_computation():
    # 10 of 20 records screened, the 2 includes first, then 8 excludes; target 50%.
    # Under H0 (recall < 50%) there are at least 5 includes, so an urn of the last n records
    # and the 10 unscreened (10 + n records) holds at least floor(2/0.5 + 1 - (2 - k)) = 3 + k
    # includes, k being the includes in the urn. The smallest p is the urn of the 8 excludes:
    # P(0 includes in 8 draws from 18 records holding 3) = C(15, 8) / C(18, 8).
    labels = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    by_hand = min(hypergeometric_cdf(sum(labels[10 - n:]), 10 + n, 3 + sum(labels[10 - n:]), n)
                  for n in range(1, 11))
    assert by_hand == pytest.approx(math.comb(15, 8) / math.comb(18, 8))
    assert h0_p_value(labels, 20, 0.5) == pytest.approx(by_hand, rel=1e-12)
    verdict = stopping_verdict(labels, 20, StoppingRule(recall_target=0.5, confidence=0.95))
    assert not verdict.stop and verdict.remaining == 10
    assert verdict.p_value == pytest.approx(6435 / 43758)

    # After 60 excludes in a row at the end of 100 of 120 records, 19 includes found:
    long = [1] * 19 + [0] * 81
    verdict = stopping_verdict(long, 120, StoppingRule(recall_target=0.95, confidence=0.95))
    urn = 81  # the urn of every exclude is the strongest evidence here
    needed = math.floor(19 / 0.95 + 1 - 19)
    assert verdict.p_value == pytest.approx(
        min(hypergeometric_cdf(0, 120 - (100 - n), needed, n) for n in range(1, urn + 1)))
    assert verdict.stop
    assert 0.95 <= verdict.recall_bound < 1
    assert "may stop" in verdict.sentence()
    assert stopping_verdict([], 50, StoppingRule()).p_value == 1.0


def test_cli_stop_gives_a_verdict(screening_workspace, run_cli):
    decide(screening_workspace, "ana", first_decisions(screening_workspace))
    status, out, _ = run_cli("--project", screening_workspace.root, "screen", "stop",
                             "--stage", "title-abstract", "--reviewer", "ana", "--json")
    assert status == 0
    verdict = json.loads(out)
    assert (verdict["screened"], verdict["included"], verdict["total"]) == (5, 2, 2000)
    assert verdict["remaining"] == 1995 and verdict["stop"] is False
    assert verdict["order"] == "ranked by the model, most likely include first"
    status, out, _ = run_cli("--project", screening_workspace.root, "screen", "stop",
                             "--stage", "title-abstract", "--reviewer", "ana")
    assert "5 of 2000 records screened, 2 included, 1995 left" in out
    assert "stopping rule: keep screening" in out


def test_simulation_on_the_cc0_sample_beats_random_and_is_reproducible(run_cli):
    status, out, _ = run_cli("screen", "simulate", SAMPLE, "--seeds", "2", "--json")
    assert status == 0
    figures = json.loads(out)
    assert (figures["records"], figures["included"]) == (200, 30)
    assert figures["wss95"] > 0.25  # random order saves nothing (WSS 0 on average)
    assert figures["rrf10"] > 0.2  # random order finds 10% of the includes in 10%
    assert set(figures["recall_at"]) == {"10", "25", "50"}
    assert figures["stop"]["recall"] >= 0.95
    assert len(figures["per_seed"]) == 2
    status, again, _ = run_cli("screen", "simulate", SAMPLE, "--seed", "0", "--json")
    assert json.loads(again)["wss95"] == figures["per_seed"][0]["wss95"]
    labelled = read_labelled(SAMPLE)
    first, second = simulate(labelled, seed=1), simulate(labelled, seed=1)
    assert first.order == second.order
    without = read_labelled(SAMPLE, drop_missing_abstracts=True)
    assert len(without.labels) == 200 - 16


def asreview_ris(path: Path, rows: list[dict], notes: dict[int, str] | None = None) -> Path:
    """The labelled rows as ASReview LAB exports them to RIS: each label an N1 note."""
    lines = []
    for number, row in enumerate(rows):
        label = "ASReview_relevant" if row["label_included"] == "1" else "ASReview_irrelevant"
        lines += ["TY  - JOUR", f"TI  - {row['title']}"]
        lines += [f"AB  - {row['abstract']}"] if row["abstract"] else []
        lines += [f"N1  - {(notes or {}).get(number, label)}", "ER  - ", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_an_ris_export_labelled_by_asreview_is_simulated_like_its_table(tmp_path, run_cli):
    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    path = asreview_ris(tmp_path / "asreview_export.ris", rows)
    from_ris, from_csv = read_labelled(path), read_labelled(SAMPLE)
    assert from_ris.labels == from_csv.labels and from_ris.included == 30
    without = read_labelled(path, drop_missing_abstracts=True)
    assert without.labels == read_labelled(SAMPLE, drop_missing_abstracts=True).labels
    status, out, _ = run_cli("screen", "simulate", path, "--json")
    assert status == 0 and json.loads(out)["records"] == 200


@pytest.mark.parametrize(("note", "message"), [
    ("ASReview_not_seen", "record 3 ('"), ("a reviewer's own note", "no label from ASReview")])
def test_an_ris_record_asreview_did_not_label_is_a_one_line_error(tmp_path, run_cli, note,
                                                                   message):
    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[:10]
    path = asreview_ris(tmp_path / "partly.ris", rows, notes={2: note})
    status, out, err = run_cli("screen", "simulate", path)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err and str(path) in err


def test_an_export_without_labels_is_refused_naming_what_carries_them(tmp_path, run_cli):
    path = tmp_path / "pubmed.nbib"
    path.write_text("PMID- 1\nTI  - A title\nAB  - An abstract.\n\nPMID- 2\nTI  - Another\n")
    status, _, err = run_cli("screen", "simulate", path)
    assert status == 2 and "a MEDLINE file carries no labels" in err


def test_simulation_of_generated_text_finds_the_includes_early():
    labelled = read_labelled(write_csv(Path(__import__("tempfile").mkdtemp()) / "g.csv",
                                       labelled_rows(400, 20)))
    result = simulate(labelled, seed=2, prior_included=2, prior_excluded=2)
    assert result.wss100 > 0.8
    assert result.stop_recall == 1.0 and result.stop_saving > 0.2


@pytest.mark.parametrize(("content", "arguments", "message"), [
    ("title,abstract\na,b\n", (), "no label column 'label_included'"),
    ("title,abstract,label_included\na,b,1\nc,d,yes\n", (), ":3:label_included: 'yes' is "
                                                           "not a label (0 or 1)"),
    ("title,abstract,label_included\na,b,0\nc,d,0\n", (), "label_included: no record is "
                                                         "labelled 1"),
    ("id,label_included\n1,1\n2,0\n", (), "no 'title' or 'abstract' column"),
    ("title,abstract,label_included\n,,1\n,,0\n", (), "every record is blank"),
    ("title,abstract,relevant\na,b,2\n", ("--label-column", "relevant"),
     ":2:relevant: '2' is not a label"),
])
def test_bad_labelled_files_are_one_line_errors(tmp_path, run_cli, content, arguments,
                                                 message):
    path = tmp_path / "labelled.csv"
    path.write_text(content)
    status, out, err = run_cli("screen", "simulate", path, *arguments)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err and str(path) in err


def test_simulation_leaves_the_decision_files_alone(screening_workspace, run_cli, tmp_path):
    decide(screening_workspace, "ana", first_decisions(screening_workspace))
    before = {path: path.read_bytes() for path in screening_workspace.screening_dir.rglob("*")
              if path.is_file()}
    shutil.copy(SAMPLE, tmp_path / "sample.csv")
    status, _, _ = run_cli("--project", screening_workspace.root, "screen", "simulate",
                           tmp_path / "sample.csv")
    assert status == 0
    after = {path: path.read_bytes() for path in screening_workspace.screening_dir.rglob("*")
             if path.is_file()}
    assert after == before


def test_protocol_settings_are_checked(protocol):
    import yaml

    from review.errors import ReviewError
    from review.protocol import parse_protocol

    document = yaml.safe_load((ROOT / "protocols" / "hcc-bone-metastasis.yaml").read_text())
    assert protocol.screening.prioritisation == Prioritisation()
    assert protocol.screening.stopping == StoppingRule(recall_target=0.95, confidence=0.95)
    document["screening"].update(order="sorted", ranking={"model": "forest", "seed": -1},
                                 stopping={"recall_target": 95})
    with pytest.raises(ReviewError) as error:
        parse_protocol(document, source="p.yaml")
    message = str(error.value)
    assert "screening.order: 'sorted' is not one of: prioritised, file, random" in message
    assert "screening.ranking.model: 'forest' is not one of" in message
    assert "screening.ranking.seed: a whole number" in message
    assert "screening.stopping.recall_target: a fraction between 0 and 1" in message


def shown_record(page: str) -> str:
    return re.search(r'data-record="([^"]+)"', page).group(1)


def test_review_serve_offers_the_ranked_order_over_http(screening_workspace):
    from tests.test_web import csrf_of, opener, post, running_server

    topical = {r.record_id: on_topic(r)
               for r in screening_state(screening_workspace).candidates("title-abstract")}
    with running_server(screening_workspace.root) as (url, _):
        browser = opener()
        page = browser.open(url + "/", timeout=10).read().decode()
        status, page = post(browser, url + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
        assert status == 200
        page = browser.open(url + "/screen/title-abstract", timeout=30).read().decode()
        assert "random order (seeded): no decision yet" in page
        decided = []
        while len({topical[r] for r in decided}) < 2 or len(decided) < 4:
            record = shown_record(page)
            decided.append(record)
            status, page = post(browser, url + "/screen/title-abstract/decide", {
                "record": record, "decision": "include" if topical[record] else "exclude",
                "reason": "", "csrf": csrf_of(page)})
            assert status == 200
        assert "ranked by the model, most likely include first" in page
        assert "stopping rule" in page.lower() and "keep screening" in page
        following = []
        for _ in range(10):
            record = shown_record(page)
            following.append(topical[record])
            status, page = post(browser, url + "/screen/title-abstract/decide", {
                "record": record, "decision": "include", "reason": "", "csrf": csrf_of(page)})
        assert all(following)


def test_review_screen_in_a_terminal_offers_the_ranked_order(screening_workspace):
    from tests.test_screening import Terminal

    by_title = {" ".join(r.title.split()): on_topic(r)
                for r in screening_state(screening_workspace).candidates("title-abstract")}
    terminal = Terminal(screening_workspace, "ana")
    kinds = set()
    shown = []
    for step in range(40):
        screen = terminal.read_until("[q] quit")
        terminal.screen = b""
        title = next(" ".join(line.split()) for line in
                     re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", screen).split("\r\n")
                     if " ".join(line.split()) in by_title)
        relevant = by_title[title]
        if "ranked by the model" in screen:
            shown.append(relevant)
            if len(shown) == 8:
                break
        kinds.add(relevant)
        terminal.press("i" if relevant else "e")
        if not relevant:
            terminal.read_until("Reason number")
            terminal.press("\r")
        assert step < 39, "the model never took over"
    terminal.press("q")
    assert terminal.close() == 0
    assert kinds == {True, False} and all(shown)
