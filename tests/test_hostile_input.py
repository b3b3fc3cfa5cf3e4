"""Hostile and damaged input: strict decision files, formula injection, XML entities, odd
digits and characters, and one-line errors where tracebacks used to be."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from review.errors import ReviewError
from review.screening.decisions import Decision, DecisionStore
from review.search.readers import read_export

EXPORTS = Path(__file__).parent / "fixtures" / "exports"
GOOD = json.dumps({"record": "r1", "stage": "title-abstract", "reviewer": "ana",
                   "decision": "include"})


def decision_file(workspace, *lines: bytes, torn: bytes = b"") -> DecisionStore:
    store = DecisionStore(workspace.screening_dir)
    path = store.path("title-abstract", "ana")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines) + torn)
    return store


def set_sheet_cell(workspace, row: int, column: str, value: str) -> None:
    """Change one cell of the extraction sheet (row as numbered in the file, header = 1)."""
    rows = list(csv.reader(io.StringIO(workspace.cases_path.read_text(), newline="")))
    rows[row - 1][rows[0].index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    workspace.cases_path.write_text(buffer.getvalue())


@pytest.mark.parametrize(("lines", "message"), [
    ([GOOD.encode(), b'{"record": "r2", "stage": "title-ab', GOOD.encode()],
     r"ana\.jsonl:2: not a decision .*; fix or remove that line"),
    ([GOOD.encode(), b"<<<<<<< HEAD", GOOD.encode(), b"=======", GOOD.encode(),
      b">>>>>>> other"], r"ana\.jsonl:2: a git merge-conflict marker; keep the lines of both"),
    ([GOOD.encode(), b'{"record": "r\xff", "stage": "title-abstract"}'],
     r"ana\.jsonl:2: not UTF-8 text"),
    ([GOOD.replace("include", "yes please").encode()],
     r"ana\.jsonl:1: decision 'yes please' is not one of include, exclude"),
    ([GOOD.replace('"ana"', '"ben"').encode()],
     r"ana\.jsonl:1: a decision of 'ben' at title-abstract in the file of 'ana'"),
])
def test_damaged_decision_files_are_errors_naming_file_and_line(hcc_workspace, lines,
                                                                message):
    store = decision_file(hcc_workspace, *lines)
    with pytest.raises(ReviewError, match=message):
        store.read("title-abstract")


def test_a_torn_last_line_is_forgiven_and_cut_by_the_next_append(hcc_workspace):
    store = decision_file(hcc_workspace, GOOD.encode(), torn=b'{"record": "r2", "sta')
    assert [d.record for d in store.read("title-abstract")] == ["r1"]
    store.append([Decision("r3", "title-abstract", "ana", "exclude")])
    assert [d.record for d in store.read("title-abstract")] == ["r1", "r3"]
    assert b'"r2"' not in store.path("title-abstract", "ana").read_bytes()


def test_csvs_for_people_quote_formula_like_text(hcc_workspace, run_cli, tmp_path):
    from review.screening.dedup import update_dedup
    from review.search.records import RecordStore, make_record
    hostile = ["=cmd|' /C calc'!A0", "+SUM(A1)", "@HYPERLINK(\"http://x\")", "-2+3"]
    records = [make_record("Embase", "hostile.ris", origin="test", position=n, title=title,
                           authors=["Same A"], year="2020", pmid="", doi="")
               for n, title in enumerate(hostile + hostile[:1], start=1)]
    RecordStore(hcc_workspace.search_dir / "records.jsonl").add(records)
    update_dedup(hcc_workspace)
    audit = (hcc_workspace.data_dir / "dedup" / "clusters.csv").read_text()
    titles = [row["title"] for row in csv.DictReader(io.StringIO(audit)) if row["kept"]]
    assert titles == ["'=cmd|' /C calc'!A0"] * 2
    sheet = hcc_workspace.cases_path.read_text().splitlines()
    first = next(csv.reader([sheet[1]]))
    header = next(csv.reader([sheet[0]]))
    first[header.index("source_title")] = "=HYPERLINK(\"http://evil\",\"click\")"
    rows = [first] + [next(csv.reader([line])) for line in sheet[2:]
                      if next(csv.reader([line]))[1] != first[1]]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    hcc_workspace.cases_path.write_text(buffer.getvalue())
    status, _, _ = run_cli("--project", hcc_workspace.root, "extract", "studies", "--out",
                           tmp_path / "studies.csv")
    assert status == 0
    assert "'=HYPERLINK(" in (tmp_path / "studies.csv").read_text()
    assert ",=HYPERLINK(" not in (tmp_path / "studies.csv").read_text()


@pytest.mark.parametrize("prolog", [
    b'<?xml version="1.0"?>\n<!-- <PubmedArticleSet> -->\n<!DOCTYPE PubmedArticleSet [\n'
    b'<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
    b'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet [\n<!-- <PubmedArticleSet -->\n'
    b'<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd">]>\n',
])
def test_entities_are_refused_by_the_parser_wherever_the_text_stands(tmp_path, prolog):
    path = tmp_path / "sneaky.xml"
    path.write_bytes(prolog + b"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1"
                     b"</PMID><Article><ArticleTitle>A title</ArticleTitle></Article>"
                     b"</MedlineCitation></PubmedArticle></PubmedArticleSet>\n")
    with pytest.raises(ReviewError, match=r"sneaky\.xml:\d+: the XML declares entities"):
        read_export(path, "PubMed")


def test_endnote_xml_declaring_entities_is_refused(tmp_path):
    path = tmp_path / "endnote.xml"
    path.write_bytes(b'<?xml version="1.0"?>\n<!DOCTYPE xml [<!ENTITY x SYSTEM '
                     b'"file:///etc/passwd">]>\n<xml><records><record><titles><title>&x;'
                     b"</title></titles></record></records></xml>\n")
    with pytest.raises(ReviewError, match=r"endnote\.xml:3: the XML declares entities \(x\)"):
        read_export(path, "EndNote")


def test_workbook_xml_with_entities_is_refused(hcc_workspace, tmp_path):
    from review.extraction.workbook import build_template, import_workbook
    with zipfile.ZipFile(io.BytesIO(build_template(hcc_workspace.protocol))) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    name = next(part for part in parts if part.startswith("xl/worksheets/sheet1"))
    parts[name] = b'<!DOCTYPE worksheet [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + parts[name]
    path = tmp_path / "entity.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        for part, data in parts.items():
            archive.writestr(part, data)
    with pytest.raises(ReviewError, match=r"entity\.xlsx: a damaged Excel workbook"):
        import_workbook(hcc_workspace, path)


def test_full_width_digits_are_refused_by_validate(hcc_workspace, run_cli):
    set_sheet_cell(hcc_workspace, 2, "age", "４５")
    status, out, _ = run_cli("--project", hcc_workspace.root, "extract", "validate")
    assert status == 1 and ":2:age: not a whole number (got '４５')" in out


def test_a_dollar_sign_in_a_source_name_is_drawn_as_text(hcc_workspace, run_cli, tmp_path):
    status, _, err = run_cli("--project", hcc_workspace.root, "screen", "from-extraction",
                             "--source", "Web searches ($5 a day) and $x^2$ lists",
                             "--reviewer", "pilot-team")
    assert status == 0, err
    status, _, err = run_cli("--project", hcc_workspace.root, "prisma", "--out", tmp_path)
    assert status == 0, err
    assert "$x^2$" in (tmp_path / "figures" / "prisma_flow.svg").read_text()


def test_one_line_errors_where_tracebacks_were(hcc_workspace, run_cli, tmp_path):
    loop = tmp_path / "loop.ris"
    loop.symlink_to(loop)
    status, _, err = run_cli("--project", hcc_workspace.root, "import", loop, "--source", "X")
    assert status == 2 and "loop.ris" in err and len(err.strip().splitlines()) == 1

    long_row = tmp_path / "decisions.csv"
    long_row.write_text("record_id,decision\nr1,include,surplus\n")
    status, _, err = run_cli("--project", hcc_workspace.root, "screen", "import", long_row,
                             "--stage", "title-abstract", "--reviewer", "pilot-team")
    assert status == 2 and "decisions.csv:2: 3 cells, but the header has 2" in err

    appraisal = hcc_workspace.appraisal_path
    for content, expected in (("", "appraisal.csv:1: empty file"),
                              ("study_id,appraiser\n\"unclosed\n", "appraisal.csv:2: not "
                                                                   "valid CSV")):
        appraisal.write_text(content)
        status, out, err = run_cli("--project", hcc_workspace.root, "build", "--out",
                                   tmp_path / "report", "--quiet")
        assert status == 2 and expected in err, out + err
    appraisal.unlink()

    (hcc_workspace.search_dir).mkdir(parents=True, exist_ok=True)
    (hcc_workspace.search_dir / "records.jsonl").write_text('{"record_id": "r1"}\n[1, 2]\n')
    status, _, err = run_cli("--project", hcc_workspace.root, "status")
    assert status == 2 and "records.jsonl:1: not a record" in err
    assert len(err.strip().splitlines()) == 1


def test_a_line_break_inside_a_value_keeps_one_line_per_problem(hcc_workspace, run_cli):
    set_sheet_cell(hcc_workspace, 2, "sex", "F\nM")
    status, out, _ = run_cli("--project", hcc_workspace.root, "extract", "validate")
    assert status == 1
    problem = [line for line in out.splitlines() if ":2:sex:" in line]
    assert len(problem) == 1 and "F\\nM" in problem[0]


def test_a_huge_cell_in_the_sheet_is_a_problem_at_its_cell_not_a_parser_failure(
        hcc_workspace, run_cli):
    set_sheet_cell(hcc_workspace, 3, "notes", "n" * 131_073)
    status, out, _ = run_cli("--project", hcc_workspace.root, "extract", "validate")
    assert status == 1
    assert ":3:notes: 131,073 characters; a cell holds fewer than 32,767" in out


def test_markdown_tables_keep_a_title_as_text():
    import pandas as pd

    from review.report.markdown import markdown_table

    table = markdown_table(pd.DataFrame({"title": ['<script>alert("x")</script> A & B | C']}))
    assert "<script>" not in table
    assert '&lt;script&gt;alert("x")&lt;/script&gt; A &amp; B \\| C' in table


@pytest.mark.parametrize(("line", "message"), [
    ('["r1", "PubMed"]', "not a record (a JSON list, not an object)"),
    ('{"record_id": "r1", "source": "PubMed", "source_file": "x", "title": null}',
     "not a record (title: expected text, got null)"),
    ('{"record_id": "r1", "source": "PubMed", "source_file": "x", "authors": "Smith"}',
     "not a record (authors: expected a list of texts"),
])
def test_a_damaged_records_line_is_named_by_status(hcc_workspace, run_cli, line, message):
    store = hcc_workspace.search_dir / "records.jsonl"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(line + "\n")
    status, _, err = run_cli("--project", hcc_workspace.root, "status")
    assert status == 2
    assert f"{store}:1: {message}" in err
    assert err.count("\n") == 1
