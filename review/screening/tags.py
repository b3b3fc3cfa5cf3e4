"""Free tags a reviewer puts on records ("ask Ben", "pediatric", "check language").

Each reviewer's tags are appended to their own file, `data/screening/tags/<reviewer>.jsonl`,
one change per line (a tag added or removed), as decisions are: one locked write per change,
so reviewers never wait for each other, a reviewer's tags are theirs alone (blinding holds),
and branches merge without conflicts. The latest change of a tag on a record counts.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from review.errors import ReviewError, one_line
from review.screening.decisions import CONFLICT_MARKERS, FIX, append_lines

TAG = re.compile(r"[\w][\w .:/+-]{0,39}")


@dataclass(frozen=True)
class TagChange:
    record: str
    reviewer: str
    tag: str
    added: bool
    time: str = ""


def check_tag(tag: str) -> str:
    tag = " ".join(tag.split())
    if not TAG.fullmatch(tag):
        raise ReviewError(f"tag '{tag}': 1 to 40 letters, digits, spaces or . : / + - _, "
                          "starting with a letter or digit")
    return tag


class TagStore:
    """The tag files of one review."""

    def __init__(self, screening_dir: Path):
        self.folder = screening_dir / "tags"

    def path(self, reviewer: str) -> Path:
        return self.folder / f"{reviewer}.jsonl"

    def append(self, changes: Iterable[TagChange]) -> None:
        by_reviewer: dict[str, list[TagChange]] = defaultdict(list)
        for change in changes:
            by_reviewer[change.reviewer].append(change)
        for reviewer, batch in by_reviewer.items():
            append_lines(self.path(reviewer), [json.dumps(asdict(change), ensure_ascii=False,
                                                          sort_keys=True) for change in batch])

    def tags(self, reviewer: str) -> dict[str, set[str]]:
        """record → the reviewer's tags on it now."""
        path = self.path(reviewer)
        current: dict[str, set[str]] = defaultdict(set)
        if not path.exists():
            return {}
        lines = path.read_bytes().split(b"\n")
        if lines and lines[-1]:
            lines.pop()  # torn by a kill mid-write; the next append cuts it
        for number, raw in enumerate(lines, start=1):
            line = raw.decode("utf-8", "replace")
            if not line.strip():
                continue
            if line.startswith(CONFLICT_MARKERS):
                raise ReviewError(f"{path}:{number}: a git merge-conflict marker; keep the "
                                  "lines of both sides and delete the markers")
            try:
                change = TagChange(**json.loads(line))
            except (ValueError, TypeError) as error:
                raise ReviewError(f"{path}:{number}: not a tag change "
                                  f"({one_line(error)[:60]}); {FIX}") from None
            if change.reviewer != path.stem:
                raise ReviewError(f"{path}:{number}: a tag of '{change.reviewer}' in the file "
                                  f"of '{path.stem}'; {FIX}")
            if change.added:
                current[change.record].add(change.tag)
            else:
                current[change.record].discard(change.tag)
        return {record: tags for record, tags in current.items() if tags}

    def everyone(self) -> dict[str, dict[str, set[str]]]:
        """reviewer → record → tags, for exports after adjudication."""
        if not self.folder.is_dir():
            return {}
        return {path.stem: self.tags(path.stem) for path in sorted(self.folder.glob("*.jsonl"))}
