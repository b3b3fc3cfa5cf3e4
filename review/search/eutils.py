"""A fault-tolerant client for NCBI E-utilities (ESearch with the history server, EFetch).

Biopython's Bio.Entrez hard-codes NCBI's host, sets no request timeout and retries server
errors without waiting, so the HTTP layer is our own (`review.http`): a configurable base URL
(mirrors, tests), NCBI's rate limit (3 requests/s, 10 with an API key), and retries of
replies whose XML is truncated or malformed as well as of server and network errors.
"""

from __future__ import annotations

import math
import os
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from lxml import etree

from review.errors import ReviewError
from review.http import PoliteClient, RetryableReply

NCBI_EUTILS = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
CONFIG_FILE = Path("casereview") / "eutils.yaml"
T = TypeVar("T")


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


class EutilsClient(PoliteClient):
    """Rate-limited, retrying E-utilities requests; counts what it sends."""

    def __init__(self, config: EutilsConfig, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__("E-utilities", requests_per_second=config.requests_per_second,
                         timeout=config.timeout, max_attempts=config.max_attempts,
                         backoff=config.backoff, max_backoff=config.max_backoff,
                         sleep=sleep, clock=clock)
        self.config = config

    def _parameters(self, parameters: dict[str, str]) -> dict[str, str]:
        full = {"tool": self.config.tool, **parameters}
        if self.config.email:
            full["email"] = self.config.email
        if self.config.api_key:
            full["api_key"] = self.config.api_key
        return full

    def call(self, endpoint: str, parameters: dict[str, str],  # type: ignore[override]
             read: Callable[[bytes], T], *, post: bool = False) -> T:
        """One E-utilities call, retried until `read` accepts the reply."""
        url = self.config.base_url + endpoint
        encoded = urllib.parse.urlencode(self._parameters(parameters))
        return super().call(url if post else f"{url}?{encoded}", read,
                            data=encoded.encode() if post else None,
                            what=f"E-utilities {endpoint}")

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
