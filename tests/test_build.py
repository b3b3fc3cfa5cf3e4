"""`review build`: byte-identical rebuilds, the staleness check, the no-op path, safe and valid
HTML, and the page rendered in a real headless browser."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from review.report.build import build_report, stale_files
from review.workspace import Workspace
from tests.conftest import ROOT

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
EPOCH = "1764028800"  # 2025-11-25


@pytest.fixture
def epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The shipped review built once into a temporary folder."""
    out = tmp_path_factory.mktemp("build") / "report"
    previous = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        build_report(Workspace(ROOT), out, force=True)
    finally:
        if previous is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = previous
    return out


class StructureChecker(HTMLParser):
    """Checks nesting, unique ids and that every internal link has a target."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.fragments: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self.external_resources: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.append(attributes["id"])
        if tag == "a" and "href" in attributes:
            href = attributes["href"]
            (self.fragments if href.startswith("#") else self.links).append(href)
        if tag == "script":
            self.scripts += 1
        for name in ("src", "xlink:href"):
            value = attributes.get(name)
            if value and not value.startswith("#"):
                self.external_resources.append(value)
        if tag == "link":
            self.external_resources.append(attributes.get("href", ""))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.append(attributes["id"])
        href = attributes.get("xlink:href") or attributes.get("href")
        if href and not href.startswith("#"):
            self.external_resources.append(href)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else '-'}>")
            return
        self.stack.pop()


def check_structure(markup: str) -> StructureChecker:
    checker = StructureChecker()
    checker.feed(markup)
    checker.close()
    return checker


def test_build_writes_every_output(built):
    names = {path.relative_to(built).as_posix() for path in built.rglob("*") if path.is_file()}
    assert {"report.html", "manifest.json", "figures/skeleton_map.svg",
            "figures/skeleton_map.png", "tables/characteristics.csv",
            "tables/characteristics.md", "tables/studies.csv"} <= names


def test_building_twice_gives_identical_bytes(built, tmp_path, epoch):
    again = tmp_path / "again"
    build_report(Workspace(ROOT), again, force=True)
    first = {p.relative_to(built): p.read_bytes() for p in built.rglob("*") if p.is_file()}
    second = {p.relative_to(again): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_manifest_ties_outputs_to_inputs(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["review"] == "hcc-bone-metastasis"
    assert manifest["build_date"] == "2025-11-25T00:00:00Z"
    assert manifest["build_date_source"] == "SOURCE_DATE_EPOCH"
    assert "data/extraction/cases.csv" in manifest["inputs"]
    assert "protocols/hcc-bone-metastasis.yaml" in manifest["inputs"]
    import hashlib
    for name, digest in manifest["outputs"].items():
        assert hashlib.sha256((built / name).read_bytes()).hexdigest() == digest
    assert "manifest.json" not in manifest["outputs"]
    assert manifest["packages"]["lifelines"]


def test_report_html_is_valid_and_self_contained(built):
    markup = (built / "report.html").read_text(encoding="utf-8")
    checker = check_structure(markup)
    assert checker.errors == []
    assert checker.stack == []
    assert len(checker.ids) == len(set(checker.ids)), "duplicate ids"
    missing = [href for href in checker.fragments if href[1:] not in set(checker.ids)]
    assert missing == []
    assert checker.scripts == 0
    assert [r for r in checker.external_resources if not r.startswith("data:")] == []
    assert all(re.match(r"https://(doi\.org|pubmed\.ncbi\.nlm\.nih\.gov)/", link)
               for link in checker.links), checker.links
    assert markup.count("<svg ") >= 8
    assert "<?xml" not in markup


def test_report_says_what_a_reviewer_needs(built):
    markup = (built / "report.html").read_text(encoding="utf-8")
    for heading in ("Summary of findings", "Study selection (PRISMA 2020)", "Methods",
                    "Included studies", "Patient characteristics (Table 1)",
                    "Metastatic sites", "Pooled proportions across reports (sensitivity analysis)",
                    "Vertebral levels", "Survival by treatment", "Critical appraisal",
                    "Data completeness", "Limitations"):
        assert f">{heading}</h2>" in markup
    assert "120 patients with hepatocellular carcinoma metastatic to bone from 113 published" \
        in markup
    assert "44 of 118 patients with sites reported" in markup
    assert "113 reports appraised by 1 appraiser (extraction-rule)" in markup
    assert "108 were left out" in markup
    assert "Times count from the diagnosis of the bone metastasis" in markup
    assert "Sensitivity analysis: every patient with a time" in markup
    assert "10 patients who died have no reported time" in markup
    assert "No log-rank test: the smallest group has" in markup
    assert "Not pooled: GLMM not fitted: the likelihood is highest at ever larger" in markup
    assert "the cells of 106 single-patient reports" in markup
    assert "between-report heterogeneity is large" not in markup
    assert ("survival is exactly 50% from 1.6 months to the last follow-up at 64; the median "
            "is 1.6, as R's printed survfit table, survminer and lifelines give it (R's "
            "quantile() gives the midpoint, 32.8)") in markup
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/40828566/"' in markup
    assert "the most frequent were T4 and T9, tied (4 patients each)" in markup  # both named
    assert "Median, months (95% CI)" in markup


def edit_sheet(workspace: Workspace, edit) -> None:
    """Apply edit(header, rows) to the workspace's sheet and write it back as CSV."""
    path = workspace.cases_path
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    edit(rows[0], rows[1:])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def test_text_from_records_is_escaped(hcc_workspace, tmp_path, epoch):
    hostile = '<script>alert("x")</script> & <b>bold</b>'

    def retitle(header, rows):
        for row in rows:
            if row[header.index("study_id")] == "merhaben_2025":
                row[header.index("source_title")] = hostile

    edit_sheet(hcc_workspace, retitle)
    build_report(hcc_workspace, tmp_path / "out", force=True)
    markup = (tmp_path / "out" / "report.html").read_text()
    assert "<script>" not in markup
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" \
        in markup
    assert check_structure(markup).errors == []


def test_check_fails_after_a_one_cell_change(hcc_workspace, tmp_path, epoch):
    committed = tmp_path / "committed"
    build_report(hcc_workspace, committed, force=True)
    assert stale_files(hcc_workspace, committed) == []
    path = hcc_workspace.cases_path
    path.write_text(path.read_text().replace(",55,F,HCV,", ",55,M,HCV,", 1))
    differ = stale_files(hcc_workspace, committed)
    assert "manifest.json (changed)" in differ
    assert "tables/characteristics.csv (changed)" in differ


def test_check_cli_exit_status(hcc_workspace, run_cli, tmp_path, epoch):
    out = tmp_path / "report"
    assert run_cli("--project", hcc_workspace.root, "build", "--quiet", "--out", out)[0] == 0
    status, text, _ = run_cli("--project", hcc_workspace.root, "build", "--check", "--quiet",
                              "--out", out)
    assert (status, text.strip().endswith("up to date with the data")) == (0, True)
    (out / "tables" / "studies.md").write_text("edited\n")
    status, text, _ = run_cli("--project", hcc_workspace.root, "build", "--check", "--quiet",
                              "--out", out)
    assert status == 1
    assert "tables/studies.md (changed)" in text


def test_noop_build_skips_and_notices_changes(hcc_workspace, run_cli, tmp_path, epoch):
    out = tmp_path / "report"
    status, text, err = run_cli("--project", hcc_workspace.root, "build", "--out", out)
    assert status == 0 and "built" in text and "review build: drawing the figures" in err
    status, text, _ = run_cli("--project", hcc_workspace.root, "build", "--out", out)
    assert "up to date" in text
    (out / "figures" / "skeleton_map.svg").write_text("<svg/>")
    status, text, _ = run_cli("--project", hcc_workspace.root, "build", "--out", out, "--quiet")
    assert "built" in text
    assert (out / "figures" / "skeleton_map.svg").read_text() != "<svg/>"


def test_noop_build_does_not_import_the_heavy_libraries(tmp_path):
    out = tmp_path / "report"
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    subprocess.run([sys.executable, "-m", "review", "build", "--quiet", "--out", str(out)],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    probe = ("import sys, runpy; sys.argv = ['review', 'build', '--out', sys.argv[1]]\n"
             "from review.cli import main\nstatus = main(sys.argv[1:])\n"
             "print(sorted(m for m in ('pandas', 'matplotlib', 'lifelines') if m in "
             "sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe, str(out)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert "up to date" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_stale_outputs_are_removed(hcc_workspace, tmp_path, epoch):
    out = tmp_path / "report"
    build_report(hcc_workspace, out, force=True)
    (out / "figures" / "old_figure.svg").write_text("<svg/>")
    build_report(hcc_workspace, out, force=True)
    assert not (out / "figures" / "old_figure.svg").exists()


def test_partial_review_still_builds(hcc_workspace, tmp_path, epoch):
    def forget_outcomes(header, rows):
        for row in rows:
            for name in ("vital_status", "survival_months_after_bone_met",
                         "survival_months_after_hcc_dx"):
                row[header.index(name)] = ""

    edit_sheet(hcc_workspace, forget_outcomes)
    build_report(hcc_workspace, tmp_path / "out", force=True)
    markup = (tmp_path / "out" / "report.html").read_text()
    assert "survival cannot be estimated yet" in markup
    assert check_structure(markup).errors == []


def test_invalid_sheet_builds_nothing(hcc_workspace, run_cli, tmp_path):
    path = hcc_workspace.cases_path
    path.write_text(path.read_text().replace(",55,F,HCV,", ",55,X,HCV,", 1))
    status, text, _ = run_cli("--project", hcc_workspace.root, "build", "--quiet", "--out",
                              tmp_path / "out")
    assert status == 1
    assert "sex: not in the vocabulary" in text
    assert not (tmp_path / "out").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                    "(Debian package 'chromium'; .ci/run installs it)")
def test_report_renders_in_headless_chromium_without_console_errors(built, tmp_path):
    screenshot = built / "first-screen.png"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--window-size=1280,900", f"--screenshot={screenshot}",
         (built / "report.html").as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert screenshot.stat().st_size > 20_000
    keep = ROOT / "build" / "report-first-screen.png"
    keep.parent.mkdir(exist_ok=True)
    shutil.copy(screenshot, keep)


def test_methods_report_the_search_log_not_the_files(hcc_workspace, tmp_path, epoch):
    from review.search.log import append_log
    from review.search.records import RecordStore, make_record
    RecordStore(hcc_workspace.search_dir / "records.jsonl").add(
        [make_record("Web searches", "x", origin="test", position=1,
                     title="A report found on the web")])
    build_report(hcc_workspace, tmp_path / "none", force=True)
    assert "No database search has been run" in (tmp_path / "none" / "report.html").read_text()
    append_log(hcc_workspace, {"kind": "search", "database": "PubMed",
                               "interface": "NCBI E-utilities", "finished": "2026-01-02",
                               "count": 12, "new_records": 12, "records_stored": 12,
                               "query": 'hcc[tiab] AND "bone"[tiab]',
                               "query_translation": '"hcc"[Title/Abstract]'})
    build_report(hcc_workspace, tmp_path / "logged", force=True)
    markup = (tmp_path / "logged" / "report.html").read_text()
    assert "No database search has been run" not in markup
    assert "<code>hcc[tiab] AND &#34;bone&#34;[tiab]</code>" in markup
    assert "12 records (12 new)" in markup


def _git(root: Path, *args: str, date: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date,
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    env.pop("SOURCE_DATE_EPOCH", None)
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True,
                          text=True).stdout


def test_a_rewritten_history_leaves_the_committed_report_valid(hcc_workspace, monkeypatch):
    # Landing work by rebase or squash gives every commit a new date but changes no input:
    # the committed report must still check, and only a change of the data re-dates it.
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    root = hcc_workspace.root
    _git(root, "init", "-q", date="2025-01-01T00:00:00Z")
    _git(root, "add", "-A", date="2025-01-01T00:00:00Z")
    _git(root, "commit", "-qm", "data", date="2025-01-01T00:00:00Z")
    build_report(hcc_workspace, force=True)
    manifest = hcc_workspace.reports_dir / "manifest.json"
    assert json.loads(manifest.read_text())["build_date"] == "2025-01-01T00:00:00Z"
    _git(root, "commit", "-q", "--amend", "--no-edit", "--reset-author",
         date="2026-06-01T00:00:00Z")
    assert _git(root, "log", "-1", "--format=%cI", date="2026-06-01T00:00:00Z").startswith(
        "2026-06-01")
    assert stale_files(hcc_workspace) == []
    assert build_report(hcc_workspace).up_to_date

    path = hcc_workspace.cases_path
    path.write_text(path.read_text().replace(",55,F,HCV,", ",55,M,HCV,", 1))
    _git(root, "commit", "-qam", "edit", date="2026-07-01T00:00:00Z")
    assert "report.html (changed)" in stale_files(hcc_workspace)
    build_report(hcc_workspace)
    assert json.loads(manifest.read_text())["build_date"] == "2026-07-01T00:00:00Z"


def test_a_damaged_or_unwritable_template_cache_never_fails_a_page(tmp_path):
    """The compiled templates' cache is passed over when its files are garbage, when a
    folder stands where a file should be, or when nothing can be written: the page is the
    same every time."""
    from jinja2 import DictLoader, Environment

    from review.report.html import _CompiledTemplates

    cache = tmp_path / "cache"
    cache.mkdir()

    def page() -> str:
        environment = Environment(loader=DictLoader({"page.html": "{{ n }} records"}),
                                  bytecode_cache=_CompiledTemplates(str(cache)))
        return environment.get_template("page.html").render(n=3)

    assert page() == "3 records"
    (stored,) = cache.iterdir()
    stored.write_bytes(b"not compiled code")
    assert page() == "3 records"
    stored.unlink()
    stored.mkdir()  # a folder in the file's place: neither read nor replaced
    assert page() == "3 records"
    stored.rmdir()
    cache.rmdir()  # the folder gone: nothing can be written
    assert page() == "3 records"
    assert not cache.exists()
