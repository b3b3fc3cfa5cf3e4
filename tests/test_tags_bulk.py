"""Tags, filters and bulk actions: in Chromium (a tag added on the page shows in the export and
the filter; a bulk decision on a filtered set of 20 records writes 20 ordinary decision lines
with the bulk note) and on the command line (`review screen tag`, `review screen list`)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from review.screening.decisions import DecisionStore
from review.search.records import RecordStore, make_record
from review.workspace import Workspace
from tests.test_web import CHROMIUM, running_server, sign_in


@pytest.fixture
def tagging_workspace(hcc_workspace) -> Workspace:
    """The HCC protocol with reviewers and an adjudicator, 20 records about rats from
    2010-2019 and 5 about patients from 2021."""
    path = hcc_workspace.protocol_path
    path.write_text(path.read_text().replace(
        "reviewers: [pilot-team]", "reviewers: [pilot-team, ana, ben]\n  adjudicators: [judge]"))
    animals = [make_record("PubMed", "animals.xml", origin="animals", position=n,
                           pmid=str(32000000 + n), year=str(2010 + n % 10),
                           title=f"Bone metastasis model number {n} in rats",
                           abstract="Hepatoma cells were injected into the tibia of rats.")
               for n in range(1, 21)]
    patients = [make_record("Embase", "patients.ris", origin="patients", position=n,
                            year="2021", title=f"Spinal metastasis of hepatocellular carcinoma: "
                                               f"case {n}", abstract="A man of 60 years.")
                for n in range(1, 6)]
    RecordStore(hcc_workspace.search_dir / "records.jsonl").add([*animals, *patients])
    return Workspace(hcc_workspace.root)


def export_rows(run_cli, workspace: Workspace) -> list[dict[str, str]]:
    status, out, _ = run_cli("--project", workspace.root, "screen", "export", "--stage",
                             "title-abstract")
    assert status == 0
    return list(csv.DictReader(io.StringIO(out)))


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_a_tag_from_the_page_reaches_the_export_and_a_bulk_decision_writes_20_lines(
        tagging_workspace, run_cli):
    from playwright.sync_api import sync_playwright

    with running_server(tagging_workspace.root) as (url, _), sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        sign_in(page, url, "ana")
        page.wait_for_selector("#record")
        record = page.get_attribute("#record", "data-record")
        page.keyboard.press("t")
        page.keyboard.type("ask ben")
        with page.expect_navigation():
            page.keyboard.press("Enter")  # saves the tag, records no decision
        assert "ask ben" in page.locator("#tags").inner_text()
        assert page.get_attribute("#record", "data-record") == record
        page.click("#filter-link")
        page.fill("#f-tag", "ask ben")
        with page.expect_navigation():
            page.click("#apply-filter")
        assert page.locator("#count").inner_text().startswith("1 records")
        # Bulk: the 20 records about rats, excluded at once.
        page.fill("#f-tag", "")
        page.fill("#f-keyword", "rats")
        with page.expect_navigation():
            page.click("#apply-filter")
        assert page.locator("#count").inner_text().startswith("20 records")
        page.check("#bulk-decide-action")
        page.select_option("#bulk-decision", "exclude")
        page.select_option("#bulk-reason", "animal_or_in_vitro")
        page.fill("#bulk-note", "animal models")
        assert "these 20 records" in page.locator("label:has(#bulk-confirm)").inner_text()
        page.check("#bulk-confirm")
        with page.expect_navigation():
            page.click("#bulk-apply")
        assert page.locator("#saved").inner_text() == "Recorded exclude for 20 records."
        browser.close()
    lines = DecisionStore(tagging_workspace.screening_dir).read("title-abstract")
    assert len(lines) == 20
    assert {(d.reviewer, d.decision, d.reason, d.role) for d in lines} == \
        {("ana", "exclude", "animal_or_in_vitro", "reviewer")}
    assert {d.note for d in lines} == {"bulk (keyword rats): animal models"}
    rows = {row["record_id"]: row for row in export_rows(run_cli, tagging_workspace)}
    assert rows[record]["ana: tags"] == "ask ben"
    assert rows[record]["ben: tags"] == ""


def test_a_bulk_action_whose_set_changed_since_the_confirmation_does_nothing(
        tagging_workspace):
    import re

    from tests.test_web import csrf_of, opener, post

    with running_server(tagging_workspace.root) as (url, _):
        ana = opener()
        chooser = ana.open(url + "/", timeout=10).read().decode()
        post(ana, url + "/signin", {"csrf": csrf_of(chooser), "reviewer": "ana"})
        listing = ana.open(f"{url}/screen/title-abstract/records?f_keyword=rats",
                           timeout=10).read().decode()
        assert re.search(r'name="count" value="20"', listing)
        fields = {"csrf": csrf_of(listing), "f_keyword": "rats", "action": "decide",
                  "decision": "exclude", "reason": "animal_or_in_vitro", "confirm": "yes"}
        status, page = post(ana, url + "/screen/title-abstract/bulk", {**fields, "count": "19"})
        assert "keeps 20 records, not 19" in page
        status, page = post(ana, url + "/screen/title-abstract/bulk",
                            {**fields, "count": "20", "confirm": ""})
        assert "tick the box" in page
        status, page = post(ana, url + "/screen/title-abstract/bulk",
                            {**fields, "count": "20", "f_conflict": "yes"})
        assert status == 400 and "only an adjudicator filters by conflict" in page
    assert DecisionStore(tagging_workspace.screening_dir).read("title-abstract") == []


def test_screen_tag_and_list_on_the_command_line(tagging_workspace, run_cli):
    records = [r.record_id for r in
               RecordStore(tagging_workspace.search_dir / "records.jsonl").load()]
    status, out, _ = run_cli("--project", tagging_workspace.root, "screen", "tag", records[0],
                             "pediatric", "ask ben", "--reviewer", "ben")
    assert status == 0 and out.strip().endswith("ben's tags: ask ben, pediatric")
    run_cli("--project", tagging_workspace.root, "screen", "tag", records[0], "pediatric",
            "--reviewer", "ben", "--remove")
    status, out, _ = run_cli("--project", tagging_workspace.root, "screen", "list", "--stage",
                             "title-abstract", "--reviewer", "ben", "--filter", "tag=ask ben",
                             "--json")
    found = json.loads(out)
    assert [row["record_id"] for row in found["records"]] == [records[0]]
    assert found["records"][0]["tags"] == ["ask ben"]
    status, out, _ = run_cli("--project", tagging_workspace.root, "screen", "list", "--stage",
                             "title-abstract", "--reviewer", "ana", "--filter", "year=2021",
                             "--filter", "source=Embase")
    assert status == 0 and out.strip().endswith("5 records (source Embase, year 2021)")
    # Ana's list knows nothing of Ben's tags: blinding.
    status, out, _ = run_cli("--project", tagging_workspace.root, "screen", "list", "--stage",
                             "title-abstract", "--reviewer", "ana", "--filter", "tag=ask ben")
    assert out.strip().endswith("0 records (tag ask ben)")
    for option, message in (("conflict=yes", "only an adjudicator filters by conflict"),
                            ("colour=red", "unknown filter 'colour'"),
                            ("year=recent", "a year (2019) or a range"),
                            ("decision", "write KEY=VALUE")):
        status, _, err = run_cli("--project", tagging_workspace.root, "screen", "list",
                                 "--stage", "title-abstract", "--reviewer", "ana", "--filter",
                                 option)
        assert status == 2 and message in err, (option, err)
    status, _, err = run_cli("--project", tagging_workspace.root, "screen", "tag", records[0],
                             "<script>", "--reviewer", "ana")
    assert status == 2 and "tag '<script>'" in err
