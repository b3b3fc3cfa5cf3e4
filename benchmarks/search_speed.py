"""Search speed: (a) parsing a 20,000-record PubMed XML file against a bare lxml iterparse
extraction of the same fields in the same run (goal ≥ 0.8× its throughput, issue 20, whose
anchor was 0.61×); (b) fetching 10,000 records from a local E-utilities stand-in at the
10 requests/s limit (goal: within 1.2× of the rate-limit floor). Prints the figures."""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from review.search.eutils import EutilsClient, EutilsConfig  # noqa: E402
from review.search.readers.pubmed_xml import parse_articles  # noqa: E402
from review.search.run import run_search  # noqa: E402
from review.workspace import create_workspace  # noqa: E402
from tests.eutils_server import FakeEutils, synthetic_article  # noqa: E402


def bare_extraction(data: bytes) -> int:
    """The same fields with nothing but lxml: the floor any reader is measured against."""
    count = 0
    for _, article in etree.iterparse(io.BytesIO(data), tag="PubmedArticle",
                                      resolve_entities=False, no_network=True):
        fields = (
            article.findtext("MedlineCitation/PMID"),
            "".join(article.find(".//ArticleTitle").itertext()),
            " ".join("".join(a.itertext()) for a in article.iterfind(".//AbstractText")),
            [f"{a.findtext('LastName')} {a.findtext('Initials')}"
             for a in article.iterfind(".//AuthorList/Author")],
            article.findtext(".//Journal/Title"), article.findtext(".//PubDate/Year"),
            article.findtext(".//JournalIssue/Volume"), article.findtext(".//JournalIssue/Issue"),
            article.findtext(".//MedlinePgn"),
            [t.text for t in article.iterfind(".//PublicationType")],
            [m.findtext("DescriptorName") for m in article.iterfind(".//MeshHeading")],
            [k.text for k in article.iterfind(".//Keyword")], article.findtext(".//Language"),
            [i.text for i in article.iterfind(".//ArticleId") if i.get("IdType") == "doi"],
        )
        count += bool(fields[0])
        article.clear()
    return count


def best_of(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def parse_benchmark(records: int = 20_000) -> None:
    data = ("<?xml version=\"1.0\" ?>\n<PubmedArticleSet>\n"
            + "\n".join(synthetic_article(30_000_000 + i, 1990 + i % 35) for i in range(records))
            + "\n</PubmedArticleSet>\n").encode()
    assert len(parse_articles(data, "benchmark")) == bare_extraction(data) == records
    ours = best_of(lambda: parse_articles(data, "benchmark"), 3)
    bare = best_of(lambda: bare_extraction(data), 3)
    print(f"parse {records:,} PubMed XML records ({len(data) / 1e6:.1f} MB): reader "
          f"{records / ours:,.0f} records/s, bare lxml iterparse {records / bare:,.0f} "
          f"records/s; ratio {bare / ours:.2f}× (goal ≥ 0.8×, anchor 0.61×)")


def fetch_benchmark(records: int = 10_000, batch: int = 500) -> None:
    fake = FakeEutils(records)
    url = fake.start()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            workspace = create_workspace(Path(scratch) / "bench")
            config = EutilsConfig(base_url=url, api_key="benchmark", batch_size=batch)
            client = EutilsClient(config)
            start = time.perf_counter()
            result = run_search(workspace, client, '"benchmark"[tiab]', quiet=True)
            elapsed = time.perf_counter() - start
    finally:
        fake.stop()
    requests = client.requests  # ESearch (more than one when > 9,999 split by date) + EFetch
    floor = (requests - 1) / config.requests_per_second
    print(f"fetch {result.fetched:,} records in {requests} requests at "
          f"{config.requests_per_second:.0f}/s: {elapsed:.2f} s; rate-limit floor {floor:.2f} s;"
          f" ratio {elapsed / floor:.2f}× (goal ≤ 1.2×)")


if __name__ == "__main__":
    parse_benchmark()
    fetch_benchmark()
