"""Where the review stands: records identified per source, search runs, extraction."""

from __future__ import annotations

from collections import Counter
from typing import Any

from review.search.log import read_log
from review.search.records import RecordStore
from review.workspace import Workspace


def review_status(workspace: Workspace) -> dict[str, Any]:
    """Counts for `review status --json`."""
    from review.extraction.sheet import ensure_sheet

    records = RecordStore(workspace.search_dir / "records.jsonl").load()
    log = read_log(workspace)
    searches = [entry for entry in log if entry.get("kind") == "search"]
    schema = workspace.protocol.extraction
    cases = ensure_sheet(workspace.cases_path, schema)
    studies = cases[schema.study.key].replace("", None).dropna().nunique()
    return {
        "review": workspace.protocol.id,
        "identified": dict(sorted(Counter(record.source for record in records).items())),
        "records": len(records),
        "search_runs": len(searches),
        "last_search": ({key: searches[-1].get(key) for key in
                         ("run_id", "finished", "count", "new_records")} if searches else None),
        "imports": sum(entry.get("kind") == "import" for entry in log),
        "studies_extracted": int(studies),
        "cases_extracted": len(cases),
    }


def status_lines(status: dict[str, Any]) -> list[str]:
    lines = [f"review {status['review']}"]
    if status["identified"]:
        lines.append(f"records identified: {status['records']} ("
                     + ", ".join(f"{source} {n}" for source, n in status["identified"].items())
                     + ")")
    else:
        lines.append("records identified: none yet ('review search run' or 'review import')")
    last = status["last_search"]
    lines.append(f"search runs: {status['search_runs']}" + (
        f"; last {last['run_id']}: {last['count']} records, {last['new_records']} new"
        if last else ""))
    lines.append(f"imports: {status['imports']}")
    lines.append(f"extraction: {status['cases_extracted']} patients from "
                 f"{status['studies_extracted']} studies")
    return lines
