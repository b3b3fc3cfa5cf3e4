"""The duplicate-patient screen (issue 21.7): pairs found by the protocol's rule, decided by
reviewers, and a patient judged reported twice analysed once."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from review.errors import DataProblems, ReviewError
from review.extraction.duplicates import read_decisions, screen_duplicates
from review.extraction.sheet import read_cases
from review.protocol import load_protocol
from review.report.build import build_report
from tests.conftest import PROTOCOL_PATH, ROOT

ISSUE_PAIR = ("subasinghe_2015_1", "anoniddf2019abs0092_2019_1")


def test_the_shipped_sheet_yields_the_scalp_and_skull_pair(protocol, shipped_cases):
    screen = screen_duplicates(shipped_cases, protocol.extraction)
    assert screen.checked == 120
    pair = next(pair for pair in screen.pairs if (pair.first, pair.second) == ISSUE_PAIR)
    assert pair.agreeing == ("age 56", "sex M", "bone_sites skull")
    assert pair.years_apart == 4 and pair.decision is None


def test_the_shipped_pairs_are_decided_different_and_nobody_is_left_out(protocol,
                                                                        shipped_cases):
    decisions = read_decisions(ROOT / "data" / "extraction" / "duplicate_patients.csv")
    screen = screen_duplicates(shipped_cases, protocol.extraction, decisions)
    assert {(pair.first, pair.second): pair.decision for pair in screen.pairs} == {
        ISSUE_PAIR: "different", ("alomari_2020_1", "zakaria_2023_1"): "different"}
    assert not screen.left_out
    page = (ROOT / "reports" / protocol.id / "report.html").read_text(encoding="utf-8")
    assert re.search(r"The screen found 2\s+pairs: 0 judged the same patient,\s+2 judged "
                     r"different, and 0 awaiting", page)


def sheet(protocol, rows: list[dict]) -> pd.DataFrame:
    columns = protocol.extraction.columns
    return pd.DataFrame([{name: row.get(name, "") for name in columns} for row in rows],
                        columns=columns, dtype=object)


def test_the_rule_pairs_only_what_it_should(protocol):
    base = {"age": "60", "sex": "F", "bone_sites": "femur;skull", "pub_year": "2010"}
    rows = [
        dict(base, case_id="a_2010_1", study_id="a_2010"),
        dict(base, case_id="b_2012_1", study_id="b_2012", bone_sites="skull;femur",
             pub_year="2012"),  # sites as a set: a pair
        dict(base, case_id="a_2010_2", study_id="a_2010"),  # same report: never a pair
        dict(base, case_id="c_2020_1", study_id="c_2020", pub_year="2020"),  # 10 years on
        dict(base, case_id="d_2011_1", study_id="d_2011", country="Japan"),
        dict(base, case_id="e_2011_1", study_id="e_2011", country="Spain"),
        dict(base, case_id="f_2011_1", study_id="f_2011", age=""),  # age unknown
        dict(base, case_id="g_2011_1", study_id="g_2011", sex="M"),
    ]
    screen = screen_duplicates(sheet(protocol, rows), protocol.extraction)
    found = {(pair.first, pair.second) for pair in screen.pairs}
    assert ("a_2010_1", "b_2012_1") in found and ("a_2010_2", "b_2012_1") in found
    assert ("d_2011_1", "e_2011_1") not in found  # known in both, and different countries
    assert ("a_2010_1", "d_2011_1") in found  # a country known in one only does not differ
    assert not any("c_2020_1" in pair or "f_2011_1" in pair or "g_2011_1" in pair
                   for pair in found)
    assert ("a_2010_1", "a_2010_2") not in found


def test_a_decision_is_recorded_and_the_later_patient_analysed_once(hcc_workspace, run_cli,
                                                                   tmp_path):
    root = hcc_workspace.root
    status, out, _ = run_cli("--project", root, "extract", "duplicates")
    assert status == 0
    assert f"{ISSUE_PAIR[0]} ~ {ISSUE_PAIR[1]}: age 56, sex M, bone_sites skull, reports 4 " \
           "years apart: awaiting a decision" in out
    status, _, err = run_cli("--project", root, "extract", "duplicates", "--decide",
                             ISSUE_PAIR[1], ISSUE_PAIR[0], "same", "--reviewer", "ana",
                             "--note", "same hospital and course")
    assert status == 0, err
    decisions = read_decisions(hcc_workspace.duplicate_decisions_path)
    assert decisions.to_dict("records") == [{
        "first": ISSUE_PAIR[0], "second": ISSUE_PAIR[1], "decision": "same",
        "reviewer": "ana", "note": "same hospital and course"}]
    status, out, _ = run_cli("--project", root, "extract", "duplicates")
    assert "decided same by ana" in out and "1 same, 0 different, 1 awaiting" in out

    build_report(hcc_workspace, tmp_path / "report", force=True)
    page = " ".join(re.sub(r"<[^>]+>", "", (tmp_path / "report" / "report.html").read_text())
                    .split())
    assert "1 judged the same patient (the later report's patient left out of the " \
           f"analysis: {ISSUE_PAIR[1]})" in page
    studies = pd.read_csv(tmp_path / "report" / "tables" / "studies.csv")
    assert "anoniddf2019abs0092_2019" not in set(studies.iloc[:, 0])
    assert "120 patients were screened" in page


def test_bad_decisions_and_pairs_the_screen_does_not_list_are_refused(hcc_workspace, run_cli):
    root = hcc_workspace.root
    status, _, err = run_cli("--project", root, "extract", "duplicates", "--decide",
                             "vargas_2011_1", "rejab_2019_1", "same", "--reviewer", "ana")
    assert status == 2
    assert "vargas_2011_1 and rejab_2019_1 are not a pair the screen lists" in err
    status, _, err = run_cli("--project", root, "extract", "duplicates", "--decide",
                             *ISSUE_PAIR, "same")
    assert status == 2 and "name the reviewer" in err
    assert not hcc_workspace.duplicate_decisions_path.exists()
    hcc_workspace.duplicate_decisions_path.write_text(
        f"first,second,decision,reviewer,note\n{ISSUE_PAIR[0]},{ISSUE_PAIR[1]},maybe,ana,\n")
    with pytest.raises(DataProblems) as caught:
        read_decisions(hcc_workspace.duplicate_decisions_path)
    assert [str(p) for p in caught.value.problems] == [
        f"{hcc_workspace.duplicate_decisions_path}:2:decision: 'maybe' is not a decision "
        "(allowed: same, different)"]


def test_the_protocols_rule_names_fields_of_the_schema(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(PROTOCOL_PATH.read_text(encoding="utf-8").replace(
        "match: [age, sex, bone_sites]", "match: [age, gender]", 1))
    with pytest.raises(ReviewError, match=r"extraction\.duplicate_patients\.match\[1\]: "
                                          r"'gender' is not one of"):
        load_protocol(path)


def test_without_the_protocols_rule_there_is_no_screen(hcc_workspace, run_cli):
    path = hcc_workspace.protocol_path
    text = path.read_text(encoding="utf-8")
    start = text.index("  duplicate_patients:")
    end = text.index("  double_extraction:")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    schema = load_protocol(path).extraction
    assert screen_duplicates(read_cases(hcc_workspace.cases_path, schema), schema) is None
    status, _, err = run_cli("--project", hcc_workspace.root, "extract", "duplicates")
    assert status == 2 and "plans no screen for duplicate patients" in err
