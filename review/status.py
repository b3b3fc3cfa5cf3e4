"""Where the review stands: records identified per source, search runs, extraction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from review.cache import cached
from review.fileio import is_temporary
from review.search.log import read_log
from review.search.records import RecordStore
from review.transaction import settle
from review.workspace import Workspace


def status_inputs(workspace: Workspace) -> list[Path]:
    """Every file the status is computed from."""
    files = [workspace.protocol_path, workspace.cases_path,
             workspace.fulltext_dir / "index.csv", workspace.fulltext_dir / "lookups.csv"]
    for folder in (workspace.search_dir, workspace.data_dir / "dedup",
                   workspace.screening_dir):
        if folder.is_dir():
            files += [path for path in folder.rglob("*")
                      if path.is_file() and not is_temporary(path)]
    return files


def review_status(workspace: Workspace) -> dict[str, Any]:
    """Counts for `review status --json`, computed once per state of the workspace's files
    (see `review.cache`): a status of 100,000 records must not re-run the de-duplication."""
    settle(workspace.root)
    return cached(workspace.root, "status", status_inputs(workspace),
                  lambda: _review_status(workspace), lambda status: status, lambda data: data)


def _review_status(workspace: Workspace) -> dict[str, Any]:
    from review.extraction.prisma_counts import prisma_counts_for
    from review.fulltext.status import fulltext_status
    from review.screening.flow import agreement, screening_state

    records = RecordStore(workspace.search_dir / "records.jsonl").load()
    log = read_log(workspace)
    searches = [entry for entry in log if entry.get("kind") == "search"]
    state = screening_state(workspace)
    counts = prisma_counts_for(workspace, state)
    fulltexts = fulltext_status(workspace, state)
    agreements = {stage: found.to_dict() for stage in ("title-abstract", "full-text")
                  if (found := agreement(stage, state.decisions[stage])) is not None}
    return {
        **counts,
        "agreement": agreements,
        "conflicts": {stage: sum(d.decision == "conflict" for d in state.final[stage].values())
                      for stage in state.final},
        "review": workspace.protocol.id,
        "records": len(records),
        # Imported or searched by casereview 0.1, which merged repeated records on import.
        "legacy_records": sum(record.legacy for record in records),
        "search_runs": len(searches),
        "last_search": ({key: searches[-1].get(key) for key in
                         ("run_id", "finished", "count", "new_records")} if searches else None),
        "imports": sum(entry.get("kind") == "import" for entry in log),
        "fulltexts": {"sought": len(fulltexts.sought), "retrieved": len(fulltexts.retrieved),
                      "not_retrieved": len(fulltexts.not_retrieved),
                      "no_open_copy": len(fulltexts.no_open_copy),
                      "lookup_failed": len(fulltexts.failed)},
        # What the sheet holds; PRISMA calls the same numbers studies and cases included.
        "studies_extracted": counts["studies_included"],
        "cases_extracted": counts["cases_included"],
    }


def status_lines(status: dict[str, Any]) -> list[str]:
    lines = [f"review {status['review']}"]
    for label, total, by_source in (
            ("records identified from databases", status["records_identified"],
             status["identified"]),
            ("records identified via other methods", status["records_identified_other_methods"],
             status["identified_other_methods"])):
        if by_source:
            lines.append(f"{label}: {total} ("
                         + ", ".join(f"{source} {n}" for source, n in by_source.items()) + ")")
    if not status["records"]:
        lines.append("records identified: none yet ('review search run' or 'review import')")
    if status["legacy_records"]:
        lines.append(f"note: {status['legacy_records']} records were stored by casereview 0.1, "
                     "which merged records sharing a PMID, DOI or title on import; import "
                     "their files again to recover the merged ones (decisions are kept)")
    last = status["last_search"]
    lines.append(f"search runs: {status['search_runs']}" + (
        f"; last {last['run_id']}: {last['count']} records, {last['new_records']} new"
        if last else ""))
    lines.append(f"imports: {status['imports']}")
    empty = status.get("records_removed_other", 0)
    lines.append(f"de-duplication: {status['duplicates_removed']} duplicates removed, "
                 + (f"{empty} empty records removed, " if empty else "")
                 + f"{status['records_screened']} records to screen")
    lines.append(f"title/abstract: {status['records_excluded']} excluded, "
                 f"{status['reports_sought']} advanced, {status['records_awaiting_screening']} "
                 f"awaiting a decision or adjudication")
    lines.append(f"full text: {status['reports_assessed'] + status['other_reports_assessed']} "
                 f"assessed, {status['reports_included'] + status['other_reports_included']} "
                 f"included, {status['reports_awaiting_assessment']} awaiting")
    texts = status["fulltexts"]
    if texts["sought"]:
        lines.append(f"full texts: {texts['retrieved']} of {texts['sought']} retrieved, "
                     f"{texts['not_retrieved']} not retrieved"
                     + (f", {texts['no_open_copy']} with no open copy" if texts["no_open_copy"]
                        else "")
                     + (f", {texts['lookup_failed']} lookups failed" if texts["lookup_failed"]
                        else ""))
    for stage, found in status["agreement"].items():
        low, high = found["kappa_ci"]
        if found["kappa"] is None:
            kappa = f"{found['statistic']} not defined (every decision alike)"
        else:
            kappa = f"{found['statistic']} {found['kappa']:.2f}" + (
                f" (95% CI {low:.2f} to {high:.2f})" if None not in (low, high) else "")
        lines.append(f"agreement at {stage}: {found['percent_agreement']:.1f}% over "
                     f"{found['records']} records, {kappa}")
    lines.append(f"extraction: {status['cases_extracted']} patients from "
                 f"{status['studies_extracted']} studies"
                 + (f"; {status['reports_included_not_extracted']} included reports not yet "
                    "extracted" if status["reports_included_not_extracted"] else ""))
    return lines
