"""The schema changes during a review: `review extract migrate` and workbooks made before."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from review.workspace import Workspace


def edit(workspace: Workspace, old: str, new: str) -> Workspace:
    text = workspace.protocol_path.read_text(encoding="utf-8")
    assert old in text, old
    workspace.protocol_path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return Workspace(workspace.root)


NEW_FIELD = ("    - name: notes\n",
             "    - name: ecog\n      type: integer\n      min: 0\n      max: 4\n"
             "      description: ECOG performance status.\n    - name: notes\n")
RENAME = ("    - name: country\n", "    - name: country_of_report\n      renamed_from: country\n")
# The protocol's other references to the field follow it (here the duplicate-patient screen).
RENAME_REFERENCE = ("differ_not: [country, etiology]", "differ_not: [country_of_report, etiology]")


def column(workspace: Workspace, name: str) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(workspace.cases_path.read_text())))
    return [row[name] for row in rows]


def test_migrate_adds_renames_and_keeps_every_cell(hcc_workspace, run_cli):
    countries = column(hcc_workspace, "country")
    workspace = edit(edit(edit(hcc_workspace, *NEW_FIELD), *RENAME), *RENAME_REFERENCE)
    status, out, _ = run_cli("--project", workspace.root, "extract", "validate")
    assert status == 1
    assert "ecog: missing column" in out and "review extract migrate" in out
    status, out, _ = run_cli("--project", workspace.root, "extract", "migrate")
    assert status == 0
    assert "column 'country' renamed to 'country_of_report'" in out
    assert "column 'ecog' added, blank" in out
    assert column(workspace, "country_of_report") == countries
    assert set(column(workspace, "ecog")) == {""}
    assert run_cli("--project", workspace.root, "extract", "validate")[0] == 0
    assert run_cli("--project", workspace.root, "status")[0] == 0
    status, out, _ = run_cli("--project", workspace.root, "extract", "migrate")
    assert status == 0 and "already in the schema's columns" in out


def test_migrate_refuses_to_drop_a_column_holding_data_unless_told(hcc_workspace, run_cli):
    before = hcc_workspace.cases_path.read_bytes()
    text = hcc_workspace.protocol_path.read_text()
    start = text.index("    - name: country\n")
    end = text.index("    - name:", start + 10)
    hcc_workspace.protocol_path.write_text((text[:start] + text[end:]).replace(
        "differ_not: [country, etiology]", "differ_not: [etiology]"))
    filled = sum(bool(value) for value in column(hcc_workspace, "country"))
    status, _, err = run_cli("--project", hcc_workspace.root, "extract", "migrate")
    assert status == 2
    assert f"'country' ({filled} rows with data)" in err and "--drop" in err
    assert hcc_workspace.cases_path.read_bytes() == before
    status, out, _ = run_cli("--project", hcc_workspace.root, "extract", "migrate", "--drop",
                             "country")
    assert status == 0 and f"dropped with its data in {filled} rows" in out
    assert "country" not in hcc_workspace.cases_path.read_text().splitlines()[0]


def test_a_workbook_from_before_the_change_imports_by_column_name(hcc_workspace, run_cli,
                                                                  tmp_path):
    workbook_path = tmp_path / "old.xlsx"
    assert run_cli("--project", hcc_workspace.root, "extract", "template", "--out",
                   workbook_path, "--with-cases")[0] == 0
    workbook = load_workbook(workbook_path)
    sheet = workbook["Cases"]
    header = [cell.value for cell in sheet[1]]
    country = header.index("country") + 1
    sheet.cell(row=2, column=country).value = "Atlantis"
    workbook.save(workbook_path)

    workspace = edit(edit(edit(hcc_workspace, *NEW_FIELD), *RENAME), *RENAME_REFERENCE)
    assert run_cli("--project", workspace.root, "extract", "migrate")[0] == 0
    status, out, err = run_cli("--project", workspace.root, "extract", "import", workbook_path)
    assert status == 0, out + err
    assert "1 updated" in out
    assert "note: " in out and "column 'country' renamed to 'country_of_report'" in out
    assert "column 'ecog' added, blank" in out
    assert "Atlantis" in column(workspace, "country_of_report")


def test_migrate_names_a_ragged_row_by_its_line_and_writes_nothing(hcc_workspace, run_cli):
    lines = hcc_workspace.cases_path.read_text().splitlines()
    lines.insert(2, "")  # a blank line: the ragged row below is still named by its own line
    lines.insert(4, "only,three,cells")
    hcc_workspace.cases_path.write_text("\n".join(lines) + "\n")
    before = hcc_workspace.cases_path.read_bytes()
    status, out, err = run_cli("--project", hcc_workspace.root, "extract", "migrate")
    assert status == 1
    assert "cases.csv:5: 3 cells, but the header has" in out + err
    assert hcc_workspace.cases_path.read_bytes() == before
