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
    assert result.cases == {"added": 120, "updated": 0, "unchanged": 0}
    assert empty_workspace.cases_path.read_bytes() == CASES_PATH.read_bytes()
    again = import_workbook(empty_workspace, path)
    assert again.cases == {"added": 0, "updated": 0, "unchanged": 120}


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
    assert result.cases["unchanged"] == 120
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
    assert load_workbook(out)[CASES_SHEET].max_row == 121


# (row, column, text): row None is every row of the first report, whose rows must agree.
HOSTILE = [(0, "notes", "=> pain improved"), (0, "country", "=Japan"),
           (None, "source_title", "=cmd|' /C calc'!A0"),
           (1, "notes", '=HYPERLINK("http://x","y")'), (2, "notes", "@SUM(A1:A2)"),
           (3, "notes", "+ remission"), (4, "notes", "-40 (negative?)")]


def test_template_with_cases_writes_text_never_formulas_and_round_trips(
        protocol, shipped_cases, hcc_workspace, tmp_path):
    cases = shipped_cases.copy()
    study = cases.loc[0, "study_id"]
    for row, column, value in HOSTILE:
        cases.loc[cases["study_id"] == study if row is None else cases.index == row,
                  column] = value
    hcc_workspace.cases_path.write_text(format_cases_csv(cases, protocol.extraction))
    path = save_template(protocol, tmp_path / "with_cases.xlsx", cases)
    with zipfile.ZipFile(path) as archive:
        sheets = [archive.read(name).decode() for name in archive.namelist()
                  if name.startswith("xl/worksheets/")]
    assert not any("<f>" in sheet for sheet in sheets)
    result = import_workbook(hcc_workspace, path)
    assert result.cases == {"added": 0, "updated": 0, "unchanged": len(cases)}
    assert hcc_workspace.cases_path.read_text() == format_cases_csv(cases, protocol.extraction)


def test_a_cell_over_excels_limit_is_refused_when_writing_the_template(protocol,
                                                                        shipped_cases):
    cases = shipped_cases.copy()
    cases.loc[2, "notes"] = "long " * 8000
    with pytest.raises(ReviewError, match=r"Cases!\w+4: 40,000 characters, over Excel's cell "
                                          r"limit of 32,766"):
        build_template(protocol, cases)


def test_formula_cells_take_their_saved_value_or_are_errors(protocol, shipped_cases,
                                                            empty_workspace, tmp_path):
    rows = shipped_cases.head(3).to_dict(orient="records")
    path = save_template(protocol, tmp_path / "formulas.xlsx")
    fill(path, rows, protocol)
    workbook = load_workbook(path)
    sheet = workbook[CASES_SHEET]
    header = [cell.value for cell in sheet[1]]
    age = header.index("age") + 1
    sheet.cell(row=2, column=age).value = "=40+5"  # openpyxl saves no cached value
    sheet.cell(row=3, column=age).value = "=A1"
    workbook.save(path)
    with pytest.raises(DataProblems) as raised:
        import_workbook(empty_workspace, path)
    messages = [str(problem) for problem in raised.value.problems]
    assert any("[Cases]:2:age: a formula (=40+5) without a saved value" in m for m in messages)
    assert any("[Cases]:3:age: a formula (=A1) without a saved value" in m for m in messages)
    # Excel keeps the value it computed; such a cell imports as that value.
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet_part = next(name for name in parts if name.startswith("xl/worksheets/sheet1"))
    parts[sheet_part] = parts[sheet_part].replace(b"<f>40+5</f><v></v>", b"<f>40+5</f><v>45</v>"
                                                  ).replace(b"<f>40+5</f><v />",
                                                            b"<f>40+5</f><v>45</v>")
    parts[sheet_part] = parts[sheet_part].replace(b"<f>A1</f><v></v>", b"<f>A1</f><v>50</v>"
                                                  ).replace(b"<f>A1</f><v />",
                                                            b"<f>A1</f><v>50</v>")
    cached = tmp_path / "cached.xlsx"
    with zipfile.ZipFile(cached, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    import_workbook(empty_workspace, cached)
    imported = empty_workspace.cases_path.read_text().splitlines()
    assert ",45," in imported[1] and ",50," in imported[2]


def test_a_huge_cell_in_a_filled_workbook_is_an_error_at_its_cell(protocol, shipped_cases,
                                                                  empty_workspace, tmp_path):
    rows = shipped_cases.head(2).to_dict(orient="records")
    rows[1]["notes"] = "x" * 131_073
    path = save_template(protocol, tmp_path / "huge.xlsx")
    fill(path, rows, protocol)
    with pytest.raises(DataProblems) as raised:
        import_workbook(empty_workspace, path)
    assert any("[Cases]:3:notes: 32,767 characters, at Excel's cell limit" in str(problem)
               for problem in raised.value.problems)
    assert empty_workspace.cases_path.read_text().count("\n") == 1  # nothing imported


def test_a_truncated_workbook_part_is_a_one_line_error(hcc_workspace, tmp_path):
    template = build_template(hcc_workspace.protocol)
    with zipfile.ZipFile(io.BytesIO(template)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    name = next(part for part in parts if part.startswith("xl/worksheets/sheet1"))
    parts[name] = parts[name][: len(parts[name]) // 2]
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(broken, "w") as archive:
        for part, data in parts.items():
            archive.writestr(part, data)
    with pytest.raises(ReviewError, match=r"broken\.xlsx: a damaged Excel workbook"):
        import_workbook(hcc_workspace, broken)
