"""A stand-in for NCBI E-utilities on 127.0.0.1, answering ESearch and EFetch in the real XML
shapes, with scripted faults. Used by the search tests and the fetch benchmark."""

from __future__ import annotations

import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("429", "500", "502", "503", "truncate", "malformed", "slow", "drop", "hang",
          "short", "drip", "retry-after-day", "phrase-not-found", "warning")


def _full_date(text: str, default_tail: str) -> str:
    parts = text.split("/")
    tail = default_tail.split("/")
    return "/".join([parts[0].zfill(4), *(parts[1:] + tail[len(parts) - 1:])[:2]])


def synthetic_article(pmid: int, year: int) -> str:
    return (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}'
        f'</PMID><Article PubModel="Print"><Journal><JournalIssue CitedMedium="Print"><Volume>'
        f"{pmid % 50}</Volume><Issue>{pmid % 12 + 1}</Issue><PubDate><Year>{year}</Year>"
        "</PubDate></JournalIssue><Title>Journal of synthetic case reports</Title>"
        "<ISOAbbreviation>J Synth Case Rep</ISOAbbreviation></Journal><ArticleTitle>Bone "
        f"metastasis of hepatocellular carcinoma: synthetic case {pmid}.</ArticleTitle>"
        f"<Pagination><MedlinePgn>{pmid % 900}-{pmid % 900 + 4}</MedlinePgn></Pagination>"
        "<Abstract><AbstractText>A synthetic abstract.</AbstractText></Abstract><AuthorList>"
        f"<Author><LastName>Author{pmid % 97}</LastName><Initials>A</Initials></Author>"
        "</AuthorList><Language>eng</Language><PublicationTypeList><PublicationType>Case "
        "Reports</PublicationType></PublicationTypeList></Article></MedlineCitation>"
        f'<PubmedData><ArticleIdList><ArticleId IdType="pubmed">{pmid}</ArticleId>'
        f'<ArticleId IdType="doi">10.5555/synthetic.{pmid}</ArticleId></ArticleIdList>'
        "</PubmedData></PubmedArticle>"
    )


@dataclass
class FakeEutils:
    """`records` synthetic PubMed records spread over publication years 1990–2024.

    `faults` maps a request number (1 = the first request the server receives) to one of
    FAULTS: an HTTP error, a truncated or malformed 200, a reply slower than the client's
    timeout, a dropped connection, a reply short of articles, a hang until released, a reply
    that drips 64 bytes every `slow_seconds`, a 429 asking to wait a day, or an ESearch reply
    with an ErrorList (PhraseNotFound) or a WarningList. ESearch lists PMIDs when asked for
    (retmax > 0), as PubMed does."""

    records: int
    faults: dict[int, str] = field(default_factory=dict)
    first_pmid: int = 30_000_000
    slow_seconds: float = 2.0
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    hang_reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        unknown = set(self.faults.values()) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)} (known: {', '.join(FAULTS)})")
        self._lock = threading.Lock()
        self._searches: dict[str, list[int]] = {}
        self.pmids = [self.first_pmid + i for i in range(self.records)]
        self.years = {pmid: 1990 + (pmid * 7919) % 35 for pmid in self.pmids}

    def add_records(self, extra: int) -> None:
        """More records, as a later search would find them (a living review)."""
        start = self.pmids[-1] + 1 if self.pmids else self.first_pmid
        new = [start + i for i in range(extra)]
        self.pmids += new
        self.years.update({pmid: 2025 for pmid in new})

    def matching(self, mindate: str | None, maxdate: str | None) -> list[int]:
        """Records published in the range (every record without a range); each is dated
        15 June of its year."""
        if mindate is None and maxdate is None:
            return list(self.pmids)
        low = _full_date(mindate or "1000", "01/01")
        high = _full_date(maxdate or "3000", "12/31")
        return [pmid for pmid in self.pmids if low <= f"{self.years[pmid]}/06/15" <= high]

    def requests(self, endpoint: str) -> int:
        return sum(name == endpoint for name, _ in self.log)

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                split = urllib.parse.urlsplit(self.path)
                self.answer(split.path, dict(urllib.parse.parse_qsl(split.query)))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length).decode()
                self.answer(urllib.parse.urlsplit(self.path).path,
                            dict(urllib.parse.parse_qsl(body)))

            def send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
                     length: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml; charset=UTF-8")
                self.send_header("Content-Length", str(length if length is not None
                                                       else len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def answer(self, path: str, params: dict[str, str]) -> None:
                endpoint = path.rsplit("/", 1)[-1]
                if not path.startswith("/entrez/eutils/"):
                    with fake._lock:
                        fake.log.append((endpoint, params))
                    self.send(404, b"<html>not found</html>")
                    return
                with fake._lock:
                    fake.log.append((endpoint, params))
                    number = len(fake.log)
                fault = fake.faults.get(number)
                if fault == "retry-after-day":
                    self.send(429, b"<html>busy</html>", {"Retry-After": "86400"})
                    return
                if fault in ("429", "500", "502", "503"):
                    headers = {"Retry-After": "1"} if fault == "429" else {}
                    self.send(int(fault), b"<html>busy</html>", headers)
                    return
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "slow":
                    time.sleep(fake.slow_seconds)
                if fault == "hang":
                    fake.hang_reached.set()
                    fake.release.wait(60)
                body = fake.reply(endpoint, params, short=fault == "short", fault=fault)
                if fault == "drip":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    for start in range(0, len(body), 64):
                        self.wfile.write(body[start:start + 64])
                        self.wfile.flush()
                        if fake.release.wait(fake.slow_seconds):
                            return
                elif fault == "truncate":
                    self.send(200, body[: len(body) // 2])
                elif fault == "malformed":
                    self.send(200, b"<eSearchResult><Count>1</Co" if endpoint.startswith(
                        "esearch") else b"<PubmedArticleSet><PubmedArticle></Pubmed")
                else:
                    self.send(200, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/entrez/eutils/"

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def reply(self, endpoint: str, params: dict[str, str], short: bool = False,
              fault: str | None = None) -> bytes:
        if endpoint == "esearch.fcgi":
            found = self.matching(params.get("mindate"), params.get("maxdate"))
            if fault == "phrase-not-found":
                found = []
            with self._lock:
                web_env = f"MCID_{len(self._searches) + 1:04d}"
                self._searches[web_env] = found
            listed = found[:int(params.get("retmax", 0))]
            ids = "".join(f"<Id>{pmid}</Id>" for pmid in listed)
            notes = {"phrase-not-found": "<ErrorList><PhraseNotFound>hepatocelular"
                                         "</PhraseNotFound></ErrorList>",
                     "warning": "<WarningList><QuotedPhraseNotFound>\"bone mets\""
                                "</QuotedPhraseNotFound><OutputMessage>No items found."
                                "</OutputMessage></WarningList>"}.get(fault or "", "")
            return (
                '<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSearchResult PUBLIC '
                '"-//NLM//DTD esearch 20060628//EN" "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/'
                '20060628/esearch.dtd">\n'
                f"<eSearchResult><Count>{len(found)}</Count><RetMax>{len(listed)}</RetMax>"
                f"<RetStart>0</RetStart><QueryKey>1</QueryKey><WebEnv>{web_env}</WebEnv>"
                f"<IdList>{ids}</IdList><TranslationSet/><QueryTranslation>\"hepatocellular "
                f"carcinoma\"[All Fields]</QueryTranslation>{notes}</eSearchResult>\n"
            ).encode()
        if endpoint == "efetch.fcgi":
            found = self._searches.get(params.get("WebEnv", ""), [])
            start = int(params.get("retstart", 0))
            chosen = found[start:start + int(params.get("retmax", 20))]
            if short:
                chosen = chosen[:-1]
            articles = "\n".join(synthetic_article(pmid, self.years[pmid]) for pmid in chosen)
            return ('<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD '
                    'PubMedArticle, 1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/'
                    'out/pubmed_250101.dtd">\n<PubmedArticleSet>\n'
                    f"{articles}\n</PubmedArticleSet>\n").encode()
        return b"<ERROR>unknown endpoint</ERROR>"
