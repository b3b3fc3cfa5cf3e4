"""The E-utilities runner against a real HTTP server on 127.0.0.1 with injected faults."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from review.errors import ReviewError
from review.search.eutils import EutilsClient, EutilsConfig
from review.search.records import RecordStore
from review.search.run import run_difference, run_search
from tests.conftest import ROOT
from tests.eutils_server import FakeEutils

QUERY = '"hepatocellular carcinoma"[tiab]'
KEY = "SECRET-API-KEY-0042"


@pytest.fixture
def server():
    servers = []

    def start(records: int, faults: dict[int, str] | None = None) -> tuple[FakeEutils, str]:
        fake = FakeEutils(records, faults or {}, slow_seconds=1.5)
        url = fake.start()
        servers.append(fake)
        return fake, url

    yield start
    for fake in servers:
        fake.stop()


def client(url: str, *, batch: int = 200, attempts: int = 4, sleeps: list | None = None,
           api_key: str | None = KEY) -> EutilsClient:
    config = EutilsConfig(base_url=url, api_key=api_key, email="reviewer@example.org",
                          timeout=0.5, backoff=0.01, max_attempts=attempts, batch_size=batch)
    recorded = sleeps if sleeps is not None else []
    return EutilsClient(config, sleep=recorded.append)


def stored(workspace) -> list:
    return RecordStore(workspace.search_dir / "records.jsonl").load()


def all_text_under(folder: Path) -> str:
    import gzip
    texts = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            texts.append((gzip.decompress(data) if path.suffix == ".gz" else data)
                         .decode("utf-8", "replace"))
    return "\n".join(texts)


def test_clean_run_counts_its_requests(server, hcc_workspace):
    fake, url = server(1000)
    result = run_search(hcc_workspace, client(url), QUERY, quiet=True)
    assert (result.count, result.fetched, result.added) == (1000, 1000, 1000)
    assert fake.requests("esearch.fcgi") == 1
    assert fake.requests("efetch.fcgi") == math.ceil(1000 / 200)
    assert result.requests == len(fake.log) == 6 and result.retries == 0
    pmids = [record.pmid for record in stored(hcc_workspace)]
    assert len(pmids) == len(set(pmids)) == 1000
    params = fake.log[1][1]
    assert (params["retmode"], params["db"], params["tool"]) == ("xml", "pubmed", "casereview")
    assert params["api_key"] == KEY and params["email"] == "reviewer@example.org"


def test_every_fault_is_retried_and_nothing_is_lost(server, hcc_workspace):
    # Every other request fails, each in another way; the ESearch first.
    faults = {1: "malformed", 3: "503", 5: "429", 7: "500", 9: "truncate", 11: "slow",
              13: "drop", 15: "502", 17: "short"}
    fake, url = server(2000, faults)
    sleeps: list[float] = []
    result = run_search(hcc_workspace, client(url, sleeps=sleeps), QUERY, quiet=True)
    retries = len(faults)
    assert len(fake.log) == 1 + math.ceil(2000 / 200) + retries
    assert (result.requests, result.retries) == (len(fake.log), retries)
    assert max(sleeps) >= 1.0  # the 429's Retry-After: 1 was honoured
    pmids = [record.pmid for record in stored(hcc_workspace)]
    assert len(pmids) == len(set(pmids)) == 2000
    assert sorted(pmids) == sorted(str(p) for p in fake.pmids)


def test_the_api_key_is_never_written(server, hcc_workspace):
    _, url = server(300)
    run_search(hcc_workspace, client(url), QUERY, quiet=True)
    assert KEY not in all_text_under(hcc_workspace.search_dir)


def test_persistent_failure_is_a_clear_error_and_keeps_the_store(server, hcc_workspace):
    fake, url = server(300, {n: "500" for n in range(2, 50)})
    with pytest.raises(ReviewError, match=r"efetch\.fcgi: gave up after 3 attempts "
                                          r"\(HTTP 500\)"):
        run_search(hcc_workspace, client(url, attempts=3), QUERY, quiet=True)
    assert stored(hcc_workspace) == []
    assert not (hcc_workspace.search_dir / "search_log.jsonl").exists()
    fake.faults.clear()
    result = run_search(hcc_workspace, client(url), QUERY, quiet=True)
    assert result.resumed and result.added == 300


def test_unrecoverable_http_error_is_not_retried(server, hcc_workspace):
    fake, url = server(10)
    with pytest.raises(ReviewError, match="HTTP 404"):
        run_search(hcc_workspace, client(url.replace("/eutils/", "/nowhere/")), QUERY,
                   quiet=True)
    assert len(fake.log) == 1


def test_more_than_9999_records_are_split_by_date(server, hcc_workspace):
    fake, url = server(12_000)
    result = run_search(hcc_workspace, client(url, batch=2500), QUERY, quiet=True)
    assert result.count == result.fetched == 12_000
    pmids = {record.pmid for record in stored(hcc_workspace)}
    assert len(pmids) == 12_000
    searches = [params for name, params in fake.log if name == "esearch.fcgi"]
    assert len(searches) > 2 and all("mindate" in p for p in searches[1:])


def test_verification_catches_a_lost_or_duplicated_record(server, hcc_workspace):
    fake, url = server(300)
    fake.pmids[7] = fake.pmids[6]  # the server now returns one PMID twice
    with pytest.raises(ReviewError, match=r"EFetch returned PMID 30000006 twice\); run .* is "
                                          r"kept unfinished: .*'review search run --new' starts "
                                          r"afresh"):
        run_search(hcc_workspace, client(url), QUERY, quiet=True)
    assert stored(hcc_workspace) == []


def test_kill_mid_run_then_resume(server, hcc_workspace):
    fake, url = server(1000, {4: "hang"})
    env = {**os.environ, "NCBI_API_KEY": KEY, "REVIEW_PROJECT": str(hcc_workspace.root)}
    command = [sys.executable, "-m", "review", "search", "run", "--eutils-url", url,
               "--batch-size", "100", "--quiet"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        assert fake.hang_reached.wait(60), "the client never reached the hanging request"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        fake.release.set()
    before = len(fake.log)
    assert before == 4  # ESearch, two complete batches, and the one the kill interrupted
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "(resumed)" in result.stdout
    second = fake.log[before:]
    assert [name for name, _ in second].count("esearch.fcgi") == 1
    assert [name for name, _ in second].count("efetch.fcgi") == 10 - 2
    fetched_starts = [int(p["retstart"]) for name, p in fake.log if name == "efetch.fcgi"]
    assert sorted(set(fetched_starts)) == list(range(0, 1000, 100))
    pmids = [record.pmid for record in stored(hcc_workspace)]
    assert len(pmids) == len(set(pmids)) == 1000


def test_living_review_keeps_every_run_and_dedup_joins_them(server, hcc_workspace, run_cli):
    from review.extraction.prisma_counts import prisma_counts_for
    fake, url = server(200)
    run_search(hcc_workspace, client(url), QUERY, quiet=True)
    fake.add_records(5)
    time.sleep(1.1)  # run ids are start times to the second
    second = run_search(hcc_workspace, client(url), QUERY, quiet=True)
    assert (second.count, second.added, second.new_pmids) == (205, 205, 5)
    latest, previous, new = run_difference(hcc_workspace)
    assert previous is not None and len(new) == 5
    status, out, _ = run_cli("--project", hcc_workspace.root, "search", "diff")
    assert status == 0 and f"run {latest} against {previous}: 5 new records" in out
    assert len(stored(hcc_workspace)) == 405
    counts = prisma_counts_for(hcc_workspace)
    assert counts["identified"] == {"PubMed": 405}
    assert (counts["duplicates_removed"], counts["records_screened"]) == (200, 205)


def test_search_log_records_the_run(server, hcc_workspace, run_cli):
    _, url = server(150)
    run_search(hcc_workspace, client(url), QUERY, quiet=True)
    status, out, _ = run_cli("--project", hcc_workspace.root, "search", "log", "--json")
    assert status == 0
    [entry] = json.loads(out)
    assert entry["database"] == "PubMed" and entry["count"] == 150
    assert entry["query"] == QUERY
    assert entry["query_translation"] == '"hepatocellular carcinoma"[All Fields]'
    assert entry["software"].startswith("casereview ")
    assert entry["host"].startswith("127.0.0.1:")


def test_search_run_cli_uses_the_protocol_query(server, hcc_workspace, run_cli, monkeypatch):
    fake, url = server(120)
    monkeypatch.setenv("NCBI_API_KEY", KEY)
    status, out, _ = run_cli("--project", hcc_workspace.root, "search", "run", "--eutils-url",
                             url, "--quiet")
    assert status == 0, out
    assert "120 records found, 120 fetched, 120 stored, 120 PMIDs not seen before" in out
    sent = fake.log[0][1]["term"]
    assert sent.startswith('((("Carcinoma, Hepatocellular"[Mesh]')


def test_rate_limit_spaces_requests():
    now = [0.0]
    starts: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    for key, rate in ((None, 3), (KEY, 10)):
        config = EutilsConfig(base_url="http://127.0.0.1:9/", api_key=key)
        eutils = EutilsClient(config, sleep=sleep, clock=lambda: now[0])
        starts.clear()
        for _ in range(5):
            eutils._wait_for_slot()
            starts.append(now[0])
            now[0] += 0.01  # the request itself
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert min(gaps) >= 1 / rate - 1e-12


def test_records_dated_before_1800_are_covered_by_the_date_split(server, hcc_workspace):
    fake, url = server(10_050)
    for pmid in fake.pmids[:30]:
        fake.years[pmid] = 1750
    result = run_search(hcc_workspace, client(url, batch=500), QUERY, quiet=True)
    assert result.count == result.fetched == 10_050
    assert {r.pmid for r in stored(hcc_workspace)} == {str(p) for p in fake.pmids}


def test_a_split_whose_slices_miss_records_stores_nothing_and_says_why(server, hcc_workspace):
    fake, url = server(10_050)
    for pmid in fake.pmids[:5]:
        fake.years[pmid] = 9999  # a date outside every slice, as undated records are
    with pytest.raises(ReviewError, match="the publication-date slices hold 10045 of the "
                                          "10050 records ESearch found"):
        run_search(hcc_workspace, client(url, batch=500), QUERY, quiet=True)
    assert stored(hcc_workspace) == []


def _interrupted_run(server, workspace, records: int = 300):
    """A run whose second EFetch failed for good: one batch of 100 done, the run unfinished."""
    fake, url = server(records, {3: "500"})
    with pytest.raises(ReviewError, match="kept unfinished"):
        run_search(workspace, client(url, batch=100, attempts=1), QUERY, quiet=True)
    return fake, url


@pytest.mark.parametrize("change", ["replace", "remove"])
def test_a_resumed_run_follows_pubmed_when_it_changed(server, hcc_workspace, change):
    fake, url = _interrupted_run(server, hcc_workspace)
    if change == "replace":  # the same count, but one record of the first batch is gone
        fake.pmids[0] = 39_999_999
        fake.years[39_999_999] = 2001
    else:
        del fake.pmids[5]
    result = run_search(hcc_workspace, client(url, batch=100), QUERY, quiet=True)
    assert result.resumed
    assert {r.pmid for r in stored(hcc_workspace)} == {str(p) for p in fake.pmids}
    assert result.count == len(fake.pmids)


def test_a_run_abandoned_for_a_new_one_is_never_resumed(server, hcc_workspace):
    _, url = _interrupted_run(server, hcc_workspace)
    time.sleep(1.1)
    fresh = run_search(hcc_workspace, client(url, batch=100), QUERY, new=True, quiet=True)
    assert not fresh.resumed
    time.sleep(1.1)
    later = run_search(hcc_workspace, client(url, batch=100), QUERY, quiet=True)
    assert not later.resumed and later.count == 300


def test_esearch_error_list_fails_and_warning_list_is_shown_and_logged(server, hcc_workspace,
                                                                        capsys):
    _, url = server(50, {1: "phrase-not-found"})
    with pytest.raises(ReviewError, match="ESearch could not run the query as written: "
                                          "PhraseNotFound hepatocelular"):
        run_search(hcc_workspace, client(url), QUERY, quiet=True)
    assert not (hcc_workspace.search_dir / "runs").exists()
    _, url = server(50, {1: "warning"})
    run_search(hcc_workspace, client(url), QUERY, quiet=True)
    assert 'warning: ESearch: QuotedPhraseNotFound "bone mets"' in capsys.readouterr().err
    log = json.loads((hcc_workspace.search_dir / "search_log.jsonl").read_text())
    assert log["warnings"] == ['QuotedPhraseNotFound "bone mets"', "OutputMessage No items "
                               "found."]


def test_a_dripping_reply_hits_the_whole_reply_deadline(server, hcc_workspace):
    fake, url = server(150, {2: "drip"})
    eutils = client(url, batch=200)
    result = run_search(hcc_workspace, eutils, QUERY, quiet=True)
    assert result.fetched == 150 and eutils.retries == 1
    fake.release.set()


def test_a_day_long_retry_after_is_capped_with_a_message(server, hcc_workspace, capsys):
    _, url = server(20, {1: "retry-after-day"})
    sleeps: list[float] = []
    eutils = client(url, sleeps=sleeps)
    run_search(hcc_workspace, eutils, QUERY, quiet=True)
    assert max(sleeps) == eutils.config.max_backoff == 60
    assert "asked to wait 86400 s; waiting 60 s" in capsys.readouterr().err


def test_two_runs_at_once_do_not_both_fetch(server, hcc_workspace, monkeypatch):
    fake, url = server(20)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom review.transaction import "
         "workspace_lock\nwith workspace_lock(sys.argv[1], 'search run'):\n    "
         "print('held', flush=True)\n    time.sleep(30)", str(hcc_workspace.root)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("REVIEW_LOCK_WAIT", "0.2")
        with pytest.raises(ReviewError, match="in use by 'review search run' \\(process "
                                              f"{holder.pid}"):
            run_search(hcc_workspace, client(url), QUERY, quiet=True)
    finally:
        holder.kill()
        holder.wait()
    assert fake.log == []


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--batch-size", "0", "batch size 0: use 1 to 10,000"),
    ("--batch-size", "-5", "batch size -5: use 1 to 10,000"),
    ("--timeout", "-1", "timeout -1.0: use a number of seconds above 0"),
    ("--timeout", "nan", "timeout nan: use a number of seconds above 0"),
    ("--max-attempts", "0", "max attempts 0: use 1 or more"),
    ("--eutils-url", "http://[::1", "E-utilities address 'http://[::1/': Invalid IPv6 URL"),
])
def test_bad_runner_options_are_one_line_errors_and_leave_nothing(run_cli, hcc_workspace,
                                                                  option, value, message):
    status, _, err = run_cli("--project", hcc_workspace.root, "search", "run", option, value,
                             *(["--eutils-url", "http://127.0.0.1:9/"]
                               if option != "--eutils-url" else []))
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (hcc_workspace.search_dir / "runs").exists()


def test_a_broken_settings_file_never_shows_its_lines(tmp_path, monkeypatch):
    folder = tmp_path / "casereview"
    folder.mkdir()
    (folder / "eutils.yaml").write_text(f'email: a@b.org\napi_key: "{KEY}\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(ReviewError) as raised:
        EutilsConfig.from_environment()
    assert KEY not in str(raised.value)
    assert str(raised.value).startswith(f"{folder / 'eutils.yaml'}:")


def test_a_reply_dripping_faster_than_the_socket_timeout_still_meets_the_deadline(
        server, hcc_workspace):
    fake, url = server(150, {2: "drip"})
    fake.slow_seconds = 0.05  # 64 bytes every 50 ms: no single read waits 0.5 s
    eutils = client(url, batch=200)
    started = time.monotonic()
    result = run_search(hcc_workspace, eutils, QUERY, quiet=True)
    # Without a deadline over the whole reply the dripped batch alone would take minutes.
    assert time.monotonic() - started < 15
    assert result.fetched == 150 and eutils.retries == 1
    fake.release.set()
