"""The HCC review's double extraction (data v3): stored per extractor, compared field by field
(Cohen's kappa equal to R's psych::cohen.kappa), and reported from the two files."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import lxml.html
import pandas as pd
import pytest

from review.errors import DataProblems, ReviewError
from review.extraction.compare import compare_extractors, extractor_sheets
from review.extraction.sheet import read_cases
from review.protocol import parse_protocol
from review.workspace import Workspace
from tests.conftest import CASES_PATH, PROTOCOL_PATH, ROOT

EXTRACTORS = ROOT / "data" / "extraction" / "extractors"
R_KAPPA = ROOT / "tests" / "fixtures" / "r" / "extraction_kappa.json"


@pytest.fixture
def double_workspace(hcc_workspace: Workspace) -> Workspace:
    shutil.copytree(EXTRACTORS, hcc_workspace.extractors_dir)
    return hcc_workspace


def _comparison(workspace: Workspace):
    schema = workspace.protocol.extraction
    return compare_extractors(workspace.extractors_dir,
                              read_cases(workspace.cases_path, schema), schema)


def test_kappa_and_agreement_per_field_equal_r(protocol, shipped_cases):
    expected = json.loads(R_KAPPA.read_text())
    comparison = compare_extractors(EXTRACTORS, shipped_cases, protocol.extraction)
    assert comparison.compared_cases == expected["cases"] == 26
    assert [item.field for item in comparison.fields] == list(expected["fields"])
    for item in comparison.fields:
        reference = expected["fields"][item.field]
        assert (item.compared, item.agreed) == (reference["compared"], reference["agreed"]), \
            item.field
        if reference["kappa"] is None:
            assert not item.kappa_defined, item.field
        else:
            assert item.kappa == pytest.approx(reference["kappa"], abs=1e-9), item.field


def test_the_v3_corrections_are_the_consensus_values(protocol, shipped_cases):
    comparison = compare_extractors(EXTRACTORS, shipped_cases, protocol.extraction)
    kept = comparison.differences.set_index(["case_id", "field"])["consensus"]
    assert kept["lv_2022_1", "survival_time_origin"] == "surgery"
    assert kept["sadik_2019_1", "survival_months_after_bone_met"] == "0.2"
    assert kept["du_2013_1", "survival_months_after_bone_met"] == "57"
    assert kept["wu_2015_1", "bone_treatments"] == "(not in the consensus sheet)"
    assert comparison.studies_not_in_consensus == ("wu_2015",)
    assert len(comparison.compared_studies) == 25
    # Written differently, meaning the same: neither a disagreement nor a lost agreement.
    assert ("merhaben_2025_1", "bone_sites") not in kept.index


def test_v3_is_the_shipped_sheet_and_wu_2015_is_a_full_text_exclusion(shipped_cases, run_cli):
    assert (len(shipped_cases), shipped_cases["study_id"].nunique()) == (120, 113)
    assert "wu_2015" not in set(shipped_cases["study_id"])
    status, out, _ = run_cli("--project", ROOT, "prisma", "--json")
    assert status == 0
    counts = json.loads(out)
    assert counts["other_reports_assessed"] == 114
    assert counts["other_reports_excluded"] == {"No bone metastasis": 1}
    assert counts["studies_included"] == 113


def test_a_changed_cell_changes_the_table_and_is_listed(double_workspace, run_cli):
    before = _comparison(double_workspace).agreement_table().set_index("field")
    second = double_workspace.extractors_dir / "second-extractor.csv"
    frame = pd.read_csv(second, dtype=str, keep_default_na=False)
    row = frame.index[frame["case_id"] == "song_2003_1"][0]
    original_age = frame.loc[row, "age"]
    frame.loc[row, "age"] = str(int(original_age) + 1)
    second.write_text(frame.to_csv(index=False, lineterminator="\n"))

    after = _comparison(double_workspace)
    table = after.agreement_table().set_index("field")
    assert table.loc["age", "agreed"] == before.loc["age", "agreed"] - 1
    assert table.loc["age", "kappa"] < before.loc["age", "kappa"]
    assert table.drop(index="age").equals(before.drop(index="age"))
    listed = after.differences.set_index(["case_id", "field"])
    assert listed.loc[("song_2003_1", "age"), "a"] == original_age
    assert listed.loc[("song_2003_1", "age"), "b"] == str(int(original_age) + 1)

    status, out, _ = run_cli("--project", double_workspace.root, "extract", "compare", "--json")
    assert status == 0
    printed = json.loads(out)
    assert {"case_id": "song_2003_1", "field": "age", "a": original_age,
            "b": str(int(original_age) + 1), "consensus": original_age} in printed["differences"]
    age = next(item for item in printed["fields"] if item["field"] == "age")
    assert age["agreed"] == table.loc["age", "agreed"]


def test_cli_prints_the_figures_of_the_committed_report(run_cli):
    status, out, _ = run_cli("--project", ROOT, "extract", "compare")
    assert status == 0
    committed = pd.read_csv(ROOT / "reports" / "hcc-bone-metastasis" / "tables" /
                            "extraction_agreement.csv")
    for row in committed.itertuples(index=False):
        line = next(line for line in out.splitlines() if line.startswith(row.field + " "))
        assert line.split()[1:4] == [str(row.compared), str(row.agreed), f"{row.percent:.1f}"]
    total, agreed = int(committed["compared"].sum()), int(committed["agreed"].sum())
    assert f"{agreed} of {total} values agree" in out
    assert "lv_2022_1: survival_time_origin: pilot-team='admission' " \
           "second-extractor='surgery' kept='surgery'" in out


def test_report_states_methods_agreement_and_single_extractor_share():
    page = lxml.html.parse(str(ROOT / "reports" / "hcc-bone-metastasis" / "report.html"))
    words = " ".join(page.getroot().text_content().split())
    assert ("Data of 25 reports (26 patients) were extracted independently by two extractors "
            "(pilot-team and second-extractor).") in words
    assert "24 of the 113 included reports (21%) were extracted twice" in words
    assert "89 of 113 included reports (79%) were extracted by one person only" in words
    committed = pd.read_csv(ROOT / "reports" / "hcc-bone-metastasis" / "tables" /
                            "extraction_agreement.csv")
    total, agreed = int(committed["compared"].sum()), int(committed["agreed"].sum())
    assert f"The two extractors agreed on {agreed} of {total} compared values" in words
    section = page.getroot().get_element_by_id("double-extraction")
    rows = section.findall(".//tbody")[0].findall("tr")
    assert len(rows) == len(committed)


def test_a_workspace_without_a_second_sheet_reports_no_double_extraction(hcc_workspace,
                                                                        run_cli):
    assert _comparison(hcc_workspace) is None
    status, _, err = run_cli("--project", hcc_workspace.root, "extract", "compare")
    assert status == 2
    assert "no double extraction here" in err
    status, _, err = run_cli("--project", hcc_workspace.root, "extract", "compare", CASES_PATH)
    assert status == 2
    assert "name two sheets" in err


def test_bad_extractor_sheets_are_refused_with_file_and_row(double_workspace):
    folder = double_workspace.extractors_dir
    schema = double_workspace.protocol.extraction
    shutil.copy(folder / "pilot-team.csv", folder / "third.csv")
    with pytest.raises(ReviewError, match="3 extractor sheets"):
        _comparison(double_workspace)
    (folder / "third.csv").unlink()

    second = folder / "second-extractor.csv"
    rows = list(csv.reader(io.StringIO(second.read_text())))
    header = rows[0]
    without_age = io.StringIO()
    csv.writer(without_age, lineterminator="\n").writerows(
        [cell for name, cell in zip(header, row, strict=True) if name != "age"] for row in rows)
    second.write_text(without_age.getvalue())
    with pytest.raises(DataProblems) as missing:
        extractor_sheets(folder, schema)
    assert str(missing.value.problems[0]).startswith(f"{second}:1:age: missing column")

    rows[3][0] = rows[2][0]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    second.write_text(buffer.getvalue())
    with pytest.raises(DataProblems) as repeated:
        extractor_sheets(folder, schema)
    assert str(repeated.value.problems[0]).startswith(f"{second}:4:case_id: ")

    (folder / "not a name.csv").write_text("x")
    with pytest.raises(ReviewError, match=r"named <extractor>\.csv"):
        extractor_sheets(folder, schema)


def _protocol_with(edit) -> None:
    import yaml

    document = yaml.safe_load(Path(PROTOCOL_PATH).read_text())
    edit(document["extraction"])
    parse_protocol(document, source="p.yaml")


def test_protocol_keys_are_checked():
    def text_precision(extraction):
        extraction["fields"][2]["precision"] = 0.1

    def unknown_field(extraction):
        extraction["double_extraction"]["not_compared"] = ["notez"]

    def no_resolution(extraction):
        del extraction["double_extraction"]["resolution"]

    with pytest.raises(ReviewError, match=r"fields\[2\]\.precision: a positive step"):
        _protocol_with(text_precision)
    with pytest.raises(ReviewError, match=r"not_compared\[0\]: 'notez' is not one of"):
        _protocol_with(unknown_field)
    with pytest.raises(ReviewError, match=r"double_extraction\.resolution"):
        _protocol_with(no_resolution)
