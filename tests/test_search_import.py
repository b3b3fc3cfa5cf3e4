"""One reader per export format, on vendor-shaped files, and every malformed input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from review.errors import ReviewError
from review.search.importing import import_exports
from review.search.query import build_query, lint_query
from review.search.readers import read_export
from review.search.records import RecordStore, normalise_doi

EXPORTS = Path(__file__).parent / "fixtures" / "exports"
VENDOR = Path(__file__).parent / "fixtures" / "vendor"


def read(name: str, source: str = "Test", **options):
    export = read_export(EXPORTS / name, source, **options)
    return export.records, export.format, export.encoding


def test_pubmed_efetch_xml():
    records, kind, _ = read("pubmed_efetch.xml", "PubMed")
    assert kind == "pubmed-xml" and len(records) == 3
    index = records[0]
    assert (index.pmid, index.doi, index.year) == ("40828566", "10.1080/20565623.2025.2548742",
                                                   "2025")
    assert index.title == "A cervical spine metastasis of a hepatocellular carcinoma: a rare " \
                          "presentation"
    assert index.abstract.startswith("BACKGROUND: Bone metastases of hepatocellular carcinoma")
    assert index.authors == ("Merhaben S", "Liver Tumour Group")
    assert index.publication_types == ("Case Reports", "Journal Article")
    assert "Spinal Neoplasms/secondary" in index.mesh_terms
    assert index.keywords == ("bone metastasis", "atezolizumab")
    assert (index.volume, index.issue, index.pages, index.language) == ("11", "1", "2548742",
                                                                        "eng")
    assert records[1].year == "2011"  # from MedlineDate "2011 Mar-Apr"
    assert records[1].doi == "10.1097/maj.0b013e3181f7a49a"
    assert records[2].pmid == "20301329" and records[2].title == "Hepatocellular Carcinoma " \
                                                                 "Overview"


def test_pubmed_web_export_xml():
    [record], _, _ = read("pubmed_web_export.xml")
    assert (record.pmid, record.doi, record.pages) == ("17569150", "10.3748/wjg.v13.i19.2758",
                                                       "2758-60")


def test_medline_nbib():
    records, kind, _ = read("pubmed.nbib")
    assert kind == "medline" and [r.pmid for r in records] == ["34268063", "24250027"]
    assert records[0].doi == "10.7759/cureus.16238"
    assert records[0].abstract.endswith("both underwent urgent decompression.")
    assert records[1].title.startswith("Evaluation of bone metastasis as the first presentation"
                                       " of hepatocellular carcinoma using 18-fluorodeoxy")
    assert records[1].mesh_terms == ("Bone Neoplasms/*secondary",)


@pytest.mark.parametrize(
    ("name", "title_start", "doi", "journal", "year", "authors"),
    [
        ("embase.ris", "Orbital Metastasis as the First", "10.12659/ajcr.944002",
         "American Journal of Case Reports", "2024", ("Wonglhow J.", "Sathitruangsak C.")),
        ("scopus.ris", "Lytic bone lesion of the skull", "10.1186/s13037-025-00434-2",
         "Journal of Medical Case Reports", "2025", ("Wael, M.", "Hassan, R.")),
        ("wos.ris", "Solitary scalp metastasis", "10.1186/s13022-015-0013-2",
         "ANNALS OF SURGICAL INNOVATION AND RESEARCH", "2015",
         ("Subasinghe, D", "Keppetiyagama, CT")),
        ("ovid.ris", "Metastatic hepatocellular carcinoma with associated spinal", "",
         "American Journal of the Medical Sciences", "2011", ("Vargas, A",)),
        ("zotero.ris", "Percutaneous Sacroplasty", "", "American Journal of Neuroradiology",
         "2005", ("Uemura, Akihiro", "Fujita, Yuji")),
        ("endnote.ris", "Solitary metastasis to the skull", "10.25259/sni_77_2023",
         "Surgical Neurology International", "2023", ("Bernstein, J.",)),
    ],
)
def test_ris_from_every_vendor(name, title_start, doi, journal, year, authors):
    records, kind, _ = read(name)
    assert kind == "ris"
    record = records[0]
    assert record.title.startswith(title_start)
    assert (record.doi, record.journal, record.year, record.authors) == (doi, journal, year,
                                                                         authors)


def test_ris_details_per_vendor():
    embase, _, _ = read("embase.ris")
    assert embase[0].abstract.endswith("the liver primary was found afterwards.")
    assert embase[0].language == "eng"
    assert embase[0].extra["accession"] == "L630512345"
    assert "Conference Abstract" in embase[1].publication_types
    [ovid], _, _ = read("ovid.ris")
    assert ovid.pmid == "21107234"  # Ovid MEDLINE's accession number is the PMID
    assert ovid.pages == "251-252"
    [endnote], _, _ = read("endnote.ris")
    assert endnote.pmid == "36895999"  # from "N1  - PMID: ..."


def test_web_of_science_tab_delimited():
    [record], kind, _ = read("wos_tab.txt")
    assert kind == "wos-tab"
    assert (record.pmid, record.doi, record.pages) == ("17569150", "10.3748/wjg.v13.i19.2758",
                                                       "2758-2760")
    assert record.authors == ("Tamaki, T", "Tomita, K")
    assert record.export_id == "WOS:000246590600017"


def test_pubmed_csv_and_generic_csv():
    records, kind, _ = read("pubmed.csv")
    assert kind == "csv" and [r.pmid for r in records] == ["40828566", "24250027"]
    assert records[1].doi == "10.4103/0972-3919.119552"  # from the Citation column
    generic, _, _ = read("generic.csv")
    assert generic[0].title == "Tetraparesia como primera manifestación de un carcinoma " \
                               "hepatocelular"
    assert generic[0].authors == ("Anónimo, C",)
    assert generic[1].year == "2020"


def test_encodings_bom_crlf_and_latin1(tmp_path):
    text = (EXPORTS / "scopus.ris").read_text(encoding="utf-8").replace("©", "(c)")
    variants = {
        "bom.ris": b"\xef\xbb\xbf" + text.encode("utf-8"),
        "crlf.ris": text.replace("\n", "\r\n").encode("utf-8"),
        "latin1.ris": text.replace("Wael", "Waël").encode("latin-1"),
    }
    expected = read_export(EXPORTS / "scopus.ris", "S").records
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
        [record] = read_export(tmp_path / name, "S").records
        assert record.title == expected[0].title
        assert record.doi == expected[0].doi
    latin = read_export(tmp_path / "latin1.ris", "S")
    assert latin.encoding == "windows-1252" and latin.records[0].authors[0] == "Waël, M."


def test_doi_normalisation():
    assert normalise_doi("https://doi.org/10.1080/ABC.123") == "10.1080/abc.123"
    assert normalise_doi("doi: 10.1080/x.1.") == "10.1080/x.1"
    assert normalise_doi("not a doi") == ""


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("truncated.xml", (EXPORTS / "pubmed_efetch.xml").read_bytes()[:1500],
         r"truncated\.xml:\d+: malformed or truncated XML"),
        ("no_er.ris", (EXPORTS / "wos.ris").read_bytes().replace(b"ER  - ", b""),
         r"no_er\.ris:1: the record starting here has no ER line"),
        ("empty.ris", b"", r"empty\.ris:1: empty file"),
        ("binary.csv", bytes(range(256)) * 20, r"binary\.csv:1: a binary file"),
        ("wrong.xml", (EXPORTS / "wos.ris").read_bytes(),
         r"wrong\.xml:1: the content looks like RIS, not XML"),
        ("entity.xml", b'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet [\n<!ENTITY xxe '
                       b'SYSTEM "file:///etc/passwd">]>\n<PubmedArticleSet><PubmedArticle>'
                       b'<MedlineCitation><PMID>1</PMID><Article><ArticleTitle>&xxe;'
                       b"</ArticleTitle></Article></MedlineCitation></PubmedArticle>"
                       b"</PubmedArticleSet>",
         r"entity\.xml:4: the XML declares entities \(xxe\), which are refused"),
        ("other.xml", b"<?xml version='1.0'?><rss><channel/></rss>",
         r"other\.xml:1: XML, but neither PubMed XML nor EndNote XML"),
        ("stray.ris", b"TY  - JOUR\nTI  - A title\nthis line is no RIS\nER  - \n", None),
        ("bad.nbib", b"PMID- 1\nTI  - A title\n<html>oops</html>\n",
         r"bad\.nbib:3: not a MEDLINE line"),
        ("nontitle.csv", b"name,year\nx,2020\n", r"nontitle\.csv:1: no title column"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    if message is None:  # an unknown line inside a field is a wrapped continuation
        records = read_export(path, "S").records
        assert records[0].title == "A title this line is no RIS"
        return
    with pytest.raises(ReviewError, match=message):
        read_export(path, "S")


def test_reimporting_the_same_bytes_adds_nothing_and_says_so(hcc_workspace, run_cli):
    first = import_exports(hcc_workspace, [EXPORTS / "embase.ris"], "Embase")
    assert (first[0].records, first[0].stored) == (2, 2)
    again = import_exports(hcc_workspace, [EXPORTS / "embase.ris"], "Embase")
    assert (again[0].stored, again[0].records) == (0, 2) and again[0].already_imported
    store = RecordStore(hcc_workspace.search_dir / "records.jsonl").load()
    assert len(store) == 2
    log = [json.loads(line) for line in
           (hcc_workspace.search_dir / "search_log.jsonl").read_text().splitlines()]
    assert [entry["records_stored"] for entry in log] == [2]
    assert log[0]["format"] == "RIS" and len(log[0]["sha256"]) == 64
    status, out, _ = run_cli("--project", hcc_workspace.root, "import", EXPORTS / "embase.ris",
                             "--source", "Embase")
    assert status == 0 and "already imported" in out and "nothing added" in out


def test_same_record_from_two_sources_is_kept_twice(hcc_workspace):
    import_exports(hcc_workspace, [EXPORTS / "pubmed_web_export.xml"], "PubMed")
    import_exports(hcc_workspace, [EXPORTS / "wos_tab.txt"], "Web of Science")
    store = RecordStore(hcc_workspace.search_dir / "records.jsonl").load()
    assert [r.source for r in store] == ["PubMed", "Web of Science"]
    assert store[0].pmid == store[1].pmid


def test_a_bad_file_among_good_ones_changes_nothing(hcc_workspace, tmp_path, run_cli):
    bad = tmp_path / "bad.ris"
    bad.write_bytes(b"TY  - JOUR\nTI  - unfinished\n")
    status, _, err = run_cli("--project", hcc_workspace.root, "import",
                             EXPORTS / "embase.ris", bad, "--source", "Embase")
    assert status == 2
    assert "bad.ris:1: the record starting here has no ER line" in err
    assert len(err.strip().splitlines()) == 1
    assert not (hcc_workspace.search_dir / "records.jsonl").exists()
    assert not (hcc_workspace.search_dir / "search_log.jsonl").exists()


def test_status_json_counts_identified_per_source(hcc_workspace, run_cli):
    shutil.copy(EXPORTS / "pubmed.nbib", hcc_workspace.root / "pubmed.nbib")
    run_cli("--project", hcc_workspace.root, "import", hcc_workspace.root / "pubmed.nbib",
            "--source", "PubMed")
    run_cli("--project", hcc_workspace.root, "import", EXPORTS / "scopus.ris",
            EXPORTS / "embase.ris", "--source", "Scopus")
    status, out, _ = run_cli("--project", hcc_workspace.root, "status", "--json")
    assert status == 0
    counts = json.loads(out)
    assert counts["identified"] == {"PubMed": 2, "Scopus": 3}
    assert counts["cases_extracted"] == 120 and counts["studies_extracted"] == 113


def test_hcc_query_is_built_from_the_protocol_and_lints_clean(protocol):
    query = build_query(protocol.search)
    assert lint_query(query) == []
    assert query.startswith("(((\"Carcinoma, Hepatocellular\"[Mesh] OR ")
    for clause in ('hepatoma*[tiab]', '"liver cell carcinoma*"[tiab]',
                   '"Bone Neoplasms/secondary"[Mesh]', '"Spinal Cord Compression"[Mesh]',
                   '"metastasis vertebra"[tiab:~3]', '"Case Reports"[pt]',
                   '("1980/01/01"[dp] : "3000"[dp])', "NOT (animals[mh] NOT humans[mh])"):
        assert clause in query
    assert query.count("(") == query.count(")")


def test_query_options_for_major_topic_and_no_explosion(protocol):
    from review.protocol import MeshHeading
    from review.search.query import mesh_clause
    assert mesh_clause(MeshHeading(heading="Spine", major=True)) == '"Spine"[Majr]'
    assert mesh_clause(MeshHeading(heading="Spine", explode=False)) == '"Spine"[Mesh:NoExp]'
    assert mesh_clause(MeshHeading(heading="Spine", subheading="secondary", major=True,
                                   explode=False)) == \
        '"Spine/secondary"[Majr:NoExp]'


@pytest.mark.parametrize(
    ("query", "code"),
    [("(a[tiab] OR b[tiab]", "Q001"), ("a[tiab])", "Q001"), ('"bone metas[tiab]', "Q002"),
     ("a[tiab] OR ()", "Q003"), ("a[tiab] OR", "Q004"), ("OR a[tiab]", "Q004"),
     ("a[tiab] or b[tiab]", "Q005"), ("a[titl]", "Q006"), ("bo*[tiab]", "Q007"),
     ("me*ta[tiab]", "Q007"), ('"metasta* bone"[tiab]', "Q007"),
     ('"bone metasta*"[tiab:~3]', "Q008")],
)
def test_lint_codes(query, code):
    assert code in {message.code for message in lint_query(query)}


def test_search_query_cli(run_cli, hcc_workspace):
    status, out, _ = run_cli("--project", hcc_workspace.root, "search", "query")
    assert status == 0 and out.startswith("(((")
    status, out, _ = run_cli("--project", hcc_workspace.root, "search", "query", "--format",
                             "json")
    structure = json.loads(out)
    assert [c["id"] for c in structure["concepts"]] == ["hcc", "bone_metastasis", "case_design"]
    assert structure["lint"] == []


def test_utf16_with_a_byte_order_mark_is_read(tmp_path):
    text = (EXPORTS / "scopus.ris").read_text(encoding="utf-8")
    path = tmp_path / "utf16.ris"
    path.write_bytes(text.encode("utf-16"))
    export = read_export(path, "Scopus")
    assert export.encoding == "utf-16"
    assert export.records[0].authors[0] == "Wael, M."


def test_encoding_option_is_honoured_for_utf16_without_a_mark(tmp_path, hcc_workspace, run_cli):
    path = tmp_path / "utf16le.ris"
    path.write_bytes((EXPORTS / "scopus.ris").read_text(encoding="utf-8").encode("utf-16-le"))
    with pytest.raises(ReviewError, match=r"utf16le\.ris:1: a binary file.*--encoding "
                                          r"utf-16-le"):
        read_export(path, "Scopus")
    status, out, _ = run_cli("--project", hcc_workspace.root, "import", path, "--source",
                             "Scopus", "--encoding", "utf-16-le")
    assert status == 0 and "1 records (RIS, utf-16-le): 1 stored" in out


def test_a_file_mixing_utf8_and_cp1252_is_refused_not_mis_decoded(tmp_path):
    path = tmp_path / "mixed.ris"
    path.write_bytes("TY  - JOUR\nTI  - Müller\n".encode() + b"AU  - Ga\xebl, A\nER  - \n")
    with pytest.raises(ReviewError, match=r"mixed\.ris:3: mixes UTF-8 with another encoding"):
        read_export(path, "S")


def test_a_file_no_single_code_page_fits_is_refused(tmp_path):
    path = tmp_path / "odd.ris"
    path.write_bytes(b"TY  - JOUR\nTI  - A \x81 title\nER  - \n")
    with pytest.raises(ReviewError, match=r"odd\.ris:2: neither UTF-8 nor one legacy code "
                                          r"page \(byte 0x81\)"):
        read_export(path, "S")


def test_xlsx_export_is_read_in_read_only_mode(tmp_path):
    from openpyxl import Workbook
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["record_id", "title", "abstract", "authors", "year", "doi", "included"])
    sheet.append([17, "Spinal Cord Compression as Initial Presentation in Hepatocellular "
                  "Carcinoma", "Two men.", "Anonymous A; Author B", 2021,
                  "10.7759/cureus.16238", 1])
    sheet.append([18, "Metastatic Spinal Cord Compression Secondary to Liver Cancer", None,
                  None, 2017.0, None, 0])
    sheet.append([None] * 7)
    path = tmp_path / "asreview_export.xlsx"
    workbook.save(path)
    export = read_export(path, "ASReview")
    assert (export.format, export.encoding) == ("xlsx", "binary")
    assert [(r.export_id, r.year) for r in export.records] == [("17", "2021"), ("18", "2017")]
    assert export.records[0].authors == ("Anonymous A", "Author B")


@pytest.mark.parametrize(("name", "content", "message"), [
    ("broken.xlsx", b"PK\x03\x04" + b"\x00" * 40, r"broken\.xlsx:1: not a readable XLSX"),
    ("text.xlsx", b"title\nA\n", r"text\.xlsx:1: not an XLSX workbook"),
    ("old.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 40, r"old\.xls:1: an Excel 97-2003"),
    ("zipped.csv", b"PK\x03\x04" + b"\x00" * 40, r"zipped\.csv:1: a zip archive"),
    ("refs.csv", (EXPORTS / "zotero.bib").read_bytes(),
     r"refs\.csv:1: the content looks like BibTeX, not CSV/TSV; pass --format bibtex"),
    ("broken.bib", b"@article{a,\n  title = {unclosed\n@misc{b, title={Fine}}\n",
     r"broken\.bib:1: not a valid BibTeX entry"),
    ("ovid.txt", b"<1>\nAccession Number\n  21107234\nTitle\n  Metastatic HCC\n\n<2>\n",
     r"ovid\.txt:1: Ovid's numbered text display is not an export this toolkit reads; in "
     r"Ovid choose Export → RIS"),
    ("endnote.enw", b"%0 Journal Article\n%T A title\n", r"endnote\.enw:1: EndNote's tagged"),
    ("cut.xml", (VENDOR / "reflib" / "multipart.xml").read_bytes()[:900],
     r"cut\.xml:\d+: malformed or truncated XML"),
    ("only_type.ris", b"TY  - JOUR\nER  - \n\nTY  - JOUR\nER  - \n",
     r"only_type\.ris:1: every record of this RIS file is empty"),
    ("empty_article.xml", b"<?xml version='1.0'?>\n<PubmedArticleSet>\n<PubmedArticle/>\n"
                          b"</PubmedArticleSet>\n",
     r"empty_article\.xml:3: every record of this PubMed XML file is empty"),
    ("continued.nbib", b"      continued before any tag\nPMID- 1\nTI  - A title\n",
     r"continued\.nbib:1: a continuation line outside a MEDLINE record"),
])
def test_bad_exports_fail_with_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ReviewError, match=message):
        read_export(path, "S")


def test_medline_doi_after_a_pii_in_lid_lines(tmp_path):
    path = tmp_path / "pii.nbib"
    path.write_text("PMID- 40828566\nTI  - A cervical spine metastasis\n"
                    "LID - S2056-5623(25)00001-2 [pii]\nLID - 10.1080/20565623.2025.2548742 "
                    "[doi]\nAID - S2056-5623(25)00001-2 [pii]\n", encoding="utf-8")
    [record] = read_export(path, "PubMed").records
    assert record.doi == "10.1080/20565623.2025.2548742"


def test_every_record_of_a_file_is_kept_even_with_one_doi(hcc_workspace):
    """Six conference abstracts sharing their supplement's DOI, an article and its erratum
    sharing one, and one record twice: ten records in, ten stored."""
    blocks = [f"TY  - CONF\nTI  - Abstract number {n}\nAU  - Author{n}, A\n"
              f"DO  - 10.1161/circ.124.suppl_21\nER  - \n" for n in range(6)]
    blocks += ["TY  - JOUR\nTI  - The article\nDO  - 10.1/art\nER  - \n",
               "TY  - JOUR\nTI  - Erratum: The article\nDO  - 10.1/art\nER  - \n"]
    blocks += ["TY  - JOUR\nTI  - Twice\nAU  - Same, A\nPY  - 2020\nER  - \n"] * 2
    path = hcc_workspace.root / "ten.ris"
    path.write_text("\n".join(blocks), encoding="utf-8")
    [result] = import_exports(hcc_workspace, [path], "Embase")
    stored = RecordStore(hcc_workspace.search_dir / "records.jsonl").load()
    assert (result.records, result.stored, len(stored)) == (10, 10, 10)
    assert [r.position for r in stored] == list(range(1, 11))
    assert len({r.record_id for r in stored}) == 10


def test_an_overlapping_second_export_adds_all_its_records(hcc_workspace):
    first = import_exports(hcc_workspace, [EXPORTS / "pubmed.nbib"], "PubMed")
    second = import_exports(hcc_workspace, [EXPORTS / "pubmed_efetch.xml"], "PubMed")
    assert (first[0].stored, second[0].stored) == (2, 3)
    stored = RecordStore(hcc_workspace.search_dir / "records.jsonl").load()
    assert len(stored) == 5
    assert {r.export_id for r in stored if r.source_file == "pubmed.nbib"} == {"34268063",
                                                                              "24250027"}


def test_a_workspace_written_by_version_0_1_is_upgraded_on_reimport(hcc_workspace, run_cli):
    """0.1 gave records content ids and dropped repeats within a file; importing the same
    file again keeps the stored ids (and the decisions on them) and adds what was dropped."""
    import dataclasses

    from review.search.records import legacy_record_id
    path = hcc_workspace.root / "repeats.ris"
    path.write_text("TY  - JOUR\nTI  - Twice\nAU  - Same, A\nPY  - 2020\nER  - \n" * 2
                    + "TY  - JOUR\nTI  - Once\nDO  - 10.1/once\nER  - \n", encoding="utf-8")
    records = read_export(path, "Embase").records
    legacy = [dataclasses.replace(r, record_id=legacy_record_id(r), origin="", position=0,
                                  export_id="", source_file=str(path))
              for r in (records[0], records[2])]
    store = RecordStore(hcc_workspace.search_dir / "records.jsonl")
    store.path.parent.mkdir(parents=True)
    store.path.write_text("".join(
        json.dumps({k: v for k, v in json.loads(r.to_json()).items()
                    if k not in ("origin", "position", "export_id")}) + "\n" for r in legacy))
    (hcc_workspace.search_dir / "search_log.jsonl").write_text(json.dumps({
        "kind": "import", "source": "Embase", "file": path.name,
        "sha256": read_export(path, "Embase").sha256, "records": 3, "new_records": 2,
        "already_known": 1, "date": "2026-11-30T10:00:00+00:00"}) + "\n")
    status, out, _ = run_cli("--project", hcc_workspace.root, "status")
    assert "2 records were stored by casereview 0.1" in out
    status, out, _ = run_cli("--project", hcc_workspace.root, "import", path, "--source",
                             "Embase")
    assert status == 0
    assert "3 records (RIS, utf-8): 1 stored, 2 stored by an earlier version given their " \
           "position" in out
    after = store.load()
    assert len(after) == 3 and not any(r.legacy for r in after)
    assert [r.record_id for r in after[:2]] == [r.record_id for r in legacy]
    assert sorted(r.position for r in after) == [1, 2, 3]


def test_a_thousand_record_export_with_duplicates_adds_a_thousand_and_counts_add_up(
        hcc_workspace, run_cli, tmp_path):
    """Done means of issue 9: 1,000 records with duplicates within the file and against an
    earlier import; identified grows by 1,000 and every surface shows the same numbers."""
    import csv

    from review.report.build import build_report
    labelled = Path(__file__).parent / "fixtures" / "dedup" / "labelled" / "respiratory"
    rows = list(csv.DictReader((labelled / "records.csv").open(encoding="utf-8")))

    def ris(chosen):
        return "".join(
            f"TY  - JOUR\nID  - {row['ID']}\nTI  - {row['title']}\n"
            + "".join(f"AU  - {name.strip()}\n" for name in row["author"].split(" and ")
                      if name.strip())
            + f"PY  - {row['year']}\nJO  - {row['journal']}\nVL  - {row['volume']}\n"
              f"SP  - {row['pages']}\nER  - \n\n" for row in chosen)

    earlier, big = tmp_path / "earlier.ris", tmp_path / "big.ris"
    earlier.write_text(ris(rows[900:1100]), encoding="utf-8")
    big.write_text(ris(rows[:1000]), encoding="utf-8")
    root = hcc_workspace.root
    assert run_cli("--project", root, "import", earlier, "--source", "Embase")[0] == 0
    before = json.loads(run_cli("--project", root, "status", "--json")[1])
    assert run_cli("--project", root, "import", big, "--source", "MEDLINE")[0] == 0
    status = json.loads(run_cli("--project", root, "status", "--json")[1])
    assert status["records_identified"] == before["records_identified"] + 1000 == 1200
    assert status["identified"] == {"Embase": 200, "MEDLINE": 1000}
    assert status["records_identified"] == (status["records_screened"]
                                            + status["duplicates_removed"])
    assert status["duplicates_removed"] > 100 + before["duplicates_removed"]
    code, out, _ = run_cli("--project", root, "prisma", "--json", "--out", tmp_path / "p")
    assert code == 0 and json.loads(out) == {key: status[key] for key in json.loads(out)}
    table = {row["data"]: row["n"] for row in
             csv.DictReader((tmp_path / "p" / "tables" / "prisma2020.csv").open())}
    assert (table["database_results"], table["duplicates"], table["records_screened"]) == (
        "1200", str(status["duplicates_removed"]), str(status["records_screened"]))
    build_report(hcc_workspace, tmp_path / "report", force=True)
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert (f"Records identified: 1200 from databases and registers, 0 via other methods. "
            f"After removing {status['duplicates_removed']} duplicates, "
            f"{status['records_screened']} records were screened") in page


@pytest.mark.parametrize(
    ("query", "code"),
    [("RCC[mh][tiab]", "Q009"), ("renal [tiab]", "Q009"),
     ('"spine OR vertebra"[tiab]', "Q010"), ('"metastasis"[tiab:~3]', "Q011")],
)
def test_lint_codes_for_terms_pubmed_misreads(query, code):
    assert code in {message.code for message in lint_query(query)}


def test_lint_of_the_protocol_names_the_term_and_both_formats_fail_alike(
        run_cli, hcc_workspace):
    path = hcc_workspace.protocol_path
    text = path.read_text()
    text = text.replace("        - hepatoma*\n", "        - hepatoma*\n        - HCC[mh]\n", 1)
    text = text.replace("        - words: [[metastasis, metastases, metastatic], [skull]]\n",
                        "        - phrase: metastasis skull\n", 1)
    path.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "- HCC[mh]" in row)
    status, out, err = run_cli("--project", hcc_workspace.root, "search", "query")
    assert status == 1 and out.startswith("(((")
    assert (f"hcc-bone-metastasis.yaml:{line}: search query: Q009 error at "
            "search.concepts[0].tiab[") in err and "'HCC[mh]'" in err
    assert "Q012 warning at search.concepts[1].tiab_proximity[1] 'metastasis skull'" in err
    status, out, _ = run_cli("--project", hcc_workspace.root, "search", "query", "--format",
                             "json")
    assert status == 1
    lint = json.loads(out)["lint"]
    assert {(m["code"], m["severity"], m["line"]) for m in lint} >= {("Q009", "error", line)}
    status, _, err = run_cli("--project", hcc_workspace.root, "search", "run", "--eutils-url",
                             "http://127.0.0.1:9/")
    assert status == 2 and "does not lint" in err and "Q009" in err


def test_a_proximity_warning_does_not_fail_the_lint(run_cli, hcc_workspace):
    path = hcc_workspace.protocol_path
    path.write_text(path.read_text().replace(
        "        - words: [[metastasis, metastases, metastatic], [skull]]\n",
        "        - phrase: metastasis skull\n", 1))
    status, _, err = run_cli("--project", hcc_workspace.root, "search", "query")
    assert status == 0 and "Q012 warning" in err


def test_a_central_european_export_is_read_in_its_own_code_page(tmp_path, hcc_workspace,
                                                                run_cli):
    path = tmp_path / "polish.ris"
    path.write_bytes("TY  - JOUR\nAU  - Kołodziej, Łukasz\nAU  - Wąsowicz, Ż.\nTI  - Ropień "
                     "nadtwardówkowy\nER  - \n".encode("cp1250"))
    export = read_export(path, "S")
    assert export.encoding == "windows-1250"
    assert export.records[0].authors == ("Kołodziej, Łukasz", "Wąsowicz, Ż.")
    western = tmp_path / "french.ris"
    western.write_bytes("TY  - JOUR\nAU  - Waël, M.\nTI  - Œdème à 37°C, ¿qué?\nER  - \n"
                        .encode("cp1252"))
    assert read_export(western, "S").records[0].title == "Œdème à 37°C, ¿qué?"
    status, out, _ = run_cli("--project", hcc_workspace.root, "import", path, "--source", "S")
    assert status == 0 and "1 records (RIS, windows-1250): 1 stored" in out


def test_an_export_two_code_pages_read_equally_well_is_refused_with_the_choice(
        tmp_path, hcc_workspace, run_cli):
    path = tmp_path / "czech.ris"
    path.write_bytes("TY  - JOUR\nAU  - Dvořák, Šárka\nTI  - Léčba\nER  - \n".encode("cp1250"))
    status, _, err = run_cli("--project", hcc_workspace.root, "import", path, "--source", "S")
    assert status == 2
    assert err.strip() == (f"review: error: {path}:2: not UTF-8, and it reads as windows-1252 "
                           "('Dvoøák') or as windows-1250 ('Dvořák'); pass --encoding "
                           "windows-1252 or --encoding windows-1250")
    assert not (hcc_workspace.root / "data" / "search" / "records.jsonl").exists()
    status, out, _ = run_cli("--project", hcc_workspace.root, "import", path, "--source", "S",
                             "--encoding", "windows-1250")
    assert status == 0 and "1 stored" in out
    records = (hcc_workspace.root / "data" / "search" / "records.jsonl").read_text("utf-8")
    assert "Dvořák, Šárka" in records and "Léčba" in records


def sixty_one_records_one_empty(tmp_path) -> Path:
    records = [f"TY  - JOUR\nTI  - Case {i} of spinal epidural abscess\nPY  - 2020\nER  - \n"
               for i in range(1, 61)]
    records.insert(30, "TY  - \nER  - \n")  # the empty record, at line 121
    path = tmp_path / "sixty.ris"
    path.write_text("".join(records), encoding="utf-8")
    return path


def test_an_empty_record_loses_no_other_record_and_is_counted_in_prisma(tmp_path,
                                                                       hcc_workspace, run_cli):
    from review.extraction.prisma_counts import prisma_counts_for

    path = sixty_one_records_one_empty(tmp_path)
    export = read_export(path, "Embase")
    assert len(export.records) == 60 and export.empty_lines == (121,)
    status, out, _ = run_cli("--project", hcc_workspace.root, "import", path, "--source",
                             "Embase")
    assert status == 0
    assert "60 records (RIS, utf-8): 60 stored" in out
    assert ("1 empty records (no bibliographic field; lines 121) not stored: PRISMA counts "
            "them as removed before screening for other reasons") in out
    counts = prisma_counts_for(hcc_workspace)
    assert counts["records_identified"] == 61 and counts["identified"] == {"Embase": 61}
    assert counts["records_removed_other"] == 1
    assert counts["records_screened"] + counts["duplicates_removed"] == 60
    from review.screening.prisma import prisma_csv

    row = next(line for line in prisma_csv(counts).decode().splitlines()
               if line.startswith("excluded_other,"))
    assert row.endswith(",1")


def test_strict_refuses_a_file_with_an_empty_record(tmp_path, hcc_workspace, run_cli):
    path = sixty_one_records_one_empty(tmp_path)
    status, _, err = run_cli("--project", hcc_workspace.root, "import", path, "--source",
                             "Embase", "--strict")
    assert status == 2
    assert f"{path}:121: an empty record (no bibliographic field), refused by --strict" in err
    assert not (hcc_workspace.root / "data" / "search" / "records.jsonl").exists()


def test_a_file_of_empty_records_only_is_refused(tmp_path):
    path = tmp_path / "empty.ris"
    path.write_text("TY  - \nER  - \nTY  - JOUR\nER  - \n", encoding="utf-8")
    with pytest.raises(ReviewError, match=r"empty\.ris:1: every record of this RIS file is "
                                          r"empty"):
        read_export(path, "S")


def test_ovids_numbered_ris_is_read_with_its_true_record_count(tmp_path):
    export = read_export(EXPORTS / "ovid_numbered.ris", "Ovid")
    assert [record.title for record in export.records] == [
        "Metastatic hepatocellular carcinoma with associated spinal cord compression",
        "Vertebral metastasis of HCC"]
    assert export.records[0].pmid == "21107234"  # Ovid MEDLINE's accession number
    assert export.empty_lines == (26,)  # record 3 holds nothing: counted, not stored
    assert all("ovidsp" not in str(record) for record in export.records)
    text = (EXPORTS / "ovid_numbered.ris").read_text(encoding="utf-8")
    gap = tmp_path / "gap.ris"
    gap.write_text(text.replace("\n2.\n", "\n4.\n"), encoding="utf-8")
    with pytest.raises(ReviewError, match=r"gap\.ris:14: Ovid's record number 4, where 2 was "
                                          r"expected"):
        read_export(gap, "Ovid")


@pytest.mark.parametrize("text", [
    "plain words", " leading", "trailing ", "two  spaces", "tab\there", "line\nbreak",
    "no\u00a0break space", "line\u2028separator", "ideographic\u3000space", "", "\u2029",
    "x\x1fy", "ünïcödé wörds", "  \t ", "a\u200ab"])
def test_clean_collapses_white_space_as_split_and_join_would(text):
    from review.search.records import clean

    assert clean(text) == " ".join(text.split())


def test_ris_tag_lines_with_trailing_white_space_are_tags_and_tabs_inside_are_not(tmp_path):
    path = tmp_path / "export.ris"
    path.write_bytes(b"TY  - JOUR\r\nTI  -  A title with spaces around  \r\nAU  - Okafor N\t\r\n"
                     b"PY  -\t\r\nDO  -\t10.1000/not.a.tag\r\nER  -  \r\n")
    (record,) = read_export(path, "Embase").records
    assert record.title == "A title with spaces around"
    assert record.authors == ("Okafor N",)
    # "DO  -" and a tab is no tag line: it continues the (empty) year before it.
    assert (record.year, record.doi) == ("", "")


def test_ris_lines_read_a_chunk_at_a_time_are_the_lines_of_the_whole_text(monkeypatch):
    """Lines split at LF only, CRLF endings dropped, wherever a chunk of the text ends: every
    cut of texts with CRLF, lone CR, U+2028 and blank lines gives the lines of one split."""
    import random

    from review.search.readers import ris

    rng = random.Random(3)
    pieces = ["TY  - JOUR", "\r\n", "\n", "\r", "TI  - a\u2028b", "AB  - é", "\n\n", "ER  - "]
    texts = ["", "\n", "\r\n", "a\r\r\nb"] + ["".join(rng.choices(pieces, k=rng.randint(1, 30)))
                                            for _ in range(300)]
    for chunk in (1, 2, 3, 7, 1 << 20):
        monkeypatch.setattr(ris, "SPLIT_CHUNK", chunk)
        for text in texts:
            whole = text.replace("\r\n", "\n").split("\n")
            read = list(ris._lines(text))
            # A final LF ends the last line; the empty "line" after it holds nothing to read.
            assert read == whole or (read == whole[:-1] and whole[-1] == ""), (chunk, text)
