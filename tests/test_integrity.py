"""Nothing lost under concurrent use and kills: the workspace lock and the commit journal,
tested with real processes and SIGKILLs at injected points (REVIEW_FAULT)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from review.search.records import RecordStore
from review.transaction import workspace_lock

ROOT = Path(__file__).resolve().parent.parent


def review(workspace_root: Path, *args: object, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "review", "--project", str(workspace_root),
                           *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def start(workspace_root: Path, *args: object, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "review", "--project", str(workspace_root),
                             *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def ris(path: Path, prefix: str, count: int) -> Path:
    path.write_text("".join(f"TY  - JOUR\nTI  - {prefix} report number {n} of a series on "
                            f"spinal metastases\nAU  - {prefix}, A\nPY  - 2020\nVL  - {n}\n"
                            f"SP  - {n}\nER  - \n\n" for n in range(count)), encoding="utf-8")
    return path


def stored(workspace) -> list:
    return RecordStore(workspace.search_dir / "records.jsonl").load()


def test_two_imports_at_once_lose_nothing(hcc_workspace, tmp_path):
    for round_ in range(3):
        first = ris(tmp_path / f"a{round_}.ris", f"Alpha{round_}", 400)
        second = ris(tmp_path / f"b{round_}.ris", f"Beta{round_}", 400)
        processes = [start(hcc_workspace.root, "import", path, "--source", source)
                     for path, source in ((first, "Embase"), (second, "Scopus"))]
        for process in processes:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
    records = stored(hcc_workspace)
    assert len(records) == 2400 and len({r.record_id for r in records}) == 2400
    log = (hcc_workspace.search_dir / "search_log.jsonl").read_text().splitlines()
    assert len(log) == 6


def test_a_second_writer_waits_then_refuses_naming_the_holder(hcc_workspace, tmp_path):
    export = ris(tmp_path / "one.ris", "Gamma", 3)
    with workspace_lock(hcc_workspace.root, "test-holder"):
        refused = review(hcc_workspace.root, "import", export, "--source", "Embase",
                         REVIEW_LOCK_WAIT="0.5")
    assert refused.returncode == 2
    assert "waiting for 'review test-holder' (process" in refused.stderr
    assert "the workspace is in use by 'review test-holder'" in refused.stderr
    assert stored(hcc_workspace) == []

    released = threading.Event()

    def hold_briefly() -> None:
        with workspace_lock(hcc_workspace.root, "test-holder"):
            released.wait(10)
            time.sleep(0.5)

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    process = start(hcc_workspace.root, "import", export, "--source", "Embase")
    released.set()
    _, err = process.communicate(timeout=60)
    holder.join()
    assert process.returncode == 0, err
    assert len(stored(hcc_workspace)) == 3


def _uncertain_pairs_workspace(workspace) -> list[dict]:
    from review.screening.dedup import update_dedup
    from review.search.records import make_record
    path = workspace.protocol_path
    path.write_text(path.read_text().replace("reviewers: [pilot-team]",
                                             "reviewers: [pilot-team, ana, ben]"))
    pairs = [("Spinal metastasis of hepatocellular carcinoma treated with stereotactic body "
              "radiotherapy", "Spinal metastases of hepatocellular carcinoma treated by "
              "stereotactic radiotherapy"),
             ("Skull base metastasis of hepatocellular carcinoma managed with proton therapy",
              "Skull-base metastases of hepatocellular carcinoma managed by proton beam "
              "therapy")]
    records = [make_record(source, "test", origin="test", position=n, title=title,
                           authors=["Tamaki T"], journal="World J Gastroenterol", year="2007")
               for n, (source, title) in enumerate(
                   [(s, t) for pair in pairs for s, t in zip(("PubMed", "Embase"), pair,
                                                             strict=True)], start=1)]
    RecordStore(workspace.search_dir / "records.jsonl").add(records)
    update = update_dedup(workspace)
    assert len(update.result.uncertain) == 2
    queue = workspace.data_dir / "dedup" / "queue.csv"
    return list(csv.DictReader(queue.open(encoding="utf-8")))


def _filled(rows: list[dict], path: Path, verdicts: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "duplicate": verdict} for row, verdict in
                         zip(rows, verdicts, strict=True))
    return path


def test_two_reviewers_deciding_duplicates_at_once_keep_both_verdicts(hcc_workspace,
                                                                     tmp_path):
    rows = _uncertain_pairs_workspace(hcc_workspace)
    ana = _filled(rows, tmp_path / "ana.csv", ["yes", ""])
    ben = _filled(rows, tmp_path / "ben.csv", ["", "no"])
    processes = [start(hcc_workspace.root, "dedup", "review", "--reviewer", who, "--file",
                       path) for who, path in (("ana", ana), ("ben", ben))]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    decisions = list(csv.DictReader((hcc_workspace.data_dir / "dedup" / "decisions.csv")
                                    .open(encoding="utf-8")))
    assert sorted((d["reviewer"], d["duplicate"]) for d in decisions) == [("ana", "yes"),
                                                                         ("ben", "no")]


def test_a_kill_between_the_renames_of_an_import_is_completed_by_the_next_command(
        hcc_workspace, tmp_path):
    export = ris(tmp_path / "ten.ris", "Delta", 10)
    killed = review(hcc_workspace.root, "import", export, "--source", "Embase",
                    REVIEW_FAULT="commit-renaming")
    assert killed.returncode == -9
    journal = hcc_workspace.root / ".review" / "journal.json"
    assert journal.exists()
    status = review(hcc_workspace.root, "status", "--json")
    assert status.returncode == 0, status.stderr
    counts = json.loads(status.stdout)
    assert (counts["records"], counts["imports"]) == (10, 1)
    assert not journal.exists()
    assert not [p for p in hcc_workspace.data_dir.rglob(".*") if p.suffix in (".new", ".tmp")]


def test_a_kill_before_the_journal_leaves_the_old_state_and_no_leftovers(hcc_workspace,
                                                                         tmp_path):
    export = ris(tmp_path / "ten.ris", "Epsilon", 10)
    killed = review(hcc_workspace.root, "import", export, "--source", "Embase",
                    REVIEW_FAULT="commit-staged")
    assert killed.returncode == -9
    assert list(hcc_workspace.search_dir.glob(".*.new"))
    again = review(hcc_workspace.root, "import", export, "--source", "Embase")
    assert again.returncode == 0, again.stderr
    assert "10 stored" in again.stdout
    assert len(stored(hcc_workspace)) == 10
    assert not list(hcc_workspace.search_dir.glob(".*.new"))


def test_a_kill_while_storing_dedup_verdicts_loses_none(hcc_workspace, tmp_path):
    rows = _uncertain_pairs_workspace(hcc_workspace)
    queue = hcc_workspace.data_dir / "dedup" / "queue.csv"
    filled = _filled(rows, queue, ["yes", "no"])
    killed = review(hcc_workspace.root, "dedup", "review", "--reviewer", "ana", "--file",
                    filled, REVIEW_FAULT="commit-renaming")
    assert killed.returncode == -9
    after = review(hcc_workspace.root, "dedup")
    assert after.returncode == 0, after.stderr
    assert "0 uncertain pairs" in after.stdout
    decisions = (hcc_workspace.data_dir / "dedup" / "decisions.csv").read_text()
    assert decisions.count(",ana") == 2


@pytest.mark.parametrize("leftover", ["figures/.skeleton_map.svg.k2j3.tmp",
                                      "tables/.studies.csv.123-456.new"])
def test_leftovers_of_a_killed_build_never_make_the_report_stale(hcc_workspace, tmp_path,
                                                                 leftover):
    from review.report.build import build_report, stale_files
    build_report(hcc_workspace, force=True)
    path = hcc_workspace.reports_dir / leftover
    path.write_text("half a file")
    state = hcc_workspace.search_dir / ".state.json.abc.tmp"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("{")
    assert stale_files(hcc_workspace) == []  # a check only reads: nothing is removed
    assert path.exists() and state.exists()
    assert build_report(hcc_workspace).up_to_date
    assert not path.exists() and not state.exists()  # the next writer cleaned them


def test_a_kill_between_the_renames_of_an_extract_import_leaves_sheet_and_appraisal_new(
        hcc_workspace, shipped_cases, tmp_path):
    from openpyxl import load_workbook

    from review.extraction.workbook import APPRAISAL_SHEET, CASES_SHEET, build_template
    path = tmp_path / "filled.xlsx"
    path.write_bytes(build_template(hcc_workspace.protocol, shipped_cases))
    workbook = load_workbook(path)
    cases = workbook[CASES_SHEET]
    notes = [cell.value for cell in cases[1]].index("notes") + 1
    cases.cell(row=2, column=notes).value = "checked again in the full text"
    appraisal = workbook[APPRAISAL_SHEET]
    for column, value in enumerate(["ana", "Yes", "No", "Unclear", "Yes", "Yes", "Yes",
                                    "Not applicable", "Yes", "clear report"], start=2):
        appraisal.cell(row=2, column=column, value=value)
    workbook.save(path)
    killed = review(hcc_workspace.root, "extract", "import", path,
                    REVIEW_FAULT="commit-renaming")
    assert killed.returncode == -9
    assert "checked again in the full text" in hcc_workspace.cases_path.read_text()
    assert not hcc_workspace.appraisal_path.exists()  # the half a kill leaves
    status = review(hcc_workspace.root, "extract", "summary")
    assert status.returncode == 0, status.stderr
    assert "clear report" in hcc_workspace.appraisal_path.read_text()
