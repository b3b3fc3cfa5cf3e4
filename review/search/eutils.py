"""A fault-tolerant client for NCBI E-utilities (ESearch with the history server, EFetch).

Biopython's Bio.Entrez hard-codes NCBI's host, sets no request timeout and retries server
errors without waiting, so the HTTP layer is our own: a configurable base URL (mirrors, tests),
a timeout on every request, NCBI's rate limit (3 requests/s, 10 with an API key), and retries
with exponential backoff on 429 (honouring Retry-After), 5xx, time-outs, dropped connections
and 200 replies whose XML is truncated or malformed; then one clear error.
"""

from __future__ import annotations

import http.client
import os
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
            except (OSError, yaml.YAMLError) as error:
                raise ReviewError(f"{path}: cannot read the E-utilities settings ({error})") \
                    from None
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


def parse_esearch(body: bytes) -> SearchResult:
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as error:
        raise RetryableReply(f"malformed ESearch reply ({error.msg})") from None
    if root.tag != "eSearchResult":
        raise RetryableReply(f"unexpected ESearch reply <{root.tag}>")
    error = root.findtext("ERROR")
    count = root.findtext("Count")
    if error or count is None:
        raise RetryableReply(f"ESearch error: {error or 'no Count in the reply'}")
    return SearchResult(
        count=int(count),
        web_env=root.findtext("WebEnv") or "",
        query_key=root.findtext("QueryKey") or "",
        query_translation=root.findtext("QueryTranslation") or "",
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
        with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
            return response.read()

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
                    delay = max(delay, float(retry_after))
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
                          f"attempts ({last_problem})")

    def esearch(self, term: str, *, mindate: str | None = None,
                maxdate: str | None = None) -> SearchResult:
        parameters = {"db": "pubmed", "term": term, "usehistory": "y", "retmax": "0"}
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
