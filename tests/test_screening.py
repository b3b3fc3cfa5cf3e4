"""Screening: decision storage under concurrency and kill, the screener in a real
pseudo-terminal, conflicts and adjudication, agreement, imports and PRISMA 2020 counts."""

from __future__ import annotations

import csv
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from review.errors import ReviewError
from review.screening.decisions import Decision, DecisionStore, final_decisions
from review.screening.flow import agreement, screening_state
from review.search.importing import import_exports
from review.workspace import Workspace
from tests.conftest import ROOT

EXPORTS = Path(__file__).parent / "fixtures" / "exports"
REVIEWERS = "[pilot-team, ana, ben, cleo, judge]"


@pytest.fixture
def workspace(hcc_workspace) -> Workspace:
    """The HCC workspace with four more reviewers and nine records from four exports, two of
    them the same articles from two sources."""
    path = hcc_workspace.protocol_path
    path.write_text(path.read_text().replace("reviewers: [pilot-team]", f"reviewers: "
                                             f"{REVIEWERS}"))
    import_exports(hcc_workspace, [EXPORTS / "pubmed_efetch.xml", EXPORTS / "pubmed.nbib"],
                   "PubMed")
    import_exports(hcc_workspace, [EXPORTS / "embase.ris", EXPORTS / "pubmed.csv"], "Embase")
    return Workspace(hcc_workspace.root)


def ids(workspace: Workspace, stage: str = "title-abstract") -> list[str]:
    return [r.record_id for r in screening_state(workspace).candidates(stage)]


def decide(workspace, reviewer, stage, choices, reason="no_bone_metastasis", role="reviewer"):
    store = DecisionStore(workspace.screening_dir)
    store.append([Decision(record, stage, reviewer, choice,
                           reason if choice == "exclude" else "", role=role,
                           time=f"2026-01-01T00:00:{i:02d}")
                  for i, (record, choice) in enumerate(choices.items())])


def test_latest_decision_counts_and_history_stays(workspace):
    record = ids(workspace)[0]
    decide(workspace, "ana", "title-abstract", {record: "exclude"})
    decide(workspace, "ana", "title-abstract", {record: "include"})
    store = DecisionStore(workspace.screening_dir)
    assert [d.decision for d in store.read("title-abstract")] == ["exclude", "include"]
    assert final_decisions(store.read("title-abstract"))[record].decision == "include"
    decide(workspace, "ana", "title-abstract", {record: "withdrawn"})
    assert record not in final_decisions(store.read("title-abstract"))


def test_two_processes_writing_at_once_lose_nothing(workspace):
    script = ("import sys; from pathlib import Path\n"
              "from review.screening.decisions import Decision, DecisionStore\n"
              "store = DecisionStore(Path(sys.argv[1]))\n"
              "for i in range(300):\n"
              "    store.append([Decision(f'r{sys.argv[2]}{i}', 'title-abstract', 'ana', "
              "'include', note='x' * 200)])\n")
    processes = [subprocess.Popen([sys.executable, "-c", script, str(workspace.screening_dir),
                                   tag], cwd=ROOT) for tag in ("a", "b")]
    assert [p.wait(120) for p in processes] == [0, 0]
    decisions = DecisionStore(workspace.screening_dir).read("title-abstract")
    assert len(decisions) == 600
    assert len({d.record for d in decisions}) == 600


def test_a_kill_mid_write_never_corrupts_the_file(workspace):
    script = ("import sys; from pathlib import Path\n"
              "from review.screening.decisions import Decision, DecisionStore\n"
              "store = DecisionStore(Path(sys.argv[1]))\n"
              "i = 0\n"
              "while True:\n"
              "    store.append([Decision(f'r{i}', 'title-abstract', 'ana', 'include', "
              "note='n' * 5000)])\n"
              "    i += 1\n")
    process = subprocess.Popen([sys.executable, "-c", script, str(workspace.screening_dir)],
                               cwd=ROOT)
    path = DecisionStore(workspace.screening_dir).path("title-abstract", "ana")
    deadline = time.monotonic() + 60
    while (not path.exists() or path.stat().st_size < 200_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    before = DecisionStore(workspace.screening_dir).read("title-abstract")
    assert len(before) > 10
    with path.open("ab") as handle:  # what a kill in the middle of a write leaves behind
        handle.write(b'{"decision": "include", "no')
    decide(workspace, "ana", "title-abstract", {"after": "include"})
    after = DecisionStore(workspace.screening_dir).read("title-abstract")
    assert [d.record for d in after] == [d.record for d in before] + ["after"]


def test_malformed_decision_file_is_a_clear_error(workspace):
    path = DecisionStore(workspace.screening_dir).path("title-abstract", "ana")
    path.parent.mkdir(parents=True)
    path.write_text('{"record": "x", "unexpected": 1}\n{"record": "y"}\n')
    with pytest.raises(ReviewError, match=r"ana\.jsonl:1: not a decision"):
        DecisionStore(workspace.screening_dir).read("title-abstract")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--stage", "title-abstract", "--reviewer", "zoe"], "unknown reviewer 'zoe'"),
        (["--stage", "abstracts", "--reviewer", "ana"], "unknown stage 'abstracts'"),
        (["--stage", "title-abstract", "--reviewer", "Ana Smith"], "reviewer 'Ana Smith'"),
    ],
)
def test_unknown_reviewer_or_stage(workspace, run_cli, arguments, message):
    status, _, err = run_cli("--project", workspace.root, "screen", *arguments)
    assert status == 2 and message in err


def test_adjudication_refuses_bad_decisions(workspace, run_cli):
    record = ids(workspace)[0]
    base = ["--project", workspace.root, "screen", "adjudicate"]
    status, _, err = run_cli(*base, "nope", "--stage", "title-abstract", "--decision",
                             "include", "--adjudicator", "judge")
    assert status == 2 and "no record 'nope'" in err
    status, _, err = run_cli(*base, record, "--stage", "title-abstract", "--decision",
                             "exclude", "--reason", "too_old", "--adjudicator", "judge")
    assert status == 2 and "reason 'too_old' is not in the protocol" in err


def test_conflicts_are_listed_and_adjudicated(workspace, run_cli):
    first, second = ids(workspace)[:2]
    decide(workspace, "ana", "title-abstract", {first: "include", second: "exclude"})
    decide(workspace, "ben", "title-abstract", {first: "exclude", second: "exclude"})
    status, out, _ = run_cli("--project", workspace.root, "screen", "conflicts", "--stage",
                             "title-abstract")
    assert status == 1
    assert f"{first}:" in out and "ana: include" in out
    assert "ben: exclude (no_bone_metastasis)" in out and "1 conflicts" in out
    status, out, _ = run_cli("--project", workspace.root, "screen", "adjudicate", first,
                             "--stage", "title-abstract", "--decision", "include",
                             "--adjudicator", "judge")
    assert status == 0
    status, out, _ = run_cli("--project", workspace.root, "screen", "conflicts", "--stage",
                             "title-abstract")
    assert status == 0 and "0 conflicts" in out
    final = screening_state(workspace).final["title-abstract"]
    assert final[first].decision == "include" and final[first].adjudicated
    assert final[second].decision == "exclude" and final[second].reason == "no_bone_metastasis"


def test_cohens_kappa_matches_a_hand_computed_example():
    # ana and ben on 10 records: both advance 4, both exclude 4, they split on 2.
    # p_o = 0.8; each advances 5 of 10, so p_e = 0.5; kappa = (0.8 - 0.5) / 0.5 = 0.6.
    pairs = ["ii"] * 4 + ["ee"] * 4 + ["ie", "ei"]
    decisions = []
    for i, (a, b) in enumerate(pairs):
        for reviewer, choice in (("ana", a), ("ben", b)):
            decisions.append(Decision(f"r{i}", "title-abstract", reviewer,
                                      "include" if choice == "i" else "exclude"))
    result = agreement("title-abstract", decisions)
    assert result.statistic == "Cohen's kappa"
    assert result.records == 10 and result.percent == pytest.approx(80.0)
    assert result.kappa == pytest.approx(0.6)
    assert result.ci_low < 0.6 < result.ci_high


def test_fleiss_kappa_for_three_reviewers():
    # Three reviewers, 4 records: unanimous on 3 (2 advance, 1 exclude), 2-1 on the last.
    # P_i: 1, 1, 1, 1/3 -> P_bar = 0.8333; p_advance = 8/12, p_exclude = 4/12;
    # P_e = 0.4444 + 0.1111 = 0.5556; kappa = (0.8333 - 0.5556) / (1 - 0.5556) = 0.625.
    votes = {"r0": "iii", "r1": "iii", "r2": "eee", "r3": "iie"}
    decisions = [Decision(record, "title-abstract", reviewer,
                          "include" if choice == "i" else "exclude")
                 for record, cast in votes.items()
                 for reviewer, choice in zip(("ana", "ben", "cleo"), cast, strict=True)]
    result = agreement("title-abstract", decisions)
    assert result.statistic.startswith("Fleiss")
    assert result.kappa == pytest.approx(0.625)


def test_screen_import_asreview_and_rayyan(workspace, run_cli, tmp_path):
    state = screening_state(workspace)
    records = state.candidates("title-abstract")
    asreview = tmp_path / "asreview.csv"
    with asreview.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["record_id", "title", "abstract", "doi", "included"])
        writer.writerow(["", records[0].title, "", records[0].doi, "1"])
        writer.writerow(["", records[1].title, "", "", "0"])
        writer.writerow(["", records[2].title, "", "", ""])
    status, out, _ = run_cli("--project", workspace.root, "screen", "import", asreview,
                             "--stage", "title-abstract", "--reviewer", "ana")
    assert status == 0 and "2 decisions of ana imported" in out
    rayyan = tmp_path / "rayyan.csv"
    with rayyan.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "title", "year", "notes"])
        writer.writerow(["1", records[0].title, records[0].year,
                         'RAYYAN-INCLUSION: {"ben"=>"Excluded"} | RAYYAN-EXCLUSION-REASONS: '
                         "No bone metastasis"])
        writer.writerow(["2", records[1].title, records[1].year,
                         'RAYYAN-INCLUSION: {"ben"=>"Included"}'])
    status, out, _ = run_cli("--project", workspace.root, "screen", "import", rayyan,
                             "--stage", "title-abstract", "--reviewer", "ben")
    assert status == 0, out
    final = screening_state(workspace).final["title-abstract"]
    assert final[records[0].record_id].decision == "conflict"
    votes = final[records[0].record_id].votes
    assert votes["ben"].reason == "no_bone_metastasis"


def test_screen_import_reports_every_bad_row(workspace, run_cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("title,decision,reason\nNo such paper,include,\n"
                   f"{screening_state(workspace).candidates('title-abstract')[0].title},"
                   "exclude,Too old\nwhatever,perhaps,\n")
    status, out, _ = run_cli("--project", workspace.root, "screen", "import", bad, "--stage",
                             "title-abstract", "--reviewer", "ana")
    assert status == 1
    assert "bad.csv:2:record_id: matches no record" in out
    assert "bad.csv:3:reason: not a reason of the protocol (got 'Too old')" in out
    assert "bad.csv:4:decision: not a decision (got 'perhaps'" in out
    assert not DecisionStore(workspace.screening_dir).read("title-abstract")


def test_prisma_counts_end_to_end(workspace, run_cli, tmp_path):
    run_cli("--project", workspace.root, "dedup")
    records = ids(workspace)
    assert len(records) == 7  # 9 records; PMIDs 40828566 and 24250027 came from both sources
    choices_a = {r: "include" for r in records[:5]} | {r: "exclude" for r in records[5:]}
    choices_b = dict(choices_a, **{records[4]: "exclude"})
    decide(workspace, "ana", "title-abstract", choices_a)
    decide(workspace, "ben", "title-abstract", choices_b)
    run_cli("--project", workspace.root, "screen", "adjudicate", records[4], "--stage",
            "title-abstract", "--decision", "exclude", "--reason", "not_hcc",
            "--adjudicator", "judge")
    full = ids(workspace, "full-text")
    database_reports = [r for r in full if r in records]
    assert len(database_reports) == 4
    decide(workspace, "ana", "full-text", {database_reports[0]: "include",
                                           database_reports[1]: "exclude",
                                           database_reports[2]: "not-retrieved",
                                           database_reports[3]: "include"},
           reason="no_patient_level_data")
    status, out, _ = run_cli("--project", workspace.root, "status", "--json")
    counts = json.loads(out)
    assert counts["identified"] == {"Embase": 4, "PubMed": 5}
    assert counts["duplicates_removed"] == 2
    assert counts["records_screened"] == 7
    assert counts["records_excluded"] == 3
    assert counts["reports_sought"] == 4
    assert counts["reports_not_retrieved"] == 1
    assert counts["reports_assessed"] == 3
    assert counts["reports_excluded"] == {"No patient-level data (cohort, trial or review)": 1}
    assert counts["reports_included"] == 2
    assert (counts["studies_included"], counts["cases_included"]) == (113, 120)
    assert counts["agreement"]["title-abstract"]["records"] == 7
    status, out, _ = run_cli("--project", workspace.root, "prisma", "--out", tmp_path)
    assert status == 0
    rows = {row["data"]: row["n"] for row in
            csv.DictReader((tmp_path / "tables" / "prisma2020.csv").open())}
    assert rows["database_results"] == "9" and rows["duplicates"] == "2"
    assert rows["dbr_excluded"] == "No patient-level data (cohort, trial or review), 1"
    assert (tmp_path / "figures" / "prisma_flow.svg").read_bytes().count(b"<text") > 10


def test_worked_review_matches_the_extraction_sheet(hcc_workspace, run_cli):
    for folder in ("search", "screening"):
        shutil.copytree(ROOT / "data" / folder, hcc_workspace.data_dir / folder)
    status, out, _ = run_cli("--project", hcc_workspace.root, "status", "--json")
    counts = json.loads(out)
    assert counts["identified"] == {} and counts["records_identified"] == 0
    assert counts["records_identified_other_methods"] == 114
    assert counts["identified_other_methods"] == {"Web and reference-list searches": 114}
    assert counts["records_screened"] == 0
    # Data v3: wu_2015 excluded at full text after the double extraction.
    assert counts["other_reports_assessed"] == 114
    assert counts["other_reports_included"] == 113
    assert counts["other_reports_excluded"] == {"No bone metastasis": 1}
    assert (counts["studies_included"], counts["cases_included"]) == (113, 120)
    status, out, _ = run_cli("--project", hcc_workspace.root, "screen", "from-extraction",
                             "--source", "Web and reference-list searches", "--reviewer",
                             "pilot-team")
    assert status == 0
    assert "0 reports added" in out and "0 full-text inclusions" in out


class Terminal:
    """`review screen` in a real pseudo-terminal: keys in, screen out."""

    def __init__(self, workspace: Workspace, reviewer: str, stage: str = "title-abstract"):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child becomes the screener
            os.chdir(ROOT)
            os.execv(sys.executable, [sys.executable, "-m", "review", "--project",
                                      str(workspace.root), "screen", "--stage", stage,
                                      "--reviewer", reviewer])
        self.screen = b""

    def read_until(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.screen:
            ready, _, _ = select.select([self.fd], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                raise AssertionError(f"never showed {text!r}; screen: {self.screen[-800:]!r}")
            try:
                self.screen += os.read(self.fd, 65536)
            except OSError:
                break
        return self.screen.decode("utf-8", "replace")

    def press(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def close(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:
                if select.select([self.fd], [], [], 0.1)[0]:
                    self.screen += os.read(self.fd, 65536)
            except OSError:
                pass
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("the screener did not exit")


def test_screener_in_a_pseudo_terminal(workspace):
    from review.search.records import RecordStore, make_record
    hostile = make_record("PubMed", "test", origin="test", position=1, pmid="99999999",
                          title="Bone metastasis \x1b]0;pwned\x07 from hepatocellular carcinoma "
                                "in mice", abstract="A retrospective cohort.")
    RecordStore(workspace.search_dir / "records.jsonl").add([hostile])
    total = len(ids(workspace))
    decide(workspace, "ben", "title-abstract", {ids(workspace)[0]: "exclude"})
    DecisionStore(workspace.screening_dir).append([Decision(
        ids(workspace)[1], "title-abstract", "ben", "include", note="SECRET-NOTE-OF-BEN")])

    terminal = Terminal(workspace, "ana")
    screen = terminal.read_until(f"record 1 of {total}")
    assert "\x1b[32mhepatocellular\x1b[0m" in screen or "\x1b[32mHepatocellular" in screen
    terminal.press("i")
    terminal.read_until(f"record 2 of {total}")
    terminal.press("e")
    terminal.read_until("Reason number (Enter to skip)")
    terminal.press("2\r")
    terminal.read_until(f"record 3 of {total}")
    terminal.press("n")
    terminal.read_until("Note:")
    terminal.press("check the full text\r")
    terminal.press("m")
    terminal.read_until(f"record 4 of {total}")
    terminal.press("u")  # undo the maybe: back to record 3
    terminal.read_until("2 done")
    terminal.press("i")  # decided again: still one record
    terminal.read_until(f"record 4 of {total}")
    terminal.press("q")
    assert terminal.close() == 0
    assert "3 records decided by ana" in terminal.screen.decode("utf-8", "replace")
    assert "SECRET-NOTE-OF-BEN" not in terminal.screen.decode("utf-8", "replace")
    mine = [d for d in DecisionStore(workspace.screening_dir).read("title-abstract")
            if d.reviewer == "ana"]
    assert [d.decision for d in mine] == ["include", "exclude", "maybe", "withdrawn", "include"]
    assert mine[1].reason == "no_bone_metastasis"
    assert mine[2].note == "check the full text"

    terminal = Terminal(workspace, "ana")  # resumes at the first undecided record
    screen = terminal.read_until(f"record 4 of {total}")
    for _ in range(total - 3):
        screen = terminal.read_until("[q] quit")
        terminal.screen = b""
        terminal.press("i")
    screen = terminal.read_until("are screened by ana")
    assert terminal.close() == 0
    shown = terminal.screen + screen.encode()
    assert b"\x1b]0;pwned" not in shown
    final = screening_state(workspace).final["title-abstract"]
    assert final[hostile.record_id].votes["ana"].decision == "include"


def _advance_all(workspace) -> list[str]:
    """A record that is in no extraction sheet added, then every record through title and
    abstract by ana and ben; returns the database records at full text, that one first."""
    from review.search.records import RecordStore, make_record
    unknown = make_record("PubMed", "test", origin="test", position=1, pmid="99999999",
                          title="Vertebral metastasis of a tumour nobody extracted")
    RecordStore(workspace.search_dir / "records.jsonl").add([unknown])
    records = ids(workspace)
    decide(workspace, "ana", "title-abstract", {r: "include" for r in records})
    decide(workspace, "ben", "title-abstract", {r: "maybe" for r in records})
    full = [r for r in ids(workspace, "full-text") if r in records]
    return sorted(full, key=lambda r: r != unknown.record_id)


def test_maybe_goes_on_after_title_and_abstract_but_is_a_conflict_at_full_text(workspace,
                                                                              run_cli):
    full = _advance_all(workspace)
    assert len(full) == len(ids(workspace))  # include + maybe: every record goes on
    first, second = full[:2]
    decide(workspace, "ana", "full-text", {first: "include", second: "include"})
    decide(workspace, "ben", "full-text", {first: "maybe", second: "include"})
    final = screening_state(workspace).final["full-text"]
    assert final[first].decision == "conflict"
    assert final[second].decision == "include"
    found = agreement("full-text", screening_state(workspace).decisions["full-text"])
    assert (found.records, found.percent) == (2, 50.0)
    status, _, err = run_cli("--project", workspace.root, "screen", "adjudicate", first,
                             "--stage", "full-text", "--decision", "maybe",
                             "--adjudicator", "judge")
    assert status == 2 and "an adjudication at full text settles the record" in err
    status, out, _ = run_cli("--project", workspace.root, "screen", "conflicts", "--stage",
                             "full-text")
    assert status == 1 and "ben: maybe" in out


def test_a_reviewer_records_not_retrieved_at_full_text(workspace, run_cli, tmp_path):
    full = _advance_all(workspace)
    sheet = tmp_path / "full_text.csv"
    sheet.write_text(f"record_id,decision\n{full[0]},not retrieved\n{full[1]},include\n")
    for reviewer in ("ana", "ben"):
        status, out, _ = run_cli("--project", workspace.root, "screen", "import", sheet,
                                 "--stage", "full-text", "--reviewer", reviewer)
        assert status == 0 and f"2 decisions of {reviewer} imported" in out
    counts = json.loads(run_cli("--project", workspace.root, "prisma", "--json", "--out",
                                tmp_path / "out")[1])
    assert counts["reports_not_retrieved"] == 1
    assert counts["reports_assessed"] == 1 and counts["reports_included"] == 1


def test_prisma_counts_add_up_at_every_moment(workspace, run_cli, tmp_path):
    def counts() -> dict:
        status, out, _ = run_cli("--project", workspace.root, "prisma", "--json", "--out",
                                 tmp_path / "out")
        assert status == 0
        found = json.loads(out)
        for prefix, awaiting in (("", "database_"), ("other_", "other_")):
            assert found[f"{prefix}reports_sought"] == (
                found[f"{prefix}reports_not_retrieved"] + found[f"{prefix}reports_assessed"]
                + found[f"{awaiting}reports_awaiting_assessment"])
            assert found[f"{prefix}reports_assessed"] == (
                sum(found[f"{prefix}reports_excluded"].values())
                + found[f"{prefix}reports_included"])
        assert found["records_screened"] == (found["records_excluded"] + found["reports_sought"]
                                             + found["records_awaiting_screening"])
        return found

    assert counts()["records_awaiting_screening"] == len(ids(workspace))
    full = _advance_all(workspace)
    mid = counts()
    assert (mid["reports_sought"], mid["reports_assessed"]) == (len(full), 0)
    assert mid["database_reports_awaiting_assessment"] == len(full)
    decide(workspace, "ana", "full-text", {full[0]: "include", full[1]: "exclude"},
           reason="no_patient_level_data")
    later = counts()
    assert (later["reports_assessed"], later["reports_included"]) == (2, 2 - 1)
    # The sheet holds the HCC review's 113 studies, but not the record added for this test.
    assert later["reports_included_not_extracted"] == 1


def test_included_reports_not_yet_extracted_are_shown(workspace, run_cli, tmp_path):
    full = _advance_all(workspace)
    decide(workspace, "ana", "full-text", {full[0]: "include"})
    out = run_cli("--project", workspace.root, "status")[1]
    assert "1 included reports not yet extracted" in out
    from review.extraction.prisma_counts import prisma_counts_for
    from review.screening.prisma import prisma_diagram

    figure = prisma_diagram(prisma_counts_for(workspace))
    texts = [" ".join(text.get_text().replace("\u00a0", " ").split())
             for text in figure.axes[0].texts]
    assert any("Reports not yet extracted (n = 1)" in text for text in texts)
    assert any("Awaiting assessment" in text for text in texts)
    # No record came via other methods: the box says so instead of "identified from".
    assert any(text.startswith("Records identified via other methods") for text in texts)
    assert not any("identified from (n" in text for text in texts)


def test_rayyan_per_reviewer_decisions_go_to_their_reviewer(workspace, run_cli, tmp_path):
    records = ids(workspace)
    titles = {r.record_id: r.title for r in screening_state(workspace).records}
    rayyan = tmp_path / "rayyan.csv"
    with rayyan.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "title", "notes"])
        writer.writerow(["1", titles[records[0]],
                         'RAYYAN-INCLUSION: {"Ana Lopez"=>"Included", "ben"=>"Excluded"} | '
                         'RAYYAN-EXCLUSION-REASONS: No bone metastasis | USER-NOTES: '
                         '{"Ana Lopez"=>["spine case"], "ben"=>["wrong tumour"]}'])
        writer.writerow(["2", titles[records[1]], 'RAYYAN-INCLUSION: {"ben"=>"Excluded"}'])
        writer.writerow(["3", titles[records[2]], ""])
    status, out, _ = run_cli("--project", workspace.root, "screen", "import", rayyan,
                             "--stage", "title-abstract", "--reviewer", "ben")
    assert status == 0 and "2 decisions of ben imported" in out
    assert "1 rows without a decision left undecided (rows 4)" in out
    status, out, _ = run_cli("--project", workspace.root, "screen", "import", rayyan,
                             "--stage", "title-abstract", "--reviewer", "ana")
    assert "0 decisions of ana imported" in out
    assert "2 rows hold Rayyan decisions of others only (Ana Lopez, ben)" in out
    assert "(rows 2, 3)" in out and "--rayyan-name" in out
    status, out, _ = run_cli("--project", workspace.root, "screen", "import", rayyan,
                             "--stage", "title-abstract", "--reviewer", "ana",
                             "--rayyan-name", "Ana Lopez")
    assert status == 0 and "1 decisions of ana imported" in out
    votes = screening_state(workspace).final["title-abstract"][records[0]].votes
    assert (votes["ana"].decision, votes["ana"].note) == ("include", "spine case")
    assert (votes["ben"].decision, votes["ben"].reason, votes["ben"].note) == (
        "exclude", "no_bone_metastasis", "wrong tumour")


def test_screen_import_keeps_notes_and_reads_one_list_exports(workspace, run_cli, tmp_path):
    records = screening_state(workspace).candidates("title-abstract")
    sheet = tmp_path / "decisions.csv"
    sheet.write_text("title,decision,notes\n"
                     f"\"{records[0].title}\",include,\"=> spine, see figure 2\"\n"
                     f"\"{records[1].title}\",,\n")
    status, out, _ = run_cli("--project", workspace.root, "screen", "import", sheet,
                             "--stage", "title-abstract", "--reviewer", "ana")
    assert "1 decisions of ana imported" in out and "1 rows without a decision" in out
    mine = DecisionStore(workspace.screening_dir).read("title-abstract")
    assert mine[0].note == "=> spine, see figure 2"
    covidence = tmp_path / "covidence_included.csv"
    covidence.write_text("Title,Authors,DOI,Covidence #\n"
                         f"\"{records[2].title}\",X,{records[2].doi},#12\n")
    status, out, _ = run_cli("--project", workspace.root, "screen", "import", covidence,
                             "--stage", "title-abstract", "--reviewer", "ben", "--decision",
                             "include")
    assert status == 0 and "1 decisions of ben imported" in out
    status, _, err = run_cli("--project", workspace.root, "screen", "import", covidence,
                             "--stage", "title-abstract", "--reviewer", "ben")
    assert status == 2 and "--decision" in err


def test_adjudicate_takes_a_unique_prefix_of_the_record_id(workspace, run_cli):
    records = ids(workspace)
    first = records[0]
    decide(workspace, "ana", "title-abstract", {first: "include"})
    decide(workspace, "ben", "title-abstract", {first: "exclude"})
    prefix = next(first[:n] for n in range(1, len(first) + 1)
                  if sum(r.startswith(first[:n]) for r in records) == 1)
    status, out, _ = run_cli("--project", workspace.root, "screen", "adjudicate", prefix,
                             "--stage", "title-abstract", "--decision", "include",
                             "--adjudicator", "judge")
    assert status == 0 and out.startswith(f"{first}: include")
    common = records[0]
    while not all(record.startswith(common) for record in records):
        common = common[:-1]
    status, _, err = run_cli("--project", workspace.root, "screen", "adjudicate", common,
                             "--stage", "title-abstract", "--decision", "include",
                             "--adjudicator", "judge")
    assert status == 2 and f"is the start of {len(records)} record ids" in err


def test_kappas_interval_stays_within_minus_one_and_one():
    # 6 records, 5 agreements: kappa 0.667, with an asymptotic interval that passes 1.
    pairs = ["ii"] * 3 + ["ee"] * 2 + ["ie"]
    decisions = [Decision(f"r{i}", "title-abstract", reviewer,
                          "include" if choice == "i" else "exclude")
                 for i, pair in enumerate(pairs)
                 for reviewer, choice in zip(("ana", "ben"), pair, strict=True)]
    from statsmodels.stats.inter_rater import cohens_kappa

    raw = cohens_kappa([[3, 1], [0, 2]])
    assert raw.kappa_upp > 1  # what was printed before
    result = agreement("title-abstract", decisions)
    assert result.kappa == pytest.approx(raw.kappa)
    assert -1 <= result.ci_low < result.kappa < result.ci_high == 1.0
    assert result.to_dict()["kappa_ci"][1] == 1.0


def test_the_decisions_export_a_team_reads_elsewhere(workspace, run_cli, tmp_path):
    from openpyxl import load_workbook

    from review.search.readers import read_export

    first, second, third = ids(workspace)[:3]
    decide(workspace, "ana", "title-abstract", {first: "include", second: "exclude",
                                               third: "include"})
    DecisionStore(workspace.screening_dir).append([Decision(
        third, "title-abstract", "ben", "include", note="=HYPERLINK(\"http://x\")")])
    decide(workspace, "ben", "title-abstract", {first: "exclude", second: "exclude"})
    status, _, _ = run_cli("--project", workspace.root, "screen", "adjudicate", first,
                           "--stage", "title-abstract", "--decision", "include",
                           "--adjudicator", "judge")
    assert status == 0
    status, out, _ = run_cli("--project", workspace.root, "screen", "export", "--stage",
                             "title-abstract")
    assert status == 0
    rows = {row["record_id"]: row for row in csv.DictReader(out.splitlines())}
    assert len(rows) == len(ids(workspace))
    assert (rows[first]["ana: decision"], rows[first]["ben: decision"],
            rows[first]["final decision"], rows[first]["adjudicated by"]) == (
        "include", "exclude", "include", "judge")
    assert rows[second]["ben: reason"] == next(
        reason.label for reason in workspace.protocol.screening.exclusion_reasons
        if reason.id == "no_bone_metastasis")  # the label, not the code
    assert rows[third]["ben: note"] == "'=HYPERLINK(\"http://x\")"  # never a formula
    awaiting = [row for row in rows.values() if row["final decision"] == "awaiting"]
    assert len(awaiting) == len(rows) - 3

    out_xlsx = tmp_path / "decisions.xlsx"
    status, _, _ = run_cli("--project", workspace.root, "screen", "export", "--stage",
                           "title-abstract", "--format", "xlsx", "--out", out_xlsx)
    assert status == 0
    sheet = load_workbook(out_xlsx).active
    header = [cell.value for cell in sheet[1]]
    note = next(row for row in sheet.iter_rows(min_row=2, values_only=True)
                if row[0] == third)[header.index("ben: note")]
    assert note == "'=HYPERLINK(\"http://x\")"

    out_ris = tmp_path / "included.ris"
    status, _, _ = run_cli("--project", workspace.root, "screen", "export", "--stage",
                           "title-abstract", "--format", "ris", "--out", out_ris)
    assert status == 0
    titles = {record.title for record in read_export(out_ris, "export").records}
    state = screening_state(workspace)
    by_id = {record.record_id: record.title for record in state.title_abstract}
    assert titles == {by_id[first], by_id[third]}  # the two the stage included
    status, _, err = run_cli("--project", workspace.root, "screen", "export", "--stage",
                             "title-abstract", "--format", "xlsx")
    assert status == 2 and "needs --out" in err
