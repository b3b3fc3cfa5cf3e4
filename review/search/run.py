"""A PubMed search run: ESearch, batched EFetch from the history server, raw replies kept.

A run lives in data/search/runs/<run-id>/: `state.json` says which batches are complete and
each batch's raw reply is kept compressed. An interrupted run resumes from its last complete
batch; a finished run is verified (unique PMIDs fetched = ESearch's count) before its records
reach the record store and the search log.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from review import __version__
from review.errors import ReviewError, one_line
from review.fileio import write_atomically
from review.http import RetryableReply
from review.search.eutils import EutilsClient, SearchResult
from review.search.log import log_contents, log_path
from review.search.readers.pubmed_xml import parse_articles
from review.search.records import Record, RecordStore, make_record
from review.transaction import commit, workspace_lock
from review.workspace import Workspace

ESEARCH_LIMIT = 9_999
SOURCE = "PubMed"


@dataclass
class Slice:
    """A publication-date range small enough for ESearch to page through."""

    mindate: str | None
    maxdate: str | None
    count: int
    done: list[int]

    @property
    def name(self) -> str:
        if self.mindate is None:
            return "all"
        return f"{self.mindate}-{self.maxdate}".replace("/", "")


def _day(text: str) -> dt.date:
    parts = [int(p) for p in text.split("/")] + [1, 1]
    return dt.date(parts[0], parts[1], parts[2])


def _text(day: dt.date) -> str:
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def split_by_date(client: EutilsClient, query: str, first: dt.date, last: dt.date,
                  search: SearchResult, found: dict[str, SearchResult]) -> list[Slice]:
    """Publication-date ranges, halved until each holds at most 9,999 records; the ESearch
    result of every range kept is put in `found` so it need not be asked again."""
    if search.count <= ESEARCH_LIMIT:
        piece = Slice(_text(first), _text(last), search.count, [])
        found[piece.name] = search
        return [piece]
    if first == last:
        raise ReviewError(f"{search.count} records carry the single publication date "
                          f"{_text(first)}; ESearch cannot page past 9,999: narrow the query")
    middle = first + (last - first) // 2
    slices = []
    for start, end in ((first, middle), (middle + dt.timedelta(days=1), last)):
        part = client.esearch(query, mindate=_text(start), maxdate=_text(end))
        if part.count:
            slices += split_by_date(client, query, start, end, part, found)
    return slices


def _run_dirs(workspace: Workspace) -> list[Path]:
    runs = workspace.search_dir / "runs"
    return sorted(path for path in runs.glob("*") if (path / "state.json").is_file()) \
        if runs.exists() else []


def _load_state(path: Path) -> dict:
    try:
        return json.loads((path / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReviewError(f"{path / 'state.json'}: unreadable run state "
                          f"({one_line(error)})") from None


def _state_text(state: dict) -> str:
    return json.dumps(state, indent=2, sort_keys=True, default=vars) + "\n"


def _save_state(path: Path, state: dict) -> None:
    write_atomically(path / "state.json", _state_text(state))


def completed_runs(workspace: Workspace) -> list[tuple[str, dict]]:
    return [(path.name, state) for path in _run_dirs(workspace)
            if (state := _load_state(path)).get("complete")]


class Progress:
    """Records fetched of the total, with a rate, on standard error."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet = total, quiet
        self.started = time.monotonic()
        self.interactive = sys.stderr.isatty()

    def update(self, fetched: int) -> None:
        if self.quiet:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        share = 100 * fetched / self.total if self.total else 100
        width = 30
        bar = "#" * int(width * share / 100)
        line = (f"[{bar:<{width}}] {fetched}/{self.total} records ({share:.0f}%), "
                f"{fetched / elapsed:.0f}/s")
        end = "" if self.interactive and fetched < self.total else "\n"
        print(f"\r{line}" if self.interactive else line, end=end, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    count: int
    fetched: int
    added: int
    new_pmids: int
    resumed: bool
    requests: int
    retries: int


def _batch_path(run: Path, piece: Slice, retstart: int) -> Path:
    return run / f"efetch-{piece.name}-{retstart:07d}.xml.gz"


def _expected_articles(piece: Slice, retstart: int, batch: int) -> int:
    return min(batch, piece.count - retstart)


def _fetch_slice(client: EutilsClient, query: str, run: Path, state: dict, piece: Slice,
                 search: SearchResult | None, progress: Progress, fetched_before: int,
                 batch: int, parsed: dict[Path, list[dict[str, object]]]) -> int:
    """Fetch the missing batches of one slice; returns the records fetched so far overall.

    A resumed slice is searched again (history-server sessions expire); if its count has
    changed meanwhile its batches no longer line up, so it starts over."""
    resumed = search is None
    if search is None:
        search = client.esearch(query, mindate=piece.mindate, maxdate=piece.maxdate,
                                list_ids=True)
    if search.count != piece.count or (resumed and not _pmids_of(run, piece) <= set(search.ids)):
        _restart(run, state, piece, search.count)
    fetched = fetched_before + sum(_expected_articles(piece, r, batch) for r in piece.done)
    progress.update(fetched)
    for retstart in range(0, piece.count, batch):
        if retstart in piece.done:
            continue
        expected = _expected_articles(piece, retstart, batch)

        path = _batch_path(run, piece, retstart)

        def complete(body: bytes, expected: int = expected, path: Path = path) -> None:
            try:
                articles = parse_articles(body, "EFetch reply")
            except ReviewError as error:
                raise RetryableReply(str(error)) from None
            if len(articles) != expected:
                raise RetryableReply(f"EFetch returned {len(articles)} of {expected} articles")
            pmids = [str(article["pmid"]) for article in articles]
            if len(set(pmids)) != len(pmids):
                twice = sorted({pmid for pmid in pmids if pmids.count(pmid) > 1})
                raise RetryableReply(f"EFetch returned PMID {', '.join(twice[:3])} twice")
            parsed[path] = articles

        body = client.efetch(search, retstart, batch, complete)
        write_atomically(path, gzip.compress(body, compresslevel=6, mtime=0))
        piece.done.append(retstart)
        _save_state(run, state)
        fetched += expected
        progress.update(fetched)
    return fetched


def _restart(run: Path, state: dict, piece: Slice, count: int) -> None:
    """Forget a slice's batches: PubMed changed since they were fetched."""
    for retstart in piece.done:
        _batch_path(run, piece, retstart).unlink(missing_ok=True)
    piece.count, piece.done = count, []
    _save_state(run, state)


def _pmids_of(run: Path, piece: Slice) -> set[str]:
    return {str(fields["pmid"]) for retstart in piece.done
            for fields in parse_articles(gzip.decompress(_batch_path(run, piece,
                                                                      retstart).read_bytes()),
                                         str(_batch_path(run, piece, retstart)))}


def _records(run: Path, slices: list[Slice],
             parsed: dict[Path, list[dict[str, object]]]) -> list[Record]:
    """Every record of the run; batches parsed while fetching are not parsed again."""
    records: list[Record] = []
    for piece in slices:
        for retstart in sorted(piece.done):
            path = _batch_path(run, piece, retstart)
            articles = parsed.get(path)
            if articles is None:
                articles = parse_articles(gzip.decompress(path.read_bytes()), str(path))
            records += [make_record(SOURCE, f"runs/{run.name}/{path.name}",
                                    origin=f"search run {run.name}",
                                    position=len(records) + offset, **fields)
                        for offset, fields in enumerate(articles, start=1)]
    return records


def run_search(workspace: Workspace, client: EutilsClient, query: str, *, new: bool = False,
               quiet: bool = False, now: Callable[[], dt.datetime] | None = None) -> RunResult:
    """Run (or resume) the PubMed search for `query` and store what it finds, as the
    workspace's one writer (a second run waits, or refuses naming this one)."""
    with workspace_lock(workspace.root, "search run"):
        return _run_search(workspace, client, query, new=new, quiet=quiet, now=now)


def _run_search(workspace: Workspace, client: EutilsClient, query: str, *, new: bool,
                quiet: bool, now: Callable[[], dt.datetime] | None) -> RunResult:
    now = now or (lambda: dt.datetime.now(dt.UTC))
    batch = client.config.batch_size
    runs = [(path, _load_state(path)) for path in _run_dirs(workspace)]
    same = [(path, state) for path, state in runs if state.get("query") == query]
    last_complete = max((path.name for path, state in same if state.get("complete")),
                        default="")
    # A run left unfinished before a later complete one (say, after --new) is abandoned.
    unfinished = [path for path, state in same if not state.get("complete")
                  and state.get("batch_size") == batch and path.name > last_complete]
    resumed = bool(unfinished) and not new
    searches: dict[str, SearchResult] = {}
    if resumed:
        run = unfinished[-1]
        state = _load_state(run)
    else:
        started = now()
        run = workspace.search_dir / "runs" / started.strftime("%Y%m%d-%H%M%S")
        if run.exists():
            raise ReviewError(f"{run}: a run with this id exists; wait a second and retry")
        first = client.esearch(query)
        for warning in first.warnings:
            print(f"review: warning: ESearch: {warning}", file=sys.stderr)
        if first.count > ESEARCH_LIMIT:
            # From the year 1000: PubMed holds records dated before 1800.
            slices = split_by_date(client, query, dt.date(1000, 1, 1),
                                   dt.date(started.year + 1, 12, 31), first, searches)
            covered = sum(piece.count for piece in slices)
            if covered != first.count:
                raise ReviewError(f"the publication-date slices hold {covered} of the "
                                  f"{first.count} records ESearch found (records without a "
                                  "publication date in range?); no run was stored: narrow "
                                  "the query, or split it into searches under 9,999 records")
        else:
            slices = [Slice(None, None, first.count, [])]
            searches["all"] = first
        state = {
            "query": query, "batch_size": batch, "started": started.isoformat(),
            "count": first.count, "query_translation": first.query_translation,
            "warnings": list(first.warnings), "complete": False,
            "slices": [piece.__dict__ for piece in slices],
            "eutils_host": urllib.parse.urlsplit(client.config.base_url).netloc,
        }
        _save_state(run, state)
    slices = [Slice(**piece) for piece in state["slices"]]
    state["slices"] = slices
    progress = Progress(sum(piece.count for piece in slices), quiet)
    fetched = 0
    parsed: dict[Path, list[dict[str, object]]] = {}
    try:
        for piece in slices:
            fetched = _fetch_slice(client, query, run, state, piece, searches.get(piece.name),
                                   progress, fetched, batch, parsed)
    except ReviewError as error:
        raise ReviewError(f"{error}; run {run.name} is kept unfinished: 'review search run' "
                          "resumes it, 'review search run --new' starts afresh") from None
    finally:
        state["slices"] = [piece.__dict__ for piece in slices]
        _save_state(run, state)
    records = _records(run, slices, parsed)
    unique = {record.pmid for record in records if record.pmid}
    expected = sum(piece.count for piece in slices)
    if len(unique) != expected or len(records) != expected:
        for piece in slices:  # the next run fetches these again
            _restart(run, state, piece, piece.count)
        raise ReviewError(f"{run}: fetched {len(records)} records with {len(unique)} unique "
                          f"PMIDs, but ESearch counted {expected}; nothing was stored and the "
                          "run's batches were cleared: run again to fetch them anew, or "
                          "'review search run --new' to start a new run")
    store = RecordStore(workspace.search_dir / "records.jsonl")
    seen = {record.pmid for record in store.load() if record.pmid}
    new_pmids = len(unique - seen)
    state["complete"] = True
    state["finished"] = now().isoformat()
    entry = {
        "kind": "search", "run_id": run.name, "database": "PubMed",
        "interface": "NCBI E-utilities (ESearch with history, EFetch XML)",
        "host": state["eutils_host"], "started": state["started"],
        "finished": state["finished"], "query": query,
        "query_translation": state["query_translation"],
        "warnings": state.get("warnings", []), "count": expected,
        "records_fetched": len(records), "records_stored": len(records),
        "new_records": new_pmids, "software": f"casereview {__version__}",
    }
    # The records, the run's PMIDs, its state and the log change together or not at all.
    commit(workspace.root, {
        store.path: store.contents_after(records),
        run / "pmids.txt": "".join(f"{pmid}\n" for pmid in sorted(unique, key=int)).encode(),
        run / "state.json": _state_text(state).encode("utf-8"),
        log_path(workspace): log_contents(workspace, [entry]),
    })
    added = records
    return RunResult(run.name, expected, len(records), len(added), new_pmids, resumed,
                     client.requests, client.retries)


def run_difference(workspace: Workspace) -> tuple[str, str | None, list[str]]:
    """The latest complete run, the one before it, and the PMIDs new in the latest."""
    runs = completed_runs(workspace)
    if not runs:
        raise ReviewError("no complete search run yet; run 'review search run'")
    latest = runs[-1][0]
    root = workspace.search_dir / "runs"
    current = set((root / latest / "pmids.txt").read_text().split())
    if len(runs) == 1:
        return latest, None, sorted(current, key=int)
    previous = runs[-2][0]
    before = set((root / previous / "pmids.txt").read_text().split())
    return latest, previous, sorted(current - before, key=int)
