"""The full-text store, attach, find and status, on real PDFs (matplotlib's PDF writer and
pypdf's own test files), against a local stand-in for Unpaywall and PubMed Central, with real
processes killed mid-attach and two attaching at once."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

from review.extraction.prisma_counts import prisma_counts_for
from review.fileio import is_temporary
from review.fulltext.find import OpenAccessConfig, OpenAccessFinder, find_open_copies
from review.fulltext.store import FullTextStore
from review.report.manifest import fulltexts_record, input_files
from review.search.records import RecordStore, make_record
from review.workspace import Workspace
from tests.conftest import ROOT
from tests.openaccess_server import FakeOpenAccess

matplotlib.use("Agg")
PYPDF_FILES = Path(__file__).parent / "fixtures" / "fulltext"
OTHER = {"identified_via": "other methods"}


def make_pdf(*lines: str, subject: str = "", pages: int = 1) -> bytes:
    """A real PDF from matplotlib's PDF backend, with its text extractable; the same lines
    give the same bytes (no creation time), as an upload test that counts files needs."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"Title": lines[0] if lines else "", "Subject": subject,
                                        "CreationDate": None}) as document:
        for page in range(pages):
            figure = Figure(figsize=(8.27, 11.69))
            for number, line in enumerate(lines):
                figure.text(0.08, 0.9 - 0.04 * number, line, fontsize=9)
            figure.text(0.5, 0.05, f"page {page + 1}")
            document.savefig(figure)
    return buffer.getvalue()


RECORDS = [
    # (position, doi, pmid, title)
    (1, "10.1016/j.spinee.2020.01.001", "31000001",
     "Spinal epidural abscess after epidural steroid injection: a case report"),
    (2, "10.1097/brs.0000000000003001", "31000002",
     "Cervical epidural abscess with tetraparesis after an interlaminar injection"),
    (3, "", "31000003", "Lumbar epidural abscess caused by Staphylococcus aureus in a diabetic"),
    (4, "10.1186/s13256-021-02999-9", "", "Delayed epidural abscess: report of two patients"),
    (5, "", "", "Conference abstract: epidural abscess following a caudal steroid injection"),
]


@pytest.fixture
def workspace(hcc_workspace) -> Workspace:
    """The HCC workspace with five reports found by other methods, so sought in full text."""
    RecordStore(hcc_workspace.search_dir / "records.jsonl").add([
        make_record("Reference lists", "refs.csv", origin="refs", position=position, doi=doi,
                    pmid=pmid, title=title, year="2021", extra=dict(OTHER))
        for position, doi, pmid, title in RECORDS])
    return Workspace(hcc_workspace.root)


def record_ids(workspace: Workspace) -> list[str]:
    return [r.record_id for r in RecordStore(workspace.search_dir / "records.jsonl").load()]


def store_snapshot(workspace: Workspace) -> dict[str, bytes]:
    folder = workspace.fulltext_dir
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()} if folder.exists() else {}


def index_rows(workspace: Workspace) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(
        (workspace.fulltext_dir / "index.csv").read_text(encoding="utf-8"))))


def test_attach_stores_a_real_pdf_once_with_its_text_and_an_ignored_folder(
        workspace, run_cli, tmp_path):
    first, second = record_ids(workspace)[:2]
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(make_pdf(RECORDS[0][3], "Methods and case", pages=3))
    status, out, err = run_cli("--project", workspace.root, "fulltext", "attach", first[:8], pdf)
    assert status == 0, err
    assert f"{first}: attached paper.pdf (3 pages" in out
    [row] = index_rows(workspace)
    assert (row["record_id"], row["pages"], row["source"], row["origin"]) == \
        (first, "3", "path", "paper.pdf")
    store = FullTextStore(workspace)
    entry = store.index()[first]
    assert store.read_pdf(entry) == pdf.read_bytes()
    assert "Spinal epidural abscess" in store.read_text(entry)
    assert (workspace.fulltext_dir / "files" / ".gitignore").read_text() == "*\n!.gitignore\n"
    # The same file again changes nothing; on a second record it is stored once.
    status, out, _ = run_cli("--project", workspace.root, "fulltext", "attach", first, pdf)
    assert status == 0 and "already attached" in out
    assert run_cli("--project", workspace.root, "fulltext", "attach", second, pdf)[0] == 0
    assert len(list((workspace.fulltext_dir / "files").glob("*.pdf"))) == 1
    assert len(index_rows(workspace)) == 2
    # Another PDF for the first record is refused unless asked to replace.
    other = tmp_path / "other.pdf"
    other.write_bytes(make_pdf("A different version"))
    status, _, err = run_cli("--project", workspace.root, "fulltext", "attach", first, other)
    assert status == 2 and "already has a full text" in err and "--replace" in err
    status, _, _ = run_cli("--project", workspace.root, "fulltext", "attach", first, other,
                           "--replace")
    assert status == 0 and store.index()[first].origin == "other.pdf"


def test_real_pdfs_from_pypdfs_test_suite_are_read_and_password_protected_ones_refused(
        workspace, run_cli):
    record = record_ids(workspace)[0]
    status, out, _ = run_cli("--project", workspace.root, "fulltext", "attach", record,
                             PYPDF_FILES / "pdflatex-outline.pdf")
    assert status == 0 and "(4 pages" in out
    # Protected by an owner password only: every viewer opens it, so it is accepted.
    status, _, err = run_cli("--project", workspace.root, "fulltext", "attach",
                             record_ids(workspace)[1], PYPDF_FILES / "r2-owner-password.pdf")
    assert status == 0, err
    for name in ("r2-user-password.pdf", "r4-aes-user-password.pdf",
                 "libreoffice-writer-password.pdf"):
        status, _, err = run_cli("--project", workspace.root, "fulltext", "attach",
                                 record_ids(workspace)[2], PYPDF_FILES / name)
        assert status == 2 and name in err and "encrypted" in err, err
        assert len(err.strip().splitlines()) == 1


def bad_files(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    whole = make_pdf("A report")
    damaged = bytearray(whole)
    damaged[200:2000] = b"\x00" * 1800
    return {
        "page.pdf": (b"<!DOCTYPE html><html><body>Sign in</body></html>", "an HTML page"),
        "empty.pdf": (b"", "empty, not a PDF"),
        "cut.pdf": (whole[: len(whole) // 2], "truncated"),
        "word.pdf": (b"PK\x03\x04" + b"\x00" * 100, "a zip archive"),
        "damaged.pdf": (b"%PDF-1.4\n" + b"garbage " * 50 + b"\n%%EOF\n", "damaged PDF"),
        "zeroed.pdf": (bytes(damaged), "damaged PDF"),
    }


def test_bad_files_are_refused_in_one_line_and_the_store_is_unchanged(workspace, run_cli,
                                                                       tmp_path):
    record = record_ids(workspace)[0]
    good = tmp_path / "good.pdf"
    good.write_bytes(make_pdf("A report"))
    assert run_cli("--project", workspace.root, "fulltext", "attach", record, good)[0] == 0
    before = store_snapshot(workspace)
    for name, (data, expected) in bad_files(tmp_path).items():
        path = tmp_path / name
        path.write_bytes(data)
        status, _, err = run_cli("--project", workspace.root, "fulltext", "attach",
                                 record_ids(workspace)[1], path)
        assert status == 2 and str(path) in err and expected in err, (name, err)
        assert len(err.strip().splitlines()) == 1
        assert store_snapshot(workspace) == before
    for arguments, expected in (
            (("zzzz", good), "no record 'zzzz' at the full-text stage"),
            ((record, tmp_path / "missing.pdf"), "no such file"),
            ((record, tmp_path), "is a folder")):
        status, _, err = run_cli("--project", workspace.root, "fulltext", "attach", *arguments)
        assert status == 2 and expected in err
    assert store_snapshot(workspace) == before


def test_a_pdf_over_the_protocols_limit_is_refused(workspace, run_cli, tmp_path):
    path = workspace.protocol_path
    path.write_text(path.read_text(encoding="utf-8") + "\nfulltext:\n  max_megabytes: 0.02\n",
                    encoding="utf-8")
    big = tmp_path / "big.pdf"
    big.write_bytes(make_pdf(*(f"line {n} " * 12 for n in range(20)), pages=30))
    assert big.stat().st_size > 20_000
    status, _, err = run_cli("--project", workspace.root, "fulltext", "attach",
                             record_ids(workspace)[0], big)
    assert status == 2 and "over the protocol's limit of 0.02 MB" in err
    assert "fulltext.max_megabytes" in err
    assert not (workspace.fulltext_dir / "index.csv").exists()


def test_attach_dir_matches_by_doi_pmid_metadata_and_title_and_lists_the_rest(
        workspace, run_cli, tmp_path):
    ids = record_ids(workspace)
    folder = tmp_path / "pdfs"
    (folder / "sub").mkdir(parents=True)
    (folder / "10.1016_j.spinee.2020.01.001.pdf").write_bytes(make_pdf("First report"))
    (folder / "PMID31000002.pdf").write_bytes(make_pdf("Second report"))
    (folder / "sub" / "scan.pdf").write_bytes(make_pdf("Case", "PMID: 31000003"))
    (folder / "download (4).pdf").write_bytes(make_pdf(
        "Case report", subject="doi:10.1186/s13256-021-02999-9"))
    (folder / "abstract.pdf").write_bytes(make_pdf(
        "Abstracts of the annual meeting",
        "Conference abstract: epidural abscess following a caudal steroid injection"))
    (folder / "unrelated.pdf").write_bytes(make_pdf("An unrelated paper"))
    (folder / "both.pdf").write_bytes(make_pdf("PMID: 31000001 and PMID: 31000002"))
    (folder / "notes.pdf").write_bytes(b"<html>not a pdf</html>")
    status, out, _ = run_cli("--project", workspace.root, "fulltext", "attach-dir", folder)
    assert status == 1
    assert f"{ids[0]}: attached 10.1016_j.spinee.2020.01.001.pdf (matched by DOI" in out
    assert f"{ids[1]}: attached PMID31000002.pdf (matched by PMID 31000002 in the file" in out
    assert f"{ids[2]}: attached scan.pdf (matched by PMID 31000003 in the PDF)" in out
    assert f"{ids[3]}: attached download (4).pdf (matched by DOI" in out
    assert f"{ids[4]}: attached abstract.pdf (matched by its title on the first page)" in out
    assert "unrelated.pdf: no record matched" in out
    assert "both.pdf: matches 2 records" in out
    assert "notes.pdf: an HTML page" in out
    assert "5 attached, 0 already attached, 1 unmatched, 1 ambiguous, 1 refused" in out
    assert set(FullTextStore(workspace).index()) == set(ids)


ATTACH = """
import sys
from pathlib import Path
from review.fulltext.attach import attach
from review.workspace import Workspace
workspace = Workspace(Path(sys.argv[1]))
attach(workspace, sys.argv[2], Path(sys.argv[3]).read_bytes(), source="path",
       origin="x.pdf", shown_as=sys.argv[3])
"""


def run_attach(workspace: Workspace, record: str, pdf: Path, **environment: str
               ) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ATTACH, str(workspace.root), record, str(pdf)],
                            cwd=ROOT, env={**os.environ, **environment},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("point", ["commit-staged", "commit-renaming"])
def test_a_kill_mid_attach_leaves_the_store_as_before_or_complete(workspace, tmp_path, point,
                                                                  run_cli):
    first, second = record_ids(workspace)[:2]
    pdf = tmp_path / "one.pdf"
    pdf.write_bytes(make_pdf("First"))
    assert run_cli("--project", workspace.root, "fulltext", "attach", first, pdf)[0] == 0
    before = FullTextStore(workspace).index()
    other = tmp_path / "two.pdf"
    other.write_bytes(make_pdf("Second"))
    killed = run_attach(workspace, second, other, REVIEW_FAULT=point)
    killed.wait(timeout=60)
    assert killed.returncode == -9
    status, out, _ = run_cli("--project", workspace.root, "fulltext", "status", "--json")
    assert status == 0
    index = FullTextStore(workspace).index()
    store = FullTextStore(workspace)
    if point == "commit-staged":
        assert index == before
    else:  # the journal was written: the next command completes the change
        assert set(index) == {first, second}
        assert store.read_pdf(index[second]) == other.read_bytes()
    assert all(store.has_file(entry) for entry in index.values())
    assert json.loads(out)["retrieved"] == len(index)
    # What the killed writer staged is never data; the next writer clears it away.
    assert all(is_temporary(p) for p in workspace.fulltext_dir.rglob(".*")
               if p.name != ".gitignore")
    assert run_cli("--project", workspace.root, "fulltext", "attach", second, other)[0] == 0
    assert not [p for p in workspace.fulltext_dir.rglob(".*") if p.name != ".gitignore"]


def test_two_attaches_at_once_both_land(workspace, tmp_path):
    ids = record_ids(workspace)
    pdfs = []
    for number in range(4):
        pdf = tmp_path / f"{number}.pdf"
        pdf.write_bytes(make_pdf(f"Report {number}"))
        pdfs.append(pdf)
    processes = [run_attach(workspace, ids[number], pdfs[number]) for number in range(4)]
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read()
    index = FullTextStore(workspace).index()
    assert set(index) == set(ids[:4])
    assert all(FullTextStore(workspace).read_pdf(index[ids[n]]) == pdfs[n].read_bytes()
               for n in range(4))


@pytest.fixture
def services():
    fake = FakeOpenAccess()
    server = fake.start()
    yield fake
    server.shutdown()


def finder_for(fake: FakeOpenAccess, services=("unpaywall", "pmc")) -> OpenAccessFinder:
    config = OpenAccessConfig(unpaywall_url=f"{fake.base}/unpaywall/",
                              pmc_url=f"{fake.base}/pmc/", email="team@example.org",
                              timeout=2.0, max_attempts=2, backoff=0.01)
    return OpenAccessFinder(config, services)


def test_find_retrieves_open_copies_reports_the_rest_and_resumes(workspace, services):
    ids = record_ids(workspace)
    whole = make_pdf("Open copy")
    services.files = {"a.pdf": ("html", b""), "b.pdf": ("pdf", whole),
                      "c.pdf": ("truncated-once", make_pdf("From PMC")),
                      "loop.pdf": ("loop", b""), "drip.pdf": ("drip", make_pdf("Slow") * 3),
                      "cut.pdf": ("truncated", make_pdf("Always cut"))}
    # 1: an HTML page first, then a real PDF. 2: Unpaywall has no copy; PMC's is cut short
    # once. 3: PMC knows it but it is not open access. 4: a redirect loop and a slow drip.
    services.unpaywall = {RECORDS[0][1]: ["a.pdf", "b.pdf"], RECORDS[1][1]: [],
                          RECORDS[3][1]: ["loop.pdf", "drip.pdf"]}
    services.pmc = {"31000002": ("PMC7000002", "c.pdf"), "31000003": ("PMC7000003", None)}
    lines: list[str] = []
    result = find_open_copies(workspace, finder_for(services), report=lines.append)
    assert sorted(result.retrieved) == sorted([(ids[0], "unpaywall"), (ids[1], "pmc")])
    assert sorted(result.no_open_copy) == sorted([ids[2], ids[4]])
    [(failed, why)] = result.failed
    assert failed == ids[3]
    assert "redirected in a loop" in why and "longer than 2 s" in why
    assert services.hits["/files/c.pdf"] == 2  # the cut-short copy was asked for again
    assert set(services.emails) == {"team@example.org"}
    store = FullTextStore(workspace)
    assert store.read_pdf(store.index()[ids[0]]) == whole
    assert store.index()[ids[0]].origin == f"{services.base}/files/b.pdf"
    assert all("\n" not in line for line in lines)
    lookups = (workspace.fulltext_dir / "lookups.csv").read_text(encoding="utf-8")
    assert ids[2] in lookups and "no_open_copy" in lookups and "failed" in lookups
    # A second run asks only for the failed record; now its copy is whole.
    services.files["drip.pdf"] = ("pdf", make_pdf("Now quick"))
    before = services.hits.copy()
    again = find_open_copies(workspace, finder_for(services))
    assert again.retrieved == [(ids[3], "unpaywall")] and again.skipped == 4
    assert services.hits["/pmc/oa/oa.fcgi"] == before["/pmc/oa/oa.fcgi"]
    assert "failed" not in (workspace.fulltext_dir / "lookups.csv").read_text(encoding="utf-8")


def test_status_not_retrieved_and_prisma_add_up(workspace, services, run_cli):
    ids = record_ids(workspace)
    services.files = {"b.pdf": ("pdf", make_pdf("Open"))}
    services.unpaywall = {RECORDS[0][1]: ["b.pdf"]}
    find_open_copies(workspace, finder_for(services, ("unpaywall",)))
    status, out, _ = run_cli("--project", workspace.root, "fulltext", "status", "--json")
    found = json.loads(out)
    assert (found["sought"], found["retrieved"], found["not_retrieved"]) == (5, 1, 0)
    assert sorted(found["no_open_copy"]) == sorted(ids[1:])
    status, _, err = run_cli("--project", workspace.root, "fulltext", "not-retrieved",
                             "--by", "pilot-team", "--note", " ")
    assert status == 2 and "--note" in err
    status, out, err = run_cli("--project", workspace.root, "fulltext", "not-retrieved",
                               "--by", "pilot-team", "--note", "not held by the library")
    assert status == 0, err
    assert out.count("not retrieved (not held by the library), recorded by pilot-team") == 4
    counts = prisma_counts_for(workspace)
    assert counts["other_reports_not_retrieved"] == 4
    assert counts["other_reports_sought"] == counts["other_reports_not_retrieved"] + \
        counts["other_reports_assessed"] + counts["other_reports_awaiting_assessment"]
    status, _, err = run_cli("--project", workspace.root, "fulltext", "not-retrieved", ids[0],
                             "--by", "pilot-team", "--note", "x")
    assert status == 2 and "was retrieved" in err


def test_find_needs_a_contact_address_for_unpaywall():
    from review.errors import ReviewError

    with pytest.raises(ReviewError, match="UNPAYWALL_EMAIL or NCBI_EMAIL"):
        OpenAccessFinder(OpenAccessConfig(email=None), ("unpaywall", "pmc"))
    OpenAccessFinder(OpenAccessConfig(email=None), ("pmc",))


def test_the_manifest_lists_the_hashes_and_never_reads_the_pdfs(workspace, run_cli, tmp_path):
    record = record_ids(workspace)[0]
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(make_pdf("Paper"))
    run_cli("--project", workspace.root, "fulltext", "attach", record, pdf)
    digest = FullTextStore(workspace).index()[record].sha256
    assert fulltexts_record(workspace) == {record: digest}
    read = {path.relative_to(workspace.root).as_posix() for path in input_files(workspace)}
    assert "data/fulltext/index.csv" in read
    assert not any(name.startswith("data/fulltext/files/") for name in read)


def test_find_on_the_command_line_stores_what_it_can_and_exits_1_on_a_failure(
        workspace, services, run_cli, monkeypatch):
    ids = record_ids(workspace)
    services.files = {"b.pdf": ("pdf", make_pdf("Open")), "gone.pdf": ("404", b"")}
    services.unpaywall = {RECORDS[0][1]: ["b.pdf"], RECORDS[1][1]: ["gone.pdf"]}
    monkeypatch.setenv("REVIEW_UNPAYWALL_URL", f"{services.base}/unpaywall")
    monkeypatch.setenv("REVIEW_PMC_URL", f"{services.base}/pmc")
    monkeypatch.setenv("NCBI_EMAIL", "team@example.org")
    monkeypatch.delenv("UNPAYWALL_EMAIL", raising=False)
    status, out, err = run_cli("--project", workspace.root, "fulltext", "find", "--timeout",
                               "5", "--max-attempts", "1")
    assert status == 1, err
    assert f"{ids[0]}: retrieved from Unpaywall (1 pages)" in out
    assert f"{ids[1]}: not retrieved: {services.base}/files/gone.pdf: HTTP 404" in out
    assert "1 retrieved, 3 with no open copy, 1 failed (tried again by the next run)" in out
    status, out, _ = run_cli("--project", workspace.root, "status")
    assert "full texts: 1 of 5 retrieved, 0 not retrieved, 3 with no open copy, 1 lookups " \
        "failed" in out


def test_build_check_passes_on_a_clone_without_the_pdfs(hcc_workspace, run_cli, tmp_path,
                                                        monkeypatch):
    import shutil

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1780000000")
    hcc_workspace.search_dir.mkdir(parents=True)
    shutil.copy(ROOT / "data" / "search" / "records.jsonl", hcc_workspace.search_dir)
    shutil.copytree(ROOT / "data" / "screening", hcc_workspace.screening_dir)
    record = record_ids(hcc_workspace)[0]
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(make_pdf("An HCC report"))
    assert run_cli("--project", hcc_workspace.root, "fulltext", "attach", record, pdf)[0] == 0
    out = tmp_path / "report"
    assert run_cli("--project", hcc_workspace.root, "build", "--quiet", "--out", out)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["fulltexts"] == {record: FullTextStore(hcc_workspace).index()[record].sha256}
    shutil.rmtree(hcc_workspace.fulltext_dir / "files")  # as a clone has it
    status, text, _ = run_cli("--project", hcc_workspace.root, "build", "--check", "--quiet",
                              "--out", out)
    assert status == 0 and text.strip().endswith("up to date with the data")


def test_a_service_that_is_down_does_not_keep_the_other_from_being_asked(workspace, services):
    ids = record_ids(workspace)
    services.unpaywall_down = True
    services.files = {"c.pdf": ("pdf", make_pdf("From PMC"))}
    services.pmc = {"31000002": ("PMC7000002", "c.pdf")}
    result = find_open_copies(workspace, finder_for(services))
    assert (ids[1], "pmc") in result.retrieved
    # Unpaywall's failure is recorded for the records only it could have answered.
    failed = dict(result.failed)
    assert "Unpaywall" in failed[ids[0]] and "HTTP 503" in failed[ids[0]]
    assert ids[2] in result.no_open_copy  # a PMID only: Unpaywall was never asked
