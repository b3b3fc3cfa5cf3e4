"""The Excel round trip on real XLSX files: template, filled with openpyxl, imported."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from review.errors import DataProblems, ReviewError
from review.extraction.sheet import empty_cases, format_cases_csv
from review.extraction.workbook import (
    APPRAISAL_SHEET,
    CASES_SHEET,
    VOCABULARY_SHEET,
    build_template,
    import_workbook,
)
from tests.conftest import CASES_PATH


def save_template(protocol, path: Path, cases=None) -> Path:
    path.write_bytes(build_template(protocol, cases))
    return path


def fill(path: Path, rows: list[dict], protocol, sheet: str = CASES_SHEET) -> None:
    """Type rows into a workbook as a reviewer would: numbers as numbers, codes as text."""
    workbook = load_workbook(path)
    target = workbook[sheet]
    header = [cell.value for cell in target[1]]
    numeric = {spec.name for spec in protocol.extraction.fields if spec.numeric}
    for row in rows:
        values = []
        for column in header:
            cell = row.get(column, "")
            if cell and column in numeric:
                cell = float(cell) if "." in cell else int(cell)
            values.append(cell if cell != "" else None)
        target.append(values)
    workbook.save(path)


@pytest.fixture
def empty_workspace(hcc_workspace):
    schema = hcc_workspace.protocol.extraction
    hcc_workspace.cases_path.write_text(format_cases_csv(empty_cases(schema), schema))
    return hcc_workspace


def test_template_has_drop_downs_messages_and_frozen_header(protocol, tmp_path):
    workbook = load_workbook(save_template(protocol, tmp_path / "t.xlsx"))
    assert workbook.sheetnames == [CASES_SHEET, VOCABULARY_SHEET, APPRAISAL_SHEET, "About"]
    cases = workbook[CASES_SHEET]
    header = [cell.value for cell in cases[1]]
    assert header == protocol.extraction.columns
    assert cases.freeze_panes == "B2"
    validations = {str(v.sqref).split(":")[0]: v for v in cases.data_validations.dataValidation}
    assert len(validations) == len(header)
    column_of = {name: cases.cell(row=1, column=i + 1).column_letter
                 for i, name in enumerate(header)}
    sex = validations[f"{column_of['sex']}2"]
    assert sex.type == "list" and sex.showErrorMessage
    assert sex.formula1 == "'Vocabularies'!$A$2:$A$3"
    sites = validations[f"{column_of['bone_sites']}2"]
    assert sites.type == "list" and not sites.showErrorMessage
    assert "separated by ';'" in sites.prompt
    age = validations[f"{column_of['age']}2"]
    assert (age.type, age.formula1, age.formula2) == ("whole", "0", "110")
    assert all(v.showInputMessage and v.prompt for v in validations.values())
    vocabulary = workbook[VOCABULARY_SHEET]
    columns = {col[0].value: [c.value for c in col[1:] if c.value] for col in vocabulary.columns}
    assert columns["bone_sites"] == list(protocol.extraction.field("bone_sites").values)
    assert columns["appraisal_answers"] == ["Yes", "No", "Unclear", "Not applicable"]
    appraisal = workbook[APPRAISAL_SHEET]
    assert [c.value for c in appraisal[1]][2:10] == [i.id for i in
                                                    protocol.extraction.appraisal.items]


def test_template_is_the_same_bytes_every_time(protocol):
    assert build_template(protocol) == build_template(protocol)


def test_round_trip_template_filled_imported_gives_same_data(protocol, shipped_cases,
                                                             empty_workspace, tmp_path):
    path = save_template(protocol, tmp_path / "filled.xlsx")
    fill(path, shipped_cases.to_dict(orient="records"), protocol)
    result = import_workbook(empty_workspace, path)
    assert result.cases == {"added": 93, "updated": 0, "unchanged": 0}
    assert empty_workspace.cases_path.read_bytes() == CASES_PATH.read_bytes()
    again = import_workbook(empty_workspace, path)
    assert again.cases == {"added": 0, "updated": 0, "unchanged": 93}


def test_import_updates_and_adds_by_case_id(protocol, shipped_cases, hcc_workspace, tmp_path):
    path = save_template(protocol, tmp_path / "more.xlsx")
    changed = shipped_cases[shipped_cases.case_id == "merhaben_2025_1"].iloc[0].to_dict()
    changed["survival_months_after_bone_met"] = "14.5"
    new = dict(changed, case_id="merhaben_2025_2", notes="second patient")
    fill(path, [changed, new], protocol)
    result = import_workbook(hcc_workspace, path)
    assert result.cases == {"added": 1, "updated": 1, "unchanged": 0}
    text = hcc_workspace.cases_path.read_text()
    assert text.count("merhaben_2025_") == 2
    assert ",dead,14.5," in text


def test_any_error_changes_nothing_and_all_are_reported(protocol, shipped_cases, hcc_workspace,
                                                        tmp_path):
    before = hcc_workspace.cases_path.read_bytes()
    path = save_template(protocol, tmp_path / "bad.xlsx")
    good = shipped_cases.iloc[0].to_dict()
    rows = [dict(good, case_id="zed_2020_1", study_id="zed_2020", sex="female"),
            dict(good, case_id="zed_2020_2", study_id="zed_2020", age="130"),
            dict(good, case_id="zed_2020_1", study_id="zed_2020")]
    fill(path, rows, protocol)
    with pytest.raises(DataProblems) as caught:
        import_workbook(hcc_workspace, path)
    lines = [str(p) for p in caught.value.problems]
    assert f"{path}[Cases]:2:sex: not in the vocabulary (got 'female'; allowed: F, M)" in lines
    assert f"{path}[Cases]:3:age: above the maximum 110 years (got '130')" in lines
    assert any(line.startswith(f"{path}[Cases]:4:case_id: duplicate case_id") for line in lines)
    assert hcc_workspace.cases_path.read_bytes() == before
    assert not hcc_workspace.appraisal_path.exists()


def test_import_conflicting_with_the_sheet_is_addressed_in_both(protocol, shipped_cases,
                                                               hcc_workspace, tmp_path):
    path = save_template(protocol, tmp_path / "clash.xlsx")
    doval = shipped_cases[shipped_cases.study_id == "doval_2006"].iloc[0].to_dict()
    fill(path, [dict(doval, case_id="doval_2006_5", pub_year="2007")], protocol)
    with pytest.raises(DataProblems) as caught:
        import_workbook(hcc_workspace, path)
    [line] = [str(p) for p in caught.value.problems]
    assert line.startswith(f"{path}[Cases]:2:pub_year: rows of study_id 'doval_2006' disagree "
                           f"(got '2007'; {hcc_workspace.cases_path}:")


def test_excel_date_cells_are_reported(protocol, shipped_cases, hcc_workspace, tmp_path):
    path = save_template(protocol, tmp_path / "dates.xlsx")
    workbook = load_workbook(path)
    row = shipped_cases.iloc[0].to_dict()
    header = [c.value for c in workbook[CASES_SHEET][1]]
    workbook[CASES_SHEET].append([dt.datetime(2026, 1, 2) if h == "vertebral_levels" else
                                  (row[h] or None) for h in header])
    workbook.save(path)
    with pytest.raises(DataProblems) as caught:
        import_workbook(hcc_workspace, path)
    assert "vertebral_levels: Excel turned this cell into a date" in str(caught.value.problems[0])


def test_appraisal_sheet_is_imported(protocol, shipped_cases, hcc_workspace, tmp_path):
    path = save_template(protocol, tmp_path / "appraisal.xlsx", cases=shipped_cases)
    workbook = load_workbook(path)
    sheet = workbook[APPRAISAL_SHEET]
    assert sheet.cell(row=2, column=1).value == sorted(set(shipped_cases.study_id))[0]
    study = sheet.cell(row=2, column=1).value
    for column, value in enumerate(["ana", "Yes", "No", "Unclear", "Yes", "Yes", "Yes",
                                    "Not applicable", "Yes", "clear report"], start=2):
        sheet.cell(row=2, column=column, value=value)
    workbook.save(path)
    result = import_workbook(hcc_workspace, path)
    assert result.appraisal == {"added": 1, "updated": 0, "unchanged": 0}
    assert result.cases["unchanged"] == 93
    lines = hcc_workspace.appraisal_path.read_text().splitlines()
    assert lines[0].startswith("study_id,appraiser,demographics,history")
    assert lines[1] == f"{study},ana,Yes,No,Unclear,Yes,Yes,Yes,Not applicable,Yes,clear report"


def test_bad_appraisal_answers_are_reported(protocol, shipped_cases, hcc_workspace, tmp_path):
    path = save_template(protocol, tmp_path / "appraisal.xlsx")
    workbook = load_workbook(path)
    workbook[APPRAISAL_SHEET].append(["no_such_2020", "ana", "Maybe"])
    workbook.save(path)
    with pytest.raises(DataProblems) as caught:
        import_workbook(hcc_workspace, path)
    lines = [str(p) for p in caught.value.problems]
    assert f"{path}[Appraisal]:2:study_id: no such study in the extraction sheet " \
           "(got 'no_such_2020')" in lines
    assert f"{path}[Appraisal]:2:demographics: not an appraisal answer (got 'Maybe'; " \
           "allowed: Yes, No, Unclear, Not applicable)" in lines


def test_file_that_is_not_a_workbook(hcc_workspace, tmp_path):
    for name, data in (("cases.xlsx", CASES_PATH.read_bytes()), ("empty.xlsx", b""),
                       ("random.xlsx", bytes(range(256)))):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ReviewError, match=r"not an Excel workbook \(\.xlsx\)"):
            import_workbook(hcc_workspace, path)
    archive = tmp_path / "zip.xlsx"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("hello.txt", "not a workbook")
    with pytest.raises(ReviewError, match="not an Excel workbook"):
        import_workbook(hcc_workspace, archive)


def test_workbook_of_another_schema(hcc_workspace, tmp_path):
    from review.workspace import create_workspace
    other = create_workspace(tmp_path / "other-review")
    path = tmp_path / "other.xlsx"
    path.write_bytes(build_template(other.protocol))
    before = hcc_workspace.cases_path.read_bytes()
    with pytest.raises(DataProblems) as caught:
        import_workbook(hcc_workspace, path)
    lines = [str(p) for p in caught.value.problems]
    assert lines[0] == f"{path}: this workbook was made for the review 'other-review', " \
                       "not 'hcc-bone-metastasis'"
    assert f"{path}[Cases]:1:bone_sites: missing column" in lines
    assert hcc_workspace.cases_path.read_bytes() == before


def test_workbook_without_cases_sheet(hcc_workspace, tmp_path):
    from openpyxl import Workbook
    workbook = Workbook()
    workbook.active.title = "Sheet1"
    buffer = io.BytesIO()
    workbook.save(buffer)
    path = tmp_path / "plain.xlsx"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ReviewError, match="no 'Cases' sheet"):
        import_workbook(hcc_workspace, path)


def test_template_cli_writes_a_workbook(hcc_workspace, run_cli, tmp_path):
    out = tmp_path / "t.xlsx"
    status, text, _ = run_cli("--project", hcc_workspace.root, "extract", "template",
                              "--out", out, "--with-cases")
    assert status == 0, text
    assert load_workbook(out)[CASES_SHEET].max_row == 94
