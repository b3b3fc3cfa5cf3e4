"""Reading and writing the extraction sheet, and every kind of bad input file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from review.errors import DataProblems, ReviewError
from review.extraction.sheet import (
    MIGRATE_HINT,
    format_cases_csv,
    read_cases,
    study_table,
    typed_cases,
)
from review.fileio import write_atomically, write_files_atomically
from tests.conftest import CASES_PATH

SHIPPED = CASES_PATH.read_bytes()


def written(tmp_path: Path, data: bytes, name: str = "cases.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_writer_reproduces_the_shipped_file_byte_for_byte(shipped_cases, protocol):
    assert format_cases_csv(shipped_cases, protocol.extraction).encode("utf-8") == SHIPPED


def test_utf8_bom_and_windows_line_endings_read_the_same(tmp_path, protocol, shipped_cases):
    bom = written(tmp_path, b"\xef\xbb\xbf" + SHIPPED.replace(b"\n", b"\r\n"))
    frame = read_cases(bom, protocol.extraction)
    assert frame.equals(shipped_cases)


def test_latin1_is_refused_with_the_line_and_accepted_when_declared(tmp_path, protocol):
    text = SHIPPED.decode("utf-8").replace("Tunisia", "Tunísia", 1)
    path = written(tmp_path, text.encode("latin-1", errors="replace"))
    line = text[: text.index("Tunísia")].count("\n") + 1
    with pytest.raises(ReviewError) as caught:
        read_cases(path, protocol.extraction)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: not UTF-8 (byte 0x")
    assert "--encoding latin-1" in message
    frame = read_cases(path, protocol.extraction, encoding="latin-1")
    assert "Tunísia" in set(frame.country)


def test_empty_file_is_a_file_error(tmp_path, protocol):
    with pytest.raises(ReviewError, match=r"cases\.csv: empty file"):
        read_cases(written(tmp_path, b""), protocol.extraction)
    with pytest.raises(ReviewError, match="empty file"):
        read_cases(written(tmp_path, b"\n\r\n  \n"), protocol.extraction)


def test_header_only_is_an_empty_sheet(tmp_path, protocol):
    header = SHIPPED.split(b"\n", 1)[0] + b"\n"
    assert read_cases(written(tmp_path, header), protocol.extraction).empty


def test_missing_and_renamed_columns_are_named(tmp_path, protocol):
    text = SHIPPED.decode("utf-8").replace("vital_status", "status", 1)
    text = text.replace(",pathological_fracture,", ",pathological_fractur,", 1)
    with pytest.raises(DataProblems) as caught:
        read_cases(written(tmp_path, text.encode()), protocol.extraction)
    lines = [str(problem) for problem in caught.value.problems]
    path = tmp_path / "cases.csv"
    assert f"{path}:1:pathological_fractur: unknown column (renamed from " \
           "'pathological_fracture'?)" in lines
    assert f"{path}:1:vital_status: missing column" in lines
    assert f"{path}:1:status: unknown column (renamed from 'vital_status'?)" in lines


def test_a_dropped_column_is_named(tmp_path, protocol, shipped_cases):
    text = shipped_cases.drop(columns=["notes"]).to_csv(index=False)
    with pytest.raises(DataProblems) as caught:
        read_cases(written(tmp_path, text.encode()), protocol.extraction)
    lines = [str(p) for p in caught.value.problems]
    assert lines[0] == f"{tmp_path / 'cases.csv'}:1:notes: missing column"
    assert lines[1:] == [f"{tmp_path / 'cases.csv'}:1: {MIGRATE_HINT}"]


def test_reordered_columns_are_accepted(tmp_path, protocol, shipped_cases):
    columns = list(reversed(shipped_cases.columns))
    path = written(tmp_path, shipped_cases[columns].to_csv(index=False).encode())
    assert read_cases(path, protocol.extraction).equals(shipped_cases)


def test_semicolon_separated_sheet_is_recognised(tmp_path, protocol):
    text = SHIPPED.decode("utf-8").split("\n", 1)[0].replace(",", ";") + "\n"
    with pytest.raises(ReviewError, match=r":1: the header is separated by ';'"):
        read_cases(written(tmp_path, text.encode()), protocol.extraction)


def test_row_with_wrong_number_of_cells_is_named(tmp_path, protocol):
    lines = SHIPPED.decode("utf-8").split("\n")
    lines[3] = lines[3] + ",extra"
    with pytest.raises(DataProblems) as caught:
        read_cases(written(tmp_path, "\n".join(lines).encode()), protocol.extraction)
    assert str(caught.value.problems[0]).endswith(":4: 30 cells, but the header has 29")


def test_unclosed_quote_is_a_file_error(tmp_path, protocol):
    text = SHIPPED.decode("utf-8") + 'x_2020_1,x_2020,"unclosed title\n'
    with pytest.raises(ReviewError, match="not valid CSV"):
        read_cases(written(tmp_path, text.encode()), protocol.extraction)


def test_binary_file_is_refused(tmp_path, protocol):
    with pytest.raises(ReviewError, match="not UTF-8"):
        read_cases(written(tmp_path, bytes(range(256)) * 4), protocol.extraction)


def test_study_table_is_derived(shipped_cases, protocol):
    studies = study_table(shipped_cases, protocol.extraction)
    assert len(studies) == 113
    assert studies.patients.sum() == 120
    doval = studies.set_index("study_id").loc["doval_2006"]
    assert doval.patients == 4
    assert doval.extraction_basis == "mixed"
    assert doval.doi == "10.3748/wjg.v12.i32.5247"
    index_case = studies.set_index("study_id").loc["merhaben_2025"]
    assert (index_case.pmid, index_case.pub_year) == ("40828566", "2025")


def test_typed_cases_keep_not_reported_apart_from_empty(shipped_cases, protocol):
    typed = typed_cases(shipped_cases, protocol.extraction).set_index("case_id")
    case = typed.loc["merhaben_2025_1"]
    assert case.age == 55
    assert case.bone_sites == ("cervical_spine", "lumbar_spine", "rib", "femur", "skull")
    assert case.other_extrahepatic_sites is None
    assert str(typed.age.dtype) == "Int64"
    assert typed.survival_months_after_bone_met.notna().sum() == 28


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "out.csv"
    write_atomically(target, "old\n")
    write_atomically(target, "new\n")
    assert target.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_failed_multi_file_write_changes_nothing(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("a-old")
    second.write_text("b-old")
    blocker = tmp_path / "folder-not-file"
    blocker.mkdir()
    with pytest.raises(OSError):
        write_files_atomically({first: b"a-new", second: b"b-new", blocker: b"x"})
    assert (first.read_text(), second.read_text()) == ("a-old", "b-old")
    assert sorted(os.listdir(tmp_path)) == ["a.csv", "b.csv", "folder-not-file"]


def test_failure_while_writing_changes_nothing(tmp_path):
    first = tmp_path / "a.csv"
    first.write_text("a-old")
    not_a_folder = tmp_path / "plain-file"
    not_a_folder.write_text("")
    with pytest.raises(OSError):
        write_files_atomically({first: b"a-new", not_a_folder / "b.csv": b"b-new"})
    assert first.read_text() == "a-old"
    assert sorted(os.listdir(tmp_path)) == ["a.csv", "plain-file"]
