"""Page-to-page time of `review serve` with records to screen in prioritised order (goals:
≤ 40 ms median with ≤ 25 ms of server CPU at 5,000 records, issue 20, whose anchor was 96 ms;
≤ 150 ms from a decision to the next ranked record at 10,000, issue 16): a real server
process on a free port, one reviewer deciding records over HTTP (each decision is a POST and
the redirect to the next record's page, which retrains the ranking model on the reviewer's
decisions). One record in 20 is on the review's topic and is included, the rest excluded, so
the model has both classes to learn from. The server's CPU time is read from /proc. Also
prints the time to build the text features and rank from scratch in this process.

    python benchmarks/web_speed.py [RECORDS]      # default 5,000"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from review.protocol import Prioritisation  # noqa: E402
from review.screening.decisions import Decision, DecisionStore, now  # noqa: E402
from review.screening.ranking import TextFeatures, rank_records, record_text  # noqa: E402
from review.search.records import Record, RecordStore, make_record  # noqa: E402

RECORDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
DECISIONS = 60
GOAL_MS = 40 if RECORDS <= 5_000 else 150


def on_topic(index: int) -> bool:
    return index % 20 == 0


def generated(index: int) -> Record:
    topic = ("vertebral metastasis with spinal cord compression" if on_topic(index)
             else f"tumour type {index % 97} in organ {index % 13}")
    return make_record("PubMed", "generated", origin="generated", position=index + 1,
                       pmid=str(30_000_000 + index), year=str(1990 + index % 35),
                       title=f"Case {index}: {topic}",
                       abstract=f"A patient presented with pain and {topic}. " * 10,
                       authors=(f"Author{index % 500} A",), journal=f"Journal {index % 40}")


def workspace(folder: Path) -> Path:
    root = folder / "review"
    shutil.copytree(ROOT / "protocols", root / "protocols")
    (root / "data" / "extraction").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "extraction" / "cases.csv", root / "data" / "extraction")
    path = next((root / "protocols").glob("*.yaml"))
    path.write_text(path.read_text().replace("reviewers: [pilot-team]",
                                             "reviewers: [pilot-team, ana]"))
    records = RecordStore(root / "data" / "search" / "records.jsonl").add(
        [generated(i) for i in range(RECORDS)])
    # The reviewer has found one include already, so every timed decision goes through the
    # model (the seeded random cold start may meet no on-topic record in 60 decisions).
    DecisionStore(root / "data" / "screening").append([Decision(
        records[0].record_id, "title-abstract", "ana", "include", time=now())])
    return root


def from_scratch() -> tuple[float, float]:
    """Seconds to build the text features of every record, and to train and rank once."""
    records = [generated(i) for i in range(RECORDS)]
    start = time.perf_counter()
    features = TextFeatures([record_text(record) for record in records])
    built = time.perf_counter() - start
    labels = {i: int(on_topic(i)) for i in range(0, RECORDS, 7)[:300]}
    start = time.perf_counter()
    rank_records(features, labels, Prioritisation())
    return built, time.perf_counter() - start


def server_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = workspace(Path(folder))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "review", "--project", str(root),
                                   "serve", "--port", str(port)], cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        try:
            browser = urllib.request.build_opener(
                urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
            for _ in range(150):
                try:
                    page = browser.open(url + "/", timeout=5).read().decode()
                    break
                except OSError:
                    time.sleep(0.2)
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            browser.open(url + "/signin", data=urllib.parse.urlencode(
                {"reviewer": "ana", "csrf": csrf}).encode()).read()
            times = []
            page = browser.open(url + "/screen/title-abstract").read().decode()
            cpu_before = server_cpu_seconds(server.pid)
            for _ in range(DECISIONS):
                # The record on show, not the one the "Saved: …" line above it names.
                shown = page[page.index('<article id="record"'):]
                record = re.search(r'data-record="([^"]+)"', shown).group(1)
                index = int(re.search(r"Case (\d+):", shown).group(1))
                decision = "include" if on_topic(index) else "exclude"
                start = time.perf_counter()
                page = browser.open(url + "/screen/title-abstract/decide", data=urllib.parse.
                                    urlencode({"record": record, "decision": decision,
                                               "reason": "" if on_topic(index) else
                                               "no_bone_metastasis", "csrf": csrf}).encode()
                                    ).read().decode()
                times.append(time.perf_counter() - start)
            cpu = (server_cpu_seconds(server.pid) - cpu_before) / DECISIONS
            includes = re.search(r'id="includes">(\d+)<', page)
            order = re.search(r'id="order">([^<]*)', page)
        finally:
            server.terminate()
            server.wait(timeout=10)
    built, ranked = from_scratch()
    print(f"review serve, {RECORDS:,} records: decision to next ranked page median "
          f"{1000 * statistics.median(times):.0f} ms, slowest {1000 * max(times):.0f} ms over "
          f"{DECISIONS} decisions (goal ≤ {GOAL_MS} ms); server CPU {1000 * cpu:.0f} ms per "
          "decision (goal ≤ 25 ms at 5,000); first page (features built) included in none "
          "of these")
    print(f"after {DECISIONS} decisions: {includes.group(1) if includes else '?'} includes "
          f"found (1 in 20 records is on topic); order: "
          f"{order.group(1).strip() if order else '?'}")
    print(f"from scratch in one process: text features {built:.2f} s, one retrain and "
          f"ranking {1000 * ranked:.0f} ms")


if __name__ == "__main__":
    main()
