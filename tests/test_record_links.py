"""Every extraction row linked to its screening record, and PRISMA counted by those links: a
new review (the init template's schema, with its `record_id` field) whose included reports
include a conference abstract without DOI or PMID."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from review.extraction.prisma_counts import prisma_counts_for
from review.screening.decisions import Decision, DecisionStore, now
from review.search.records import RecordStore, make_record
from review.workspace import Workspace

OTHER = {"identified_via": "other methods"}
HEADER = ("case_id,study_id,record_id,source_title,source_url,doi,pmid,pub_year,age,sex,"
          "vital_status,survival_months,sites,treatments,notes,extraction_basis")


@pytest.fixture
def review(tmp_path, run_cli) -> Workspace:
    assert run_cli("init", tmp_path / "abscess")[0] == 0
    workspace = Workspace(tmp_path / "abscess")
    added = RecordStore(workspace.search_dir / "records.jsonl").add([
        make_record("Reference lists", "refs.csv", origin="refs", position=1, year="2020",
                    doi="10.1016/j.spinee.2020.01.001", authors=["Okafor C"],
                    title="Spinal epidural abscess after epidural steroid injection",
                    extra=OTHER),
        make_record("Reference lists", "refs.csv", origin="refs", position=2, year="2018",
                    pmid="29000002", authors=["Lindqvist A"],
                    title="Cervical epidural abscess after an interlaminar injection",
                    extra=OTHER),
        make_record("Reference lists", "refs.csv", origin="refs", position=3, year="2019",
                    title="Epidural abscess after caudal injection (conference abstract)",
                    extra=OTHER),
        make_record("Reference lists", "refs.csv", origin="refs", position=4, year="2021",
                    doi="10.1186/s13256-021-02999-9", authors=["Mbeki T"],
                    title="Delayed epidural abscess in a patient on steroids", extra=OTHER)])
    DecisionStore(workspace.screening_dir).append([
        Decision(record.record_id, "full-text", "reviewer-one", "include", time=now())
        for record in added])
    return workspace


def ids(workspace: Workspace) -> list[str]:
    return [r.record_id for r in RecordStore(workspace.search_dir / "records.jsonl").load()]


def write_sheet(workspace: Workspace, rows: list[str]) -> None:
    workspace.cases_path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")


def test_prisma_adds_up_with_an_abstract_that_has_no_doi_nor_pmid(review, run_cli):
    okafor, lindqvist, abstract, _ = ids(review)
    write_sheet(review, [
        "okafor_2020_1,okafor_2020,,Spinal epidural abscess after epidural steroid injection,"
        "https://doi.org/10.1016/j.spinee.2020.01.001,10.1016/j.spinee.2020.01.001,,2020,"
        "61,M,,,,,,full_text",
        "lindqvist_2018_1,lindqvist_2018,,Cervical epidural abscess,"
        "https://pubmed.ncbi.nlm.nih.gov/29000002/,,29000002,2018,70,F,,,,,,abstract",
        # The abstract's title as the extractor typed it differs from the record's: only
        # its record id links it.
        f"anon_2019_1,anon_2019,{abstract},Epidural abscess after a caudal injection,"
        "https://example.org/meeting/2019/17,,,2019,55,M,,,,,,abstract",
        f"anon_2019_2,anon_2019,{abstract},Epidural abscess after a caudal injection,"
        "https://example.org/meeting/2019/17,,,2019,47,F,,,,,,abstract"])
    assert run_cli("--project", review.root, "extract", "validate")[0] == 0
    counts = prisma_counts_for(review)
    included = counts["reports_included"] + counts["other_reports_included"]
    assert (counts["studies_included"], counts["reports_included_not_extracted"],
            included) == (3, 1, 4)
    assert counts["studies_included"] + counts["reports_included_not_extracted"] == included
    status, out, _ = run_cli("--project", review.root, "extract", "link")
    assert status == 0
    assert f"data/extraction/cases.csv:2: linked to record {okafor} (by DOI)" in out
    assert f"data/extraction/cases.csv:3: linked to record {lindqvist} (by PMID)" in out
    rows = list(csv.DictReader(io.StringIO(review.cases_path.read_text(encoding="utf-8"))))
    assert [row["record_id"] for row in rows] == [okafor, lindqvist, abstract, abstract]
    assert prisma_counts_for(review)["reports_included_not_extracted"] == 1


def test_link_lists_the_rows_it_cannot_link_and_unknown_record_ids(review, run_cli):
    write_sheet(review, [
        "smith_2017_1,smith_2017,,A report nobody screened,https://example.org/a,,,2017,,,,,,,,"
        "abstract",
        "jones_2016_1,jones_2016,r0123456789abcdef,Another,https://example.org/b,,,2016,,,,,,,,"
        "abstract"])
    status, out, _ = run_cli("--project", review.root, "extract", "link")
    assert status == 1
    assert "cases.csv:2: no record assessed in full text has this row's study id" in out
    assert "cases.csv:3: record id r0123456789abcdef names no record" in out
    write_sheet(review, ["x_2016_1,x_2016,not-an-id,T,https://example.org/c,,,2016,,,,,,,,"
                         "abstract"])
    status, out, _ = run_cli("--project", review.root, "extract", "validate")
    assert status == 1 and "record_id: not a record id (got 'not-an-id'" in out


def test_the_workbook_prefills_the_reports_still_to_extract(review, run_cli, tmp_path):
    okafor, lindqvist, abstract, mbeki = ids(review)
    write_sheet(review, [
        f"okafor_2020_1,okafor_2020,{okafor},Spinal epidural abscess,https://example.org/o,"
        ",,2020,61,M,,,,,,full_text"])
    book = tmp_path / "extract.xlsx"
    status, out, _ = run_cli("--project", review.root, "extract", "template", "--out", book,
                             "--with-cases")
    assert status == 0 and "the first patient of 3 reports still to extract, prefilled" in out
    workbook = openpyxl.load_workbook(book)
    cases = workbook["Cases"]
    header = [cell.value for cell in cases[1]]
    rows = [dict(zip(header, (cell.value for cell in row), strict=True))
            for row in cases.iter_rows(min_row=2)]
    assert [row["record_id"] for row in rows] == [okafor, lindqvist, abstract, mbeki]
    mbeki_row = rows[3]
    assert (mbeki_row["study_id"], mbeki_row["case_id"], mbeki_row["doi"],
            mbeki_row["pub_year"], mbeki_row["source_url"]) == \
        ("mbeki_2021", "mbeki_2021_1", "10.1186/s13256-021-02999-9", "2021",
         "https://doi.org/10.1186/s13256-021-02999-9")
    assert rows[2]["study_id"] is None  # no author to build an id from
    assert workbook["Prefilled"].sheet_state == "hidden"
    # Imported untouched, the prefilled rows are no patients.
    status, out, err = run_cli("--project", review.root, "extract", "import", book)
    assert status == 0, out + err
    assert "0 added" in out
    # The one begun is imported, linked to its record.
    row_number = 2 + 3
    cases.cell(row=row_number, column=header.index("extraction_basis") + 1).value = "abstract"
    cases.cell(row=row_number, column=header.index("age") + 1).value = "44"
    workbook.save(book)
    status, out, err = run_cli("--project", review.root, "extract", "import", book)
    assert status == 0, out + err
    assert "1 added" in out
    saved = list(csv.DictReader(io.StringIO(review.cases_path.read_text(encoding="utf-8"))))
    assert [(row["case_id"], row["record_id"]) for row in saved] == \
        [("okafor_2020_1", okafor), ("mbeki_2021_1", mbeki)]
