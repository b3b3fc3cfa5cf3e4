"""`review import`: exports from other databases into the record store, all or nothing.

Every record of every file is stored as its own record. A file is known by its SHA-256: the
same bytes again add nothing; another export that overlaps an earlier one adds all its
records, and de-duplication joins them. A file imported by casereview 0.1 (which merged
records with the same PMID, DOI or title on import) is upgraded when imported again: its
stored records keep their ids and decisions, and the records that version merged away are
added.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from review import __version__
from review.search.log import log_contents, log_path, read_log
from review.search.readers import NAMES, Export, read_export
from review.search.records import Record, RecordStore, legacy_record_id
from review.transaction import commit, workspace_lock
from review.workspace import Workspace


@dataclass(frozen=True)
class ImportedFile:
    path: Path
    format: str
    encoding: str
    records: int
    stored: int
    upgraded: int
    already_imported: str  # when the same bytes were imported before; '' if never
    empty_lines: tuple[int, ...] = ()  # records with no bibliographic field, not stored


def _upgrade_legacy(export: Export, legacy: dict[str, Record], source: str
                    ) -> tuple[list[Record], list[Record]]:
    """The records of a file that casereview 0.1 imported: those it stored take their new
    identity under their old ids (so decisions stay attached), the rest are new."""
    fresh, upgraded = [], []
    for record in export.records:
        old_id = legacy_record_id(dataclasses.replace(record, source=source))
        if old_id in legacy:
            stored = legacy.pop(old_id)
            upgraded.append(dataclasses.replace(record, record_id=old_id, source=stored.source,
                                                extra={**record.extra, **stored.extra}))
        else:
            fresh.append(record)
    return fresh, upgraded


def import_exports(workspace: Workspace, paths: list[Path], source: str, *,
                   declared: str | None = None, encoding: str | None = None,
                   strict: bool = False) -> list[ImportedFile]:
    """Read every file first; only when all of them parse are their records stored and the
    imports logged, in one write, so a bad file changes nothing. Empty records are left out
    and logged (PRISMA counts them as removed before screening), or refused with `strict`."""
    exports = [read_export(path, source, declared=declared, encoding=encoding, strict=strict)
               for path in paths]
    with workspace_lock(workspace.root, "import"):
        return _store_exports(workspace, exports, source)


def _store_exports(workspace: Workspace, exports: list[Export], source: str
                   ) -> list[ImportedFile]:
    store = RecordStore(workspace.search_dir / "records.jsonl")
    stored = store.load()
    origins = {record.origin for record in stored}
    log = read_log(workspace)
    imported_before = {entry["sha256"]: entry for entry in log
                       if entry.get("kind") == "import" and entry.get("sha256")}
    legacy = {record.record_id: record for record in stored if record.legacy}
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    new: list[Record] = []
    upgraded: list[Record] = []
    results, entries = [], []
    for export in exports:
        origin = f"sha256:{export.sha256}"
        earlier = imported_before.get(export.sha256)
        if origin in origins:
            results.append(ImportedFile(export.path, export.format, export.encoding,
                                        len(export.records), 0, 0,
                                        (earlier or {}).get("date", "earlier in this call")))
            continue
        origins.add(origin)
        if earlier is not None:
            fresh, renewed = _upgrade_legacy(export, legacy, earlier.get("source", source))
        else:
            fresh, renewed = export.records, []
        new += fresh
        upgraded += renewed
        results.append(ImportedFile(export.path, export.format, export.encoding,
                                    len(export.records), len(fresh), len(renewed), "",
                                    export.empty_lines))
        entries.append({
            "kind": "import", "source": source, "file": export.path.name,
            "sha256": export.sha256, "format": NAMES[export.format],
            "encoding": export.encoding, "records": len(export.records),
            "records_stored": len(fresh), "records_upgraded": len(renewed),
            **({"empty_records": len(export.empty_lines),
                "empty_lines": list(export.empty_lines)} if export.empty_lines else {}),
            "date": when,
            "software": f"casereview {__version__}",
        })
    if new or upgraded:
        commit(workspace.root, {store.path: store.contents_after(new, upgraded, stored),
                                log_path(workspace): log_contents(workspace, entries)})
    return results
