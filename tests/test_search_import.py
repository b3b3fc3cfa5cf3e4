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
         r"entity\.xml:3: the XML declares entities, which are refused"),
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
    assert counts["cases_extracted"] == 93 and counts["studies_extracted"] == 87


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
    assert mesh_clause(MeshHeading("Spine", major=True)) == '"Spine"[Majr]'
    assert mesh_clause(MeshHeading("Spine", explode=False)) == '"Spine"[Mesh:NoExp]'
    assert mesh_clause(MeshHeading("Spine", "secondary", True, False)) == \
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
