"""`review screen`: one record at a time in the terminal, single keys to decide.

Blind by design: a reviewer sees only their own decisions. Include keywords show in green and
exclude keywords in red; everything from a record is shown as text (control characters and
escape sequences are removed). The screener resumes at the reviewer's first undecided record.
"""

from __future__ import annotations

import contextlib
import os
import re
import termios
import textwrap
import time
import tty
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

from review.protocol import Protocol
from review.screening.decisions import Decision, DecisionStore, now, own_decisions
from review.screening.ranking import Prioritiser, queue_status
from review.search.records import Record

GREEN, RED, BOLD, DIM, RESET = "\x1b[32m", "\x1b[31m", "\x1b[1m", "\x1b[2m", "\x1b[0m"
CLEAR = "\x1b[2J\x1b[H"
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
HELP = ("[i] include  [e] exclude  [m] maybe  [n] note  [u] undo  [b] back  [f] forward  "
        "[q] quit")
FULL_TEXT_HELP = HELP.replace("[m] maybe", "[m] maybe  [r] not retrieved")
KEYS = {"i": "include", "e": "exclude", "m": "maybe"}
FULL_TEXT_KEYS = {**KEYS, "r": "not-retrieved"}


def plain(text: str) -> str:
    """Record text made safe for a terminal: control characters become spaces."""
    return CONTROL.sub(" ", text)


def keyword_marker(include: Iterable[str], exclude: Iterable[str],
                   mark: Callable[[str, str], str],
                   outside: Callable[[str], str] = str) -> Callable[[str], str]:
    """A function that passes each include or exclude keyword in a text (longest first, any
    case) to mark(kind, outside(matched)), kind being "include" or "exclude", and the text
    between them to outside (e.g. an escape, so a keyword is never found inside one)."""
    words = {word.lower(): "include" for word in include}
    words.update({word.lower(): "exclude" for word in exclude})
    if not words:
        return outside
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)),
                         re.IGNORECASE)

    def marked(text: str) -> str:
        parts, last = [], 0
        for match in pattern.finditer(text):
            parts += [outside(text[last:match.start()]),
                      mark(words[match.group(0).lower()], outside(match.group(0)))]
            last = match.end()
        return "".join([*parts, outside(text[last:])])

    return marked


def highlighter(protocol: Protocol) -> Callable[[str], str]:
    colours = {"include": GREEN, "exclude": RED}
    return keyword_marker(protocol.screening.include_keywords,
                          protocol.screening.exclude_keywords,
                          lambda kind, word: f"{colours[kind]}{word}{RESET}")


def render(record: Record, position: int, total: int, done: int, rate: float, stage: str,
           own: Decision | None, protocol: Protocol, width: int = 90, status: str = "") -> str:
    """The screen for one record; `status` says where prioritised screening stands."""
    mark = highlighter(protocol)
    lines = [f"{BOLD}{stage} · record {position + 1} of {total}{RESET}  {DIM}{done} done, "
             f"{total - done} remaining, {rate:.1f} per minute{RESET}"]
    lines += [f"{DIM}{plain(status)}{RESET}", ""] if status else [""]
    lines += [mark(line) for line in textwrap.wrap(plain(record.title), width)]
    authors = ", ".join(plain(a) for a in record.authors[:6])
    if len(record.authors) > 6:
        authors += ", et al."
    lines += ["", f"{DIM}{authors}{RESET}",
              f"{plain(record.journal)} {plain(record.year)}"
              + (f" · {plain('; '.join(record.publication_types))}"
                 if record.publication_types else "")]
    if stage == "full-text":
        links = []
        if record.doi:
            links.append(f"https://doi.org/{plain(record.doi)}")
        if record.pmid:
            links.append(f"https://pubmed.ncbi.nlm.nih.gov/{plain(record.pmid)}/")
        if record.extra.get("url"):
            links.append(plain(record.extra["url"]))
        lines += ["Full text: " + ("  ".join(links) if links else "no link recorded")]
    lines.append("")
    abstract = plain(record.abstract) or "(no abstract)"
    lines += [mark(line) for line in textwrap.wrap(abstract, width)]
    lines.append("")
    if own is not None:
        reason = f" ({own.reason})" if own.reason else ""
        lines.append(f"{BOLD}Your decision: {own.decision}{reason}{RESET}"
                     + (f" · note: {plain(own.note)}" if own.note else ""))
    lines.append(FULL_TEXT_HELP if stage == "full-text" else HELP)
    return CLEAR + "\r\n".join(lines) + "\r\n"


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class Screener:
    """The screening loop for one reviewer and stage."""

    def __init__(self, protocol: Protocol, store: DecisionStore, records: list[Record],
                 stage: str, reviewer: str, keys: int, out: TextIO,
                 prioritiser: Prioritiser | None = None):
        self.protocol, self.store, self.records = protocol, store, records
        self.stage, self.reviewer, self.keys, self.out = stage, reviewer, keys, out
        self.prioritiser = prioritiser
        self.status = ""
        self.reorder()
        self.started = time.monotonic()
        # Records, not key presses: a redo after an undo is still one record decided.
        self.decided_here: set[str] = set()
        self.history: list[str] = []
        self.keymap = FULL_TEXT_KEYS if stage == "full-text" else KEYS

    def own(self) -> dict[str, Decision]:
        return own_decisions(self.store, self.stage, self.reviewer)

    def reorder(self) -> None:
        """The records in the protocol's order after what this reviewer has decided so far:
        the decided ones first, then the most likely includes."""
        if self.prioritiser is None:
            return
        queue = self.prioritiser.queue(self.records, self.store, self.stage, self.reviewer,
                                       self.protocol.screening.prioritisation)
        self.records = queue.records
        self.status = queue_status(queue, len(self.records), self.protocol)

    def key(self) -> str:
        data = os.read(self.keys, 1)
        return data.decode("utf-8", errors="replace") if data else "q"

    def line(self, prompt: str) -> str:
        self.out.write(f"\r\n{prompt}")
        self.out.flush()
        typed = ""
        while True:
            char = self.key()
            if char in ("\r", "\n"):
                return typed
            if char in ("\x7f", "\x08"):
                typed = typed[:-1]
                self.out.write("\b \b")
            elif char.isprintable():
                typed += char
                self.out.write(char)
            self.out.flush()

    def ask_reason(self) -> str | None:
        reasons = self.protocol.screening.exclusion_reasons
        required = self.stage == "full-text"
        self.out.write("\r\n" + "\r\n".join(f"  {i}. {plain(reason.label)}"
                                            for i, reason in enumerate(reasons, start=1)))
        while True:
            answer = self.line("Reason number" + ("" if required else
                                                  " (Enter to skip)") + ": ")
            if not answer and not required:
                return ""
            if answer.isdigit() and 1 <= int(answer) <= len(reasons):
                return reasons[int(answer) - 1].id
            self.out.write(f"\r\nchoose 1 to {len(reasons)}")

    def decide(self, record: Record, choice: str, note: str) -> None:
        reason = ""
        if choice == "exclude":
            asked = self.ask_reason()
            reason = asked or ""
        self.store.append([Decision(record.record_id, self.stage, self.reviewer, choice,
                                    reason, note, time=now())])
        self.history.append(record.record_id)
        self.decided_here.add(record.record_id)

    def run(self) -> int:
        """Screen until every record is decided or the reviewer quits; returns how many records
        this session decided (an undone decision not counted)."""
        decisions = self.own()
        position = next((i for i, r in enumerate(self.records)
                         if r.record_id not in decisions), len(self.records))
        note = ""
        while True:
            decisions = self.own()
            if position >= len(self.records):
                undecided = [i for i, r in enumerate(self.records)
                             if r.record_id not in decisions]
                if not undecided:
                    self.out.write(f"{CLEAR}All {len(self.records)} records of the "
                                   f"{self.stage} stage are screened by {self.reviewer}.\r\n")
                    self.out.flush()
                    return len(self.decided_here)
                position = undecided[0]
            record = self.records[position]
            minutes = max((time.monotonic() - self.started) / 60, 1e-9)
            self.out.write(render(record, position, len(self.records), len(decisions),
                                  len(self.decided_here) / minutes, self.stage,
                                  decisions.get(record.record_id), self.protocol,
                                  status=self.status))
            if note:
                self.out.write(f"note to save with the next decision: {plain(note)}\r\n")
            self.out.flush()
            key = self.key().lower()
            if key == "q":
                self.out.write("\r\nStopped; run the same command to continue.\r\n")
                self.out.flush()
                return len(self.decided_here)
            if key in self.keymap:
                first_time = record.record_id not in decisions
                self.decide(record, self.keymap[key], note)
                note = ""
                position += 1
                if first_time and self.prioritiser is not None:
                    self.reorder()
                    # The records decided come first, so the next one is the best ranked.
                    position = len(self.own())
            elif key == "n":
                note = self.line("Note: ")
            elif key == "u" and self.history:
                last = self.history.pop()
                self.store.append([Decision(last, self.stage, self.reviewer, "withdrawn",
                                            time=now())])
                if last not in self.history:
                    self.decided_here.discard(last)
                self.reorder()
                position = next(i for i, r in enumerate(self.records) if r.record_id == last)
            elif key == "b":
                position = max(position - 1, 0)
            elif key == "f":
                position = min(position + 1, len(self.records) - 1)
