"""Page-to-page time of `review serve` with 5,000 records to screen (goal ≤ 100 ms): a real
server process on a free port, one reviewer deciding records over HTTP (each decision is a
POST and the redirect to the next record's page). Prints the figures."""

from __future__ import annotations

import http.cookiejar
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

from review.search.records import RecordStore, make_record  # noqa: E402

RECORDS = 5_000
DECISIONS = 60


def workspace(folder: Path) -> Path:
    root = folder / "review"
    shutil.copytree(ROOT / "protocols", root / "protocols")
    (root / "data" / "extraction").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "extraction" / "cases.csv", root / "data" / "extraction")
    path = next((root / "protocols").glob("*.yaml"))
    path.write_text(path.read_text().replace("reviewers: [pilot-team]",
                                             "reviewers: [pilot-team, ana]"))
    RecordStore(root / "data" / "search" / "records.jsonl").add([
        make_record("PubMed", "generated", origin="generated", position=i + 1,
                    pmid=str(30_000_000 + i), year=str(1990 + i % 35),
                    title=f"Case {i}: metastasis of tumour type {i % 97} to bone site {i % 13}",
                    abstract="A patient presented with pain. " * 20,
                    authors=(f"Author{i % 500} A",), journal=f"Journal {i % 40}")
        for i in range(RECORDS)])
    return root


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
            for _ in range(DECISIONS):
                page = browser.open(url + "/screen/title-abstract").read().decode()
                record = re.search(r'data-record="([^"]+)"', page).group(1)
                start = time.perf_counter()
                browser.open(url + "/screen/title-abstract/decide", data=urllib.parse.urlencode(
                    {"record": record, "decision": "include", "csrf": csrf}).encode()).read()
                times.append(time.perf_counter() - start)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"review serve, {RECORDS:,} records: decision to next page median "
          f"{1000 * statistics.median(times):.0f} ms, slowest {1000 * max(times):.0f} ms over "
          f"{DECISIONS} decisions (goal ≤ 100 ms)")


if __name__ == "__main__":
    main()
