"""`review serve` for real: a server process on a free port, driven over HTTP and by Debian's
Chromium through Playwright (skipped, saying why, where the browser is missing)."""

from __future__ import annotations

import contextlib
import http.client
import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from markupsafe import escape

from review.screening.decisions import DecisionStore
from review.screening.flow import screening_state
from review.search.importing import import_exports
from review.search.records import RecordStore, make_record
from review.web.app import host_name
from review.workspace import Workspace
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EXPORTS = Path(__file__).parent / "fixtures" / "exports"
HOSTILE = '<script>alert("x")</script> Vertebral metastasis & <b>bold</b>'
SCREENSHOT = ROOT / "docs" / "screening.png"


@pytest.fixture
def web_workspace(hcc_workspace) -> Workspace:
    path = hcc_workspace.protocol_path
    path.write_text(path.read_text().replace(
        "reviewers: [pilot-team]", "reviewers: [pilot-team, ana, ben]\n  adjudicators: [judge]"))
    import_exports(hcc_workspace, [EXPORTS / "pubmed_efetch.xml"], "PubMed")
    RecordStore(hcc_workspace.search_dir / "records.jsonl").add([make_record(
        "PubMed", "test", origin="test", position=1, pmid="99999998", title=HOSTILE)])
    return Workspace(hcc_workspace.root)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(root: Path, *options: str, port: int | None = None
                   ) -> Iterator[tuple[str, subprocess.Popen]]:
    """`review serve` on a free port (or `port`), once it accepts connections; stopped
    afterwards."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "review", "--project", str(root), "serve", "--port", str(port),
         *options], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise AssertionError(process.stdout.read()) from None
            time.sleep(0.2)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def server(web_workspace) -> Iterator[str]:
    with running_server(web_workspace.root) as (url, _):
        yield url


def sign_in(page, url: str, name: str) -> None:
    """Sign in from the chooser, as a person does, and wait for the first page."""
    page.goto(url + "/")
    with page.expect_navigation():
        page.click(f"#as-{name}")


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def post(browser: urllib.request.OpenerDirector, url: str,
         fields: dict | list[tuple[str, str]]) -> tuple[int, str]:
    data = urllib.parse.urlencode(fields).encode()
    try:
        with browser.open(urllib.request.Request(url, data=data), timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def version_in(page: str) -> str:
    """The row version a form carries (what it was opened on)."""
    return re.search(r'name="version" value="([^"]+)"', page).group(1)


def test_forms_without_the_session_token_and_strangers_are_refused(server):
    browser = opener()
    page = browser.open(server + "/").read().decode()
    assert post(browser, server + "/signin", {"reviewer": "ana"})[0] == 403
    status, body = post(browser, server + "/signin", {"reviewer": "mallory",
                                                       "csrf": csrf_of(page)})
    assert status == 403 and "not a reviewer of this protocol" in body
    assert browser.open(server + "/progress").geturl().endswith("/")  # not signed in
    status, _ = post(browser, server + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
    assert status == 200
    assert post(browser, server + "/screen/title-abstract/decide",
                {"record": "x", "decision": "include"})[0] == 403
    with pytest.raises(urllib.error.HTTPError) as caught:
        browser.open(server + "/conflicts/title-abstract")
    assert caught.value.code == 403  # ana screens; she never sees another's votes


def test_a_record_from_an_export_is_shown_as_text(server, web_workspace):
    browser = opener()
    page = browser.open(server + "/").read().decode()
    post(browser, server + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
    records = screening_state(web_workspace).candidates("title-abstract")
    hostile = next(r for r in records if r.title == HOSTILE)
    page = browser.open(f"{server}/screen/title-abstract?record={hostile.record_id}").read()
    assert b"<script>alert" not in page
    assert b"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert b"&lt;b&gt;bold&lt;/b&gt;" in page


def test_a_non_local_address_needs_tokens(web_workspace):
    result = subprocess.run(
        [sys.executable, "-m", "review", "--project", str(web_workspace.root), "serve",
         "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "not a local address" in result.stderr and "--tokens" in result.stderr


def decision_lines(workspace: Workspace, stage: str, reviewer: str) -> list[dict]:
    """A reviewer's decision file without the times, as the CLI would have written it."""
    path = DecisionStore(workspace.screening_dir).path(stage, reviewer)
    return [{key: value for key, value in json.loads(line).items() if key != "time"}
            for line in path.read_text().splitlines()]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (Debian package "
                                             "'chromium'; .ci/run installs it)")
def test_two_reviewers_screen_by_keyboard_and_the_adjudicator_resolves(server, web_workspace):
    from playwright.sync_api import sync_playwright

    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)

        def screen_as(name: str, keys: list[str]) -> list[str]:
            page = browser.new_page()
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            sign_in(page, server, name)
            shown = []
            for key in keys:
                page.wait_for_selector("#record")
                record = page.get_attribute("#record", "data-record")
                shown.append(record)
                if key.startswith("e"):
                    page.keyboard.press(key[1:] or "Escape")  # a reason number, if any
                with page.expect_navigation():
                    page.keyboard.press(key[0])
            page.wait_for_selector("#finished")
            page.close()
            return shown

        shot = browser.new_page(viewport={"width": 1100, "height": 760})
        sign_in(shot, server, "ben")
        shot.wait_for_selector("#record")
        # The README's picture of the screening page comes from this run.
        shot.screenshot(path=str(SCREENSHOT))
        shot.close()
        assert SCREENSHOT.stat().st_size > 10_000

        order = screen_as("ana", ["i", "e", "i", "i"])
        screen_as("ben", ["e2", "e", "i", "i"])

        page = browser.new_page()
        sign_in(page, server, "ana")
        page.wait_for_selector("#finished")  # the page and its key handler are loaded
        with page.expect_navigation():
            page.keyboard.press("u")  # ana takes back her last decision and makes it again
        page.wait_for_selector("#record")
        assert page.get_attribute("#record", "data-record") == order[-1]
        with page.expect_navigation():
            page.keyboard.press("m")
        page.close()

        judge = browser.new_page()
        sign_in(judge, server, "judge")
        judge.goto(server + "/conflicts/title-abstract")
        assert judge.inner_text("#count") == "1 conflicts"
        section = judge.locator(f'section[data-record="{order[0]}"]')
        assert "ana: include" in section.inner_text() and "ben: exclude" in section.inner_text()
        # The adjudicator decides informed: the record as the reviewers saw it, and each
        # vote's reason by its label.
        reason = web_workspace.protocol.screening.exclusion_reasons[1]
        assert f"ben: exclude ({reason.label})" in section.inner_text()
        judge.set_viewport_size({"width": 1100, "height": 760})
        judge.screenshot(path=str(SCREENSHOT.with_name("conflicts.png")))
        shown_record = next(r for r in screening_state(web_workspace).records
                            if r.record_id == order[0])
        assert section.locator("details.abstract p").inner_text().strip() == \
            (shown_record.abstract or "(no abstract)")
        assert section.locator("a", has_text="PMID").count() == int(bool(shown_record.pmid))
        assert section.locator(".authors").inner_text().strip() == \
            ", ".join(shown_record.authors)
        with judge.expect_navigation():
            section.locator('button[value="include"]').click()
        assert judge.inner_text("#count") == "0 conflicts"
        judge.goto(server + "/progress")
        assert "Cohen's kappa" in judge.inner_text("#agreement")
        assert "over 4 records" in judge.inner_text("#agreement")
        assert judge.locator("#diagram svg").count() == 1
        assert "ana 4 of 4" in " ".join(judge.inner_text("#reviewers").split())

        ana = browser.new_page()
        sign_in(ana, server, "ana")
        ana.goto(server + "/screen/full-text")
        ana.wait_for_selector("#record")
        with ana.expect_navigation():
            ana.keyboard.press("e")  # at full text an exclusion needs a reason: shown inline
        assert "a full-text exclusion needs a reason" in ana.inner_text("#error")
        ana.wait_for_selector("#error")
        ana.keyboard.press("3")
        with ana.expect_navigation():
            ana.keyboard.press("e")
        browser.close()
    assert dialogs == []

    reasons = [reason.id for reason in web_workspace.protocol.screening.exclusion_reasons]
    expected_ana = [{"record": order[0], "decision": "include", "reason": ""},
                    {"record": order[1], "decision": "exclude", "reason": ""},
                    {"record": order[2], "decision": "include", "reason": ""},
                    {"record": order[3], "decision": "include", "reason": ""},
                    {"record": order[3], "decision": "withdrawn", "reason": ""},
                    {"record": order[3], "decision": "maybe", "reason": ""}]
    base = {"stage": "title-abstract", "reviewer": "ana", "note": "", "role": "reviewer"}
    assert decision_lines(web_workspace, "title-abstract", "ana") == [
        {**base, **line} for line in expected_ana]
    ben = decision_lines(web_workspace, "title-abstract", "ben")
    assert [(line["decision"], line["reason"]) for line in ben] == [
        ("exclude", reasons[1]), ("exclude", ""), ("include", ""), ("include", "")]
    judged = decision_lines(web_workspace, "title-abstract", "judge")
    assert judged == [{"record": order[0], "stage": "title-abstract", "reviewer": "judge",
                       "decision": "include", "reason": "", "note": "", "role": "adjudicator"}]
    full_text = decision_lines(web_workspace, "full-text", "ana")
    assert [(line["decision"], line["reason"]) for line in full_text] == [
        ("exclude", reasons[2])]
    final = screening_state(web_workspace).final["title-abstract"]
    assert final[order[0]].decision == "include" and final[order[0]].adjudicated
    assert final[order[1]].decision == "exclude"
    assert final[order[2]].decision == "include"
    assert final[order[3]].decision == "include"  # maybe and include go on to full text
    assert asdict(final[order[1]].votes["ana"])["decision"] == "exclude"


def test_the_duplicate_queue_shows_pairs_side_by_side_and_stores_the_verdict(hcc_workspace):
    path = hcc_workspace.protocol_path
    path.write_text(path.read_text().replace("reviewers: [pilot-team]",
                                             "reviewers: [pilot-team, ana]"))
    base = {"authors": ["Tamaki T", "Tomita K"], "journal": "World Journal of Gastroenterology",
            "year": "2007", "volume": "", "pages": ""}
    first = make_record("PubMed", "a.xml", origin="a", position=1, **base,
                        title="Spinal metastasis of hepatocellular carcinoma treated with "
                              "stereotactic body radiotherapy")
    second = make_record("Embase", "b.ris", origin="b", position=1, **base,
                         title="Spinal metastases of hepatocellular carcinoma treated by "
                               "stereotactic radiotherapy")
    RecordStore(hcc_workspace.search_dir / "records.jsonl").add([first, second])
    workspace = Workspace(hcc_workspace.root)
    with running_server(workspace.root) as (url, _):
        browser = opener()
        page = browser.open(url + "/", timeout=10).read().decode()
        post(browser, url + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
        queue = browser.open(url + "/dedup").read().decode()
        assert "1 pairs wait for a decision" in queue
        assert '<tr class="differ"><th>title</th>' in queue
        assert '<tr><th>year</th><td>2007</td><td>2007</td></tr>' in queue
        pair = re.search(r'data-first="([^"]+)" data-second="([^"]+)"', queue).groups()
        assert post(browser, url + "/dedup/decide", {"first": pair[0], "second": pair[1],
                                                     "verdict": "same"})[0] == 403
        if CHROMIUM is None:
            status, after = post(browser, url + "/dedup/decide",
                                 {"first": pair[0], "second": pair[1], "verdict": "same",
                                  "csrf": csrf_of(queue)})
            assert status == 200 and "0 pairs wait for a decision" in after
        else:  # as a reviewer does it: in the browser
            from playwright.sync_api import sync_playwright

            with sync_playwright() as playwright:
                chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                page = chromium.new_page()
                sign_in(page, url, "ana")
                page.goto(url + "/dedup")
                assert page.locator("tr.differ mark").count() >= 2
                with page.expect_navigation():
                    page.click('section.pair button[value="same"]')
                assert "0 pairs wait for a decision" in page.inner_text("#remaining")
                chromium.close()
    decisions = (workspace.data_dir / "dedup" / "decisions.csv").read_text()
    assert "ana" in decisions and first.record_id in decisions
    assert screening_state(workspace).dedup.duplicates_removed == 1


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (Debian package "
                                             "'chromium'; .ci/run installs it)")
def test_an_extraction_form_shows_the_validators_messages_and_saves_the_sheet(server,
                                                                                web_workspace):
    from playwright.sync_api import sync_playwright

    before = web_workspace.cases_path.read_text().splitlines()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page()
        sign_in(page, server, "ana")
        page.goto(server + "/extract")
        assert "120 patients from 113 reports" in page.inner_text("#summary")
        page.goto(server + "/extract/case?study=anoncureus16238_2021")
        # The report's own fields come filled from its other patients.
        assert page.input_value("#input-source_title").startswith("Spinal Cord Compression")
        page.fill("#input-case_id", "anoncureus16238_2021_3")
        page.fill("#input-age", "555")
        # A hostile client: a value that is not in the vocabulary, sent anyway.
        page.evaluate("""() => { const option = document.createElement("option");
            option.value = "X"; option.text = "X"; option.selected = true;
            document.querySelector("#input-sex").appendChild(option); }""")
        page.check('input[name="bone_sites"][value="sacrum"]')
        page.select_option("#input-extraction_basis", "abstract")
        with page.expect_navigation():
            page.click("#save")
        age_problem = page.inner_text("#field-age .problem")
        sex_problem = page.inner_text("#field-sex .problem")
        assert "above" in age_problem or "555" in age_problem
        assert "'X'" in sex_problem and "F, M" in sex_problem
        assert page.input_value("#input-age") == "555"  # what was typed is kept to fix
        assert web_workspace.cases_path.read_text().splitlines() == before  # nothing saved
        page.fill("#input-age", "47")
        page.select_option("#input-sex", "F")
        with page.expect_navigation():
            page.click("#save")
        assert page.is_visible("#saved")
        browser.close()
    after = web_workspace.cases_path.read_text().splitlines()
    assert after[:len(before)] == before and len(after) == len(before) + 1
    from review.extraction.sheet import read_cases

    cases = read_cases(web_workspace.cases_path, web_workspace.protocol.extraction)
    added = cases[cases.case_id == "anoncureus16238_2021_3"].iloc[0]
    assert (added.age, added.sex, added.bone_sites, added.extraction_basis) == (
        "47", "F", "sacrum", "abstract")
    assert added.source_title.startswith("Spinal Cord Compression")
    result = subprocess.run([sys.executable, "-m", "review", "--project",
                             str(web_workspace.root), "extract", "validate"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout


def test_with_tokens_each_reviewer_signs_in_by_their_own_link(web_workspace):
    with running_server(web_workspace.root, "--tokens") as (url, process):
        links = {}
        while len(links) < 4:
            line = process.stdout.readline()
            assert line, "the server printed no sign-in links"
            if "?token=" in line:
                name, link = line.strip().split(": ", 1)
                links[name] = link
        assert set(links) == {"pilot-team", "ana", "ben", "judge"}
        stranger = opener()
        with pytest.raises(urllib.error.HTTPError) as caught:
            stranger.open(url + "/", timeout=5)
        assert caught.value.code == 403  # no chooser when tokens are on
        with pytest.raises(urllib.error.HTTPError) as caught:
            stranger.open(url + "/?token=guessed", timeout=5)
        assert caught.value.code == 403
        ana = opener()
        page = ana.open(links["ana"], timeout=5).read().decode()
        assert "ana" in page and "of 4 records decided by you" in page


def test_the_appraisal_form_validates_and_saves_one_row_per_report_and_appraiser(
        server, web_workspace):
    browser = opener()
    page = browser.open(server + "/").read().decode()
    post(browser, server + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
    form = browser.open(server + "/extract/appraisal?study=anoncureus16238_2021").read().decode()
    assert "JBI critical appraisal checklist for case reports" in form
    items = [item.id for item in web_workspace.protocol.extraction.appraisal.items]
    answers = {item: "Yes" for item in items}
    opened = {"csrf": csrf_of(form), "version": version_in(form)}
    status, body = post(browser, server + "/extract/appraisal/save",
                        {**opened, "study_id": "anoncureus16238_2021",
                         **answers, items[0]: "Perhaps"})
    assert status == 422 and "Perhaps" in body
    assert not web_workspace.appraisal_path.exists()
    status, body = post(browser, server + "/extract/appraisal/save",
                        {**opened, "study_id": "no_such_2020", **answers})
    assert status == 422 and "no such study" in body
    status, body = post(browser, server + "/extract/appraisal/save",
                        {**opened, "study_id": "anoncureus16238_2021",
                         **answers, "notes": "two patients, one abstract"})
    assert status == 200 and "Saved into the appraisal table" in body
    status, body = post(browser, server + "/extract/appraisal/save",
                        {"csrf": csrf_of(body), "version": version_in(body),
                         "study_id": "anoncureus16238_2021", **answers, items[0]: "No"})
    assert status == 200, body
    from review.extraction.appraisal import read_appraisal

    table = read_appraisal(web_workspace.appraisal_path,
                           web_workspace.protocol.extraction.appraisal)
    assert len(table) == 1  # the same appraiser's second save replaces the first
    row = table.iloc[0]
    assert (row.study_id, row.appraiser, row[items[0]], row[items[1]]) == (
        "anoncureus16238_2021", "ana", "No", "Yes")


def test_an_adjudicator_who_does_not_screen_starts_at_progress(server):
    browser = opener()
    page = browser.open(server + "/").read().decode()
    with browser.open(urllib.request.Request(server + "/signin", data=urllib.parse.urlencode(
            {"reviewer": "judge", "csrf": csrf_of(page)}).encode()), timeout=10) as reply:
        assert reply.geturl().endswith("/progress")
        assert "Records screened" in reply.read().decode()


# DNS rebinding: the server answers only to the names it was started for, and refuses a state
# change posted from another site.

def request(url: str, method: str, path: str, headers: dict[str, str],
            body: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    address = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    data = urllib.parse.urlencode(body).encode() if body is not None else None
    if data is not None:
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    connection.request(method, path, body=data, headers=headers)
    reply = connection.getresponse()
    text = reply.read().decode()
    connection.close()
    return reply.status, text, dict(reply.getheaders())


def test_a_rebound_host_cannot_read_the_chooser_nor_sign_in(web_workspace):
    with running_server(web_workspace.root) as (url, _):
        port = urllib.parse.urlsplit(url).port
        status, page, _ = request(url, "GET", "/", {"Host": f"attacker.example:{port}"})
        assert status == 400 and "unknown Host" in page
        assert 'name="csrf"' not in page
        for name in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            status, page, _ = request(url, "GET", "/", {"Host": name})
            assert status == 200 and 'name="csrf"' in page, name

        # A page on another site that knew a token still cannot post in a reviewer's name.
        status, page, headers = request(url, "GET", "/", {"Host": f"127.0.0.1:{port}"})
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        cookie = headers["set-cookie"].split(";")[0]
        status, page, _ = request(url, "POST", "/signin", {
            "Host": f"127.0.0.1:{port}", "Origin": "http://attacker.example",
            "Cookie": cookie}, {"reviewer": "ben", "csrf": csrf})
        assert status == 400 and "another site" in page
        status, page, _ = request(url, "POST", "/signin", {
            "Host": f"attacker.example:{port}", "Origin": f"http://attacker.example:{port}",
            "Cookie": cookie}, {"reviewer": "ben", "csrf": csrf})
        assert status == 400
        status, _, headers = request(url, "POST", "/signin", {
            "Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}",
            "Cookie": cookie}, {"reviewer": "ben", "csrf": csrf})
        assert status == 303
    assert DecisionStore(web_workspace.screening_dir).read("title-abstract") == []


def test_host_names_without_their_port():
    assert host_name("[::1]:8000") == "::1"
    assert host_name("LOCALHOST:80") == "localhost"
    assert host_name("127.0.0.1") == "127.0.0.1"
    assert host_name("::1") == "::1"


def test_a_non_ascii_token_and_an_oversized_note_are_refused_cleanly(server, web_workspace):
    browser = opener()
    page = browser.open(server + "/").read().decode()
    status, body = post(browser, server + "/signin", {"reviewer": "ana", "csrf": "żółw✓"})
    assert status == 403 and "Internal Server Error" not in body
    status, page = post(browser, server + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
    assert status == 200
    record = re.search(r'data-record="([^"]+)"', page).group(1)
    status, page = post(browser, server + "/screen/title-abstract/decide", {
        "record": record, "decision": "include", "note": "n" * 900_000, "csrf": csrf_of(page)})
    assert status == 200 and "note: 900,000 characters, at most 5,000" in page
    assert not DecisionStore(web_workspace.screening_dir).path("title-abstract", "ana").exists()


def test_a_keyword_is_never_marked_inside_an_escaped_character():
    from review.web.app import highlight

    marked = str(highlight("Fish & chips <b>amp</b>", ("amp", "chips"), ()))
    assert marked == ('Fish &amp; <mark class="include">chips</mark> &lt;b&gt;'
                      '<mark class="include">amp</mark>&lt;/b&gt;')


def test_a_web_save_that_would_break_another_row_is_refused(server, web_workspace):
    from review.extraction.sheet import read_cases

    schema = web_workspace.protocol.extraction
    before = web_workspace.cases_path.read_bytes()
    row = read_cases(web_workspace.cases_path, schema).set_index("case_id").loc["rejab_2019_1"]
    browser = opener()
    page = browser.open(server + "/").read().decode()
    post(browser, server + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
    page = browser.open(server + "/extract/case?case=rejab_2019_1").read().decode()
    fields = [("case_id", "rejab_2019_1"), ("editing", "yes"), ("csrf", csrf_of(page)),
              ("version", version_in(page))]
    for spec in schema.fields:
        if spec.name == "case_id":
            continue
        value = str(int(row[spec.name]) + 1) if spec.name == "pub_year" else row[spec.name]
        if spec.multi_valued:
            fields += [(spec.name, code) for code in value.split(";") if code]
        else:
            fields.append((spec.name, value))
    request = urllib.request.Request(server + "/extract/save",
                                     data=urllib.parse.urlencode(fields).encode())
    with pytest.raises(urllib.error.HTTPError) as refused:
        browser.open(request, timeout=10)
    assert refused.value.code == 422
    body = refused.value.read().decode()
    assert "saving this would make row" in body and "of the sheet invalid" in body
    assert web_workspace.cases_path.read_bytes() == before
    validated = subprocess.run(
        [sys.executable, "-m", "review", "--project", str(web_workspace.root), "extract",
         "validate"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert validated.returncode == 0, validated.stdout


def signed_in_as(browser: urllib.request.OpenerDirector, url: str) -> str | None:
    """Who the server takes this browser for (None: the sign-in page)."""
    page = browser.open(url + "/progress", timeout=10).read().decode()
    found = re.search(r"<span>([a-z-]+)</span> <button type=\"submit\">sign out", page)
    return found.group(1) if found else None


def test_two_servers_a_restart_and_a_copied_cookie_after_sign_out(web_workspace):
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def sign_in(url: str, name: str) -> None:
        page = browser.open(url + "/", timeout=10).read().decode()
        assert post(browser, url + "/signin", {"reviewer": name, "csrf": csrf_of(page)})[0] \
            == 200

    port = free_port()
    with running_server(web_workspace.root, port=port) as (first, _), \
            running_server(web_workspace.root) as (second, _):
        sign_in(first, "ana")
        sign_in(second, "ben")  # cookies ignore ports: one browser holds both sessions
        assert signed_in_as(browser, first) == "ana"
        assert signed_in_as(browser, second) == "ben"
    with running_server(web_workspace.root, port=port) as (first, _):
        assert signed_in_as(browser, first) == "ana"  # a restart keeps the session
        copied = [cookie for cookie in jar if cookie.name.startswith(f"casereview_{port}_")]
        assert len(copied) == 1
        page = browser.open(first + "/progress", timeout=10).read().decode()
        assert post(browser, first + "/signout", {"csrf": csrf_of(page)})[0] == 200
        assert signed_in_as(browser, first) is None
        replay = urllib.request.build_opener()
        replay.addheaders = [("Cookie", f"{copied[0].name}={copied[0].value}")]
        assert signed_in_as(replay, first) is None  # the copied cookie died at sign-out
    state = web_workspace.root / ".review" / f"web-{port}.json"
    assert state.stat().st_mode & 0o777 == 0o600


def test_a_save_while_a_command_holds_the_workspace_comes_back_with_its_values(
        server, web_workspace):
    import threading

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from review.transaction import workspace_lock\n"
         "with workspace_lock(Path(sys.argv[1]), 'import'):\n"
         "    print('held', flush=True)\n    time.sleep(8)\n", str(web_workspace.root)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        browser = opener()
        page = browser.open(server + "/").read().decode()
        post(browser, server + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
        page = browser.open(server + "/extract/case?case=merhaben_2025_1").read().decode()
        fields = {"case_id": "web_2026_1", "study_id": "web_2026", "source_title": "A new case",
                  "source_url": "https://example.org/case", "age": "61", "sex": "M",
                  "extraction_basis": "abstract", "csrf": csrf_of(page)}
        other = opener()
        quick: list[float] = []

        def meanwhile() -> None:  # another reviewer's page while the save waits
            time.sleep(0.5)
            start = time.monotonic()
            other.open(server + "/", timeout=10).read()
            quick.append(time.monotonic() - start)

        thread = threading.Thread(target=meanwhile)
        thread.start()
        start = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as busy:
            browser.open(urllib.request.Request(server + "/extract/save",
                                                data=urllib.parse.urlencode(fields).encode()),
                         timeout=20)
        waited = time.monotonic() - start
        thread.join()
        assert busy.value.code == 409
        body = busy.value.read().decode()
        assert "The workspace is busy (&#39;review import&#39; (process" in body
        assert "nothing was saved; try again in a moment" in body
        assert 'value="web_2026_1"' in body and 'value="61"' in body  # nothing typed is lost
        assert waited < 6 and quick and quick[0] < 1.5
        assert "web_2026_1" not in web_workspace.cases_path.read_text()
    finally:
        holder.kill()
        holder.wait()


def form_fields(page: str) -> list[tuple[str, str]]:
    """What a browser would post from the patient form as it was served."""
    import html

    fields = []
    for match in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        fields.append((match.group(1), html.unescape(match.group(2))))
    for match in re.finditer(r'<input type="text" name="([^"]+)" id="[^"]+" value="([^"]*)"',
                             page):
        fields.append((match.group(1), html.unescape(match.group(2))))
    for match in re.finditer(r'<textarea name="([^"]+)"[^>]*>([^<]*)</textarea>', page):
        fields.append((match.group(1), html.unescape(match.group(2))))
    for match in re.finditer(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', match.group(2))
        fields.append((match.group(1), html.unescape(chosen.group(1)) if chosen else ""))
    for match in re.finditer(r'<input type="checkbox" name="([^"]+)" value="([^"]+)" checked>',
                             page):
        fields.append((match.group(1), html.unescape(match.group(2))))
    return fields


def test_two_forms_open_on_one_patient_a_stale_save_is_refused_with_both_values(
        server, web_workspace):
    from review.extraction.sheet import read_cases

    def signed_in_browser(name: str) -> urllib.request.OpenerDirector:
        browser = opener()
        page = browser.open(server + "/").read().decode()
        post(browser, server + "/signin", {"reviewer": name, "csrf": csrf_of(page)})
        return browser

    ana, ben = signed_in_browser("ana"), signed_in_browser("ben")
    url = server + "/extract/case?case=merhaben_2025_1"
    ana_fields = form_fields(ana.open(url).read().decode())
    ben_fields = form_fields(ben.open(url).read().decode())
    assert dict(ana_fields)["version"] == dict(ben_fields)["version"] != "new"
    status, body = post(ana, server + "/extract/save",
                        [(name, "58" if name == "age" else value) for name, value in ana_fields])
    assert status == 200, re.findall(r'class="error[^"]*">([^<]*)<', body)
    saved = web_workspace.cases_path.read_bytes()

    typed = [(name, "ben's note" if name == "notes" else value) for name, value in ben_fields]
    status, body = post(ben, server + "/extract/save", typed)
    assert status == 409
    assert "Someone saved this patient after you opened the form, so nothing was saved" in body
    assert "the sheet now holds &#39;58&#39;" in body  # the other side's value, shown
    assert "ben&#39;s note" in body  # what ben typed, kept in the form
    assert web_workspace.cases_path.read_bytes() == saved
    again = form_fields(body)
    assert dict(again)["version"] != dict(ben_fields)["version"]  # now opened on ana's row
    status, body = post(ben, server + "/extract/save", again)
    assert status == 200 and "Saved into the extraction sheet" in body
    cases = read_cases(web_workspace.cases_path, web_workspace.protocol.extraction)
    row = cases[cases.case_id == "merhaben_2025_1"].iloc[0]
    assert row.notes == "ben's note"


def test_a_second_tab_on_ones_own_appraisal_cannot_overwrite_the_first(server, web_workspace):
    browser = opener()
    page = browser.open(server + "/").read().decode()
    post(browser, server + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
    url = server + "/extract/appraisal?study=anoncureus16238_2021"
    first, second = (browser.open(url).read().decode() for _ in range(2))
    items = [item.id for item in web_workspace.protocol.extraction.appraisal.items]
    answers = {item: "Yes" for item in items}
    for form, note, expected in ((first, "first tab", 200), (second, "second tab", 409)):
        status, body = post(browser, server + "/extract/appraisal/save",
                            {"csrf": csrf_of(form), "version": version_in(form),
                             "study_id": "anoncureus16238_2021", **answers, "notes": note})
        assert status == expected
    assert "notes: the table now holds &#39;first tab&#39;" in body and "second tab" in body
    assert "first tab" in web_workspace.appraisal_path.read_text()


def test_a_form_sent_after_the_session_ended_keeps_its_values_until_sent_again(
        server, web_workspace):
    import html

    from review.extraction.sheet import read_cases

    browser = opener()
    page = browser.open(server + "/").read().decode()
    post(browser, server + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
    form = browser.open(server + "/extract/case?case=merhaben_2025_1").read().decode()
    typed = [(name, "typed before the session ended" if name == "notes" else value)
             for name, value in form_fields(form)]
    status, _ = post(browser, server + "/signout", {"csrf": csrf_of(form)})  # another tab
    assert status == 200
    before = web_workspace.cases_path.read_bytes()
    status, body = post(browser, server + "/extract/save", typed)
    assert status == 403 and "Nothing was saved" in body and "You are not signed in" in body
    assert "typed before the session ended" in body
    assert web_workspace.cases_path.read_bytes() == before
    kept = [(name, html.unescape(value)) for name, value in
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body)]
    assert sorted(kept[1:]) == sorted((n, v) for n, v in typed if n != "csrf")

    page = browser.open(server + "/").read().decode()  # signs in again in the other tab
    post(browser, server + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
    status, body = post(browser, server + "/extract/save", kept)
    assert status == 200 and "Saved into the extraction sheet" in body
    cases = read_cases(web_workspace.cases_path, web_workspace.protocol.extraction)
    assert cases.set_index("case_id").loc["merhaben_2025_1", "notes"] == \
        "typed before the session ended"


def test_de_duplication_after_an_import_runs_off_the_event_loop(web_workspace, monkeypatch):
    """While the de-duplication that follows an import runs, pages are served from the last
    result: the server's one event loop never waits for it."""
    import threading

    import uvicorn

    from review.web import app as web_app

    real = web_app.deduplicated_records
    release, started = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_after_the_first(workspace):
        calls.append(1)
        if len(calls) > 1:
            started.set()
            release.wait(30)  # stands for a long de-duplication (30,000 records: ~5 s)
        return real(workspace)

    monkeypatch.setattr(web_app, "deduplicated_records", slow_after_the_first)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(web_app.create_app(web_workspace.root), port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            time.sleep(0.05)
        browser = opener()
        page = browser.open(url + "/").read().decode()
        post(browser, url + "/signin", {"reviewer": "ana", "csrf": csrf_of(page)})
        first = browser.open(url + "/progress", timeout=10).read().decode()
        RecordStore(web_workspace.search_dir / "records.jsonl").add([make_record(
            "PubMed", "test", origin="later", position=1, pmid="99999997",
            title="A record imported while the server runs")])
        stale = browser.open(url + "/progress", timeout=10).read().decode()
        assert started.wait(10)  # the new de-duplication is under way in a worker thread
        assert not release.is_set()  # and the page above came back without waiting for it
        other = browser.open(url + "/extract", timeout=10)
        assert other.status == 200
        assert stale == first  # served from the last result
        release.set()
        deadline = time.monotonic() + 20
        while browser.open(url + "/progress", timeout=10).read().decode() == first:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert len(calls) == 2  # once at start, once after the import: never per request
    finally:
        release.set()
        server.should_exit = True
        thread.join(10)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (Debian package "
                                             "'chromium'; .ci/run installs it)")
def test_enter_in_the_note_records_no_decision(server, web_workspace):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page()
        sign_in(page, server, "ana")
        page.wait_for_selector("#record")
        record = page.get_attribute("#record", "data-record")
        page.keyboard.press("n")
        page.keyboard.type("check the full text first")
        page.keyboard.press("Enter")
        page.select_option("#reason", index=1)
        page.focus("#reason")
        page.keyboard.press("Enter")  # in the reason list too
        page.wait_for_timeout(500)  # a submission, had there been one, would have navigated
        assert page.get_attribute("#record", "data-record") == record
        assert not DecisionStore(web_workspace.screening_dir).path("title-abstract",
                                                                    "ana").exists()
        page.evaluate("document.activeElement.blur()")
        with page.expect_navigation():
            page.keyboard.press("e")
        browser.close()
    [line] = decision_lines(web_workspace, "title-abstract", "ana")
    assert (line["record"], line["decision"], line["note"]) == (
        record, "exclude", "check the full text first")


def test_every_page_names_the_review_and_links_only_what_the_person_may_open(server,
                                                                             web_workspace):
    protocol = web_workspace.protocol
    heading = f"{protocol.title} <small>(protocol {protocol.version})</small>"

    def signed_in_browser(name: str) -> urllib.request.OpenerDirector:
        browser = opener()
        page = browser.open(server + "/").read().decode()
        assert heading in page  # the sign-in page too
        post(browser, server + "/signin", {"reviewer": name, "csrf": csrf_of(page)})
        return browser

    ana = signed_in_browser("ana")
    page = ana.open(server + "/screen/title-abstract").read().decode()
    assert heading in page
    assert '<a href="/screen/title-abstract">screen: title-abstract</a>' in page
    assert "/conflicts/" not in page  # ana screens; the conflicts pages would answer 403
    with pytest.raises(urllib.error.HTTPError) as refused:
        ana.open(server + "/conflicts/title-abstract")
    assert refused.value.code == 403
    error_page = refused.value.read().decode()
    assert heading in error_page and '<a href="/progress">progress</a>' in error_page
    judge = signed_in_browser("judge")
    page = judge.open(server + "/progress").read().decode()
    assert page.count('<a href="/conflicts/title-abstract">conflicts: title-abstract</a>') == 1
    assert '<a href="/conflicts/full-text">conflicts: full-text</a>' in page
    assert "/screen/" not in page  # judge adjudicates but does not screen


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (Debian package "
                                             "'chromium'; .ci/run installs it)")
def test_question_mark_lists_every_key_and_no_key_decides_while_the_list_is_open(
        server, web_workspace):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page()
        sign_in(page, server, "ana")
        page.wait_for_selector("#record")
        record = page.get_attribute("#record", "data-record")
        assert not page.locator("#help").is_visible()
        page.keyboard.press("?")
        assert page.locator("#help").is_visible()
        listed = page.locator("#help-keys").inner_text()
        for key in ("i", "e", "m", "1", "9", "n", "Enter", "u", "?", "Esc"):
            assert f"{key}\t" in listed or f"{key}–" in listed or f" {key} " in f" {listed} ", key
        page.keyboard.press("i")  # the list is open: nothing is recorded
        page.wait_for_timeout(300)
        assert page.get_attribute("#record", "data-record") == record
        page.keyboard.press("Escape")
        assert not page.locator("#help").is_visible()
        page.click("#show-keys")  # the same list without the keyboard
        assert page.locator("#help").is_visible()
        page.click("#close-keys")
        assert not page.locator("#help").is_visible()
        browser.close()
    assert not DecisionStore(web_workspace.screening_dir).path("title-abstract", "ana").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (Debian package "
                                             "'chromium'; .ci/run installs it)")
def test_an_export_imported_in_the_browser_gives_the_records_the_cli_gives(
        web_workspace, run_cli, tmp_path):
    from playwright.sync_api import sync_playwright

    export = EXPORTS / "scopus.ris"
    by_cli = tmp_path / "by-cli"
    shutil.copytree(web_workspace.root, by_cli)
    assert run_cli("--project", by_cli, "import", export, "--source", "Scopus")[0] == 0
    broken = tmp_path / "broken.csv"
    broken.write_text("Authors,Journal\nSmith J,Spine\n")
    with running_server(web_workspace.root) as (url, _), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        ana = browser.new_page()
        sign_in(ana, url, "ana")
        assert ana.locator("nav a", has_text="import").count() == 0
        assert ana.goto(url + "/import").status == 403
        page = browser.new_page()
        sign_in(page, url, "judge")
        page.click("nav a:has-text('import')")
        page.set_input_files("#export-file", str(broken))
        page.fill("#source", "Scopus")
        with page.expect_navigation():
            page.click("#import-button")
        [error] = page.locator(".problem").all_inner_texts()
        assert error.startswith("broken.csv:1: no title column") and "\n" not in error
        assert page.input_value("#source") == "Scopus"  # kept for the next try
        page.set_input_files("#export-file", str(export))
        with page.expect_navigation():
            page.click("#import-button")
        summary = page.locator("#imported").inner_text()
        assert "stored" in summary and "from Scopus" in summary
        assert "records to screen" in page.locator("#dedup-summary").inner_text()
        browser.close()
    records = (web_workspace.search_dir / "records.jsonl").read_bytes()
    assert records == (by_cli / "data" / "search" / "records.jsonl").read_bytes()


def test_the_adjudicator_downloads_the_cli_export_and_a_reviewer_cannot(server, web_workspace,
                                                                       run_cli):
    def signed_in(name: str) -> urllib.request.OpenerDirector:
        browser = opener()
        chooser = browser.open(server + "/", timeout=10).read().decode()
        post(browser, server + "/signin", {"csrf": csrf_of(chooser), "reviewer": name})
        return browser

    ana = signed_in("ana")
    page = ana.open(server + "/screen/title-abstract", timeout=10).read().decode()
    record = re.search(r'data-record="([^"]+)"', page).group(1)
    status, after = post(ana, server + "/screen/title-abstract/decide",
                         {"csrf": csrf_of(page), "record": record, "decision": "exclude",
                          "note": "=1+1"})
    # A visible message after the save, saying what was saved.
    assert status == 200 and '<p id="saved" role="status">Saved: <strong>exclude</strong>' in after
    assert "with your note" in after
    with pytest.raises(urllib.error.HTTPError) as refused:
        ana.open(server + "/export/title-abstract/csv", timeout=10)
    assert refused.value.code == 403
    judge = signed_in("judge")
    assert 'href="/export/title-abstract/csv"' in judge.open(server + "/progress",
                                                             timeout=10).read().decode()
    for kind in ("csv", "ris"):
        with judge.open(f"{server}/export/title-abstract/{kind}", timeout=30) as reply:
            served = reply.read()
            assert "attachment" in reply.headers["Content-Disposition"]
        status, out, _ = run_cli("--project", web_workspace.root, "screen", "export", "--stage",
                                 "title-abstract", "--format", kind)
        assert status == 0 and served.decode("utf-8") == out
        if kind == "csv":  # ana's note, formula-safe
            assert "'=1+1" in served.decode("utf-8")
    with judge.open(f"{server}/export/title-abstract/xlsx", timeout=30) as reply:
        assert reply.read()[:2] == b"PK"


def test_codes_are_shown_by_the_protocols_labels_and_saved_as_codes(web_workspace, run_cli):
    path = web_workspace.protocol_path
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("      values: [F, M]\n", "      values: [F, M]\n      labels: "
                                 "{F: female, X: unknown}\n"), encoding="utf-8")
    status, _, err = run_cli("--project", web_workspace.root, "protocol", "check")
    assert status == 2 and "extraction.fields[" in err and ".labels.X: 'X' is not one of: F, M" \
        in err
    path.write_text(text.replace("      values: [F, M]\n", "      values: [F, M]\n      labels: "
                                 "{F: female, M: male}\n"), encoding="utf-8")
    assert run_cli("--project", web_workspace.root, "protocol", "render")[0] == 0
    assert "`F` (female), `M` (male)" in web_workspace.protocol_document_path.read_text()
    with running_server(web_workspace.root) as (url, _):
        browser = opener()
        chooser = browser.open(url + "/", timeout=10).read().decode()
        post(browser, url + "/signin", {"csrf": csrf_of(chooser), "reviewer": "ana"})
        form = browser.open(url + "/extract/case", timeout=10).read().decode()
    assert '<option value="F">female</option>' in form
    assert '<option value="M">male</option>' in form


def test_the_conflicts_page_shows_the_abstract_and_both_notes(server, web_workspace):
    def signed_in(name: str) -> urllib.request.OpenerDirector:
        browser = opener()
        chooser = browser.open(server + "/", timeout=10).read().decode()
        post(browser, server + "/signin", {"csrf": csrf_of(chooser), "reviewer": name})
        return browser

    record = next(r for r in screening_state(web_workspace).title_abstract if r.abstract)
    for name, decision, note in (("ana", "include", "bone lesion in the abstract"),
                                 ("ben", "exclude", "cohort <of 40> & more")):
        browser = signed_in(name)
        page = browser.open(f"{server}/screen/title-abstract?record={record.record_id}",
                            timeout=10).read().decode()
        status, _ = post(browser, server + "/screen/title-abstract/decide",
                         {"csrf": csrf_of(page), "record": record.record_id,
                          "decision": decision, "note": note})
        assert status == 200
    page = signed_in("judge").open(server + "/conflicts/title-abstract",
                                   timeout=10).read().decode()
    section = page[page.index(f'data-record="{record.record_id}"'):]
    section = section[:section.index("</section>")]
    assert "“bone lesion in the abstract”" in section
    assert "“cohort &lt;of 40&gt; &amp; more”" in section  # escaped, never markup
    assert str(escape(record.abstract.split()[0])) in section
