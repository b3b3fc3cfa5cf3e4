"""Every reader on real vendor exports from other projects' test suites (tests/fixtures/vendor,
with their licences) and on files shaped like each vendor's export: counts and field fill."""

from __future__ import annotations

from pathlib import Path

import pytest

from review.errors import ReviewError
from review.search.readers import read_export

VENDOR = Path(__file__).parent / "fixtures" / "vendor"
EXPORTS = Path(__file__).parent / "fixtures" / "exports"
FIELDS = ("title", "abstract", "authors", "year", "doi", "journal", "pmid", "export_id")


def fill(name: str, folder: Path = VENDOR) -> tuple[str, int, dict[str, int]]:
    export = read_export(folder / name, "Test")
    return export.format, len(export.records), {
        field: sum(bool(getattr(record, field)) for record in export.records)
        for field in FIELDS}


# (file, format, records, filled fields): the counts ASReview's own reader tests assert, and
# per field how many records carry it.
@pytest.mark.parametrize(("name", "kind", "count", "filled"), [
    ("asreview/embase.csv", "csv", 6, {"title": 6, "abstract": 6, "authors": 6, "year": 6,
                                       "journal": 6}),
    ("asreview/embase_newpage.csv", "csv", 6, {"title": 6, "authors": 6, "year": 6}),
    ("asreview/embase.ris", "ris", 6, {"title": 6, "authors": 6, "doi": 6, "journal": 6}),
    ("asreview/scopus.ris", "ris", 6, {"title": 6, "abstract": 6, "doi": 6, "year": 6}),
    ("asreview/proquest.ris", "ris", 6, {"title": 6, "doi": 6, "export_id": 6}),
    ("asreview/ovid_zotero.ris", "ris", 6, {"title": 6, "authors": 6, "doi": 6}),
    ("asreview/pubmed_zotero.ris", "ris", 6, {"title": 6, "abstract": 6, "doi": 6}),
    ("asreview/pubmed_endnote.txt", "ris", 6, {"title": 6, "pmid": 6, "doi": 6}),
    ("asreview/web_of_science.txt", "ris", 10, {"title": 10, "abstract": 10, "doi": 10,
                                                "export_id": 10}),
    ("asreview/generic.csv", "csv", 2, {"title": 2, "abstract": 2, "authors": 2, "year": 2}),
    ("asreview/generic_semicolon.csv", "csv", 2, {"title": 2, "authors": 2, "export_id": 2}),
    ("asreview/generic_tab.csv", "csv", 2, {"title": 2, "authors": 2, "export_id": 2}),
    ("asreview/generic_tab.tab", "csv", 2, {"title": 2, "authors": 2}),
    ("asreview/generic_tab.tsv", "csv", 2, {"title": 2, "authors": 2}),
    ("asreview/generic_labels.csv", "csv", 6, {"title": 6, "abstract": 6}),
    ("asreview/record_id.csv", "csv", 10, {"title": 10, "export_id": 10}),
    ("asreview/missing_values.csv", "csv", 4, {"title": 2, "abstract": 2}),
    ("asreview/baseline_empty_values.ris", "ris", 4, {"title": 2, "export_id": 4}),
    ("rispy/example_bom.ris", "ris", 1, {"doi": 1}),
    ("rispy/example_full.ris", "ris", 2, {"title": 2, "abstract": 2, "authors": 2}),
    ("rispy/example_extraneous_data.ris", "ris", 2, {"title": 2, "export_id": 2}),
    ("rispy/example_multiline.ris", "ris", 3, {"abstract": 3}),
    ("rispy/example_utf_chars.ris", "ris", 1, {"title": 1, "authors": 1}),
    ("rispy/example_starting_newlines.ris", "ris", 1, {"title": 1}),
    ("reflib/blue-light.xml", "endnote-xml", 102, {"title": 102, "abstract": 98,
                                                   "authors": 101, "doi": 72, "pmid": 102}),
    ("reflib/blue-light.ris", "ris", 102, {"title": 102, "abstract": 98, "doi": 72,
                                           "pmid": 102}),
    ("reflib/blue-light.nbib", "medline", 80, {"title": 80, "pmid": 80, "doi": 51}),
    ("reflib/multipart.xml", "endnote-xml", 1, {"title": 1, "authors": 1}),
])
def test_real_vendor_exports(name, kind, count, filled):
    found_kind, found_count, found = fill(name)
    assert (found_kind, found_count) == (kind, count)
    assert {field: found[field] for field in filled} == filled


def test_one_library_in_three_formats_gives_the_same_references():
    """The Blue Light review's EndNote library, as EndNote XML and RIS, and PubMed's MEDLINE
    of the 80 with a PMID."""
    xml = read_export(VENDOR / "reflib" / "blue-light.xml", "EndNote").records
    ris = read_export(VENDOR / "reflib" / "blue-light.ris", "EndNote").records
    nbib = read_export(VENDOR / "reflib" / "blue-light.nbib", "PubMed").records
    assert [r.pmid for r in xml] == [r.pmid for r in ris]
    assert [r.doi for r in xml] == [r.doi for r in ris]
    assert [r.title.lower() for r in xml] == [r.title.lower() for r in ris]
    by_pmid = {r.pmid: r for r in xml}
    assert {r.pmid for r in nbib} <= set(by_pmid)
    assert all(by_pmid[r.pmid].doi == r.doi for r in nbib if r.doi)


def test_endnote_xml_joins_values_split_over_style_runs():
    [record] = read_export(VENDOR / "reflib" / "multipart.xml", "EndNote").records
    assert (record.title, record.authors, record.journal) == (
        "Foo & Bar", ("Foo & Bar", "Baz & Quz"), "Foo & Journal")
    assert record.export_id == "1 & 2"


def test_a_row_with_nothing_bibliographic_is_left_out_with_its_line_or_refused_if_strict():
    export = read_export(VENDOR / "asreview" / "duplicate_records.csv", "Test")
    assert 12 in export.empty_lines and export.records
    with pytest.raises(ReviewError, match=r"duplicate_records\.csv:12: an empty record \(no "
                                          r"bibliographic field\), refused by --strict"):
        read_export(VENDOR / "asreview" / "duplicate_records.csv", "Test", strict=True)


def test_web_of_science_plain_text_named_ris_is_refused_with_the_format_to_use():
    path = VENDOR / "rispy" / "example_wos.ris"
    with pytest.raises(ReviewError, match=r"example_wos\.ris:1: the content looks like Web of "
                                          r"Science plain text, not RIS; pass --format "
                                          r"wos-plain"):
        read_export(path, "Web of Science")
    records = read_export(path, "Web of Science", declared="wos-plain").records
    assert len(records) == 2
    assert records[0].title.startswith("Interactions stabilizing the structure of the core "
                                       "light-harvesting")
    assert records[0].authors[:2] == ("Parkes-Loach, PS", "Majeed, AP")
    assert all(r.export_id.startswith("WOS:") and r.doi for r in records)


def test_embase_csv_source_cell_gives_journal_year_volume_and_pages():
    record = read_export(VENDOR / "asreview" / "embase.csv", "Embase").records[0]
    assert record.journal == "Endoscopic Ultrasound"
    assert (record.year, record.volume, record.issue, record.pages) == ("2014", "3", "3",
                                                                        "152-160")
    assert record.authors == ("Liu R.", "Adler D.G.")


@pytest.mark.parametrize(("name", "export_ids", "checks"), [
    ("scopus.csv", ["2-s2.0-34250000001", "2-s2.0-79952000002"],
     {"pmid": "17569150", "pages": "2758-2760", "journal": "World Journal of Gastroenterology",
      "authors": ("Tamaki T.", "Tomita K.")}),
    ("rayyan.csv", ["rayyan-101", "rayyan-102"],
     {"pmid": "34268063", "doi": "10.7759/cureus.16238", "journal": "Cureus",
      "authors": ("Anonymous, A", "Author, B")}),
    ("covidence.csv", ["#1041", "#1042"],
     {"year": "2006", "doi": "10.3748/wjg.v12.i32.5247", "pages": "5247-5252",
      "authors": ("Doval, D. C.", "Bhatia, K.", "Vaid, A. K.")}),
    ("zotero.csv", ["8ZK3QH2A", "Q2M9X7PB"],
     {"pmid": "40828566", "journal": "Future Science OA", "volume": "11",
      "abstract": "Bone metastases of hepatocellular carcinoma are rare, and cervical ones "
                  "rarer still."}),
    ("european_semicolon.csv", ["EMB-1", "EMB-2"],
     {"title": "Solitary metastasis to the skull", "year": "2023", "pages": "77",
      "authors": ("Bernstein, J.", "Smith, A.")}),
    ("zotero.bib", ["tamaki_patient_2007", "muller_spinal_2020", "vargas_metastatic_2011"],
     {"pmid": "17569150", "pages": "2758-2760", "volume": "13", "issue": "19",
      "authors": ("Tamaki, Takeshi", "Tomita, Katsuro"), "language": "eng"}),
])
def test_vendor_shaped_exports_map_the_vendors_columns(name, export_ids, checks):
    records = read_export(EXPORTS / name, "Test").records
    assert [record.export_id for record in records] == export_ids
    assert {field: getattr(records[0], field) for field in checks} == checks


def test_bibtex_decodes_latex_and_marks_conference_papers():
    records = read_export(EXPORTS / "zotero.bib", "Zotero").records
    assert records[1].title == "Spinal metastasis of hepatocellular carcinoma: Müller's case"
    assert records[1].authors == ("Müller, Hans", "Dupont, François")
    assert records[2].publication_types == ("Conference Paper",)
    assert records[2].journal == "Proceedings of the Annual Meeting"
