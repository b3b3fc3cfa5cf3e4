"""`review search …` and `review import`: the search step's commands, registered by `review.cli`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from review.commands import EXIT_DATA, EXIT_OK, shown, workspace_of
from review.errors import ReviewError
from review.workspace import Workspace

# The readers' formats (review.search.readers.NAMES), named here so --help stays fast.
IMPORT_FORMATS = ("pubmed-xml", "medline", "ris", "wos-tab", "wos-plain", "csv", "xlsx",
                  "endnote-xml", "bibtex")


def _lint_lines(workspace: Workspace, problems: list) -> list[str]:
    """Each lint message at the protocol line of the term it names."""
    from review.protocol import yaml_lines

    lines = yaml_lines(workspace.protocol_path.read_text(encoding="utf-8"))
    return [f"{shown(workspace.protocol_path)}"
            + (f":{lines[problem.where]}" if problem.where in lines else "")
            + f": search query: {problem}" for problem in problems]


def cmd_search_query(args: argparse.Namespace) -> int:
    from review.protocol import yaml_lines
    from review.search.query import build_query, has_errors, lint_search, query_structure

    workspace = workspace_of(args)
    query = build_query(workspace.protocol.search)
    problems = lint_search(workspace.protocol.search)
    if args.format == "json":
        lines = yaml_lines(workspace.protocol_path.read_text(encoding="utf-8"))
        print(json.dumps({**query_structure(workspace.protocol.search),
                          "lint": [p.to_dict(lines) for p in problems]}, indent=2,
                         ensure_ascii=False))
    else:
        print(query)
    for line in _lint_lines(workspace, problems):
        print(line, file=sys.stderr)
    return EXIT_DATA if has_errors(problems) else EXIT_OK


def cmd_search_run(args: argparse.Namespace) -> int:
    from review.search.eutils import EutilsClient, EutilsConfig
    from review.search.query import build_query, has_errors, lint_search
    from review.search.run import run_search

    workspace = workspace_of(args)
    query = build_query(workspace.protocol.search)
    problems = [p for p in lint_search(workspace.protocol.search) if p.severity == "error"]
    if has_errors(problems):
        raise ReviewError(f"the search query does not lint: {_lint_lines(workspace, problems)[0]}"
                          " ('review search query' lists every problem)")
    overrides = {name: value for name, value in (("batch_size", args.batch_size),
                                                 ("timeout", args.timeout),
                                                 ("max_attempts", args.max_attempts))
                 if value is not None}
    client = EutilsClient(EutilsConfig.from_environment(args.eutils_url, **overrides))
    result = run_search(workspace, client, query, new=args.new, quiet=args.quiet)
    print(f"search run {result.run_id}{' (resumed)' if result.resumed else ''}: "
          f"{result.count} records found, {result.fetched} fetched, {result.added} stored, "
          f"{result.new_pmids} PMIDs not seen before; {result.requests} requests "
          f"({result.retries} retried)")
    return EXIT_OK


def cmd_search_diff(args: argparse.Namespace) -> int:
    from review.search.records import RecordStore
    from review.search.run import run_difference

    workspace = workspace_of(args)
    latest, previous, new = run_difference(workspace)
    titles = {record.pmid: record.title for record in
              RecordStore(workspace.search_dir / "records.jsonl").load()
              if record.source == "PubMed"}
    if previous is None:
        print(f"run {latest} is the first complete run: all {len(new)} records are new")
    else:
        print(f"run {latest} against {previous}: {len(new)} new records")
        for pmid in new:
            print(f"  PMID {pmid}: {titles.get(pmid, '')}")
    return EXIT_OK


def cmd_search_log(args: argparse.Namespace) -> int:
    from review.search.log import read_log

    entries = read_log(workspace_of(args))
    if args.json:
        print(json.dumps(entries, indent=2, ensure_ascii=False))
        return EXIT_OK
    for entry in entries:
        if entry.get("kind") == "search":
            print(f"{entry['finished']}  search {entry['database']} via {entry['interface']}: "
                  f"{entry['count']} records ({entry.get('new_records', 0)} not seen before)")
            print(f"    query: {entry['query']}")
            print(f"    PubMed's translation: {entry['query_translation']}")
        else:
            print(f"{entry['date']}  import {entry['file']} ({entry['format']}, "
                  f"{entry['encoding']}) as {entry['source']}: {entry['records']} records "
                  f"({entry.get('records_stored', entry.get('new_records'))} stored)")
    if not entries:
        print("the search log is empty")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from review.search.importing import import_exports
    from review.search.readers import NAMES

    workspace = workspace_of(args)
    results = import_exports(workspace, [Path(shown(path)) for path in args.files],
                             args.source, declared=args.format, encoding=args.encoding,
                             strict=args.strict)
    for result in results:
        if result.already_imported:
            print(f"{result.path}: already imported ({result.already_imported}; the same "
                  f"bytes, by SHA-256): nothing added")
            continue
        upgraded = (f", {result.upgraded} stored by an earlier version given their position"
                    if result.upgraded else "")
        print(f"{result.path}: {result.records} records ({NAMES[result.format]}, "
              f"{result.encoding}): {result.stored} stored{upgraded}")
        if result.empty_lines:
            lines = ", ".join(map(str, result.empty_lines[:10])) + (
                ", …" if len(result.empty_lines) > 10 else "")
            print(f"{result.path}: {len(result.empty_lines)} empty records (no bibliographic "
                  f"field; lines {lines}) not stored: PRISMA counts them as removed before "
                  "screening for other reasons (--strict refuses such a file)")
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `search` and `import` to `commands`."""
    search = commands.add_parser("search", help="PubMed searches from the protocol",
                                 description="Build, run and compare the protocol's PubMed "
                                             "search.")
    search_commands = search.add_subparsers(dest="action", metavar="ACTION", required=True)
    query = search_commands.add_parser(
        "query", help="print the PubMed query built from the protocol",
        description="Print the query (concepts ORed inside, ANDed together, limits, NOT "
                    "blocks, fully parenthesised) and lint it; exit 1 on lint problems.",
        epilog="example: review search query --format json")
    query.add_argument("--format", choices=["text", "json"], default="text")
    query.set_defaults(handler=cmd_search_query)
    run = search_commands.add_parser(
        "run", help="run the search through E-utilities (resumes an interrupted run)",
        description="ESearch with the history server, then EFetch in batches; raw replies "
                    "under data/search/runs/<run-id>/; an interrupted run resumes. Settings: "
                    "NCBI_EMAIL, NCBI_API_KEY, NCBI_TOOL or ~/.config/casereview/eutils.yaml.",
        epilog="example: NCBI_EMAIL=you@example.org review search run")
    run.add_argument("--eutils-url", metavar="URL",
                     help="E-utilities base URL (default: $REVIEW_EUTILS_URL, else NCBI)")
    run.add_argument("--batch-size", type=int, metavar="N", help="records per EFetch (500)")
    run.add_argument("--timeout", type=float, metavar="S", help="seconds per request (30)")
    run.add_argument("--max-attempts", type=int, metavar="N", help="tries per request (6)")
    run.add_argument("--new", action="store_true", help="start a new run instead of resuming")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=cmd_search_run)
    search_commands.add_parser(
        "diff", help="PMIDs new in the latest run (living review)",
        description="Compare the latest complete run with the one before it.",
        epilog="example: review search diff",
    ).set_defaults(handler=cmd_search_diff)
    log = search_commands.add_parser("log", help="the search log (PRISMA-S)",
                                     description="Every search run and import, in order.",
        epilog="example: review search log")
    log.add_argument("--json", action="store_true")
    log.set_defaults(handler=cmd_search_log)

    importer = commands.add_parser(
        "import", help="import exported records (PubMed XML, MEDLINE, RIS, WoS, CSV/TSV, "
                       "XLSX, EndNote XML, BibTeX)",
        description="Read exports into data/search/records.jsonl. Every record of every file "
                    "is kept (de-duplication joins them later); importing the same file "
                    "again adds nothing; a bad file changes nothing.",
        epilog="example: review import embase.ris --source Embase")
    importer.add_argument("files", nargs="+", metavar="FILE")
    importer.add_argument("--source", required=True, help="the database, e.g. Embase")
    importer.add_argument("--strict", action="store_true",
                          help="refuse a file holding an empty record instead of leaving the "
                               "record out")
    importer.add_argument("--format", choices=list(IMPORT_FORMATS),
                          help="the format, when the extension does not say")
    importer.add_argument("--encoding", help="the files' text encoding (default: UTF-16 with "
                                             "a byte-order mark, else UTF-8, else "
                                             "Windows-1252)")
    importer.set_defaults(handler=cmd_import)
