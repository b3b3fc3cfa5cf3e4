"""Open-access copies of the reports assessed in full text, found by DOI and PMID.

The services are the ones reviewers use, asked in the protocol's order
(`fulltext.services`): Unpaywall's REST API (by DOI, with a contact address, as Unpaywall
asks) and PubMed Central (the ID converter turns a PMID or DOI into a PMCID, the OA web
service lists that article's PDF when it is in the open-access subset). Each candidate PDF is
downloaded with the same rate limits, timeouts, retries and deadlines as a search run, checked
as a PDF, and stored; a reply that is an HTML page, a redirect loop, too large or cut short
(after its retries) is not stored and the next candidate is tried.

What each record's lookup found is kept in `data/fulltext/lookups.csv` (no open copy, or
failed with why), committed after every record, so an interrupted `find` resumes where it
stopped, failed records are tried again by the next run, and the records with no open copy
are known to the team (they may be marked not retrieved, with `review fulltext
not-retrieved`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields

from lxml import etree

from review.errors import ReviewError, one_line
from review.fileio import read_text
from review.fulltext.attach import now
from review.fulltext.store import FullTextStore, TruncatedPdf, check_pdf
from review.http import PoliteClient, RequestRefused, RetryableReply
from review.screening.flow import screening_state
from review.search.records import Record, normalise_doi
from review.transaction import commit, workspace_lock
from review.workspace import Workspace

UNPAYWALL = "https://api.unpaywall.org/v2/"
PMC_UTILITIES = "https://www.ncbi.nlm.nih.gov/pmc/utils/"
SERVICE_LABELS = {"unpaywall": "Unpaywall", "pmc": "PubMed Central"}
OUTCOMES = ("no_open_copy", "failed")


@dataclass(frozen=True)
class OpenAccessConfig:
    """Where the services are and how politely to ask them; `email` is the contact address
    Unpaywall requires and NCBI asks for (UNPAYWALL_EMAIL, else NCBI_EMAIL)."""

    unpaywall_url: str = UNPAYWALL
    pmc_url: str = PMC_UTILITIES
    email: str | None = None
    tool: str = "casereview"
    timeout: float = 60.0
    max_attempts: int = 4
    backoff: float = 1.0
    max_backoff: float = 60.0

    @classmethod
    def from_environment(cls, **overrides: object) -> OpenAccessConfig:
        def base(name: str, default: str) -> str:
            url = os.environ.get(name) or default
            return url if url.endswith("/") else url + "/"

        return cls(unpaywall_url=base("REVIEW_UNPAYWALL_URL", UNPAYWALL),
                   pmc_url=base("REVIEW_PMC_URL", PMC_UTILITIES),
                   email=os.environ.get("UNPAYWALL_EMAIL") or os.environ.get("NCBI_EMAIL"),
                   tool=os.environ.get("NCBI_TOOL") or "casereview",
                   **overrides)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Lookup:
    """What the last `find` learnt about a record that has no full text yet."""

    record_id: str
    outcome: str  # one of OUTCOMES
    detail: str
    checked: str


def read_lookups(workspace: Workspace) -> dict[str, Lookup]:
    path = workspace.fulltext_dir / "lookups.csv"
    if not path.exists():
        return {}
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    names = [item.name for item in fields(Lookup)]
    if reader.fieldnames != names:
        raise ReviewError(f"{path}:1: expected the columns {', '.join(names)}")
    found = {}
    for number, row in enumerate(reader, start=2):
        if row["outcome"] not in OUTCOMES:
            raise ReviewError(f"{path}:{number}: outcome: '{row['outcome']}' is not one of "
                              f"{', '.join(OUTCOMES)}")
        found[row["record_id"]] = Lookup(**row)
    return found


def _lookups_bytes(lookups: Iterable[Lookup]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([item.name for item in fields(Lookup)])
    for lookup in sorted(lookups, key=lambda item: item.record_id):
        writer.writerow(asdict(lookup).values())
    return buffer.getvalue().encode("utf-8")


def _save_lookup(workspace: Workspace, record_id: str, lookup: Lookup | None) -> None:
    with workspace_lock(workspace.root, "fulltext find"):
        lookups = read_lookups(workspace)
        if lookup is None:
            lookups.pop(record_id, None)
        else:
            lookups[record_id] = lookup
        commit(workspace.root, {workspace.fulltext_dir / "lookups.csv": _lookups_bytes(
            lookups.values())})


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except ValueError:
        raise RetryableReply("the reply is not JSON") from None
    if not isinstance(data, dict):
        raise RetryableReply("the reply is not a JSON object")
    return data


def _xml(body: bytes) -> etree._Element:
    try:
        return etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as error:
        raise RetryableReply(f"malformed XML ({error.msg})") from None


class OpenAccessFinder:
    """Candidate PDF addresses of one record from each service, and their download."""

    def __init__(self, config: OpenAccessConfig, services: tuple[str, ...],
                 sleep: Callable[[float], None] | None = None):
        self.config = config
        self.services = services
        if "unpaywall" in services and not config.email:
            raise ReviewError("Unpaywall asks for a contact address: set UNPAYWALL_EMAIL or "
                              "NCBI_EMAIL (or leave unpaywall out of fulltext.services)")
        polite = {"timeout": config.timeout, "max_attempts": config.max_attempts,
                  "backoff": config.backoff, "max_backoff": config.max_backoff}
        if sleep is not None:
            polite["sleep"] = sleep
        # Unpaywall asks for under 100,000 calls a day; NCBI for at most 3 requests a second.
        self.clients = {"unpaywall": PoliteClient("Unpaywall", requests_per_second=10, **polite),
                        "pmc": PoliteClient("PubMed Central", requests_per_second=3, **polite)}
        self.downloads = PoliteClient("download", requests_per_second=2, **polite)

    @property
    def requests(self) -> int:
        return sum(client.requests for client in (*self.clients.values(), self.downloads))

    def _unpaywall(self, record: Record) -> list[str]:
        doi = normalise_doi(record.doi)
        if not doi:
            return []
        url = (f"{self.config.unpaywall_url}{urllib.parse.quote(doi, safe='/')}?"
               f"{urllib.parse.urlencode({'email': self.config.email})}")
        try:
            data = self.clients["unpaywall"].call(url, _json, what=f"Unpaywall {doi}")
        except RequestRefused as error:
            if "HTTP 404" in str(error):
                return []  # Unpaywall does not know the DOI
            raise
        locations = [data.get("best_oa_location"), *(data.get("oa_locations") or [])]
        return [location["url_for_pdf"] for location in locations
                if isinstance(location, dict) and isinstance(location.get("url_for_pdf"), str)
                and location["url_for_pdf"].startswith(("http://", "https://"))]

    def _pmc(self, record: Record) -> list[str]:
        identifier = record.pmid or normalise_doi(record.doi)
        if not identifier:
            return []
        contact = {"tool": self.config.tool, **({"email": self.config.email}
                                                 if self.config.email else {})}
        client = self.clients["pmc"]
        converted = client.call(
            f"{self.config.pmc_url}idconv/v1.0/?"
            f"{urllib.parse.urlencode({'ids': identifier, 'format': 'json', **contact})}",
            _json, what=f"PubMed Central ID converter {identifier}")
        pmcids = [item.get("pmcid") for item in converted.get("records") or []
                  if isinstance(item, dict) and isinstance(item.get("pmcid"), str)]
        if not pmcids:
            return []
        listing = client.call(
            f"{self.config.pmc_url}oa/oa.fcgi?"
            f"{urllib.parse.urlencode({'id': pmcids[0], **contact})}",
            _xml, what=f"PubMed Central OA service {pmcids[0]}")
        links = [link.get("href", "") for link in listing.iterfind(".//record/link")
                 if link.get("format") == "pdf"]
        # The OA service lists its files on NCBI's FTP host, which also serves them by HTTPS.
        return [("https://" + link.removeprefix("ftp://")) if link.startswith("ftp://") else link
                for link in links if link.startswith(("ftp://", "http://", "https://"))]

    def candidates(self, record: Record) -> tuple[list[tuple[str, str]], list[str]]:
        """(service, PDF address) in the protocol's order, each address once, and the one-line
        errors of the services that could not be asked (the others are asked all the same)."""
        found: list[tuple[str, str]] = []
        problems: list[str] = []
        for service in self.services:
            ask = self._unpaywall if service == "unpaywall" else self._pmc
            try:
                addresses = ask(record)
            except ReviewError as error:
                problems.append(one_line(error))
                continue
            found += [(service, url) for url in addresses
                      if url not in {known for _, known in found}]
        return found, problems

    def download(self, url: str, max_bytes: int) -> bytes:
        def whole_pdf(body: bytes) -> bytes:
            try:
                check_pdf(body, url, max_bytes)
            except TruncatedPdf as error:
                raise RetryableReply(str(error)) from None
            return body

        return self.downloads.call(url, whole_pdf, what=url, max_bytes=max_bytes)


@dataclass(frozen=True)
class FindResult:
    retrieved: list[tuple[str, str]]  # record, service
    no_open_copy: list[str]
    failed: list[tuple[str, str]]  # record, why
    skipped: int
    requests: int


def find_open_copies(workspace: Workspace, finder: OpenAccessFinder, *, again: bool = False,
                     report: Callable[[str], None] = lambda line: None) -> FindResult:
    """Look up and store the open copies of the full-text records that have none yet; records
    already found to have no open copy are asked again only with `again`."""
    store = FullTextStore(workspace)
    limit = workspace.protocol.fulltext.max_bytes
    state = screening_state(workspace)
    final = state.final["full-text"]
    index = store.index()
    lookups = read_lookups(workspace)
    retrieved: list[tuple[str, str]] = []
    no_copy: list[str] = []
    failed: list[tuple[str, str]] = []
    skipped = 0
    for record in state.full_text:
        decided = final.get(record.record_id)
        known = lookups.get(record.record_id)
        if record.record_id in index or (decided is not None
                                         and decided.decision == "not-retrieved") \
                or (known is not None and known.outcome == "no_open_copy" and not again):
            skipped += 1
            continue
        candidates, problems = finder.candidates(record)
        stored = None
        for service, url in candidates:
            try:
                data = finder.download(url, limit)
                checked = check_pdf(data, url, limit)
            except ReviewError as error:
                problems.append(one_line(error))
                continue
            stored, _ = store.store(record.record_id, data, checked, source=service,
                                    origin=url, added=now())
            break
        if stored is not None:
            retrieved.append((record.record_id, stored.source))
            report(f"{record.record_id}: retrieved from {SERVICE_LABELS[stored.source]} "
                   f"({stored.pages} pages)")
            if known is not None:
                _save_lookup(workspace, record.record_id, None)
        elif problems:
            why = "; ".join(problems)
            failed.append((record.record_id, why))
            report(f"{record.record_id}: not retrieved: {why}")
            _save_lookup(workspace, record.record_id,
                         Lookup(record.record_id, "failed", why, now()))
        else:
            no_copy.append(record.record_id)
            asked = ", ".join(SERVICE_LABELS[name] for name in finder.services)
            report(f"{record.record_id}: no open copy ({asked})")
            _save_lookup(workspace, record.record_id,
                         Lookup(record.record_id, "no_open_copy", f"asked {asked}", now()))
    return FindResult(retrieved, no_copy, failed, skipped, finder.requests)
