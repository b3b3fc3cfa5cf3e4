"""A workbook exported with the sheet, edited while the sheet changed elsewhere (issue 22.1).

Every case uses real XLSX files written by `review extract template --with-cases`, edited with
openpyxl as a reviewer's Excel would, and a sheet changed meanwhile as the web form changes it
(one committed write of cases.csv).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook

from review.errors import DataProblems
from review.extraction.appraisal import read_appraisal
from review.extraction.sheet import format_cases_csv, read_cases, row_version
from review.extraction.workbook import (
    APPRAISAL_BASE_SHEET,
    APPRAISAL_SHEET,
    CASES_BASE_SHEET,
    CASES_SHEET,
    import_workbook,
)


def export(run_cli, workspace, path: Path) -> Path:
    status, _, err = run_cli("--project", workspace.root, "extract", "template", "--out",
                               path, "--with-cases")
    assert status == 0, err
    return path


def edit_workbook(path: Path, case_id: str, changes: dict[str, str]) -> int:
    """Type new values into one patient's row of the Cases sheet; returns its row number."""
    workbook = load_workbook(path)
    sheet = workbook[CASES_SHEET]
    header = [cell.value for cell in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        if row[0].value == case_id:
            for name, value in changes.items():
                row[header.index(name)].value = value
            workbook.save(path)
            return row[0].row
    raise AssertionError(f"{case_id} not in the workbook")


def edit_sheet(workspace, case_id: str, changes: dict[str, str]) -> None:
    """What a web-form save does to the sheet: one patient's cells rewritten."""
    schema = workspace.protocol.extraction
    cases = read_cases(workspace.cases_path, schema)
    chosen = cases["case_id"] == case_id
    assert chosen.any()
    for name, value in changes.items():
        cases.loc[chosen, name] = value
    workspace.cases_path.write_text(format_cases_csv(cases, schema))


def cell(workspace, case_id: str, name: str) -> str:
    cases = read_cases(workspace.cases_path, workspace.protocol.extraction)
    return cases.loc[cases["case_id"] == case_id, name].iloc[0]


FIRST, SECOND = "vargas_2011_1", "onyenekwe_2020_1"


def test_the_issues_case_a_web_correction_survives_a_stale_workbook(run_cli, hcc_workspace,
                                                                    tmp_path):
    path = export(run_cli, hcc_workspace, tmp_path / "a.xlsx")
    edit_sheet(hcc_workspace, FIRST, {"notes": "corrected by B in the web form"})
    edit_workbook(path, SECOND, {"notes": "changed by A in Excel"})
    status, out, err = run_cli("--project", hcc_workspace.root, "extract", "import", path)
    assert status == 0, err
    assert "0 added, 1 updated, 119 unchanged" in out
    assert cell(hcc_workspace, FIRST, "notes") == "corrected by B in the web form"
    assert cell(hcc_workspace, SECOND, "notes") == "changed by A in Excel"


def test_a_cell_changed_on_both_sides_is_refused_then_settled_as_asked(run_cli, hcc_workspace,
                                                                       tmp_path):
    path = export(run_cli, hcc_workspace, tmp_path / "a.xlsx")
    before_age = cell(hcc_workspace, FIRST, "age")
    was = f"'{before_age}'" if before_age else "blank"
    edit_sheet(hcc_workspace, FIRST, {"age": "61", "notes": "web note"})
    other_sex = "F" if cell(hcc_workspace, FIRST, "sex") == "M" else "M"
    row = edit_workbook(path, FIRST, {"age": 62, "sex": other_sex})
    sheet_before = hcc_workspace.cases_path.read_bytes()

    status, out, _ = run_cli("--project", hcc_workspace.root, "extract", "import", path)
    assert status == 1
    [line] = [line for line in out.splitlines() if "since the export" in line]
    assert line == (f"{path}[Cases]:{row}:age: changed in the workbook to '62' and in the sheet "
                    f"to '61' since the export (it was {was}); type the value to keep "
                    "in this cell and import again, or import with --on-conflict workbook "
                    "(or sheet)")
    assert hcc_workspace.cases_path.read_bytes() == sheet_before

    status, out, err = run_cli("--project", hcc_workspace.root, "extract", "import", path,
                               "--on-conflict", "sheet")
    assert status == 0, err
    assert f"conflict: {path}[Cases]:{row}:age:" in out and "kept the sheet's '61'" in out
    assert cell(hcc_workspace, FIRST, "age") == "61"
    assert cell(hcc_workspace, FIRST, "notes") == "web note"  # changed on one side only
    assert cell(hcc_workspace, FIRST, "sex") == other_sex  # changed in the workbook only

    edit_sheet(hcc_workspace, FIRST, {"age": "63"})
    status, out, err = run_cli("--project", hcc_workspace.root, "extract", "import", path,
                               "--on-conflict", "workbook")
    assert status == 0, err
    assert cell(hcc_workspace, FIRST, "age") == "62"


def test_typing_the_sheets_value_in_the_workbook_resolves_the_cell(hcc_workspace, run_cli,
                                                                  tmp_path):
    path = export(run_cli, hcc_workspace, tmp_path / "a.xlsx")
    edit_sheet(hcc_workspace, FIRST, {"age": "61"})
    edit_workbook(path, FIRST, {"age": 62})
    with pytest.raises(DataProblems):
        import_workbook(hcc_workspace, path)
    edit_workbook(path, FIRST, {"age": 61})
    result = import_workbook(hcc_workspace, path)
    assert result.cases == {"added": 0, "updated": 0, "unchanged": 120}


def test_a_patient_removed_from_the_sheet_is_not_brought_back_by_an_unchanged_row(
        hcc_workspace, run_cli, tmp_path):
    path = export(run_cli, hcc_workspace, tmp_path / "a.xlsx")
    schema = hcc_workspace.protocol.extraction
    cases = read_cases(hcc_workspace.cases_path, schema)
    hcc_workspace.cases_path.write_text(format_cases_csv(cases[cases.case_id != SECOND], schema))
    result = import_workbook(hcc_workspace, path)
    assert result.cases == {"added": 0, "updated": 0, "unchanged": 119}
    assert SECOND not in hcc_workspace.cases_path.read_text()

    row = edit_workbook(path, SECOND, {"notes": "still editing this one"})
    with pytest.raises(DataProblems) as caught:
        import_workbook(hcc_workspace, path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}[Cases]:{row}:case_id: '{SECOND}' was removed from the sheet since the export, "
        "but this workbook changed it; type the value to keep in this cell and import again, "
        "or import with --on-conflict workbook (or sheet)"]
    assert import_workbook(hcc_workspace, path, "sheet").cases["added"] == 0
    assert SECOND not in hcc_workspace.cases_path.read_text()
    assert import_workbook(hcc_workspace, path, "workbook").cases["added"] == 1
    assert cell(hcc_workspace, SECOND, "notes") == "still editing this one"


def test_a_row_new_on_both_sides_under_one_id_is_a_conflict(hcc_workspace, run_cli, tmp_path,
                                                            protocol):
    path = export(run_cli, hcc_workspace, tmp_path / "a.xlsx")
    schema = protocol.extraction
    cases = read_cases(hcc_workspace.cases_path, schema)
    template = cases[cases.case_id == FIRST].iloc[0].to_dict()
    web = dict(template, case_id="vargas_2011_2", age="40")
    hcc_workspace.cases_path.write_text(format_cases_csv(
        cases._append(web, ignore_index=True), schema))
    workbook = load_workbook(path)
    header = [c.value for c in workbook[CASES_SHEET][1]]
    workbook[CASES_SHEET].append([dict(template, case_id="vargas_2011_2", age="50")[name] or None
                                  for name in header])
    workbook.save(path)
    with pytest.raises(DataProblems) as caught:
        import_workbook(hcc_workspace, path)
    [line] = [str(p) for p in caught.value.problems]
    assert ":age: this row is new in the workbook, but 'vargas_2011_2' was added to the sheet " \
           "since the export with '40' here, not '50'" in line
    assert cell(hcc_workspace, "vargas_2011_2", "age") == "40"


def test_an_edited_record_of_the_export_is_refused(hcc_workspace, run_cli, tmp_path):
    path = export(run_cli, hcc_workspace, tmp_path / "a.xlsx")
    workbook = load_workbook(path)
    assert workbook[CASES_BASE_SHEET].sheet_state == "hidden"
    workbook[CASES_BASE_SHEET].cell(row=3, column=4).value = "tampered"
    workbook.save(path)
    before = hcc_workspace.cases_path.read_bytes()
    with pytest.raises(DataProblems) as caught:
        import_workbook(hcc_workspace, path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}[{CASES_BASE_SHEET}]:3:row_version: this hidden record of the export was "
        "edited, so the import cannot tell your changes from the sheet's; export a fresh "
        "workbook"]
    assert hcc_workspace.cases_path.read_bytes() == before


def test_appraisals_merge_three_ways_too(hcc_workspace, run_cli, tmp_path, protocol):
    appraisal = protocol.extraction.appraisal
    header = "study_id,appraiser," + ",".join(item.id for item in appraisal.items) + ",notes"
    answers = ",".join(["Yes"] * len(appraisal.items))
    hcc_workspace.appraisal_path.write_text(
        f"{header}\nvargas_2011,ana,{answers},first look\n")
    path = export(run_cli, hcc_workspace, tmp_path / "a.xlsx")
    workbook = load_workbook(path)
    assert workbook[APPRAISAL_SHEET].cell(row=2, column=2).value == "ana"
    base = workbook[APPRAISAL_BASE_SHEET]
    cells = [c.value or "" for c in base[2]]
    assert cells[0] == row_version(cells[1:])
    # ana's web form changes the note; in the workbook ben appraises another report
    hcc_workspace.appraisal_path.write_text(
        f"{header}\nvargas_2011,ana,{answers},looked again on the web\n")
    sheet = workbook[APPRAISAL_SHEET]
    for column, value in enumerate(["ben", *["No"] * len(appraisal.items), "mine"], start=2):
        sheet.cell(row=3, column=column, value=value)
    workbook.save(path)
    result = import_workbook(hcc_workspace, path)
    assert result.appraisal == {"added": 1, "updated": 0, "unchanged": 1}
    rows = read_appraisal(hcc_workspace.appraisal_path, appraisal)
    assert dict(zip(rows.appraiser, rows.notes, strict=True)) == {
        "ana": "looked again on the web", "ben": "mine"}


def test_an_unknown_side_is_refused_by_the_command(hcc_workspace, run_cli, tmp_path):
    path = export(run_cli, hcc_workspace, tmp_path / "a.xlsx")
    with pytest.raises(SystemExit):
        run_cli("--project", hcc_workspace.root, "extract", "import", path, "--on-conflict",
                "mine")
