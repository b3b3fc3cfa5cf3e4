"""`review import`: exports from other databases into the record store, all or nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from review import __version__
from review.search.log import append_log
from review.search.readers import NAMES, read_export
from review.search.records import RecordStore
from review.workspace import Workspace


@dataclass(frozen=True)
class ImportedFile:
    path: Path
    format: str
    encoding: str
    records: int
    added: int
    already_known: int


def import_exports(workspace: Workspace, paths: list[Path], source: str, *,
                   declared: str | None = None, encoding: str | None = None) -> list[ImportedFile]:
    """Read every file first; only when all of them parse are their records stored and the
    imports logged, so a bad file changes nothing."""
    read = [(path, *read_export(path, source, declared=declared, encoding=encoding))
            for path in paths]
    store = RecordStore(workspace.search_dir / "records.jsonl")
    added, _ = store.add(record for _, records, _, _ in read for record in records)
    new_ids = {record.record_id for record in added}
    results, entries = [], []
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for path, records, kind, used in read:
        fresh = len({record.record_id for record in records} & new_ids)
        new_ids -= {record.record_id for record in records}
        results.append(ImportedFile(path, kind, used, len(records), fresh,
                                    len(records) - fresh))
        entries.append({
            "kind": "import", "source": source, "file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "format": NAMES[kind],
            "encoding": used, "records": len(records), "new_records": fresh,
            "already_known": len(records) - fresh, "date": when,
            "software": f"casereview {__version__}",
        })
    append_log(workspace, *entries)
    return results
