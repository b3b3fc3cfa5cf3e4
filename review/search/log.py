"""The search log (PRISMA-S): every database search and every imported export, in order."""

from __future__ import annotations

import json
from pathlib import Path

from review.errors import ReviewError, one_line
from review.fileio import read_text, write_atomically
from review.workspace import Workspace


def log_path(workspace: Workspace) -> Path:
    return workspace.search_dir / "search_log.jsonl"


def read_log(workspace: Workspace) -> list[dict]:
    path = log_path(workspace)
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except ValueError as error:
                raise ReviewError(f"{path}:{number}: not a log entry ({one_line(error)})") from None
    return entries


def log_contents(workspace: Workspace, entries: list[dict]) -> bytes:
    """The log's bytes once `entries` are added."""
    lines = [json.dumps(entry, ensure_ascii=False, sort_keys=True)
             for entry in [*read_log(workspace), *entries]]
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def append_log(workspace: Workspace, *entries: dict) -> None:
    """Add entries to the log, rewriting it atomically so that it is never half-written."""
    write_atomically(log_path(workspace), log_contents(workspace, list(entries)))
