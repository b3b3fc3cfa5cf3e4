"""A fault-tolerant client for NCBI E-utilities (ESearch with the history server, EFetch).

Biopython's Bio.Entrez hard-codes NCBI's host, sets no request timeout and retries server
errors without waiting, so the HTTP layer is our own: a configurable base URL (mirrors, tests),
a timeout on every request, NCBI's rate limit (3 requests/s, 10 with an API key), and retries
with exponential backoff on 429 (honouring Retry-After), 5xx, time-outs, dropped connections
and 200 replies whose XML is truncated or malformed; then one clear error.
"""

from __future__ import annotations

import http.client
import math
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from lxml import etree

from review import __version__
from review.errors import ReviewError

NCBI_EUTILS = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
CONFIG_FILE = Path("casereview") / "eutils.yaml"
T = TypeVar("T")


class RetryableReply(Exception):
    """A reply that may succeed when asked again (truncated, malformed or a backend error)."""


@dataclass(frozen=True)
class EutilsConfig:
    """Where and how to reach E-utilities. The API key is used in requests only: it is never
    written to data, logs or reports."""

    base_url: str = NCBI_EUTILS
    email: str | None = None
    tool: str = "casereview"
    api_key: str | None = None
    timeout: float = 30.0
    max_attempts: int = 6
    backoff: float = 1.0
    max_backoff: float = 60.0
    batch_size: int = 500

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ReviewError(f"batch size {self.batch_size}: use 1 to 10,000 records per "
                              "EFetch request")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ReviewError(f"timeout {self.timeout}: use a number of seconds above 0")
        if self.max_attempts < 1:
            raise ReviewError(f"max attempts {self.max_attempts}: use 1 or more")
        try:
            parts = urllib.parse.urlsplit(self.base_url)
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError as error:
            raise ReviewError(f"E-utilities address '{self.base_url}': {error}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ReviewError(f"E-utilities address '{self.base_url}': expected "
                              "http(s)://HOST/PATH/")

    @property
    def requests_per_second(self) -> float:
        return 10.0 if self.api_key else 3.0

    @classmethod
    def from_environment(cls, base_url: str | None = None, **overrides: object) -> EutilsConfig:
        """Settings from REVIEW_EUTILS_URL, NCBI_EMAIL, NCBI_TOOL and NCBI_API_KEY, else from
        $XDG_CONFIG_HOME/casereview/eutils.yaml (keys: email, tool, api_key, base_url)."""
        home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        stored: dict[str, str] = {}
        path = home / CONFIG_FILE
        if path.exists():
            try:
                loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except OSError as error:
                raise ReviewError(f"{path}: cannot read the E-utilities settings "
                                  f"({error.strerror})") from None
            except yaml.YAMLError as error:
                # Never PyYAML's own message: it quotes the line, which may hold the API key.
                mark = getattr(error, "problem_mark", None)
                line = f":{mark.line + 1}" if mark is not None else ""
                raise ReviewError(f"{path}{line}: not valid YAML (expected lines such as "
                                  "'api_key: KEY')") from None
            if not isinstance(loaded, dict):
                raise ReviewError(f"{path}: expected keys email, tool, api_key, base_url")
            stored = {str(k): str(v) for k, v in loaded.items() if v is not None}
        url = base_url or os.environ.get("REVIEW_EUTILS_URL") or stored.get("base_url") \
            or NCBI_EUTILS
        return cls(
            base_url=url if url.endswith("/") else url + "/",
            email=os.environ.get("NCBI_EMAIL") or stored.get("email"),
            tool=os.environ.get("NCBI_TOOL") or stored.get("tool") or "casereview",
            api_key=os.environ.get("NCBI_API_KEY") or stored.get("api_key"),
            **overrides,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class SearchResult:
    count: int
    web_env: str
    query_key: str
    query_translation: str
    warnings: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()


def parse_esearch(body: bytes) -> SearchResult:
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as error:
        raise RetryableReply(f"malformed ESearch reply ({error.msg})") from None
    if root.tag != "eSearchResult":
        raise RetryableReply(f"unexpected ESearch reply <{root.tag}>")
    error = root.findtext("ERROR")
    count = root.findtext("Count")
    if error or count is None or not count.strip().isdigit():
        raise RetryableReply(f"ESearch error: {error or 'no Count in the reply'}")
    # PubMed answers 200 with an ErrorList when part of the query matched nothing it knows:
    # the count then describes another query than the one written.
    problems = [f"{item.tag} {item.text or ''}".strip() for item in root.iterfind("ErrorList/*")]
    if problems:
        raise ReviewError(f"ESearch could not run the query as written: {'; '.join(problems)}; "
                          "fix the query (review search query) and run again")
    return SearchResult(
        count=int(count),
        web_env=root.findtext("WebEnv") or "",
        query_key=root.findtext("QueryKey") or "",
        query_translation=root.findtext("QueryTranslation") or "",
        warnings=tuple(f"{item.tag} {item.text or ''}".strip()
                       for item in root.iterfind("WarningList/*")),
        ids=tuple(item.text or "" for item in root.iterfind("IdList/Id")),
    )


class EutilsClient:
    """Rate-limited, retrying E-utilities requests; counts what it sends."""

    def __init__(self, config: EutilsConfig, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.sleep = sleep
        self.clock = clock
        self.requests = 0
        self.retries = 0
        self._next_slot = 0.0

    def _wait_for_slot(self) -> None:
        now = self.clock()
        if now < self._next_slot:
            self.sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + 1.0 / self.config.requests_per_second

    def _parameters(self, parameters: dict[str, str]) -> dict[str, str]:
        full = {"tool": self.config.tool, **parameters}
        if self.config.email:
            full["email"] = self.config.email
        if self.config.api_key:
            full["api_key"] = self.config.api_key
        return full

    def _request(self, endpoint: str, parameters: dict[str, str], post: bool) -> bytes:
        url = self.config.base_url + endpoint
        encoded = urllib.parse.urlencode(self._parameters(parameters))
        request = urllib.request.Request(
            url if post else f"{url}?{encoded}",
            data=encoded.encode() if post else None,
            headers={"User-Agent": f"casereview/{__version__}"},
        )
        # The socket timeout bounds each read; the deadline bounds the whole reply, which a
        # server dripping a few bytes at a time would otherwise stretch without end.
        deadline = time.monotonic() + self.config.timeout
        chunks = []
        with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
            # read1 returns what has arrived: read(n) would wait for all n bytes, so a reply
            # dripping faster than the socket timeout would pass the deadline unchecked.
            while chunk := response.read1(65536):
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the reply took longer than {self.config.timeout:g} s")
        return b"".join(chunks)

    def call(self, endpoint: str, parameters: dict[str, str], read: Callable[[bytes], T], *,
             post: bool = False) -> T:
        """One E-utilities call, retried until `read` accepts the reply."""
        last_problem = ""
        for attempt in range(self.config.max_attempts):
            self._wait_for_slot()
            self.requests += 1
            delay = min(self.config.backoff * 2**attempt, self.config.max_backoff)
            try:
                return read(self._request(endpoint, parameters, post))
            except urllib.error.HTTPError as error:
                if error.code != 429 and not 500 <= error.code < 600:
                    raise ReviewError(f"E-utilities {endpoint}: HTTP {error.code} "
                                      f"{error.reason}") from None
                last_problem = f"HTTP {error.code}"
                retry_after = (error.headers or {}).get("Retry-After", "")
                if retry_after.strip().isdigit():
                    asked = float(retry_after)
                    if asked > self.config.max_backoff:
                        print(f"review: E-utilities asked to wait {asked:g} s; waiting "
                              f"{self.config.max_backoff:g} s (the longest this client "
                              "waits) before trying again", file=sys.stderr)
                    delay = max(delay, min(asked, self.config.max_backoff))
            except (urllib.error.URLError, TimeoutError, ConnectionError,
                    http.client.HTTPException) as error:
                reason = getattr(error, "reason", error)
                last_problem = f"{type(reason).__name__}: {reason}"
            except RetryableReply as problem:
                last_problem = str(problem)
            if attempt + 1 < self.config.max_attempts:
                self.retries += 1
                self.sleep(delay)
        raise ReviewError(f"E-utilities {endpoint}: gave up after {self.config.max_attempts} "
                          f"attempt{'s' if self.config.max_attempts > 1 else ''} "
                          f"({last_problem})")

    def esearch(self, term: str, *, mindate: str | None = None, maxdate: str | None = None,
                list_ids: bool = False) -> SearchResult:
        """One ESearch with the history server; `list_ids` also asks for the PMIDs (up to
        9,999, as many as one slice holds)."""
        parameters = {"db": "pubmed", "term": term, "usehistory": "y",
                      "retmax": "9999" if list_ids else "0"}
        if mindate or maxdate:
            parameters.update(datetype="pdat", mindate=mindate or "1000",
                              maxdate=maxdate or "3000")
        return self.call("esearch.fcgi", parameters, parse_esearch, post=True)

    def efetch(self, search: SearchResult, retstart: int, retmax: int,
               check: Callable[[bytes], None]) -> bytes:
        """One batch of PubMed XML from the history server; `check` rejects a reply that is
        malformed or holds fewer articles than asked for."""
        parameters = {"db": "pubmed", "query_key": search.query_key, "WebEnv": search.web_env,
                      "retstart": str(retstart), "retmax": str(retmax), "retmode": "xml"}

        def accepted(body: bytes) -> bytes:
            check(body)
            return body

        return self.call("efetch.fcgi", parameters, accepted)
