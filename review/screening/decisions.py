"""Screening decisions: one append-only file per reviewer and stage, and the final decision.

`data/screening/<stage>/<reviewer>.jsonl` holds one decision per line. Each line is appended
with a single write under an exclusive lock, so two processes writing at once lose nothing,
and a kill mid-write can at worst leave a torn last line, which is skipped (and separated
from the next decision) rather than corrupting what came before. Changing one's mind appends;
the latest line counts; the history stays. Reviewers work on separate files, so branches merge
without conflicts.

The final decision per record and stage: an adjudicator's latest decision, if any; else
the reviewers' common outcome: include when every reviewer who decided chose include (or, on
title and abstract, maybe: an unsure record goes on to its full text); exclude or not retrieved
when every one chose that; otherwise a conflict awaiting adjudication. At full text "maybe"
never includes: it is a conflict until someone decides.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from review.errors import ReviewError, one_line
from review.protocol import Protocol

STAGES = ("title-abstract", "full-text")
CHOICES = ("include", "exclude", "maybe", "not-retrieved", "withdrawn")
REVIEWER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
ADJUDICATOR = "adjudicator"


def outcome_of(choice: str, stage: str) -> str:
    """What one vote means for the record: on title and abstract a maybe goes on."""
    return "include" if choice == "maybe" and stage == "title-abstract" else choice


@dataclass(frozen=True)
class Decision:
    record: str
    stage: str
    reviewer: str
    decision: str
    reason: str = ""
    note: str = ""
    role: str = "reviewer"
    time: str = ""


def check_reviewer(name: str, protocol: Protocol) -> str:
    if not REVIEWER_NAME.fullmatch(name):
        raise ReviewError(f"reviewer '{name}': use lower-case letters, digits, - or _ "
                          "(starting with a letter)")
    allowed = protocol.screening.reviewers
    if allowed and name not in allowed:
        raise ReviewError(f"unknown reviewer '{name}' (the protocol lists: "
                          f"{', '.join(allowed)})")
    return name


def check_adjudicator(name: str, protocol: Protocol) -> str:
    """An adjudicator is named in `screening.adjudicators` or is one of the reviewers."""
    if name in protocol.screening.adjudicators:
        return name
    try:
        return check_reviewer(name, protocol)
    except ReviewError:
        allowed = (*protocol.screening.adjudicators, *protocol.screening.reviewers)
        raise ReviewError(f"unknown adjudicator '{name}' (the protocol lists: "
                          f"{', '.join(allowed)})") from None


def check_stage(stage: str, protocol: Protocol) -> str:
    if stage not in protocol.screening.stages:
        raise ReviewError(f"unknown stage '{stage}' (allowed: "
                          f"{', '.join(protocol.screening.stages)})")
    return stage


def resolve_record(name: str, known: Iterable[str], stage: str) -> str:
    """The record id that `name` names: the id itself or any prefix only one id starts with."""
    known = sorted(known)
    if name in known:
        return name
    matching = [record for record in known if name and record.startswith(name)]
    if len(matching) == 1:
        return matching[0]
    if not matching:
        raise ReviewError(f"no record '{name}' at the {stage} stage")
    shown = ", ".join(matching[:5]) + (", …" if len(matching) > 5 else "")
    raise ReviewError(f"'{name}' is the start of {len(matching)} record ids at the {stage} "
                      f"stage ({shown}); give more of it")


# A note is a remark beside a decision; longer text belongs in the full text or the sheet.
NOTE_LIMIT = 5_000


def validate_decision(decision: Decision, protocol: Protocol, known: set[str]) -> None:
    """Refuse a decision for an unknown record, with an unknown choice or reason, a note over
    NOTE_LIMIT characters, or an exclusion at full text without a reason."""
    if len(decision.note) > NOTE_LIMIT:
        raise ReviewError(f"note: {len(decision.note):,} characters, at most {NOTE_LIMIT:,}")
    if decision.record not in known:
        raise ReviewError(f"no record '{decision.record}' at the {decision.stage} stage")
    if decision.decision not in CHOICES:
        raise ReviewError(f"decision '{decision.decision}' is not one of: {', '.join(CHOICES)}")
    reasons = [reason.id for reason in protocol.screening.exclusion_reasons]
    if decision.reason and decision.reason not in reasons:
        raise ReviewError(f"reason '{decision.reason}' is not in the protocol (allowed: "
                          f"{', '.join(reasons)})")
    if decision.decision == "exclude" and decision.stage == "full-text" and not decision.reason:
        raise ReviewError("a full-text exclusion needs a reason from the protocol")
    if decision.decision == "not-retrieved" and decision.stage != "full-text":
        raise ReviewError("'not-retrieved' applies to full texts only")
    if decision.role == ADJUDICATOR and decision.stage == "full-text" and \
            decision.decision == "maybe":
        raise ReviewError("an adjudication at full text settles the record: include, exclude "
                          "or not-retrieved")


class DecisionStore:
    """The decision files of one review."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, stage: str, reviewer: str) -> Path:
        return self.folder / stage / f"{reviewer}.jsonl"

    def append(self, decisions: Iterable[Decision]) -> None:
        """Append decisions, each file's as one write under an exclusive lock of it."""
        by_file: dict[Path, list[Decision]] = defaultdict(list)
        for decision in decisions:
            by_file[self.path(decision.stage, decision.reviewer)].append(decision)
        for path, batch in by_file.items():
            append_lines(path, [json.dumps(asdict(d), ensure_ascii=False, sort_keys=True)
                                for d in batch])

    def read(self, stage: str | None = None) -> list[Decision]:
        """Every decision, file by file in order. Read strictly: the only line forgiven is
        a last line without its newline (a kill mid-write; the next append removes it)."""
        decisions = []
        stages = [stage] if stage else [name for name in STAGES
                                         if (self.folder / name).is_dir()]
        for name in stages:
            for path in sorted((self.folder / name).glob("*.jsonl")):
                decisions += read_decision_file(path, name)
        return decisions


FIX = ("fix or remove that line (the file is append-only, so 'git log -p FILE' shows what "
       "it held)")
CONFLICT_MARKERS = ("<<<<<<<", "=======", ">>>>>>>", "|||||||")


def append_lines(path: Path, lines: list[str]) -> None:
    """Append JSON lines to an append-only file in one write under an exclusive lock, after
    cutting a last line a killed writer left without its newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _drop_torn_tail(handle)
        os.write(handle, "".join(line + "\n" for line in lines).encode("utf-8"))
        os.fsync(handle)
    finally:
        os.close(handle)


def _drop_torn_tail(handle: int) -> None:
    """Cut a last line that a kill left without its newline: it was never a decision."""
    size = os.fstat(handle).st_size
    if size == 0 or os.pread(handle, 1, size - 1) == b"\n":
        return
    data = os.pread(handle, size, 0)
    os.ftruncate(handle, data.rfind(b"\n") + 1)


def read_decision_file(path: Path, stage: str) -> list[Decision]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1]:
        lines.pop()  # torn by a kill mid-write; the next append cuts it
    decisions = []
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ReviewError(f"{path}:{number}: not UTF-8 text; {FIX}") from None
        if not line.strip():
            continue
        if line.startswith(CONFLICT_MARKERS):
            raise ReviewError(f"{path}:{number}: a git merge-conflict marker; keep the lines "
                              "of both sides (decisions are only ever added), delete the "
                              "markers, and commit")
        try:
            fields = json.loads(line)
            decision = Decision(**fields)
        except (ValueError, TypeError) as error:
            raise ReviewError(f"{path}:{number}: not a decision ({one_line(error)[:60]}); "
                              f"{FIX}") from None
        if decision.decision not in CHOICES:
            raise ReviewError(f"{path}:{number}: decision '{decision.decision}' is not one of "
                              f"{', '.join(CHOICES)}; {FIX}")
        if decision.stage != stage or decision.reviewer != path.stem:
            raise ReviewError(f"{path}:{number}: a decision of '{decision.reviewer}' at "
                              f"{decision.stage} in the file of '{path.stem}' at {stage}; "
                              f"{FIX}")
        decisions.append(decision)
    return decisions


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def latest_by_reviewer(decisions: Iterable[Decision]) -> dict[str, dict[str, Decision]]:
    """record → reviewer → that reviewer's latest decision (withdrawn ones removed)."""
    latest: dict[str, dict[str, Decision]] = defaultdict(dict)
    for decision in decisions:
        key = f"{ADJUDICATOR}:{decision.reviewer}" if decision.role == ADJUDICATOR \
            else decision.reviewer
        latest[decision.record][key] = decision
    return {record: {who: d for who, d in votes.items() if d.decision != "withdrawn"}
            for record, votes in latest.items()}


def own_decisions(store: DecisionStore, stage: str, reviewer: str) -> dict[str, Decision]:
    """record → this reviewer's latest decision at `stage`; nobody else's are read, so what
    is shown from it keeps screening blind."""
    mine = [d for d in store.read(stage) if d.reviewer == reviewer and d.role == "reviewer"]
    return {record: votes[reviewer] for record, votes in latest_by_reviewer(mine).items()
            if reviewer in votes}


@dataclass(frozen=True)
class FinalDecision:
    record: str
    decision: str  # include, exclude, not-retrieved, conflict
    reason: str
    adjudicated: bool
    votes: dict[str, Decision]


def final_decisions(decisions: Iterable[Decision]) -> dict[str, FinalDecision]:
    """The rule stated in the module docstring, for one stage's decisions."""
    result = {}
    for record, votes in latest_by_reviewer(decisions).items():
        adjudications = [d for who, d in votes.items() if who.startswith(f"{ADJUDICATOR}:")]
        reviews = {who: d for who, d in votes.items() if not who.startswith(f"{ADJUDICATOR}:")}
        if adjudications:
            chosen = max(adjudications, key=lambda d: d.time)
            outcome = outcome_of(chosen.decision, chosen.stage)
            if outcome == "maybe":  # an adjudicator's maybe from before full text refused it
                outcome = "conflict"
            result[record] = FinalDecision(record, outcome, chosen.reason, True, reviews)
            continue
        if not reviews:
            continue
        kinds = {outcome_of(d.decision, d.stage) for d in reviews.values()}
        outcome, reason = "conflict", ""
        if len(kinds) == 1 and kinds <= {"include", "exclude", "not-retrieved"}:
            outcome = kinds.pop()
        if outcome == "exclude":
            reasons = sorted({d.reason for d in reviews.values() if d.reason})
            reason = reasons[0] if len(reasons) == 1 else ""
        result[record] = FinalDecision(record, outcome, reason, False, reviews)
    return result
