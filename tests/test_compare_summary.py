from __future__ import annotations

import json

import pandas as pd

from review.extraction.compare import compare_extractions
from review.extraction.summary import summarize_extraction
from tests.conftest import CASES_PATH


def test_identical_sheets_agree(shipped_cases, protocol):
    comparison = compare_extractions(shipped_cases, shipped_cases.copy(), protocol.extraction)
    assert comparison.agree
    assert comparison.compared_cases == 120


def test_every_disagreement_and_unmatched_case_is_listed(shipped_cases, protocol):
    second = shipped_cases.copy()
    index = second.index[second.case_id == "merhaben_2025_1"][0]
    second.loc[index, "age"] = "56"
    second.loc[index, "bone_sites"] = "skull;cervical_spine;lumbar_spine;rib;femur"  # same set
    second.loc[index, "vital_status"] = ""
    second = second[second.case_id != "vargas_2011_1"]
    extra = second.iloc[[0]].assign(case_id=second.iloc[0].study_id + "_9")
    second = pd.concat([second, extra], ignore_index=True)
    comparison = compare_extractions(shipped_cases, second, protocol.extraction)
    assert comparison.differences.to_dict(orient="records") == [
        {"case_id": "merhaben_2025_1", "field": "age", "a": "55", "b": "56"},
        {"case_id": "merhaben_2025_1", "field": "vital_status", "a": "dead", "b": ""},
    ]
    assert comparison.only_in_a == ["vargas_2011_1"]
    assert comparison.only_in_b == [extra.case_id.iloc[0]]
    assert not comparison.agree


def test_numbers_compare_by_value(shipped_cases, protocol):
    second = shipped_cases.copy()
    second.loc[second.age == "55", "age"] = "55.0"
    assert compare_extractions(shipped_cases, second, protocol.extraction).agree


def test_summary_counts_patients_studies_completeness_and_codes(shipped_cases, protocol):
    summary = summarize_extraction(shipped_cases, protocol.extraction)
    assert (summary.patients, summary.studies) == (120, 113)
    completeness = summary.completeness.set_index("field")
    assert completeness.loc["survival_months_after_bone_met", "reported"] == 28
    assert completeness.loc["vital_status", "reported"] == 40
    assert completeness.loc["case_id", "percent"] == 100.0
    counts = summary.value_counts.set_index(["field", "value"])
    assert counts.loc[("bone_sites", "skull"), "patients"] == 34
    assert counts.loc[("bone_sites", "forearm"), "patients"] == 0
    assert counts.loc[("vital_status", "dead"), "patients"] == 26
    assert counts.loc[("sex", "M"), "reported"] == 105


def test_compare_cli_exit_status_and_csv(run_cli, hcc_workspace, tmp_path):
    other = tmp_path / "b.csv"
    other.write_text(CASES_PATH.read_text().replace("merhaben_2025,A cervical", "merhaben_2025,"
                                                    "A Cervical"))
    status, out, _ = run_cli("--project", hcc_workspace.root, "extract", "compare", CASES_PATH,
                             CASES_PATH)
    assert status == 0
    assert "0 differing field(s)" in out
    status, out, _ = run_cli("--project", hcc_workspace.root, "extract", "compare", CASES_PATH,
                             other, "--out", tmp_path / "diff.csv")
    assert status == 1
    assert "merhaben_2025_1: source_title: A='A cervical" in out
    assert (tmp_path / "diff.csv").read_text().startswith("case_id,field,a,b\nmerhaben_2025_1,")


def test_summary_cli(run_cli, hcc_workspace):
    status, out, _ = run_cli("--project", hcc_workspace.root, "extract", "summary")
    assert status == 0
    assert "120 patients from 113 studies" in out
    assert "survival_months_after_bone_met" in out
    status, out, _ = run_cli("--project", hcc_workspace.root, "extract", "summary", "--json")
    assert json.loads(out)["studies"] == 113
