"""Full texts in the web app, for real: a `review serve` process, Chromium through
Playwright uploading a PDF on the full-text page, the PDF served back byte for byte, and the
extraction page listing and prefilling the reports still to extract."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from review.extraction.prisma_counts import prisma_counts_for
from review.extraction.sheet import read_cases
from review.fulltext.store import FullTextStore
from review.screening.decisions import Decision, DecisionStore, now
from review.search.records import RecordStore, make_record
from review.workspace import Workspace
from tests.conftest import ROOT
from tests.test_fulltext import make_pdf
from tests.test_web import CHROMIUM, csrf_of, opener, running_server, sign_in

ABSTRACT_TITLE = ("Spinal epidural abscess after an epidural steroid injection presenting "
                  "as back pain: a conference abstract")


@pytest.fixture
def fulltext_workspace(hcc_workspace) -> Workspace:
    """A copy of the HCC workspace (records, decisions, sheet) with two more reports found
    by other methods: one with DOI and PMID, a conference abstract with neither."""
    hcc_workspace.search_dir.mkdir(parents=True)
    shutil.copy(ROOT / "data" / "search" / "records.jsonl", hcc_workspace.search_dir)
    shutil.copytree(ROOT / "data" / "screening", hcc_workspace.screening_dir)
    path = hcc_workspace.protocol_path
    path.write_text(path.read_text().replace("reviewers: [pilot-team]",
                                             "reviewers: [pilot-team, ana]"))
    RecordStore(hcc_workspace.search_dir / "records.jsonl").add([
        make_record("Reference lists", "refs.csv", origin="refs", position=1,
                    doi="10.1016/j.spinee.2020.01.001", pmid="31000001", year="2020",
                    title="Spinal epidural abscess after epidural steroid injection",
                    authors=["Okafor C"], extra={"identified_via": "other methods"}),
        make_record("Reference lists", "refs.csv", origin="refs", position=2, year="2019",
                    title=ABSTRACT_TITLE, extra={"identified_via": "other methods"})])
    return Workspace(hcc_workspace.root)


def record_ids(workspace: Workspace) -> list[str]:
    """The two added records."""
    return [r.record_id for r in RecordStore(workspace.search_dir / "records.jsonl").load()
            if r.origin == "refs"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_a_pdf_uploaded_in_chromium_is_shown_after_a_reload_and_served_back_unchanged(
        fulltext_workspace, tmp_path):
    from playwright.sync_api import sync_playwright

    first, _ = record_ids(fulltext_workspace)
    pdf = tmp_path / "okafor 2020.pdf"
    pdf.write_bytes(make_pdf("Spinal epidural abscess after epidural steroid injection",
                             "Staphylococcus aureus grew from the abscess; HCC was excluded.",
                             pages=2))
    with running_server(fulltext_workspace.root) as (url, _), sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        sign_in(page, url, "ana")
        page.goto(f"{url}/screen/full-text?record={first}")
        assert page.locator("#no-fulltext").is_visible()
        assert page.locator("#fulltext-links a", has_text="PubMed").get_attribute("href") == \
            "https://pubmed.ncbi.nlm.nih.gov/31000001/"
        page.set_input_files("#pdf-file", str(pdf))
        with page.expect_navigation():
            page.click("#upload-button")
        page.reload()
        frame = page.locator("iframe#pdf")
        assert frame.get_attribute("src") == f"/fulltext/{first}.pdf"
        assert "2 pages, uploaded" in page.locator("#fulltext-about").inner_text()
        # The protocol's keywords found in the text, and a search of it.
        assert "HCC" in page.locator("#keyword-hits").inner_text()
        page.fill("#find", "aureus")
        with page.expect_navigation():
            page.press("#find", "Enter")
        assert page.locator("#found").inner_text().startswith("2 found")
        assert "Staphylococcus aureus grew" in page.locator("#snippets").inner_text()
        assert page.locator("article#record").get_attribute("data-record") == first
        served = page.request.get(f"{url}/fulltext/{first}.pdf")
        assert served.status == 200 and served.headers["content-type"] == "application/pdf"
        assert served.body() == pdf.read_bytes()
        assert "frame-src 'self'" in page.request.get(
            f"{url}/screen/full-text").headers["content-security-policy"]
        browser.close()
    [entry] = FullTextStore(fulltext_workspace).index().values()
    assert (entry.source, entry.origin) == ("uploaded", "okafor 2020.pdf")


def test_uploads_that_are_not_pdfs_strangers_and_other_sites_are_refused(fulltext_workspace):
    first, _ = record_ids(fulltext_workspace)
    with running_server(fulltext_workspace.root) as (url, _):
        with opener().open(f"{url}/fulltext/{first}.pdf", timeout=10) as stranger:
            assert stranger.url == url + "/"  # sent to sign in
            assert stranger.headers["Content-Type"].startswith("text/html")
        browser = opener()
        chooser = browser.open(url + "/", timeout=10).read().decode()
        browser.open(urllib.request.Request(
            url + "/signin", data=f"csrf={csrf_of(chooser)}&reviewer=ana".encode()),
            timeout=10).read()
        page = browser.open(f"{url}/screen/full-text?record={first}", timeout=10).read().decode()
        token = csrf_of(page)
        landed: list[str] = []

        def upload(record: str, name: str, data: bytes, csrf: str = token,
                   back: str = "/screen/full-text") -> tuple[int, str]:
            boundary = "----casereview"
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"
                    f"{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"back\""
                    f"\r\n\r\n{back}\r\n--{boundary}\r\nContent-Disposition: "
                    f"form-data; name=\"pdf\"; filename=\"{name}\"\r\nContent-Type: "
                    "application/pdf\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
            request = urllib.request.Request(
                f"{url}/fulltext/{record}/upload", data=body,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
            try:
                with browser.open(request, timeout=30) as reply:
                    landed.append(reply.url)
                    return reply.status, reply.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode()

        status, text = upload(first, "page.pdf", b"<!DOCTYPE html><html>sign in</html>")
        assert status == 422 and "an HTML page, not a PDF" in text
        status, text = upload(first, "../../../etc/passwd.pdf", make_pdf("Escapes?"))
        assert status == 200
        assert FullTextStore(fulltext_workspace).index()[first].origin == "passwd.pdf"
        status, text = upload("r0000000000000000", "x.pdf", make_pdf("x"))
        assert status == 404
        status, text = upload(first, "x.pdf", make_pdf("x"), csrf="forged")
        assert status == 403
        for elsewhere in ("//evil.example/x", "/\\evil.example/x", "https://evil.example/"):
            status, _ = upload(first, "y.pdf", make_pdf("y"), back=elsewhere)
            assert status == 200 and landed[-1] == f"{url}/screen/full-text?record={first}"
        broken = urllib.request.Request(
            f"{url}/fulltext/{first}/upload", data=b"--x\r\nnot a part",
            headers={"Content-Type": "multipart/form-data; boundary=x"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            browser.open(broken, timeout=10)
        assert refused.value.code in (400, 403)
        # Over the protocol's limit: refused by its stated length, before it is read.
        protocol = fulltext_workspace.protocol_path
        protocol.write_text(protocol.read_text() + "\nfulltext:\n  max_megabytes: 0.1\n")
        status, text = upload(first, "big.pdf", b"%PDF-1.4\n" + b"0" * 200_000)
        assert status == 413 and "over the protocol&#39;s limit of 0.1 MB" in text
    files = sorted(p.name for p in (fulltext_workspace.fulltext_dir / "files").iterdir())
    assert len([name for name in files if name.endswith(".pdf")]) == 2
    assert not list(Path(fulltext_workspace.root).rglob("passwd*"))


def include_at_full_text(workspace: Workspace, records: list[str]) -> None:
    DecisionStore(workspace.screening_dir).append([
        Decision(record, "full-text", "ana", "include", time=now()) for record in records])


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_extraction_page_lists_included_reports_and_prefills_the_first_patient(
        fulltext_workspace):
    from playwright.sync_api import sync_playwright

    first, abstract = record_ids(fulltext_workspace)
    include_at_full_text(fulltext_workspace, [first, abstract])
    before = prisma_counts_for(fulltext_workspace)
    assert before["reports_included_not_extracted"] == 2
    with running_server(fulltext_workspace.root) as (url, _), sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        sign_in(page, url, "ana")
        page.goto(f"{url}/extract")
        rows = page.locator("#to-extract tr[data-record]")
        assert rows.count() == 2
        with page.expect_navigation():
            page.click(f"#to-extract tr[data-record='{abstract}'] a.extract")
        assert page.input_value("#input-source_title") == ABSTRACT_TITLE
        assert page.input_value("#input-pub_year") == "2019"
        assert page.input_value("#input-doi") == "" and page.input_value("#input-pmid") == ""
        page.fill("#input-case_id", "anonabstract_2019_1")
        page.fill("#input-study_id", "anonabstract_2019")
        page.fill("#input-source_url", "https://example.org/abstracts/2019/17")
        page.select_option("#input-extraction_basis", "abstract")
        with page.expect_navigation():
            page.click("#save")
        assert page.locator("#saved").is_visible(), page.locator(".error").all_inner_texts()
        page.goto(f"{url}/extract/case?record={first}")
        assert page.locator("#no-fulltext").is_visible()  # beside the form: nothing yet
        # Built from the first author and year, in the schema's own id patterns.
        assert page.input_value("#input-study_id") == "okafor_2020"
        assert page.input_value("#input-case_id") == "okafor_2020_1"
        assert page.input_value("#input-source_url") == \
            "https://doi.org/10.1016/j.spinee.2020.01.001"
        page.goto(f"{url}/extract")
        assert page.locator("#to-extract tr[data-record]").count() == 1
        browser.close()
    cases = read_cases(fulltext_workspace.cases_path, fulltext_workspace.protocol.extraction)
    assert "anonabstract_2019_1" in set(cases["case_id"])
    counts = prisma_counts_for(fulltext_workspace)
    included = counts["reports_included"] + counts["other_reports_included"]
    assert counts["studies_included"] + counts["reports_included_not_extracted"] == included
    assert counts["reports_included_not_extracted"] == 1
    assert counts["studies_included"] == before["studies_included"] + 1
