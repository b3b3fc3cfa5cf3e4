"""Two appraisers who differ on a report, an adjudicator's consensus in Chromium, and the
report counting one appraisal per report with the agreement stated."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from review.extraction.appraisal import (
    CONSENSUS,
    appraisal_agreement,
    read_appraisal,
    report_appraisals,
)
from review.report.build import build_report
from review.workspace import Workspace
from tests.test_web import CHROMIUM, running_server, sign_in

ITEMS = ("demographics", "history", "presentation", "diagnostics", "intervention",
         "post_intervention", "adverse_events", "lessons")


@pytest.fixture
def appraised(hcc_workspace) -> Workspace:
    path = hcc_workspace.protocol_path
    path.write_text(path.read_text().replace(
        "reviewers: [pilot-team]", "reviewers: [pilot-team, ana, ben]\n  adjudicators: [judge]"))
    ana = ["Yes"] * 8
    ben = ["Yes", "No", "Yes", "Yes", "Unclear", "Yes", "Yes", "Yes"]
    same = ["Yes", "Yes", "No", "Yes", "Yes", "Yes", "Not applicable", "Yes"]
    rows = [["merhaben_2025", "ana", *ana, ""], ["merhaben_2025", "ben", *ben, "timeline thin"],
            ["du_2013", "ana", *same, ""], ["du_2013", "ben", *same, ""],
            ["sadik_2019", "ana", *same, "single appraiser"]]
    pd.DataFrame(rows, columns=["study_id", "appraiser", *ITEMS, "notes"]).to_csv(
        hcc_workspace.appraisal_path, index=False, lineterminator="\n")
    return Workspace(hcc_workspace.root)


def test_agreement_and_one_appraisal_per_report(appraised):
    appraisal = appraised.protocol.extraction.appraisal
    table = read_appraisal(appraised.appraisal_path, appraisal)
    found = appraisal_agreement(table, appraisal)
    # merhaben: 6 of 8 agree; du: 7 answered by both (one "Not applicable" each) all agree.
    assert (found.reports, found.compared, found.agreed, found.consensus, found.awaiting) == \
        (2, 16, 14, 0, ("merhaben_2025",))
    counted = report_appraisals(table, appraisal)
    assert sorted(counted["study_id"]) == ["du_2013", "sadik_2019"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_a_consensus_in_the_browser_leaves_one_appraisal_per_report_in_the_report(
        appraised, tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    with running_server(appraised.root) as (url, _), sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        sign_in(page, url, "judge")
        page.goto(url + "/extract")
        with page.expect_navigation():
            page.click("#consensus-link a")
        section = page.locator("section[data-study='merhaben_2025']")
        assert section.locator("tr.differs").count() == 2
        assert "timeline thin" in section.inner_text()
        # Where the two agree the answer is chosen already; the two differences are picked.
        assert section.locator("select[name='demographics']").input_value() == "Yes"
        section.locator("select[name='history']").select_option("No")
        with page.expect_navigation():
            section.locator("button[type='submit']").click()
        assert "Choose the agreed answer of every item (intervention)" in \
            page.locator("#error").inner_text()
        section = page.locator("section[data-study='merhaben_2025']")
        section.locator("select[name='history']").select_option("No")
        section.locator("select[name='intervention']").select_option("Yes")
        section.locator("input[name='notes']").fill("history has no dates")
        with page.expect_navigation():
            section.locator("button[type='submit']").click()
        assert "Saved the consensus appraisal of merhaben_2025" in page.inner_text("#saved")
        assert page.locator("#none-awaiting").is_visible()
        ana = browser.new_page()
        sign_in(ana, url, "ana")
        assert ana.goto(url + "/extract/consensus").status == 403
        browser.close()
    appraisal = appraised.protocol.extraction.appraisal
    table = read_appraisal(appraised.appraisal_path, appraisal)
    [agreed] = table[table["appraiser"] == CONSENSUS].to_dict("records")
    assert (agreed["study_id"], agreed["history"], agreed["intervention"], agreed["notes"]) == \
        ("merhaben_2025", "No", "Yes", "consensus of judge: history has no dates")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1780000000")
    out = tmp_path / "report"
    build_report(appraised, out, force=True)
    html = (out / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="appraisal"'):]
    section = section[:section.index("</section>")]
    assert ("3 reports appraised by 2 appraisers (ana, ben); each report is counted once. 2 "
            "reports had "
            "two or more appraisers, who agreed on 14 of 16 answers (88%); 1 report settled "
            "by consensus, whose answers are counted.") in section
    rows = re.findall(r"<tr><td>[^<]*\?</td>(.*?)</tr>", section)
    assert len(rows) == len(ITEMS)
    for cells in rows:  # one answer per report, never one per appraiser
        assert sum(int(n) for n in re.findall(r'class="num">(\d+)<', cells)) == 3


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_adjudicator_settles_a_differing_cell_of_the_double_extraction(appraised):
    import shutil

    from playwright.sync_api import sync_playwright

    from review.extraction.compare import compare_extractors
    from review.extraction.sheet import read_cases
    from tests.conftest import ROOT

    shutil.copytree(ROOT / "data" / "extraction" / "extractors", appraised.extractors_dir)
    schema = appraised.protocol.extraction
    before = compare_extractors(appraised.extractors_dir,
                                read_cases(appraised.cases_path, schema), schema)
    row = next(r for r in before.differences.to_dict("records")
               if r["field"] == "survival_time_origin" and r["consensus"] == r["a"] and r["b"])
    with running_server(appraised.root) as (url, _), sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        sign_in(page, url, "judge")
        page.goto(url + "/extract")
        with page.expect_navigation():
            page.click("#reconcile-link a")
        assert page.locator("#differences tr[data-case]").count() == len(before.differences)
        cell = page.locator(f"tr[data-case='{row['case_id']}'][data-field='{row['field']}']")
        cell.locator("input[name='choice'][value='other']").check()
        cell.locator("input[name='other']").fill("X")  # not in the vocabulary
        with page.expect_navigation():
            cell.locator("button").click()
        assert f"{row['case_id']} {row['field']}: not in the vocabulary" in \
            page.inner_text("#error")
        cell = page.locator(f"tr[data-case='{row['case_id']}'][data-field='{row['field']}']")
        cell.locator("input[name='choice'][value='b']").check()
        with page.expect_navigation():
            cell.locator("button").click()
        assert page.inner_text("#saved") == \
            f"Saved {row['case_id']} {row['field']} into the extraction sheet."
        browser.close()
    cases = read_cases(appraised.cases_path, schema)
    assert cases.loc[cases["case_id"] == row["case_id"], row["field"]].item() == row["b"]
