"""`review serve`: the reviewers' web app, on the same files and locks as the CLI.

Screening one record at a time, conflicts and adjudication, and progress, served by Starlette
with server-rendered Jinja2 pages and a few lines of inline script for the keyboard; nothing
is fetched from the internet. Every decision goes through `DecisionStore.append`, the CLI's
own path (one locked append per decision), so the web app and the terminal can be used side
by side. Pages escape every value (Jinja2 autoescape), forms carry a per-session CSRF token,
state changes are POST only, and no file path ever comes from a request.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from review.errors import ReviewError, one_line
from review.extraction.appraisal import (
    CONSENSUS,
    appraisal_agreement,
    appraisal_columns,
    read_appraisal,
)
from review.extraction.compare import NOT_IN_CONSENSUS, compare_extractors, extractor_sheets
from review.extraction.links import (
    included_records,
    link_rows,
    prefilled_patient,
    reports_to_extract,
)
from review.extraction.prisma_counts import prisma_counts_for
from review.extraction.sheet import ensure_sheet, format_cases_csv, row_version, study_table
from review.extraction.validate import validate_cases
from review.extraction.workbook import validate_appraisal
from review.figure_style import figure_files
from review.fileio import write_atomically
from review.fulltext.attach import attach
from review.fulltext.find import read_lookups
from review.fulltext.reading import keyword_hits, search_text
from review.fulltext.store import FullTextStore
from review.report.html import inline_svg
from review.screening.decisions import (
    ADJUDICATOR,
    Decision,
    DecisionStore,
    now,
    own_decisions,
    validate_decision,
)
from review.screening.dedup import PairDecision, update_dedup
from review.screening.export import export_decisions
from review.screening.filters import (
    DECISION_CHOICES,
    RecordFilter,
    ReviewerView,
    reviewer_view,
)
from review.screening.flow import (
    DeduplicatedRecords,
    ScreeningState,
    agreement,
    conflicts,
    deduplicated_records,
    screening_state,
)
from review.screening.prisma import prisma_diagram
from review.screening.ranking import Prioritiser, queue_verdict
from review.screening.screener import keyword_marker
from review.screening.tags import TagChange, TagStore, check_tag
from review.search.importing import ImportedFile, import_exports
from review.search.readers import NAMES as READER_NAMES
from review.search.records import Record
from review.transaction import WorkspaceBusy, commit, state_folder, workspace_lock
from review.workspace import Workspace

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
ALL_ADDRESSES = ("0.0.0.0", "::")
# A save waits this long for a command holding the workspace (in a worker thread, so other
# reviewers' pages go on), then comes back to its form, values kept.
WEB_LOCK_WAIT = 2.0
EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ris": "application/x-research-info-systems"}
# An export uploaded in the browser; larger ones go through `review import`.
IMPORT_LIMIT = 200_000_000
REFUSALS = {400: "Not understood", 403: "Not permitted", 404: "Not found", 409: "Not saved",
            411: "Not understood", 413: "Too large", 422: "Not saved"}
# The pages that show a full text and its upload form, where an upload returns.
UPLOAD_PAGES = ("/screen/full-text", "/extract/case?")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "script-src 'unsafe-inline'; form-action 'self'; "
                               "frame-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it a browser posts the app's own forms with "Origin: null",
    # which the Origin check below must refuse; same-origin still tells other sites nothing.
    "Referrer-Policy": "same-origin",
}
TEMPLATES = Environment(loader=PackageLoader("review.web", "templates"),
                        autoescape=select_autoescape(["html"]))


def highlight(text: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> Markup:
    """The text escaped, with the protocol's include and exclude keywords marked (found in
    the text itself, so "amp" is never found inside an escaped "&amp;")."""
    mark = keyword_marker(include, exclude,
                          lambda kind, word: f'<mark class="{kind}">{word}</mark>',
                          lambda part: str(escape(part)))
    return Markup(mark(text))


Handler = Callable[..., Awaitable[Response]]


def signed_in_page(handler: Handler) -> Handler:
    """A page for a signed-in person: others go to the sign-in page."""
    @functools.wraps(handler)
    async def page(self: ReviewApp, request: Request) -> Response:
        reviewer = self.signed_in(request)
        if reviewer is None:
            return RedirectResponse("/", status_code=303)
        return await handler(self, request, reviewer)
    return page


def signed_in_action(handler: Handler) -> Handler:
    """A state change: signed in, and the form carries this session's CSRF token."""
    @functools.wraps(handler)
    async def action(self: ReviewApp, request: Request) -> Response:
        reviewer = self.signed_in(request)
        form = await request.form()
        if any(not isinstance(value, str) for _, value in form.multi_items()):
            return self.refuse(request, 400, "These forms take no files.")
        if reviewer is None or not self.csrf_matches(request, form):
            return self.expired(request, form, reviewer)
        return await handler(self, request, reviewer, form)
    return action


NEW_ROW = "new"
CHANGED_SINCE = ("Someone saved this {what} after you opened the form, so nothing was saved. "
                 "Fields where the sheet now differs from what you typed are marked; your "
                 "entries are kept: save again to replace the sheet's values with them.")


def version_of(row: Mapping[str, Any] | None, columns: list[str]) -> str:
    """The version a form carries of the row it was opened on ("new" for none)."""
    return NEW_ROW if row is None else row_version([row[name] for name in columns])


def shown_value(value: str) -> str:
    return f"'{value}'" if value else "nothing (blank)"


def busy_message(busy: WorkspaceBusy) -> str:
    return f"The workspace is busy ({busy.holder}): nothing was saved; try again in a moment."


class SessionRegistry:
    """The server's signing key and its live sessions, kept in the workspace's local state
    (`.review/web-PORT.json`, never committed): a restart keeps reviewers signed in, and a
    session signed out stays out even if its cookie was copied."""

    def __init__(self, path: Path | None):
        self.path = path
        saved: dict[str, Any] = {}
        if path is not None and path.exists():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                saved = {}  # a damaged state file: a new key, everyone signs in again
        secret = saved.get("secret") if isinstance(saved, dict) else None
        self.secret = secret if isinstance(secret, str) and len(secret) >= 32 \
            else secrets.token_urlsafe(32)
        sessions = saved.get("sessions") if isinstance(saved, dict) else None
        self.live = {sid for sid in sessions if isinstance(sid, str)} \
            if isinstance(sessions, list) else set()
        self._save()

    def _save(self) -> None:
        if self.path is not None:
            write_atomically(self.path, json.dumps(
                {"secret": self.secret, "sessions": sorted(self.live)}))
            self.path.chmod(0o600)  # the signing key: this user's alone

    def start(self) -> str:
        sid = secrets.token_urlsafe(18)
        self.live.add(sid)
        self._save()
        return sid

    def end(self, sid: str | None) -> None:
        if sid in self.live:
            self.live.discard(sid)
            self._save()


class ReviewApp:
    """The pages of one workspace; `tokens` maps a sign-in token to its reviewer (None: a
    chooser, allowed only on a local address)."""

    def __init__(self, root: Path, tokens: dict[str, str] | None,
                 sessions: SessionRegistry | None = None):
        self.root = root
        self.tokens = tokens
        self.sessions = sessions or SessionRegistry(None)
        self._prepared: tuple[tuple, DeduplicatedRecords] | None = None
        self._preparing: tuple | None = None
        self._preparation = threading.Lock()
        self.prioritiser = Prioritiser()

    def signed_in(self, request: Request) -> str | None:
        """Who this request's session belongs to, while the session is live."""
        reviewer = request.session.get("reviewer")
        return reviewer if request.session.get("sid") in self.sessions.live else None

    def sign_in(self, request: Request, reviewer: str) -> None:
        request.session["reviewer"] = reviewer
        request.session["sid"] = self.sessions.start()

    async def state(self, workspace: Workspace) -> ScreeningState:
        """The screening state, de-duplicating again only when the records or the pair
        decisions changed on disk (by the CLI too): a click must not re-run it. The
        de-duplication runs in a worker thread, never in the event loop; while it runs after
        a change, pages are served from the last result."""
        key = self._inputs_stamp(workspace)
        prepared = self._prepared
        if prepared is None:
            await run_in_threadpool(self._prepare, workspace, key)
        elif prepared[0] != key and self._preparing != key:
            self._preparing = key
            threading.Thread(target=self._prepare, args=(workspace, key), daemon=True,
                             name="dedup").start()
        assert self._prepared is not None
        return screening_state(workspace, self._prepared[1])

    @staticmethod
    def _inputs_stamp(workspace: Workspace) -> tuple:
        return tuple((path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else None
                     for path in (workspace.search_dir / "records.jsonl",
                                  workspace.data_dir / "dedup" / "decisions.csv"))

    def _prepare(self, workspace: Workspace, key: tuple) -> None:
        with self._preparation:  # one de-duplication at a time; a second caller reuses it
            if self._prepared is None or self._prepared[0] != key:
                self._prepared = (key, deduplicated_records(workspace))
            if self._preparing == key:
                self._preparing = None

    @property
    def workspace(self) -> Workspace:
        return Workspace(self.root)  # read afresh: the protocol and files may change

    def people(self, workspace: Workspace) -> tuple[str, ...]:
        screening = workspace.protocol.screening
        return tuple(dict.fromkeys((*screening.reviewers, *screening.adjudicators)))

    def page(self, name: str, request: Request, status: int = 200,
             **context: Any) -> HTMLResponse:
        """A page with the review's title and protocol version, and navigation to what the
        signed-in person may open (on error pages too)."""
        reviewer = self.signed_in(request)
        workspace = self.workspace
        protocol = workspace.protocol
        screening = protocol.screening
        navigation = {
            "review_title": protocol.title, "protocol_version": protocol.version,
            "screens": [stage for stage in screening.stages
                        if reviewer in screening.reviewers],
            "adjudicates": screening.stages if reviewer is not None
            and self.adjudicates(workspace, reviewer) else [],
            "imports": reviewer is not None and self.manages(workspace, reviewer),
        }
        body = TEMPLATES.get_template(name).render(
            reviewer=reviewer, csrf=request.session.get("csrf", ""),
            **{**navigation, **context})
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def expired(self, request: Request, form: FormData, reviewer: str | None) -> HTMLResponse:
        """A form posted by a session that has ended (signed out, or a stale page): nothing
        is saved, and what was typed comes back in a page that sends it again once the
        person has signed in (the page carries this session's token, not the stale one)."""
        request.session.setdefault("csrf", secrets.token_urlsafe(32))
        fields = [(name, value) for name, value in form.multi_items() if name != "csrf"]
        message = ("This page's form had expired." if reviewer else
                   "You are not signed in: your session ended (signed out, or signed in "
                   "elsewhere).")
        return self.page("expired.html", request, status=403, message=message, fields=fields,
                         action=request.url.path)

    def refuse(self, request: Request, status: int, message: str) -> HTMLResponse:
        return self.page("message.html", request, status=status, message=message,
                         heading=REFUSALS.get(status, "Not done"))

    @staticmethod
    def csrf_matches(request: Request, form: Any) -> bool:
        expected = request.session.get("csrf")
        sent = str(form.get("csrf", "")).encode("utf-8")  # any text a form may carry
        return bool(expected) and secrets.compare_digest(sent, expected.encode("utf-8"))

    async def form(self, request: Request) -> dict[str, str] | None:
        """The posted form, or None when its CSRF token is not this session's."""
        form = await request.form()
        if not self.csrf_matches(request, form):
            return None
        return {key: str(value) for key, value in form.items()}

    # Sign-in -------------------------------------------------------------------------------

    def start_page(self, reviewer: str) -> str:
        """Where a person starts: their first stage to screen, or progress for one who only
        adjudicates."""
        screening = self.workspace.protocol.screening
        if reviewer in screening.reviewers and screening.stages:
            return f"/screen/{screening.stages[0]}"
        return "/progress"

    async def home(self, request: Request) -> Response:
        signed_in = self.signed_in(request)
        if signed_in:
            return RedirectResponse(self.start_page(signed_in), status_code=303)
        request.session.setdefault("csrf", secrets.token_urlsafe(32))
        token = request.query_params.get("token")
        if self.tokens is not None:
            reviewer = self.tokens.get(token or "")
            if reviewer is None:
                return self.refuse(request, 403, "Sign in with the link `review serve` printed "
                                                 "for you.")
            self.sign_in(request, reviewer)
            return RedirectResponse(self.start_page(reviewer), status_code=303)
        return self.page("signin.html", request, people=self.people(self.workspace))

    async def signin(self, request: Request) -> Response:
        form = await self.form(request)
        if form is None:
            return self.refuse(request, 403, "The form has expired; reload the page.")
        if self.tokens is not None:
            return self.refuse(request, 403, "This server signs reviewers in by token only.")
        name = form.get("reviewer", "")
        if name not in self.people(self.workspace):
            return self.refuse(request, 403, f"'{name}' is not a reviewer of this protocol.")
        self.sign_in(request, name)
        return RedirectResponse(self.start_page(name), status_code=303)

    async def signout(self, request: Request) -> Response:
        if await self.form(request) is None:
            return self.refuse(request, 403, "The form has expired; reload the page.")
        self.sessions.end(request.session.get("sid"))  # a copy of the cookie dies with it
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    def no_stage(self, request: Request, stage: str) -> HTMLResponse:
        return self.refuse(request, 404, f"No stage '{stage}' in the protocol.")

    # Screening -----------------------------------------------------------------------------

    @staticmethod
    def own_decisions(workspace: Workspace, stage: str, reviewer: str) -> dict[str, Decision]:
        return own_decisions(DecisionStore(workspace.screening_dir), stage, reviewer)

    def not_screening(self, request: Request, workspace: Workspace, stage: str,
                      reviewer: str) -> HTMLResponse | None:
        """The refusal of a screening page or action for a stage the protocol lacks or a
        person who does not screen; None when they may go on."""
        if stage not in workspace.protocol.screening.stages:
            return self.no_stage(request, stage)
        if reviewer not in workspace.protocol.screening.reviewers:
            return self.refuse(request, 403, f"{reviewer} adjudicates but does not screen.")
        return None

    @signed_in_page
    async def screen(self, request: Request, reviewer: str) -> Response:
        workspace = self.workspace
        stage = request.path_params["stage"]
        refused = self.not_screening(request, workspace, stage, reviewer)
        if refused is not None:
            return refused
        store = DecisionStore(workspace.screening_dir)
        state = await self.state(workspace)
        queue = self.prioritiser.queue(state.candidates(stage), store, stage, reviewer,
                                       workspace.protocol.screening.prioritisation)
        records = queue.records
        mine = own_decisions(store, stage, reviewer)
        wanted = request.query_params.get("record")
        query = request.query_params.get("q", "").strip().lower()
        position = next((i for i, r in enumerate(records) if r.record_id == wanted), None)
        if position is None:
            position = next((i for i, r in enumerate(records) if r.record_id not in mine),
                            None)
        record: Record | None = records[position] if position is not None else None
        screening = workspace.protocol.screening
        mark = functools.partial(highlight, include=screening.include_keywords,
                                 exclude=screening.exclude_keywords)
        panel = self.fulltext_panel(request, workspace, record, f"/screen/{stage}") \
            if stage == "full-text" and record is not None else None
        saved_id = request.query_params.get("saved", "")
        saved = next(((r, mine[r.record_id]) for r in records
                      if r.record_id == saved_id and saved_id in mine), None)
        found = [(r, mine[r.record_id]) for r in records if r.record_id in mine
                 and (not query or query in r.title.lower()
                      or query in mine[r.record_id].decision)]
        return self.page(
            "screen.html", request, stage=stage, record=record, position=position,
            total=len(records), done=len(mine), own=mine.get(record.record_id) if record else None,
            reasons=screening.exclusion_reasons,
            reason_labels={r.id: r.label for r in screening.exclusion_reasons},
            mark=mark, error=request.query_params.get(
                "error", ""), found=found[:200], query=query,
            full_text=stage == "full-text", queue=queue,
            verdict=queue_verdict(queue, workspace.protocol) if queue.ranking else None,
            panel=panel, wide=panel is not None, saved=saved,
            tags=sorted(TagStore(workspace.screening_dir).tags(reviewer).get(
                record.record_id, ())) if record else [])

    @signed_in_action
    async def decide(self, request: Request, reviewer: str,
                         form: FormData) -> Response:
        workspace = self.workspace
        stage = request.path_params["stage"]
        refused = self.not_screening(request, workspace, stage, reviewer)
        if refused is not None:
            return refused
        return await self.record_decision(
            workspace, form, stage, reviewer, "reviewer", done=f"/screen/{stage}",
            refused=lambda record, error: self._screen_url(stage, record, error))

    async def record_decision(self, workspace: Workspace, form: Mapping[str, Any], stage: str,
                              reviewer: str, role: str, done: str,
                              refused: Callable[[str, str], str]) -> Response:
        """Validate and append one decision as the CLI does, then go to `done`, or to
        `refused(record, message)` with the validator's message."""
        known = {r.record_id for r in (await self.state(workspace)).candidates(stage)}
        decision = Decision(form.get("record", ""), stage, reviewer, form.get("decision", ""),
                            form.get("reason", ""), form.get("note", "").strip(), role=role,
                            time=now())
        try:
            validate_decision(decision, workspace.protocol, known)
        except ReviewError as error:
            return RedirectResponse(refused(decision.record, str(error)), status_code=303)
        DecisionStore(workspace.screening_dir).append([decision])
        saved = urlencode({"saved": decision.record})
        return RedirectResponse(f"{done}{'&' if '?' in done else '?'}{saved}", status_code=303)

    @staticmethod
    def _screen_url(stage: str, record: str, error: str = "") -> str:
        query = {"record": record, **({"error": error} if error else {})}
        return f"/screen/{stage}?{urlencode(query)}"

    @signed_in_action
    async def undo(self, request: Request, reviewer: str,
                       form: FormData) -> Response:
        workspace = self.workspace
        stage = request.path_params["stage"]
        if stage not in workspace.protocol.screening.stages:
            return self.no_stage(request, stage)
        store = DecisionStore(workspace.screening_dir)
        mine = [d for d in store.read(stage) if d.reviewer == reviewer and d.role == "reviewer"]
        live = self.own_decisions(workspace, stage, reviewer)
        last = next((d for d in reversed(mine) if d.decision != "withdrawn"
                     and live.get(d.record) == d), None)
        if last is None:
            return RedirectResponse(f"/screen/{stage}", status_code=303)
        store.append([Decision(last.record, stage, reviewer, "withdrawn", time=now())])
        return RedirectResponse(self._screen_url(stage, last.record), status_code=303)

    # Tags, filters and bulk actions --------------------------------------------------------

    def filtered(self, workspace: Workspace, state: ScreeningState, stage: str, reviewer: str,
                 rule: RecordFilter) -> ReviewerView:
        """The reviewer's view of the stage under `rule`; only adjudicators may filter by
        conflict."""
        return reviewer_view(state, workspace.screening_dir, stage, reviewer, rule,
                             fulltexts=set(FullTextStore(workspace).index()),
                             sees_conflicts=self.adjudicates(workspace, reviewer))

    @staticmethod
    def filter_of(pairs: Iterable[tuple[str, Any]]) -> RecordFilter:
        return RecordFilter.from_pairs((key[2:], str(value)) for key, value in pairs
                                       if key.startswith("f_"))

    @staticmethod
    def records_url(stage: str, rule: RecordFilter, **extra: str) -> str:
        query = {f"f_{key}": value for key, value in asdict(rule).items() if value}
        return f"/screen/{stage}/records?{urlencode({**query, **extra})}"

    @signed_in_page
    async def records(self, request: Request, reviewer: str) -> Response:
        workspace = self.workspace
        stage = request.path_params["stage"]
        refused = self.not_screening(request, workspace, stage, reviewer)
        if refused is not None:
            return refused
        error = request.query_params.get("error", "")
        try:
            rule = self.filter_of(request.query_params.items())
        except ReviewError as problem:
            rule, error = RecordFilter(), str(problem)
        state = await self.state(workspace)
        try:
            view = self.filtered(workspace, state, stage, reviewer, rule)
        except ReviewError as problem:
            rule, error = RecordFilter(), str(problem)
            view = self.filtered(workspace, state, stage, reviewer, rule)
        chosen, own, tags = view.records, view.own, view.tags
        screening = workspace.protocol.screening
        return self.page(
            "records.html", request, stage=stage, rule=rule, chosen=chosen[:500],
            count=len(chosen), own=own, tags=tags, error=error,
            done=request.query_params.get("done", ""), reasons=screening.exclusion_reasons,
            reason_labels={r.id: r.label for r in screening.exclusion_reasons},
            sources=sorted({r.source for r in state.candidates(stage)}),
            own_tags=sorted({tag for record_tags in tags.values() for tag in record_tags}),
            conflicts_allowed=self.adjudicates(workspace, reviewer),
            choices=DECISION_CHOICES, full_text=stage == "full-text")

    @signed_in_action
    async def tag(self, request: Request, reviewer: str, form: FormData) -> Response:
        workspace = self.workspace
        stage = request.path_params["stage"]
        refused = self.not_screening(request, workspace, stage, reviewer)
        if refused is not None:
            return refused
        record = str(form.get("record", ""))
        known = {r.record_id for r in (await self.state(workspace)).candidates(stage)}
        if record not in known:
            return self.refuse(request, 404, f"No record '{record}' at the {stage} stage.")
        try:
            tag = check_tag(str(form.get("tag", "")))
        except ReviewError as error:
            return RedirectResponse(self._screen_url(stage, record, str(error)), status_code=303)
        TagStore(workspace.screening_dir).append([TagChange(
            record, reviewer, tag, form.get("action") != "remove", now())])
        return RedirectResponse(self._screen_url(stage, record), status_code=303)

    @signed_in_action
    async def bulk(self, request: Request, reviewer: str, form: FormData) -> Response:
        """A tag or a decision for every record of a filtered set, once the person has
        confirmed the count; decisions are ordinary decisions, their note saying bulk."""
        workspace = self.workspace
        stage = request.path_params["stage"]
        refused = self.not_screening(request, workspace, stage, reviewer)
        if refused is not None:
            return refused
        try:
            rule = self.filter_of(form.multi_items())
            state = await self.state(workspace)
            chosen = self.filtered(workspace, state, stage, reviewer, rule).records
        except ReviewError as error:
            return self.refuse(request, 400, str(error))
        confirmed = str(form.get("count", ""))
        if form.get("confirm") != "yes" or confirmed != str(len(chosen)):
            message = (f"The filter now keeps {len(chosen)} records, not {confirmed}: look "
                       "at them and confirm again." if form.get("confirm") == "yes" else
                       "Nothing was done: tick the box that confirms the number of records.")
            return RedirectResponse(self.records_url(stage, rule, error=message),
                                    status_code=303)
        if form.get("action") == "tag":
            try:
                tag = check_tag(str(form.get("tag", "")))
            except ReviewError as error:
                return RedirectResponse(self.records_url(stage, rule, error=str(error)),
                                        status_code=303)
            TagStore(workspace.screening_dir).append([
                TagChange(record.record_id, reviewer, tag, True, now()) for record in chosen])
            done = f"Tagged {len(chosen)} records '{tag}'."
        else:
            note = " ".join(str(form.get("note", "")).split())
            decisions = [Decision(record.record_id, stage, reviewer,
                                  str(form.get("decision", "")), str(form.get("reason", "")),
                                  f"bulk ({rule.describe()})" + (f": {note}" if note else ""),
                                  time=now()) for record in chosen]
            known = {record.record_id for record in state.candidates(stage)}
            try:
                for decision in decisions:
                    validate_decision(decision, workspace.protocol, known)
            except ReviewError as error:
                return RedirectResponse(self.records_url(stage, rule, error=str(error)),
                                        status_code=303)
            DecisionStore(workspace.screening_dir).append(decisions)
            done = f"Recorded {form.get('decision')} for {len(chosen)} records."
        return RedirectResponse(self.records_url(stage, rule, done=done), status_code=303)

    # De-duplication queue ------------------------------------------------------------------

    PAIR_FIELDS = ("title", "authors", "journal", "year", "volume", "issue", "pages", "doi",
                   "pmid", "source", "source_file")

    @signed_in_page
    async def dedup(self, request: Request, reviewer: str) -> Response:
        workspace = self.workspace
        state = await self.state(workspace)
        by_id = {record.record_id: record for record in state.records}
        pairs = []
        for first, second, reason in state.dedup.uncertain[:50]:
            a, b = by_id[first], by_id[second]
            rows = []
            for name in self.PAIR_FIELDS:
                left, right = (getattr(record, name) for record in (a, b))
                left, right = ("; ".join(v) if isinstance(v, tuple) else str(v)
                               for v in (left, right))
                rows.append((name, left, right, left.strip().lower() != right.strip().lower()))
            pairs.append({"first": first, "second": second, "reason": reason, "rows": rows})
        return self.page("dedup.html", request, pairs=pairs,
                         remaining=len(state.dedup.uncertain))

    @signed_in_action
    async def dedup_decide(self, request: Request, reviewer: str,
                               form: FormData) -> Response:
        workspace = self.workspace
        pair = (form.get("first", ""), form.get("second", ""))
        state = await self.state(workspace)
        open_pairs = {(first, second) for first, second, _ in state.dedup.uncertain}
        if pair not in open_pairs or form.get("verdict") not in ("same", "different"):
            return self.refuse(request, 400, "That pair is not waiting for a decision.")
        update_dedup(workspace, [PairDecision(*pair, form["verdict"] == "same", reviewer)])
        # The reviewer's own verdict must show on the next page: wait (in a worker thread,
        # not the event loop) for the de-duplication it changed, instead of serving the last.
        await run_in_threadpool(self._prepare, workspace, self._inputs_stamp(workspace))
        return RedirectResponse("/dedup", status_code=303)

    # Extraction ----------------------------------------------------------------------------

    WEB_FORM = "web form"

    @signed_in_page
    async def extract(self, request: Request, reviewer: str) -> Response:
        workspace = self.workspace
        schema = workspace.protocol.extraction
        cases = ensure_sheet(workspace.cases_path, schema)
        studies = study_table(cases, schema)
        waiting = reports_to_extract(workspace, cases, await self.state(workspace))
        consensus_waiting = len(appraisal_agreement(
            read_appraisal(workspace.appraisal_path, schema.appraisal), schema.appraisal
        ).awaiting) if schema.appraisal and self.adjudicates(workspace, reviewer) else 0
        return self.page("extract.html", request, studies=studies.to_dict("records"),
                         cases=cases.to_dict("records"), key=schema.study.key,
                         id_field=schema.study.id_field, waiting=waiting,
                         consensus_waiting=consensus_waiting,
                         adjudicates_extraction=self.adjudicates(workspace, reviewer)
                         and workspace.extractors_dir.is_dir())

    @signed_in_page
    async def extract_form(self, request: Request, reviewer: str) -> Response:
        workspace = self.workspace
        schema = workspace.protocol.extraction
        cases = ensure_sheet(workspace.cases_path, schema)
        case = request.query_params.get("case", "")
        study = request.query_params.get("study", "")
        from_record = request.query_params.get("record", "")
        row = {name: "" for name in schema.columns}
        version = NEW_ROW
        if from_record:
            included = {r.record_id: r for r in included_records(await self.state(workspace))}
            if from_record not in included:
                return self.refuse(request, 404, f"No report '{from_record}' included at "
                                                 "full text.")
            row = prefilled_patient(included[from_record], schema)
        elif case:
            found = cases[cases[schema.study.id_field] == case]
            if found.empty:
                return self.refuse(request, 404, f"No patient '{case}' in the sheet.")
            row = {name: str(value or "") for name, value in found.iloc[0].items()}
            version = version_of(row, schema.columns)
        elif study:
            first = cases[cases[schema.study.key] == study]
            if not first.empty:  # a new patient of a known report carries its report fields
                for name in (schema.study.key, *schema.study.fields):
                    row[name] = str(first.iloc[0][name] or "")
        return self.extraction_page(request, workspace, row, {}, editing=bool(case),
                                    version=version, state=await self.state(workspace))

    def extraction_page(self, request: Request, workspace: Workspace, row: dict[str, str],
                        problems: dict[str, list[str]], editing: bool, version: str,
                        status: int = 200, state: ScreeningState | None = None
                        ) -> HTMLResponse:
        schema = workspace.protocol.extraction
        panel = None
        if state is not None and any(row.values()):
            included = included_records(state)
            [linked] = link_rows(pd.DataFrame([row], columns=schema.columns, dtype=object),
                                 schema, included).records
            record = next((r for r in included if r.record_id == linked), None)
            query = urlencode({key: value for key, value in request.query_params.items()
                               if key in ("case", "record", "study")})
            panel = self.fulltext_panel(request, workspace, record, f"/extract/case?{query}") \
                if record is not None else None
        separator = schema.list_separator
        fields = [{"spec": spec, "value": row.get(spec.name, ""),
                   "chosen": {item.strip() for item in row.get(spec.name, "").split(separator)
                              if item.strip()},
                   "problems": problems.get(spec.name, [])} for spec in schema.fields]
        return self.page("extract_form.html", request, fields=fields, editing=editing,
                         general=problems.get("", []), saved=request.query_params.get("saved"),
                         id_field=schema.study.id_field, status=status, version=version,
                         panel=panel, wide=panel is not None)

    @signed_in_action
    async def extract_save(self, request: Request, reviewer: str,
                               form: FormData) -> Response:
        workspace = self.workspace
        schema = workspace.protocol.extraction
        row = {}
        for spec in schema.fields:
            if spec.multi_valued:
                row[spec.name] = schema.list_separator.join(
                    str(value) for value in form.getlist(spec.name) if str(value).strip())
            else:
                row[spec.name] = str(form.get(spec.name, "")).strip()
        editing = form.get("editing") == "yes"
        opened_on = str(form.get("version", ""))
        state = await self.state(workspace)

        def save() -> Response:
            with workspace_lock(workspace.root, "web extraction", wait=WEB_LOCK_WAIT):
                cases = ensure_sheet(workspace.cases_path, schema)
                case = row[schema.study.id_field]
                existing = cases[schema.study.id_field] == case
                if existing.any() and not editing:
                    problems = {schema.study.id_field: [
                        f"'{case}' is already a patient of the sheet; open it to edit it"]}
                    return self.extraction_page(request, workspace, row, problems, editing,
                                                opened_on, 422, state=state)
                current = {name: str(value or "") for name, value in
                           cases[existing].iloc[0].items()} if existing.any() else None
                now_version = version_of(current, schema.columns)
                if opened_on != now_version and current != row:
                    # Optimistic concurrency: a save never silently replaces a newer row.
                    changed = {name: [f"the sheet now holds {shown_value(current[name])}"]
                               for name in schema.columns
                               if current is not None and current[name] != row[name]}
                    general = [CHANGED_SINCE.format(what="patient") if current is not None
                               else "This patient was removed from the sheet after you opened "
                                    "the form, so nothing was saved; save again to add it "
                                    "back."]
                    return self.extraction_page(request, workspace, row,
                                                {"": general, **changed}, editing,
                                                now_version, 409, state=state)
                incoming = pd.DataFrame([row], columns=schema.columns, dtype=object)
                if existing.any():
                    merged = cases.copy()
                    merged.loc[existing, schema.columns] = incoming.iloc[0].to_numpy()
                else:
                    merged = pd.concat([cases, incoming], ignore_index=True)
                source = self.WEB_FORM
                locations = [(str(workspace.cases_path), number)
                             for number in range(2, len(merged) + 2)]
                position = int(existing.to_numpy().argmax()) if existing.any() \
                    else len(merged) - 1
                locations[position] = (source, 1)
                already = {(problem.source, problem.row, problem.column, problem.message)
                           for problem in validate_cases(cases, schema, locations=[
                               (str(workspace.cases_path), number)
                               for number in range(2, len(cases) + 2)])}
                found: dict[str, list[str]] = {}
                for problem in validate_cases(merged, schema, locations=locations):
                    if problem.source == source:
                        found.setdefault(problem.column, []).append(problem.message)
                    elif (problem.source, problem.row, problem.column, problem.message) \
                            not in already:
                        # The form's row is valid alone but breaks another row (a report-
                        # level field its other patients record otherwise): refused.
                        found.setdefault(problem.column, []).append(
                            f"saving this would make row {problem.row} of the sheet invalid: "
                            f"{problem.message}")
                if found:
                    return self.extraction_page(request, workspace, row, found, editing,
                                                opened_on, 422, state=state)
                commit(workspace.root, {workspace.cases_path:
                                        format_cases_csv(merged, schema).encode("utf-8")})
            query = urlencode({"case": case, "saved": "1"})
            return RedirectResponse(f"/extract/case?{query}", status_code=303)

        try:
            return await run_in_threadpool(save)
        except WorkspaceBusy as busy:
            return self.extraction_page(request, workspace, row, {"": [busy_message(busy)]},
                                        editing, opened_on, 409, state=state)

    @signed_in_page
    async def reconcile(self, request: Request, reviewer: str) -> Response:
        """The two extractors' differing cells, side by side with the value the sheet holds,
        for an adjudicator to settle cell by cell (what `review extract compare` lists)."""
        workspace = self.workspace
        schema = workspace.protocol.extraction
        if not self.adjudicates(workspace, reviewer):
            return self.refuse(request, 403, "Only an adjudicator settles a double extraction.")
        cases = ensure_sheet(workspace.cases_path, schema)
        comparison = compare_extractors(workspace.extractors_dir, cases, schema)
        differences = [] if comparison is None else \
            comparison.differences.to_dict("records")
        versions = {row[schema.study.id_field]: version_of(
            {name: str(value or "") for name, value in row.items()}, schema.columns)
            for row in cases.to_dict("records")}
        return self.page("reconcile.html", request, comparison=comparison,
                         differences=differences, versions=versions,
                         not_in_sheet=NOT_IN_CONSENSUS, error=request.query_params.get(
                             "error", ""), saved=request.query_params.get("saved", ""),
                         field_of={spec.name: spec for spec in schema.fields})

    @signed_in_action
    async def reconcile_save(self, request: Request, reviewer: str,
                             form: FormData) -> Response:
        workspace = self.workspace
        schema = workspace.protocol.extraction
        if not self.adjudicates(workspace, reviewer):
            return self.refuse(request, 403, "Only an adjudicator settles a double extraction.")
        case, name = str(form.get("case_id", "")), str(form.get("field", ""))
        choice = str(form.get("choice", ""))
        if name not in schema.columns or name == schema.study.id_field:
            return self.refuse(request, 400, f"No field '{name}' to settle.")
        value = str(form.get("other", "")).strip()
        if choice in ("a", "b"):  # an extractor's value as their sheet holds it, not the form
            sheets = extractor_sheets(workspace.extractors_dir, schema)
            names = list(sheets)
            if len(names) != 2:
                return self.refuse(request, 404, "The review has no two extractors' sheets.")
            extractor = names[0 if choice == "a" else 1]
            found = sheets[extractor][sheets[extractor][schema.study.id_field] == case]
            if found.empty:
                return self.refuse(request, 404, f"{case} is not in {extractor}'s sheet.")
            value = str(found.iloc[0][name] or "").strip()

        def save() -> str:
            with workspace_lock(workspace.root, "web reconcile", wait=WEB_LOCK_WAIT):
                cases = ensure_sheet(workspace.cases_path, schema)
                found = cases[schema.study.id_field] == case
                if not found.any():
                    return (f"{case} is not in the extraction sheet; add the patient first "
                            "(the consensus sheet holds one row per patient)")
                current = {key: str(cell or "") for key, cell in cases[found].iloc[0].items()}
                if version_of(current, schema.columns) != str(form.get("version", "")):
                    return (f"{case} was saved by someone else since this page was opened; "
                            "nothing was changed: look again")
                merged = cases.copy()
                merged.loc[found, name] = value
                before = {(p.row, p.column, p.message) for p in validate_cases(cases, schema)}
                new = [p for p in validate_cases(merged, schema)
                       if (p.row, p.column, p.message) not in before]
                if new:
                    return f"{case} {name}: {new[0].message}"
                commit(workspace.root, {workspace.cases_path:
                                        format_cases_csv(merged, schema).encode("utf-8")})
            return ""

        try:
            problem = await run_in_threadpool(save)
        except WorkspaceBusy as busy:
            problem = busy_message(busy)
        query = {"error": problem} if problem else {"saved": f"{case} {name}"}
        return RedirectResponse(f"/extract/reconcile?{urlencode(query)}", status_code=303)

    @signed_in_page
    async def consensus(self, request: Request, reviewer: str) -> Response:
        """The reports whose appraisers differ, their answers side by side, for an
        adjudicator to record the agreed appraisal."""
        workspace = self.workspace
        appraisal = workspace.protocol.extraction.appraisal
        if appraisal is None:
            return self.refuse(request, 404, "The protocol plans no critical appraisal.")
        if not self.adjudicates(workspace, reviewer):
            return self.refuse(request, 403, "Only an adjudicator records a consensus.")
        table = read_appraisal(workspace.appraisal_path, appraisal)
        agreement = appraisal_agreement(table, appraisal)
        reports = []
        for study in agreement.awaiting:
            rows = table[(table["study_id"] == study) & (table["appraiser"] != CONSENSUS)]
            by_appraiser = {row["appraiser"]: row for _, row in rows.iterrows()}
            items = []
            for item in appraisal.items:
                given = {who: str(row[item.id] or "") for who, row in by_appraiser.items()}
                answers = {answer for answer in given.values() if answer}
                items.append({"item": item, "given": given, "differs": len(answers) > 1,
                              "agreed": next(iter(answers)) if len(answers) == 1 else ""})
            reports.append({"study": study, "appraisers": sorted(by_appraiser),
                            "rows": items, "notes": {who: str(row["notes"] or "")
                                                      for who, row in by_appraiser.items()}})
        return self.page("consensus.html", request, reports=reports, tool=appraisal,
                         agreement=agreement, error=request.query_params.get("error", ""),
                         saved=request.query_params.get("saved", ""))

    @signed_in_action
    async def consensus_save(self, request: Request, reviewer: str,
                             form: FormData) -> Response:
        workspace = self.workspace
        appraisal = workspace.protocol.extraction.appraisal
        if appraisal is None or not self.adjudicates(workspace, reviewer):
            return self.refuse(request, 403, "Only an adjudicator records a consensus.")
        columns = appraisal_columns(appraisal)
        study = str(form.get("study_id", "")).strip()
        note = " ".join(str(form.get("notes", "")).split())
        row = {**{column: str(form.get(column, "")).strip() for column in columns},
               "study_id": study, "appraiser": CONSENSUS,
               "notes": f"consensus of {reviewer}" + (f": {note}" if note else "")}

        def save() -> str:
            with workspace_lock(workspace.root, "web consensus", wait=WEB_LOCK_WAIT):
                current = read_appraisal(workspace.appraisal_path, appraisal)
                if study not in appraisal_agreement(current, appraisal).awaiting:
                    return f"'{study}' awaits no consensus (settled meanwhile?)."
                missing = [item.id for item in appraisal.items if not row[item.id]]
                if missing:
                    return f"Choose the agreed answer of every item ({', '.join(missing)})."
                merged = pd.concat([current, pd.DataFrame([row], columns=columns)],
                                   ignore_index=True)
                studies = set(ensure_sheet(workspace.cases_path,
                                           workspace.protocol.extraction)[
                    workspace.protocol.extraction.study.key])
                problems = [problem for problem in validate_appraisal(
                    merged, [(str(workspace.appraisal_path), n) for n in range(2, len(merged) + 1)]
                    + [(self.WEB_FORM, 1)], appraisal, studies)
                    if problem.source == self.WEB_FORM]
                if problems:
                    return "; ".join(f"{p.column}: {p.message}" for p in problems)
                ordered = merged.sort_values(["study_id", "appraiser"], kind="stable")
                commit(workspace.root, {workspace.appraisal_path: ordered.to_csv(
                    index=False, lineterminator="\n").encode("utf-8")})
            return ""

        try:
            problem = await run_in_threadpool(save)
        except WorkspaceBusy as busy:
            problem = busy_message(busy)
        query = {"error": problem} if problem else {"saved": study}
        return RedirectResponse(f"/extract/consensus?{urlencode(query)}", status_code=303)

    @signed_in_page
    async def appraisal_form(self, request: Request, reviewer: str) -> Response:
        workspace = self.workspace
        schema = workspace.protocol.extraction
        if schema.appraisal is None:
            return self.refuse(request, 404, "The protocol plans no critical appraisal.")
        study = request.query_params.get("study", "")
        current = read_appraisal(workspace.appraisal_path, schema.appraisal)
        mine = current[(current["study_id"] == study) & (current["appraiser"] == reviewer)]
        answers = {column: str(value) for column, value in mine.iloc[0].items()} \
            if len(mine) else None
        return self.page("appraisal.html", request, study=study, tool=schema.appraisal,
                         answers=answers or {}, problems=[],
                         saved=request.query_params.get("saved"),
                         version=version_of(answers, appraisal_columns(schema.appraisal)))

    @signed_in_action
    async def appraisal_save(self, request: Request, reviewer: str,
                                 form: FormData) -> Response:
        workspace = self.workspace
        schema = workspace.protocol.extraction
        if schema.appraisal is None:
            return self.refuse(request, 404, "The protocol plans no critical appraisal.")
        if reviewer == CONSENSUS:
            return self.refuse(request, 403, f"'{CONSENSUS}' names the agreed appraisal, "
                                             "not a person who appraises.")
        columns = appraisal_columns(schema.appraisal)
        row = {column: form.get(column, "").strip() for column in columns}
        row["appraiser"] = reviewer  # one appraises as oneself
        opened_on = str(form.get("version", ""))

        def again(status: int, problems: list[str], version: str) -> HTMLResponse:
            return self.page("appraisal.html", request, study=row["study_id"],
                             tool=schema.appraisal, answers=row, status=status,
                             problems=problems, saved=None, version=version)

        def save() -> Response:
            with workspace_lock(workspace.root, "web appraisal", wait=WEB_LOCK_WAIT):
                current = read_appraisal(workspace.appraisal_path, schema.appraisal)
                keep = ~((current["study_id"] == row["study_id"])
                         & (current["appraiser"] == reviewer))
                saved_row = {column: str(value) for column, value in
                             current[~keep].iloc[0].items()} if (~keep).any() else None
                now_version = version_of(saved_row, columns)
                if opened_on != now_version and saved_row != row:
                    changed = [f"{column}: the table now holds {shown_value(saved_row[column])}"
                               for column in columns
                               if saved_row is not None and saved_row[column] != row[column]]
                    return again(409, [CHANGED_SINCE.format(what="appraisal"), *changed],
                                 now_version)
                merged = pd.concat([current[keep], pd.DataFrame([row], columns=columns)],
                                   ignore_index=True)
                studies = set(ensure_sheet(workspace.cases_path, schema)[schema.study.key])
                problems = [problem for problem in validate_appraisal(
                    merged, [(str(workspace.appraisal_path), n) for n in range(2, len(merged) + 1)]
                    + [(self.WEB_FORM, 1)], schema.appraisal, studies)
                    if problem.source == self.WEB_FORM]
                if problems:
                    return again(422, [f"{p.column}: {p.message}" for p in problems], opened_on)
                ordered = merged.sort_values(["study_id", "appraiser"], kind="stable")
                commit(workspace.root, {workspace.appraisal_path: ordered.to_csv(
                    index=False, lineterminator="\n").encode("utf-8")})
            query = urlencode({"study": row["study_id"], "saved": "1"})
            return RedirectResponse(f"/extract/appraisal?{query}", status_code=303)

        try:
            return await run_in_threadpool(save)
        except WorkspaceBusy as busy:
            return again(409, [busy_message(busy)], opened_on)

    # Conflicts and progress ----------------------------------------------------------------

    def manages(self, workspace: Workspace, person: str) -> bool:
        """Who may import exports: the protocol's managers and its adjudicators."""
        return person in workspace.protocol.screening.managers or \
            self.adjudicates(workspace, person)

    @staticmethod
    def adjudicates(workspace: Workspace, person: str) -> bool:
        """The protocol's adjudicators, or its reviewers when it names none."""
        screening = workspace.protocol.screening
        return person in (screening.adjudicators or screening.reviewers)

    @signed_in_page
    async def conflicts(self, request: Request, reviewer: str) -> Response:
        workspace = self.workspace
        stage = request.path_params["stage"]
        if stage not in workspace.protocol.screening.stages:
            return self.no_stage(request, stage)
        screening = workspace.protocol.screening
        if not self.adjudicates(workspace, reviewer):
            return self.refuse(request, 403, "Only an adjudicator sees the conflicts: a "
                                             "reviewer never sees another's decisions.")
        state = await self.state(workspace)
        records = {r.record_id: r for r in state.records}
        store = FullTextStore(workspace)
        pdfs = {record for record, entry in store.index().items() if store.has_file(entry)} \
            if stage == "full-text" else set()
        mark = functools.partial(highlight, include=screening.include_keywords,
                                 exclude=screening.exclude_keywords)
        return self.page("conflicts.html", request, stage=stage,
                         conflicts=conflicts(state, stage), records=records, pdfs=pdfs,
                         mark=mark, reasons=screening.exclusion_reasons,
                         reason_labels={r.id: r.label for r in screening.exclusion_reasons},
                         error=request.query_params.get("error", ""),
                         settled=state.final[stage].get(request.query_params.get("saved", "")))

    @signed_in_action
    async def adjudicate(self, request: Request, reviewer: str,
                             form: FormData) -> Response:
        workspace = self.workspace
        screening = workspace.protocol.screening
        stage = request.path_params["stage"]
        if stage not in screening.stages or not self.adjudicates(workspace, reviewer):
            return self.refuse(request, 403, "Only an adjudicator resolves conflicts.")
        return await self.record_decision(
            workspace, form, stage, reviewer, ADJUDICATOR, done=f"/conflicts/{stage}",
            refused=lambda _, error: f"/conflicts/{stage}?{urlencode({'error': error})}")

    # Uploads -------------------------------------------------------------------------------

    async def upload_form(self, request: Request, reviewer: str | None, limit: int,
                          too_large: str) -> FormData | Response:
        """The multipart form of an upload of at most `limit` bytes (its stated length is
        checked before a byte is read), or the refusal: no length, too large (`too_large`
        says so), malformed, more than one file, or not this session's."""
        length = request.headers.get("content-length", "")
        if not length.isdigit():
            return self.refuse(request, 411, "An upload must state its length.")
        if int(length) > limit:
            return self.refuse(request, 413, too_large)
        try:
            form = await request.form(max_files=1, max_fields=4)
        except HTTPException as error:  # a malformed multipart body, or more than one file
            return self.refuse(request, 400, f"Not an upload this page sends ({error.detail}).")
        if reviewer is None or not self.csrf_matches(request, form):
            return self.refuse(request, 403, "The page had expired; reload it and upload the "
                                             "file again.")
        return form

    # Imports -------------------------------------------------------------------------------

    async def import_page(self, request: Request, workspace: Workspace, status: int = 200,
                          **context: Any) -> HTMLResponse:
        # The sources come from the records of the screening state, prepared once per change
        # of the files, never read afresh on a page.
        state = context.get("state") or await self.state(workspace)
        sources = sorted({record.source for record in state.records}
                         | set(workspace.protocol.search.databases))
        return self.page("import.html", request, status=status, sources=sources,
                         formats=READER_NAMES, **context)

    @signed_in_page
    async def import_form(self, request: Request, reviewer: str) -> Response:
        workspace = self.workspace
        if not self.manages(workspace, reviewer):
            return self.refuse(request, 403, "Only an adjudicator or a manager imports exports.")
        return await self.import_page(request, workspace)

    async def import_upload(self, request: Request) -> Response:
        """An export uploaded and imported by `review import`'s own code path and lock."""
        reviewer = self.signed_in(request)
        workspace = self.workspace
        form = await self.upload_form(
            request, reviewer, IMPORT_LIMIT,
            f"The file is over {IMPORT_LIMIT / 1e6:g} MB; import it with 'review import'.")
        if isinstance(form, Response):
            return form
        if not self.manages(workspace, reviewer):
            return self.refuse(request, 403, "Only an adjudicator or a manager imports exports.")
        upload = form.get("export")
        source = one_line(str(form.get("source", "")))[:200]
        chosen = str(form.get("format", ""))
        kept = {"source": source, "format": chosen}
        if isinstance(upload, str) or upload is None or not upload.filename:
            return await self.import_page(request, workspace, 422, errors=["Choose a file."],
                                          **kept)
        if not source:
            return await self.import_page(request, workspace, 422, errors=[
                "Name the source (the database or other method the export comes from)."],
                **kept)
        if chosen and chosen not in READER_NAMES:
            return await self.import_page(request, workspace, 422, errors=[
                f"Unknown format '{chosen}'."], **kept)
        data = await upload.read(IMPORT_LIMIT + 1)
        name = one_line(upload.filename.replace("\\", "/").rsplit("/", 1)[-1])[:200] or "export"

        def run_import() -> list[ImportedFile]:
            # The reader reads a file, as on the command line: the upload is written under
            # its own base name in a private folder, never into the workspace.
            with tempfile.TemporaryDirectory(prefix="casereview-import-") as folder:
                path = Path(folder) / name
                path.write_bytes(data)
                try:
                    return import_exports(workspace, [path], source, declared=chosen or None)
                except ReviewError as error:
                    raise ReviewError(str(error).replace(str(path), name)) from None

        try:
            results = await run_in_threadpool(run_import)
        except WorkspaceBusy as busy:
            return await self.import_page(request, workspace, 409,
                                          errors=[busy_message(busy)], **kept)
        except ReviewError as error:
            return await self.import_page(request, workspace, 422, errors=[one_line(error)],
                                          **kept)
        # The de-duplication of the new records, once, off the event loop; then its summary.
        await run_in_threadpool(self._prepare, workspace, self._inputs_stamp(workspace))
        state = await self.state(workspace)
        return await self.import_page(request, workspace, results=results, state=state,
                                      file_name=name, source=source)

    # Full texts ----------------------------------------------------------------------------

    def fulltext_panel(self, request: Request, workspace: Workspace, record: Record,
                       back: str) -> dict[str, Any]:
        """What the page shows beside a record: its PDF, links, keywords and a search of its
        text, and the upload form; `back` is where an upload returns to."""
        store = FullTextStore(workspace)
        entry = store.index().get(record.record_id)
        present = entry is not None and store.has_file(entry)
        query = request.query_params.get("find", "").strip()[:200]
        found, snippets = search_text(store.read_text(entry), query) if present and query \
            else (0, [])
        return {"record": record, "entry": entry, "present": present,
                "hits": keyword_hits(workspace, entry) if present else [],
                "query": query, "found": found, "snippets": snippets, "back": back,
                "back_path": urlsplit(back).path,
                "back_fields": [(key, value) for key, value in parse_qsl(urlsplit(back).query)
                                if key not in ("find", "record")],
                "lookup": read_lookups(workspace).get(record.record_id),
                "open_copy": entry.origin if entry is not None
                and entry.origin.startswith(("https://", "http://")) else "",
                "limit": workspace.protocol.fulltext.max_megabytes}

    async def fulltext_record(self, request: Request, workspace: Workspace) -> Record | None:
        wanted = request.path_params["record"]
        return next((record for record in (await self.state(workspace)).full_text
                     if record.record_id == wanted), None)

    @signed_in_page
    async def fulltext_pdf(self, request: Request, reviewer: str) -> Response:
        workspace = self.workspace
        record = await self.fulltext_record(request, workspace)
        store = FullTextStore(workspace)
        entry = store.index().get(record.record_id) if record is not None else None
        if entry is None or not store.has_file(entry):
            return self.refuse(request, 404, "No full text of that record on this machine.")
        return Response(store.read_pdf(entry), media_type="application/pdf", headers={
            "Content-Disposition": f'inline; filename="{entry.record_id}.pdf"',
            "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache",
            # The browser's PDF viewer runs in a frame of the app's own pages, and only there.
            "Content-Security-Policy": "frame-ancestors 'self'"})

    async def fulltext_upload(self, request: Request) -> Response:
        reviewer = self.signed_in(request)
        workspace = self.workspace
        limit = workspace.protocol.fulltext.max_bytes
        # The limit is the file's; the form's other fields and boundaries come on top.
        form = await self.upload_form(
            request, reviewer, limit + 65_536,
            f"The file is over the protocol's limit of {limit / 1e6:g} MB.")
        if isinstance(form, Response):
            return form
        record = await self.fulltext_record(request, workspace)
        if record is None:
            return self.refuse(request, 404, "No record of that id is sought in full text.")
        upload = form.get("pdf")
        if isinstance(upload, str) or upload is None or not upload.filename:
            return self.refuse(request, 400, "Choose a PDF file to upload.")
        data = await upload.read(limit + 1)
        # Only the base name, for the index: the path a browser sends is never used.
        name = one_line(upload.filename.replace("\\", "/").rsplit("/", 1)[-1])[:200]
        back = str(form.get("back", ""))
        # Back only to the pages that upload: never elsewhere (browsers read "/\\x" as "//x").
        if not back.startswith(UPLOAD_PAGES) or "\\" in back or urlsplit(back).netloc:
            back = "/screen/full-text"
        state = await self.state(workspace)

        def store() -> None:
            attach(workspace, record.record_id, data, source="uploaded", origin=name,
                   shown_as=f"'{name}'", replace=True, records=state.full_text,
                   wait=WEB_LOCK_WAIT)

        try:
            await run_in_threadpool(store)
        except WorkspaceBusy as busy:
            return self.refuse(request, 409, busy_message(busy))
        except ReviewError as error:
            return self.refuse(request, 422, f"Not stored: {one_line(error)}")
        separator = "&" if "?" in back else "?"
        target = back if "record=" in back or "case=" in back else \
            f"{back}{separator}{urlencode({'record': record.record_id})}"
        return RedirectResponse(target, status_code=303)

    @signed_in_page
    async def progress(self, request: Request, reviewer: str) -> Response:
        workspace = self.workspace
        state = await self.state(workspace)
        counts = prisma_counts_for(workspace, state)
        per_reviewer = []
        for stage in workspace.protocol.screening.stages:
            total = len(state.candidates(stage))
            for name in workspace.protocol.screening.reviewers:
                done = len(self.own_decisions(workspace, stage, name))
                per_reviewer.append((stage, name, done, total))
        agreements = {stage: found for stage in workspace.protocol.screening.stages
                      if (found := agreement(stage, state.decisions[stage])) is not None}
        diagram = inline_svg(figure_files(prisma_diagram(counts))["svg"], "prisma",
                             "PRISMA 2020 flow diagram")
        return self.page("progress.html", request, counts=counts, per_reviewer=per_reviewer,
                         agreements=agreements, diagram=Markup(diagram),
                         exports=self.adjudicates(workspace, reviewer))

    @signed_in_page
    async def export(self, request: Request, reviewer: str) -> Response:
        """`review screen export` from the page: every vote is in it, so only adjudicators
        (who see every vote anyway) may download it; a reviewer stays blind."""
        workspace = self.workspace
        stage, kind = request.path_params["stage"], request.path_params["kind"]
        if stage not in workspace.protocol.screening.stages:
            return self.no_stage(request, stage)
        if kind not in EXPORT_TYPES:
            return self.refuse(request, 404, f"No export as '{kind}'.")
        if not self.adjudicates(workspace, reviewer):
            return self.refuse(request, 403, "Only an adjudicator downloads every reviewer's "
                                             "votes: a reviewer never sees another's.")
        state = await self.state(workspace)
        data = await run_in_threadpool(export_decisions, state, stage, workspace.protocol, kind,
                                       workspace.screening_dir)
        name = f"{workspace.protocol.id}-{stage}-{'included' if kind == 'ris' else 'decisions'}"
        return Response(data, media_type=EXPORT_TYPES[kind], headers={
            "Content-Disposition": f'attachment; filename="{name}.{kind}"',
            "X-Content-Type-Options": "nosniff"})


def host_name(value: str) -> str:
    """The host of a Host header or URL authority without its port ('[::1]:8000' → '::1')."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class SameHostOnly:
    """Refuses, with 400, a request whose Host is not a name the server was started for, and
    a state change whose Origin is another site: a page elsewhere whose domain re-resolves to
    this machine (DNS rebinding) must not read the sign-in page nor post in a reviewer's name.
    """

    def __init__(self, app: Any, hosts: tuple[str, ...] | None):
        self.app = app
        # None: every name (a server on all addresses, where sign-in needs tokens anyway).
        self.hosts = None if hosts is None else frozenset(host_name(host) for host in hosts)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {key.decode("latin-1"): value.decode("latin-1")
                       for key, value in scope["headers"]}
            problem = None
            host = headers.get("host", "").strip().lower()
            if self.hosts is not None and host_name(host) not in self.hosts:
                problem = "unknown Host: this server answers only to the names it was started for"
            elif scope["method"] not in ("GET", "HEAD") and "origin" in headers \
                    and urlsplit(headers["origin"].strip().lower()).netloc != host:
                problem = "a form from another site is refused"
            if problem is not None:
                await HTMLResponse(f"<p>{escape(problem)}</p>", status_code=400)(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(root: Path, tokens: dict[str, str] | None = None,
               hosts: tuple[str, ...] | None = LOCAL_HOSTS, port: int | None = None) -> Starlette:
    """The web app of the workspace at `root`, answering to the names in `hosts`; with a
    `port`, its signing key and live sessions are kept in the workspace's local state and its
    cookie is named for the workspace and port (cookies ignore ports, so two servers on one
    machine would otherwise sign each other's reviewers out)."""
    state = state_folder(Path(root)) / f"web-{port}.json" if port is not None else None
    sessions = SessionRegistry(state)
    pages = ReviewApp(Path(root), tokens, sessions)
    routes = [
        Route("/", pages.home, methods=["GET"]),
        Route("/signin", pages.signin, methods=["POST"]),
        Route("/signout", pages.signout, methods=["POST"]),
        Route("/screen/{stage}", pages.screen, methods=["GET"]),
        Route("/screen/{stage}/decide", pages.decide, methods=["POST"]),
        Route("/screen/{stage}/undo", pages.undo, methods=["POST"]),
        Route("/screen/{stage}/tag", pages.tag, methods=["POST"]),
        Route("/screen/{stage}/records", pages.records, methods=["GET"]),
        Route("/screen/{stage}/bulk", pages.bulk, methods=["POST"]),
        Route("/conflicts/{stage}", pages.conflicts, methods=["GET"]),
        Route("/conflicts/{stage}/adjudicate", pages.adjudicate, methods=["POST"]),
        Route("/dedup", pages.dedup, methods=["GET"]),
        Route("/dedup/decide", pages.dedup_decide, methods=["POST"]),
        Route("/extract", pages.extract, methods=["GET"]),
        Route("/extract/case", pages.extract_form, methods=["GET"]),
        Route("/extract/save", pages.extract_save, methods=["POST"]),
        Route("/extract/appraisal", pages.appraisal_form, methods=["GET"]),
        Route("/extract/appraisal/save", pages.appraisal_save, methods=["POST"]),
        Route("/extract/consensus", pages.consensus, methods=["GET"]),
        Route("/extract/reconcile", pages.reconcile, methods=["GET"]),
        Route("/extract/reconcile/save", pages.reconcile_save, methods=["POST"]),
        Route("/extract/consensus/save", pages.consensus_save, methods=["POST"]),
        Route("/fulltext/{record}.pdf", pages.fulltext_pdf, methods=["GET"]),
        Route("/fulltext/{record}/upload", pages.fulltext_upload, methods=["POST"]),
        Route("/import", pages.import_form, methods=["GET"]),
        Route("/import", pages.import_upload, methods=["POST"]),
        Route("/progress", pages.progress, methods=["GET"]),
        Route("/export/{stage}/{kind}", pages.export, methods=["GET"]),
    ]
    workspace_key = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:10]
    cookie = f"casereview_{port}_{workspace_key}" if port is not None else "casereview"
    middleware = [Middleware(SameHostOnly, hosts=hosts),
                  Middleware(SessionMiddleware, secret_key=sessions.secret,
                             session_cookie=cookie, same_site="strict", https_only=False)]
    return Starlette(routes=routes, middleware=middleware)


def serve(root: Path, host: str, port: int, with_tokens: bool,
          announce: Any = print) -> None:
    """Run the app; a non-local address needs per-reviewer tokens."""
    import uvicorn

    workspace = Workspace(root)
    tokens = None
    if host not in LOCAL_HOSTS and not with_tokens:
        raise ReviewError(f"--host {host} is not a local address: reviewers must sign in "
                          "with tokens there (add --tokens)")
    if with_tokens:
        screening = workspace.protocol.screening
        people = tuple(dict.fromkeys((*screening.reviewers, *screening.adjudicators)))
        if not people:
            raise ReviewError(f"{workspace.protocol_path}: screening.reviewers lists nobody "
                              "to give a token to")
        tokens = {secrets.token_urlsafe(24): name for name in people}
        for token, name in tokens.items():
            announce(f"{name}: http://{host}:{port}/?token={token}")
    announce(f"serving {workspace.root} on http://{host}:{port}/ (Ctrl-C to stop)")
    hosts = None if host in ALL_ADDRESSES else (*LOCAL_HOSTS, host)
    uvicorn.run(create_app(root, tokens, hosts=hosts, port=port), host=host, port=port,
                log_level="warning")
