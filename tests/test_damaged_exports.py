"""Exports damaged on the way (a download cut short, a flipped bit) are refused with the file
and line, exit 2, and the record store is left as it was."""

from __future__ import annotations

import io
import random

import openpyxl
import pytest

from review.errors import DataProblems, ReviewError
from review.extraction.sheet import read_cases
from review.extraction.workbook import build_template, read_workbook
from review.search.readers import xlsx_export
from tests.conftest import CASES_PATH

FULL = ('Title,Abstract,Year\n"Spinal metastasis, a case","Back pain, then paraplegia",2020\n'
        '"Skull metastasis","A scalp mass",2021\n')


def records_file(workspace) -> bytes | None:
    path = workspace.search_dir / "records.jsonl"
    return path.read_bytes() if path.exists() else None


@pytest.mark.parametrize(("name", "text", "message"), [
    ("cut.csv", FULL[:FULL.rindex('"A scalp')] + '"A sca', ":3: not valid CSV (unexpected end "
                                                            "of data)"),
    ("short.csv", FULL[:FULL.rindex(",2021")] + "\n", ":3: 2 fields, but the header has 3 "
                                                      "(is the file cut short?)"),
    ("short.tsv", FULL.replace(",", "\t").replace("Spinal metastasis\t a case",
                                                  "Spinal metastasis a case")
     .replace("Back pain\t then", "Back pain then")[:-6] + "\n",
     ":3: 2 fields, but the header has 3"),
])
def test_a_truncated_export_is_refused_and_nothing_is_stored(hcc_workspace, run_cli, tmp_path,
                                                             name, text, message):
    good = tmp_path / "good.csv"
    good.write_text(FULL)
    assert run_cli("--project", hcc_workspace.root, "import", good, "--source", "Embase")[0] == 0
    before = records_file(hcc_workspace)
    damaged = tmp_path / name
    damaged.write_text(text)
    status, _, err = run_cli("--project", hcc_workspace.root, "import", damaged,
                               "--source", "Embase")
    assert status == 2
    assert err.count("\n") == 1 and f"{damaged}{message}" in err
    assert records_file(hcc_workspace) == before


def _flipped(data: bytes, count: int, seed: int) -> list[bytes]:
    generator = random.Random(seed)
    damaged = []
    for _ in range(count):
        copy = bytearray(data)
        copy[generator.randrange(len(copy))] ^= 1 << generator.randrange(8)
        damaged.append(bytes(copy))
    return damaged


def test_a_bit_flipped_export_workbook_is_a_clear_error_never_a_traceback():
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Title", "Abstract", "Year"])
    for index in range(40):
        sheet.append([f"Case {index}: vertebral metastasis", "A case. " * 20, 2000 + index % 20])
    buffer = io.BytesIO()
    workbook.save(buffer)
    refused = 0
    for data in _flipped(buffer.getvalue(), 300, seed=11):
        try:
            xlsx_export.read(data, "flipped.xlsx")
        except ReviewError as error:
            assert str(error).startswith("flipped.xlsx:") and "\n" not in str(error)
            refused += 1
    assert refused > 100  # most flips break the zip, the deflate stream or the XML


def test_a_bit_flipped_extraction_workbook_is_a_clear_error(protocol, tmp_path):
    data = build_template(protocol, read_cases(CASES_PATH, protocol.extraction))
    path = tmp_path / "flipped.xlsx"
    refused = 0
    for damaged in _flipped(data, 80, seed=5):
        path.write_bytes(damaged)
        try:
            read_workbook(path, protocol)
        except ReviewError as error:
            assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
            refused += 1
        except DataProblems:  # a flip inside a cell's text: that cell is named
            pass
    assert refused > 20


def test_a_column_named_twice_is_refused(hcc_workspace, run_cli, tmp_path):
    export = tmp_path / "twice.csv"
    export.write_text("Title,Abstract,title\nSpinal metastasis,A case,Another title\n")
    status, _, err = run_cli("--project", hcc_workspace.root, "import", export,
                             "--source", "Embase")
    assert status == 2
    assert f"{export}:1: column 'title' appears twice (columns 1 and 3)" in err
    assert records_file(hcc_workspace) is None


def test_a_control_character_the_workbook_cannot_hold_is_named(hcc_workspace, run_cli,
                                                               tmp_path):
    sheet = hcc_workspace.cases_path
    text = sheet.read_text()
    sheet.write_text(text.replace("Temporal bone metastasis with facial palsy",
                                  "Temporal bone\x0bmetastasis with facial palsy", 1))
    status, _, err = run_cli("--project", hcc_workspace.root, "extract", "template",
                             "--with-cases", "--out", tmp_path / "sheet.xlsx")
    assert status == 2 and err.count("\n") == 1
    row = next(number for number, line in enumerate(sheet.read_text().split("\n"), start=1)
               if "\x0b" in line)
    assert f"(notes, row {row} of the sheet): a control character (U+000B)" in err
    assert not (tmp_path / "sheet.xlsx").exists()
