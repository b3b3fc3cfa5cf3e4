"""Where the full texts stand: sought, retrieved, not retrieved, and what is left to obtain.

Reports sought are the records assessed in full text (advanced on title and abstract, or
found by other methods); one is not retrieved when the team recorded so (a full-text decision
`not-retrieved`, which PRISMA 2020 counts as "reports not retrieved").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from review.errors import ReviewError
from review.fulltext.find import Lookup, read_lookups
from review.fulltext.store import FullText, FullTextStore
from review.screening.decisions import (
    ADJUDICATOR,
    Decision,
    DecisionStore,
    check_adjudicator,
    now,
    resolve_record,
    validate_decision,
)
from review.screening.flow import ScreeningState, screening_state
from review.workspace import Workspace


@dataclass(frozen=True)
class FullTextStatus:
    sought: tuple[str, ...]
    retrieved: dict[str, FullText]
    not_retrieved: tuple[str, ...]
    no_open_copy: dict[str, Lookup]
    failed: dict[str, Lookup]
    not_looked_up: tuple[str, ...]
    # Listed in the index, but the PDF is not on this machine (PDFs are not committed).
    elsewhere: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"sought": len(self.sought), "retrieved": len(self.retrieved),
                "not_retrieved": len(self.not_retrieved),
                "no_open_copy": sorted(self.no_open_copy),
                "lookup_failed": {record: lookup.detail
                                  for record, lookup in sorted(self.failed.items())},
                "not_looked_up": list(self.not_looked_up),
                "pdf_not_on_this_machine": list(self.elsewhere)}


def fulltext_status(workspace: Workspace, state: ScreeningState | None = None
                    ) -> FullTextStatus:
    state = state or screening_state(workspace)
    store = FullTextStore(workspace)
    index = store.index()
    lookups = read_lookups(workspace)
    final = state.final["full-text"]
    sought = tuple(record.record_id for record in state.full_text)
    marked = tuple(record for record in sought if final.get(record) is not None
                   and final[record].decision == "not-retrieved")
    retrieved = {record: index[record] for record in sought if record in index}
    open_ = [record for record in sought if record not in retrieved and record not in marked]
    return FullTextStatus(
        sought=sought, retrieved=retrieved, not_retrieved=marked,
        no_open_copy={r: lookups[r] for r in open_
                      if r in lookups and lookups[r].outcome == "no_open_copy"},
        failed={r: lookups[r] for r in open_ if r in lookups and lookups[r].outcome == "failed"},
        not_looked_up=tuple(r for r in open_ if r not in lookups),
        elsewhere=tuple(r for r, entry in retrieved.items() if not store.has_file(entry)))


def mark_not_retrieved(workspace: Workspace, by: str, note: str,
                       records: Iterable[str] = ()) -> list[str]:
    """Record, as `by`'s settling decision, that these reports (by default every one an
    open-access lookup found no copy of) could not be retrieved; returns their ids."""
    by = check_adjudicator(by, workspace.protocol)
    if not note.strip():
        raise ReviewError("say why the full texts could not be obtained (--note), as PRISMA "
                          "2020 asks")
    state = screening_state(workspace)
    status = fulltext_status(workspace, state)
    known = set(status.sought)
    named = [resolve_record(name, known, "full-text") for name in records]
    chosen = named or sorted(status.no_open_copy)
    if not chosen:
        raise ReviewError("no record to mark: every report sought has its full text, is "
                          "marked already, or has not been looked up ('review fulltext find')")
    for record in chosen:
        if record in status.retrieved:
            raise ReviewError(f"record {record} has its full text ({status.retrieved[record].pages}"
                              " pages); it was retrieved")
    decisions = [Decision(record, "full-text", by, "not-retrieved", "", note.strip(),
                          role=ADJUDICATOR, time=now()) for record in chosen]
    for decision in decisions:
        validate_decision(decision, workspace.protocol, known)
    DecisionStore(workspace.screening_dir).append(decisions)
    return chosen
