"""The `review` command: a thin layer over the Python API of each step.

Exit status: 0 success, 1 the data has problems, 2 usage or file errors. Data and file
problems are reported as lines addressed FILE:ROW:COLUMN, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from review import __version__
from review.errors import DataProblems, ReviewError, ReviewErrors, one_line
from review.fulltext.commands import add_fulltext_commands
from review.protocol import RANKING_MODELS
from review.workspace import PROJECT_VARIABLE, Workspace

# The readers' formats (review.search.readers.NAMES), named here so --help stays fast.
IMPORT_FORMATS = ("pubmed-xml", "medline", "ris", "wos-tab", "wos-plain", "csv", "xlsx",
                  "endnote-xml", "bibtex")

if TYPE_CHECKING:
    import pandas as pd

    from review.extraction.compare import ExtractionComparison


EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


def shown(path: str | os.PathLike) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        relative = os.path.relpath(Path(path).resolve(), Path.cwd())
    except (OSError, RuntimeError):  # a symlink loop; the command reports it when it reads
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _workspace(args: argparse.Namespace) -> Workspace:
    from review.transaction import settle

    workspace = Workspace.locate(args.project)
    settle(workspace.root)
    return workspace


def _print_problems(problems: DataProblems) -> None:
    for problem in problems.problems:
        print(problem)
    print(f"{len(problems.problems)} problem(s)")


def cmd_init(args: argparse.Namespace) -> int:
    from review.workspace import create_workspace, start_git_repository

    workspace = create_workspace(args.directory, args.from_protocol)
    print(f"created review workspace {shown(workspace.root)} with protocol "
          f"{shown(workspace.protocol_path)}")
    if not args.no_git:
        print(start_git_repository(workspace.root))
    project = f"review --project {shown(workspace.root)}"
    print("next steps:\n"
          f"  1. edit {shown(workspace.protocol_path)}: question, search concepts, reviewers, "
          "exclusion reasons, extraction fields and the analysis section\n"
          f"  2. {project} protocol render      # the readable protocol; 'protocol check' "
          "keeps the two in step\n"
          f"  3. {project} search query         # the PubMed query, linted\n"
          f"  4. {project} search run, or import FILE --source NAME\n"
          f"  5. {project} dedup, then screen --stage title-abstract --reviewer NAME\n"
          f"  6. {project} extract template --out sheet.xlsx, fill it, extract import it\n"
          f"  7. {project} build                # tables, figures and the report")
    return EXIT_OK


def cmd_protocol_render(args: argparse.Namespace) -> int:
    from review.fileio import write_atomically
    from review.protocol_document import render_protocol_markdown

    workspace = _workspace(args)
    text = render_protocol_markdown(workspace.protocol, workspace.protocol_path.name)
    write_atomically(workspace.protocol_document_path, text)
    print(f"wrote {shown(workspace.protocol_document_path)}")
    return EXIT_OK


def cmd_protocol_check(args: argparse.Namespace) -> int:
    from review.protocol_document import render_protocol_markdown

    workspace = _workspace(args)
    protocol = workspace.protocol
    document = workspace.protocol_document_path
    expected = render_protocol_markdown(protocol, workspace.protocol_path.name)
    if not document.exists() or document.read_text(encoding="utf-8") != expected:
        print(f"{shown(document)}: out of date with {shown(workspace.protocol_path)}; "
              "run 'review protocol render'")
        return EXIT_DATA
    print(f"{shown(workspace.protocol_path)}: valid protocol '{protocol.id}' version "
          f"{protocol.version}; {shown(document)} agrees")
    return EXIT_OK


def cmd_extract_validate(args: argparse.Namespace) -> int:
    from review.extraction.sheet import read_cases
    from review.extraction.validate import validate_cases

    workspace = _workspace(args)
    schema = workspace.protocol.extraction
    path = shown(args.file or workspace.cases_path)
    frame = read_cases(path, schema, args.encoding)
    problems = validate_cases(frame, schema, source=path)
    if problems:
        raise DataProblems(problems)
    studies = frame[schema.study.key].nunique()
    print(f"{path}: {len(frame)} {schema.unit}s from {studies} studies, no problems")
    return EXIT_OK


def cmd_extract_template(args: argparse.Namespace) -> int:
    from review.extraction.appraisal import read_appraisal
    from review.extraction.sheet import ensure_sheet
    from review.extraction.workbook import build_template
    from review.fileio import write_atomically

    workspace = _workspace(args)
    protocol = workspace.protocol
    schema = protocol.extraction
    cases = ensure_sheet(workspace.cases_path, schema) if args.with_cases else None
    appraisal = read_appraisal(workspace.appraisal_path, schema.appraisal) \
        if args.with_cases and schema.appraisal else None
    prefilled = None
    if cases is not None:
        import pandas as pd

        from review.extraction.links import prefilled_patient, reports_to_extract

        prefilled = pd.DataFrame([prefilled_patient(record, schema) for record in
                                  reports_to_extract(workspace, cases)],
                                 columns=schema.columns, dtype=object)
    write_atomically(args.out, build_template(protocol, cases, appraisal, prefilled))
    filled = f" with {len(cases)} {protocol.extraction.unit}s" if cases is not None else ""
    waiting = (f" and the first {schema.unit} of {len(prefilled)} reports still to extract, "
               "prefilled" if prefilled is not None and len(prefilled) else "")
    print(f"wrote {shown(args.out)}{filled}{waiting}")
    return EXIT_OK


def cmd_extract_import(args: argparse.Namespace) -> int:
    from review.extraction.workbook import import_workbook

    workspace = _workspace(args)
    result = import_workbook(workspace, shown(args.file), args.on_conflict)
    for line in result.settled:
        print(f"conflict: {line}")
    counts = result.cases
    print(f"imported {shown(args.file)} into {shown(workspace.cases_path)}: "
          f"{counts['added']} added, {counts['updated']} updated, "
          f"{counts['unchanged']} unchanged")
    for note in result.notes:
        print(f"note: {note} (the workbook was made from an earlier schema)")
    if result.appraisal is not None:
        counts = result.appraisal
        print(f"appraisal into {shown(workspace.appraisal_path)}: {counts['added']} added, "
              f"{counts['updated']} updated, {counts['unchanged']} unchanged")
    return EXIT_OK


def cmd_extract_migrate(args: argparse.Namespace) -> int:
    from review.extraction.migrate import migrate_sheet

    workspace = _workspace(args)
    plan = migrate_sheet(workspace, args.drop or ())
    changes = plan.describe()
    for change in changes:
        print(f"{shown(workspace.cases_path)}: {change}")
    print(f"{shown(workspace.cases_path)}: " + (f"{len(changes)} column changes written"
                                              if changes else "already in the schema's columns"))
    return EXIT_OK


def cmd_extract_link(args: argparse.Namespace) -> int:
    from review.extraction.links import link_sheet

    workspace = _workspace(args)
    result = link_sheet(workspace)
    sheet = shown(workspace.cases_path)
    for row, record, why in result.filled:
        print(f"{sheet}:{row}: linked to record {record} (by {why})")
    for row in result.unmatched:
        print(f"{sheet}:{row}: no record assessed in full text has this row's study id, "
              "PMID, DOI or title; type its record id")
    for row, record in result.unknown:
        print(f"{sheet}:{row}: record id {record} names no record assessed in full text")
    print(f"{sheet}: {len(result.filled)} rows linked, {len(result.unmatched)} not matched, "
          f"{len(result.unknown)} with an unknown record id")
    return EXIT_DATA if result.unmatched or result.unknown else EXIT_OK


def _read_any_sheet(path: str, workspace: Workspace) -> pd.DataFrame:
    from review.extraction.sheet import read_cases
    from review.extraction.workbook import read_workbook

    if path.lower().endswith((".xlsx", ".xlsm")):
        return read_workbook(path, workspace.protocol).cases.frame
    return read_cases(path, workspace.protocol.extraction)


def _print_agreement(comparison: ExtractionComparison) -> None:
    table = comparison.agreement_table()
    width = max((len(name) for name in table["field"]), default=5)
    print(f"{'field':<{width}}  compared  agreed       %  kappa")
    for row in table.itertuples(index=False):
        kappa = f"{row.kappa:6.3f}" if row.kappa == row.kappa else "not defined (all alike)"
        print(f"{row.field:<{width}}  {row.compared:8d}  {row.agreed:6d}  {row.percent:6.1f}  "
              f"{kappa}")


def cmd_extract_duplicates(args: argparse.Namespace) -> int:
    from review.extraction.duplicates import read_decisions, record_decision, screen_duplicates
    from review.extraction.sheet import ensure_sheet

    workspace = _workspace(args)
    schema = workspace.protocol.extraction
    if args.decide:
        first, second, decision = args.decide
        record_decision(workspace, first, second, decision, args.reviewer or "", args.note)
        verdict = "one patient" if decision == "same" else "different patients"
        print(f"recorded: {first} and {second} are {verdict} ({args.reviewer}) in "
              f"{shown(workspace.duplicate_decisions_path)}")
        return EXIT_OK
    screen = screen_duplicates(ensure_sheet(workspace.cases_path, schema), schema,
                               read_decisions(workspace.duplicate_decisions_path))
    if screen is None:
        raise ReviewError(f"{shown(workspace.protocol_path)}: the protocol plans no screen for "
                          "duplicate patients (add extraction.duplicate_patients)")
    if args.json:
        print(json.dumps(screen.to_dict(), indent=2, ensure_ascii=False))
        return EXIT_OK
    for pair in screen.pairs:
        apart = f", reports {pair.years_apart} years apart" if pair.years_apart is not None \
            else ""
        verdict = (f"decided {pair.decision} by {pair.reviewer}" if pair.decision
                   else "awaiting a decision")
        print(f"{pair.first} ~ {pair.second}: {', '.join(pair.agreeing)}{apart}: {verdict}")
    print(f"{screen.checked} {schema.unit}s checked: {len(screen.pairs)} possible duplicate "
          f"pairs, {len(screen.decided('same'))} same, {len(screen.decided('different'))} "
          f"different, {len(screen.decided(None))} awaiting a decision")
    return EXIT_OK


def cmd_extract_compare(args: argparse.Namespace) -> int:
    from review.extraction.compare import compare_extractions, compare_extractors
    from review.extraction.sheet import read_cases
    from review.fileio import safe_csv, write_atomically

    workspace = _workspace(args)
    schema = workspace.protocol.extraction
    if (args.a is None) != (args.b is None):
        raise ReviewError("name two sheets (A and B), or none to compare the workspace's "
                         f"extractor sheets in {shown(workspace.extractors_dir)}")
    if args.a is None:
        consensus = read_cases(workspace.cases_path, schema)
        comparison = compare_extractors(workspace.extractors_dir, consensus, schema)
        if comparison is None:
            raise ReviewError(f"{shown(workspace.extractors_dir)}: no double extraction here "
                              "(put each extractor's sheet there as <extractor>.csv)")
    else:
        comparison = compare_extractions(_read_any_sheet(shown(args.a), workspace),
                                         _read_any_sheet(shown(args.b), workspace), schema)
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2, ensure_ascii=False))
    else:
        first, second = comparison.names
        for row in comparison.differences.itertuples(index=False):
            kept = f" kept={row.consensus!r}" if "consensus" in comparison.differences else ""
            print(f"{row.case_id}: {row.field}: {first}={row.a!r} {second}={row.b!r}{kept}")
        if args.a is not None:
            for case in comparison.only_in_a:
                print(f"{case}: only in A ({shown(args.a)})")
            for case in comparison.only_in_b:
                print(f"{case}: only in B ({shown(args.b)})")
        _print_agreement(comparison)
        print(comparison.summary())
    if args.out:
        write_atomically(args.out, safe_csv(comparison.differences))
        print(f"wrote {shown(args.out)}", file=sys.stderr if args.json else sys.stdout)
    # Disagreements of a workspace's double extraction are settled in its consensus sheet.
    return EXIT_OK if comparison.agree or args.a is None else EXIT_DATA


def cmd_extract_summary(args: argparse.Namespace) -> int:
    from review.extraction.sheet import read_cases
    from review.extraction.summary import summarize_extraction

    workspace = _workspace(args)
    schema = workspace.protocol.extraction
    path = shown(args.file or workspace.cases_path)
    summary = summarize_extraction(read_cases(path, schema), schema)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, sort_keys=True))
        return EXIT_OK
    print(f"{path}: {summary.patients} {schema.unit}s from {summary.studies} studies")
    print()
    print("Completeness (% reported)")
    for row in summary.completeness.itertuples(index=False):
        print(f"  {row.field:<32} {row.reported:>5}/{row.total:<5} {row.percent:5.1f}%")
    print()
    print("Coded values (patients; of those reported)")
    for field_name, counts in summary.value_counts.groupby("field", sort=False):
        reported = int(counts["reported"].iloc[0])
        print(f"  {field_name} (reported {reported})")
        for row in counts.itertuples(index=False):
            if row.patients:
                print(f"    {row.value:<28} {row.patients:>5}")
    return EXIT_OK


def cmd_extract_studies(args: argparse.Namespace) -> int:
    from review.extraction.sheet import read_cases, study_table
    from review.fileio import safe_csv, write_atomically

    workspace = _workspace(args)
    schema = workspace.protocol.extraction
    table = study_table(read_cases(workspace.cases_path, schema), schema)
    text = safe_csv(table)
    if args.out:
        write_atomically(args.out, text)
        print(f"wrote {shown(args.out)}: {len(table)} studies")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_analyze(args: argparse.Namespace) -> int:
    from analysis.review_analysis import analyze_review, headline, write_analysis
    from review.extraction.validate import validated_cases

    workspace = _workspace(args)
    cases = validated_cases(workspace.cases_path, workspace.protocol.extraction,
                            shown(workspace.cases_path))
    analysis = analyze_review(cases, workspace.protocol,
                              conf_type=args.conf_type, interval=args.interval)
    out = Path(args.out) if args.out else workspace.reports_dir
    written = write_analysis(analysis, out)
    for line in headline(analysis):
        print(line)
    for note in analysis.notes:
        print(f"note: {note}")
    print(f"wrote {len(written)} files under {shown(out)}")
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    from review.report.build import build_report, stale_files

    workspace = _workspace(args)

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"review build: {message}", file=sys.stderr, flush=True)

    if args.check:
        committed = Path(args.out) if args.out else workspace.reports_dir
        differ = stale_files(workspace, committed, progress)
        if differ:
            for line in differ:
                print(f"{shown(committed)}/{line}")
            print(f"{len(differ)} file(s) differ from a fresh build: the committed report is "
                  "stale; run 'review build' (or 'make report') and commit it")
            return EXIT_DATA
        print(f"{shown(committed)}: up to date with the data")
        return EXIT_OK
    result = build_report(workspace, Path(args.out) if args.out else None, force=args.force,
                          progress=progress)
    if result.up_to_date:
        print(f"{shown(result.out_dir)}: up to date (inputs unchanged since the manifest)")
    else:
        print(f"built {shown(result.out_dir / 'report.html')} and {len(result.files) - 1} "
              f"other files under {shown(result.out_dir)}")
    return EXIT_OK


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

    workspace = _workspace(args)
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

    workspace = _workspace(args)
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

    workspace = _workspace(args)
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

    entries = read_log(_workspace(args))
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

    workspace = _workspace(args)
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


def cmd_status(args: argparse.Namespace) -> int:
    from review.status import review_status, status_lines

    status = review_status(_workspace(args))
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print("\n".join(status_lines(status)))
    return EXIT_OK


def cmd_dedup(args: argparse.Namespace) -> int:
    from review.screening.dedup import dedup_folder, update_dedup

    workspace = _workspace(args)
    update = update_dedup(workspace)
    result = update.result
    remaining = len(update.records) - result.duplicates_removed
    print(f"{len(update.records)} records: {len(result.clusters)} clusters of duplicates, "
          f"{result.duplicates_removed} duplicates removed, {remaining} records to screen; "
          f"{len(result.uncertain)} uncertain pairs wait in "
          f"{shown(dedup_folder(workspace) / 'queue.csv')}")
    return EXIT_OK


def cmd_dedup_review(args: argparse.Namespace) -> int:
    from review.screening.decisions import check_reviewer
    from review.screening.dedup import (
        PairDecision,
        database_records,
        dedup_folder,
        deduplicate,
        read_filled_queue,
        read_pair_decisions,
        update_dedup,
    )
    from review.screening.screener import plain

    workspace = _workspace(args)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    records = database_records(workspace)
    by_id = {record.record_id: record for record in records}
    verdicts: list[PairDecision] = []
    if args.file:
        verdicts = read_filled_queue(Path(args.file), set(by_id), reviewer)
    else:
        stored = read_pair_decisions(dedup_folder(workspace) / "decisions.csv")
        for first, second, reason in deduplicate(records, stored).uncertain:
            a, b = by_id[first], by_id[second]
            print(f"\n{reason}\n  A: {plain(a.title)} ({a.year}, {plain(a.journal)})"
                  f"\n  B: {plain(b.title)} ({b.year}, {plain(b.journal)})")
            answer = input("Same work? [y]es / [n]o / [s]kip / [q]uit: ").strip().lower()
            if answer == "q":
                break
            if answer in ("y", "n"):
                verdicts.append(PairDecision(first, second, answer == "y", reviewer))
    update = update_dedup(workspace, verdicts)
    print(f"{len(verdicts)} pair decisions added ({len(update.decisions)} stored); "
          f"{len(update.result.uncertain)} uncertain pairs remain")
    return EXIT_OK


def cmd_screen(args: argparse.Namespace) -> int:
    from review.screening.decisions import DecisionStore, check_reviewer, check_stage
    from review.screening.flow import screening_state
    from review.screening.ranking import Prioritiser
    from review.screening.screener import Screener, raw_terminal

    workspace = _workspace(args)
    if not args.stage or not args.reviewer:
        raise ReviewError("review screen needs --stage and --reviewer (or an action: import, "
                          "conflicts, adjudicate, from-extraction)")
    stage = check_stage(args.stage, workspace.protocol)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    records = screening_state(workspace).candidates(stage)
    if not records:
        print(f"no records to screen at the {stage} stage")
        return EXIT_OK
    keys = sys.stdin.fileno()
    with raw_terminal(keys):
        made = Screener(workspace.protocol, DecisionStore(workspace.screening_dir), records,
                        stage, reviewer, keys, sys.stdout, Prioritiser()).run()
    print(f"{made} records decided by {reviewer} at the {stage} stage in this session")
    return EXIT_OK


def cmd_screen_stop(args: argparse.Namespace) -> int:
    from review.screening.decisions import DecisionStore, check_reviewer, check_stage
    from review.screening.flow import screening_state
    from review.screening.ranking import Prioritiser, queue_verdict

    workspace = _workspace(args)
    stage = check_stage(args.stage, workspace.protocol)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    queue = Prioritiser().queue(screening_state(workspace).candidates(stage),
                                DecisionStore(workspace.screening_dir), stage, reviewer,
                                workspace.protocol.screening.prioritisation)
    verdict = queue_verdict(queue, workspace.protocol)
    if args.json:
        print(json.dumps({"stage": stage, "reviewer": reviewer, "order": queue.order_note,
                          **verdict.to_dict()}, indent=2))
        return EXIT_OK
    print(f"{reviewer} at {stage}: {verdict.screened} of {verdict.total} records screened, "
          f"{verdict.included} included, {verdict.remaining} left ({queue.order_note})")
    print(f"stopping rule: {verdict.sentence()}")
    return EXIT_OK


def cmd_screen_simulate(args: argparse.Namespace) -> int:
    from review.protocol import Prioritisation, StoppingRule
    from review.screening.ranking import TextFeatures
    from review.screening.simulation import read_labelled, simulate, summarise

    if args.seeds < 1:
        raise ReviewError("--seeds: at least 1")
    for name in ("recall_target", "confidence"):
        if not 0 < getattr(args, name) < 1:
            raise ReviewError(f"--{name.replace('_', '-')}: a fraction between 0 and 1")
    labelled = read_labelled(args.file, args.label_column, args.drop_missing_abstracts)
    features = TextFeatures(labelled.texts)
    settings = Prioritisation(model=args.model)
    rule = StoppingRule(args.recall_target, args.confidence)
    results = [simulate(labelled, settings, rule, seed, args.prior_included,
                        args.prior_excluded, features)
               for seed in range(args.seed, args.seed + args.seeds)]
    summary = summarise(results, rule.recall_target)
    if args.json:
        print(json.dumps(summary if len(results) > 1 else results[0].to_dict(), indent=2))
        return EXIT_OK
    print(f"{shown(args.file)}: {labelled.included} included of {len(labelled.labels)} records; "
          f"{len(results)} seed(s) from {args.seed}; model {args.model}")
    print(f"WSS@95 {100 * summary['wss95']:.1f}% (sd {100 * summary['wss95_sd']:.1f})  "
          f"WSS@100 {100 * summary['wss100']:.1f}%  RRF@10 {100 * summary['rrf10']:.1f}%")
    print("recall after " + ", ".join(f"{k}% screened {100 * v:.1f}%"
                                      for k, v in summary["recall_at"].items()))
    stop = summary["stop"]
    print(f"stopping rule ({100 * rule.recall_target:g}% recall, {100 * rule.confidence:g}% "
          f"confidence): stopped after {stop['screened']:.0f} records with recall "
          f"{100 * stop['recall']:.1f}%; the target reached in {stop['runs_reaching_target']} "
          f"of {len(results)} runs")
    print(f"{1000 * summary['seconds_per_retrain']:.1f} ms per retrain; "
          f"{summary['seconds']:.1f} s per run")
    return EXIT_OK


def cmd_screen_import(args: argparse.Namespace) -> int:
    from review.screening.decisions import DecisionStore, check_reviewer, check_stage
    from review.screening.flow import screening_state
    from review.screening.importing import read_decisions

    workspace = _workspace(args)
    stage = check_stage(args.stage, workspace.protocol)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    records = screening_state(workspace).candidates(stage)
    found = read_decisions(Path(args.file), workspace.protocol, records, stage, reviewer,
                           every_row=args.decision, rayyan_name=args.rayyan_name)
    DecisionStore(workspace.screening_dir).append(found.decisions)
    print(f"{len(found.decisions)} decisions of {reviewer} imported for the {stage} stage")
    if found.undecided_rows:
        print(f"{len(found.undecided_rows)} rows without a decision left undecided (rows "
              f"{_row_list(found.undecided_rows)})")
    if found.others_rows:
        print(f"{len(found.others_rows)} rows hold Rayyan decisions of others only "
              f"({', '.join(found.rayyan_names)}), none of "
              f"'{args.rayyan_name or reviewer}' (rows {_row_list(found.others_rows)}); "
              "give your Rayyan name with --rayyan-name")
    return EXIT_OK


def _row_list(rows: list[int], shown: int = 10) -> str:
    return ", ".join(map(str, rows[:shown])) + (", …" if len(rows) > shown else "")


def cmd_screen_export(args: argparse.Namespace) -> int:
    from review.fileio import write_atomically
    from review.screening.decisions import check_stage
    from review.screening.export import export_decisions
    from review.screening.flow import screening_state

    workspace = _workspace(args)
    stage = check_stage(args.stage, workspace.protocol)
    if args.format == "xlsx" and not args.out:
        raise ReviewError("an XLSX export needs --out FILE.xlsx")
    data = export_decisions(screening_state(workspace), stage, workspace.protocol, args.format,
                            workspace.screening_dir)
    if args.out:
        write_atomically(args.out, data)
        print(f"wrote {shown(args.out)} ({args.format}, stage {stage})")
    else:
        sys.stdout.write(data.decode("utf-8"))
    return EXIT_OK


def cmd_screen_tag(args: argparse.Namespace) -> int:
    from review.screening.decisions import check_reviewer, now, resolve_record
    from review.screening.flow import screening_state
    from review.screening.tags import TagChange, TagStore, check_tag

    workspace = _workspace(args)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    state = screening_state(workspace)
    known = {r.record_id for stage in workspace.protocol.screening.stages
             for r in state.candidates(stage)}
    record = resolve_record(args.record, known, "screening")
    tags = [check_tag(tag) for tag in args.tags]
    TagStore(workspace.screening_dir).append([TagChange(record, reviewer, tag, not args.remove,
                                                        now()) for tag in tags])
    current = TagStore(workspace.screening_dir).tags(reviewer).get(record, set())
    print(f"{record}: {reviewer}'s tags: {', '.join(sorted(current)) or 'none'}")
    return EXIT_OK


def cmd_screen_list(args: argparse.Namespace) -> int:
    from review.fulltext.store import FullTextStore
    from review.screening.decisions import DecisionStore, check_reviewer, check_stage
    from review.screening.decisions import own_decisions as decided_by
    from review.screening.filters import filter_records, parse_filter_options
    from review.screening.flow import screening_state
    from review.screening.tags import TagStore

    workspace = _workspace(args)
    stage = check_stage(args.stage, workspace.protocol)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    rule = parse_filter_options(args.filter or [])
    state = screening_state(workspace)
    own = decided_by(DecisionStore(workspace.screening_dir), stage, reviewer)
    tags = TagStore(workspace.screening_dir).tags(reviewer)
    # The reviewer is in the room: a conflict filter would tell them another's vote.
    chosen = filter_records(state.candidates(stage), rule, own=own, tags=tags,
                            fulltexts=set(FullTextStore(workspace).index()))
    rows = [{"record_id": r.record_id, "title": r.title, "year": r.year, "source": r.source,
             "decision": own[r.record_id].decision if r.record_id in own else "",
             "tags": sorted(tags.get(r.record_id, ()))} for r in chosen]
    if args.json:
        print(json.dumps({"filter": rule.describe(), "records": rows}, indent=2,
                         ensure_ascii=False))
        return EXIT_OK
    for row in rows:
        print(f"{row['record_id']}  {row['decision'] or '-':<13} {row['year'] or '----'}  "
              f"{row['title'][:70]}" + (f"  [{', '.join(row['tags'])}]" if row["tags"] else ""))
    print(f"{len(rows)} records ({rule.describe()})")
    return EXIT_OK


def cmd_screen_conflicts(args: argparse.Namespace) -> int:
    from review.screening.decisions import check_stage
    from review.screening.flow import conflicts, screening_state
    from review.screening.screener import plain

    workspace = _workspace(args)
    stage = check_stage(args.stage, workspace.protocol)
    state = screening_state(workspace)
    titles = {r.record_id: r.title for r in state.records}
    found = conflicts(state, stage)
    for conflict in found:
        print(f"{conflict.record}: {plain(titles.get(conflict.record, ''))[:90]}")
        for who, vote in sorted(conflict.votes.items()):
            reason = f" ({vote.reason})" if vote.reason else ""
            note = f" — {plain(vote.note)}" if vote.note else ""
            print(f"    {who}: {vote.decision}{reason}{note}")
    print(f"{len(found)} conflicts at the {stage} stage"
          + ("; resolve with 'review screen adjudicate'" if found else ""))
    return EXIT_DATA if found else EXIT_OK


def cmd_screen_adjudicate(args: argparse.Namespace) -> int:
    from review.screening.decisions import (
        ADJUDICATOR,
        Decision,
        DecisionStore,
        check_adjudicator,
        check_stage,
        now,
        resolve_record,
        validate_decision,
    )
    from review.screening.flow import screening_state

    workspace = _workspace(args)
    stage = check_stage(args.stage, workspace.protocol)
    adjudicator = check_adjudicator(args.adjudicator, workspace.protocol)
    known = {r.record_id for r in screening_state(workspace).candidates(stage)}
    record = resolve_record(args.record, known, stage)
    decision = Decision(record, stage, adjudicator, args.decision, args.reason or "",
                        args.note or "", role=ADJUDICATOR, time=now())
    validate_decision(decision, workspace.protocol, known)
    DecisionStore(workspace.screening_dir).append([decision])
    print(f"{record}: {args.decision} at the {stage} stage, adjudicated by {adjudicator}")
    return EXIT_OK


def cmd_screen_from_extraction(args: argparse.Namespace) -> int:
    from review.extraction.seed import include_extracted_reports

    workspace = _workspace(args)
    records, decisions = include_extracted_reports(workspace, args.source, args.reviewer)
    print(f"{records} reports added as records identified via other methods ({args.source}); "
          f"{decisions} full-text inclusions recorded by {args.reviewer}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from review.web.app import serve

    workspace = _workspace(args)
    serve(workspace.root, args.host, args.port, args.tokens)
    return EXIT_OK


def cmd_prisma(args: argparse.Namespace) -> int:
    from review.extraction.prisma_counts import write_prisma

    workspace = _workspace(args)
    out = Path(args.out) if args.out else workspace.reports_dir
    counts = write_prisma(workspace, out)
    if args.json:
        print(json.dumps(counts, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(f"records identified: {counts['records_identified']} from databases, "
              f"{counts['records_identified_other_methods']} via other methods; "
              f"{counts['duplicates_removed']} duplicates removed; "
              f"{counts['records_screened']} screened; studies included: "
              f"{counts['studies_included']} ({counts['cases_included']} patients)")
        print(f"wrote the PRISMA 2020 diagram and counts under {shown(out)}")
    return EXIT_OK


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a wrong call told in one line that names the help to read."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see "
                              f"'{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="review",
        description="Systematic reviews of clinical case reports, from protocol to report.",
    )
    parser.add_argument("--version", action="version", version=f"review {__version__}")
    parser.add_argument("--project", metavar="DIR",
                        help=f"the review workspace (default: ${PROJECT_VARIABLE}, else the "
                             "nearest folder upwards that holds protocols/)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    init = commands.add_parser("init", help="create a new review workspace",
                               description="Create a review workspace: protocols/, data/ and "
                                           "reports/, with a protocol and an empty sheet, "
                                           "under git.")
    init.add_argument("directory", metavar="DIR", help="the new workspace (must not exist or "
                                                       "be empty)")
    init.add_argument("--from", dest="from_protocol", metavar="PROTOCOL",
                      help="copy this protocol YAML instead of the commented template")
    init.add_argument("--no-git", action="store_true",
                      help="do not start a git repository (one is started, and the workspace "
                           "committed, unless a repository already encloses DIR)")
    init.set_defaults(handler=cmd_init)

    protocol = commands.add_parser("protocol", help="check or render the protocol",
                                   description="Validate the protocol and keep its "
                                               "human-readable Markdown in step with it.")
    protocol_commands = protocol.add_subparsers(dest="action", metavar="ACTION", required=True)
    protocol_commands.add_parser(
        "check", help="validate the protocol and check that its Markdown is current",
        description="Validate the protocol YAML; exit 1 when the Markdown beside it is stale.",
    ).set_defaults(handler=cmd_protocol_check)
    protocol_commands.add_parser(
        "render", help="write the human-readable protocol (Markdown) from the YAML",
        description="Write protocols/<id>.md from protocols/<id>.yaml.",
    ).set_defaults(handler=cmd_protocol_render)

    extract = commands.add_parser("extract", help="the extraction sheet",
                                  description="Validate, summarise, compare and exchange the "
                                              "extraction sheet (one row per patient).")
    extract_commands = extract.add_subparsers(dest="action", metavar="ACTION", required=True)
    validate = extract_commands.add_parser(
        "validate", help="check the sheet against the protocol's schema",
        description="Check every cell and cross-field rule; one line per problem "
                    "(FILE:ROW:COLUMN: message), exit 1 when any.",
    )
    validate.add_argument("file", nargs="?", metavar="FILE",
                          help="a sheet CSV (default: data/extraction/cases.csv)")
    validate.add_argument("--encoding", help="the file's encoding when not UTF-8, e.g. latin-1")
    validate.set_defaults(handler=cmd_extract_validate)

    template = extract_commands.add_parser(
        "template", help="write the Excel extraction workbook",
        description="Write an XLSX workbook: Cases sheet with drop-down lists and input "
                    "messages, Vocabularies, JBI Appraisal and About sheets.",
    )
    template.add_argument("--out", required=True, metavar="FILE.xlsx")
    template.add_argument("--with-cases", action="store_true",
                          help="fill the Cases and Appraisal sheets with the current sheet "
                               "and appraisals (the import then applies only what you "
                               "change), and add the first patient of every report included "
                               "at full text and not yet extracted, prefilled from its record")
    template.set_defaults(handler=cmd_extract_template)

    importer = extract_commands.add_parser(
        "import", help="validate a filled workbook and merge it into the sheet",
        description="Merge a filled workbook into the sheet (and appraisal table): cases are "
                    "matched by case_id; with any problem nothing changes. A workbook made "
                    "with --with-cases applies only the cells changed in it: a cell changed "
                    "in the workbook and in the sheet since the export is a conflict.",
        epilog="example: review extract import filled.xlsx --on-conflict sheet",
    )
    importer.add_argument("file", metavar="FILE.xlsx")
    importer.add_argument("--on-conflict", choices=("workbook", "sheet"),
                          help="settle cells changed on both sides since the export: keep "
                               "the workbook's or the sheet's value (default: refuse)")
    importer.set_defaults(handler=cmd_extract_import)

    migrate = extract_commands.add_parser(
        "migrate", help="bring the sheet's columns in line after the schema changed",
        description="Add the schema's new fields as blank columns, rename columns listed in a "
                    "field's renamed_from, remove blank columns the schema no longer has; "
                    "refuse while a removed column holds data unless it is named with --drop.",
    )
    migrate.add_argument("--drop", action="append", metavar="COLUMN",
                         help="remove this column even though it holds data (repeatable)")
    migrate.set_defaults(handler=cmd_extract_migrate)

    link = extract_commands.add_parser(
        "link", help="give each row the id of its screening record",
        description="Fill the schema's record field (type record) of every row that lacks "
                    "it with the record its report names (study id, PMID, DOI or title) "
                    "among the records assessed in full text; list the rows no record "
                    "matched. Exit 1 while any row is unlinked.")
    link.set_defaults(handler=cmd_extract_link)

    compare = extract_commands.add_parser(
        "compare", help="agreement and disagreements of two extractors",
        description="Without arguments: the workspace's double extraction (the two sheets in "
                    "data/extraction/extractors/), with the value the consensus sheet kept. "
                    "With A and B: every field where two sheets (CSV or XLSX) disagree, and "
                    "cases only one has; exit 1 when they differ. Both print the agreement per "
                    "field (percent and Cohen's kappa).",
        epilog="example: review extract compare --json",
    )
    compare.add_argument("a", metavar="A", nargs="?")
    compare.add_argument("b", metavar="B", nargs="?")
    compare.add_argument("--out", metavar="FILE.csv", help="also write the differences as CSV")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    compare.set_defaults(handler=cmd_extract_compare)

    duplicates = extract_commands.add_parser(
        "duplicates", help="patients of different reports who may be one patient",
        description="List the pairs the protocol's duplicate-patient screen finds "
                    "(extraction.duplicate_patients) with their decisions; with --decide, "
                    "record one (the later report's patient of a 'same' pair is left out of "
                    "the analysis).",
        epilog="example: review extract duplicates --decide smith_2015_1 lee_2019_1 same "
               "--reviewer ana --note 'same hospital, same course'",
    )
    duplicates.add_argument("--decide", nargs=3, metavar=("FIRST", "SECOND", "same|different"))
    duplicates.add_argument("--reviewer", help="who decided (with --decide)")
    duplicates.add_argument("--note", default="", help="why (with --decide)")
    duplicates.add_argument("--json", action="store_true", help="print one JSON object")
    duplicates.set_defaults(handler=cmd_extract_duplicates)

    summary = extract_commands.add_parser(
        "summary", help="patients, studies, completeness and coded counts",
        description="What to check before analysis: completeness per field and counts per "
                    "coded value.",
    )
    summary.add_argument("file", nargs="?", metavar="FILE")
    summary.add_argument("--json", action="store_true", help="machine-readable output")
    summary.set_defaults(handler=cmd_extract_summary)

    studies = extract_commands.add_parser(
        "studies", help="the study table derived from the sheet",
        description="One row per report (citation, identifiers, year, patients, basis).",
    )
    studies.add_argument("--out", metavar="FILE.csv")
    studies.set_defaults(handler=cmd_extract_studies)

    analyze = commands.add_parser(
        "analyze", help="write every analysis table and figure",
        description="Site frequencies, pooled proportions, survival by treatment and Table 1 "
                    "from the validated sheet: CSV tables and SVG/PNG figures under "
                    "reports/<review>/ (or --out).",
    )
    analyze.add_argument("--out", metavar="DIR", help="output folder (default: reports/<id>/)")
    analyze.add_argument("--conf-type", choices=["log-log", "log"], default="log-log",
                         help="Kaplan-Meier confidence band transform (R's default is log)")
    analyze.add_argument("--interval", choices=["wilson", "clopper-pearson"], default="wilson",
                         help="confidence interval of site frequencies")
    analyze.set_defaults(handler=cmd_analyze)

    build = commands.add_parser(
        "build", help="rebuild the report, every table and figure",
        description="Validate, analyse and write reports/<review>/: report.html (self-"
                    "contained), figures/ (SVG, PNG), tables/ (CSV, Markdown) and "
                    "manifest.json. Skipped when nothing changed since the manifest.",
    )
    build.add_argument("--out", metavar="DIR", help="output folder (default: reports/<id>/)")
    build.add_argument("--check", action="store_true",
                       help="rebuild into a temporary folder and exit 1 when the committed "
                            "report differs (stale)")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    build.add_argument("--quiet", action="store_true", help="no progress messages")
    build.set_defaults(handler=cmd_build)

    search = commands.add_parser("search", help="PubMed searches from the protocol",
                                 description="Build, run and compare the protocol's PubMed "
                                             "search.")
    search_commands = search.add_subparsers(dest="action", metavar="ACTION", required=True)
    query = search_commands.add_parser(
        "query", help="print the PubMed query built from the protocol",
        description="Print the query (concepts ORed inside, ANDed together, limits, NOT "
                    "blocks, fully parenthesised) and lint it; exit 1 on lint problems.")
    query.add_argument("--format", choices=["text", "json"], default="text")
    query.set_defaults(handler=cmd_search_query)
    run = search_commands.add_parser(
        "run", help="run the search through E-utilities (resumes an interrupted run)",
        description="ESearch with the history server, then EFetch in batches; raw replies "
                    "under data/search/runs/<run-id>/; an interrupted run resumes. Settings: "
                    "NCBI_EMAIL, NCBI_API_KEY, NCBI_TOOL or ~/.config/casereview/eutils.yaml.")
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
    ).set_defaults(handler=cmd_search_diff)
    log = search_commands.add_parser("log", help="the search log (PRISMA-S)",
                                     description="Every search run and import, in order.")
    log.add_argument("--json", action="store_true")
    log.set_defaults(handler=cmd_search_log)

    importer = commands.add_parser(
        "import", help="import exported records (PubMed XML, MEDLINE, RIS, WoS, CSV/TSV, "
                       "XLSX, EndNote XML, BibTeX)",
        description="Read exports into data/search/records.jsonl. Every record of every file "
                    "is kept (de-duplication joins them later); importing the same file "
                    "again adds nothing; a bad file changes nothing.")
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

    dedup = commands.add_parser(
        "dedup", help="find duplicate records (clusters, audit, review queue)",
        description="Cluster the database records: identifiers first, then title, first "
                    "author, year (±1) and venue. Writes data/dedup/clusters.csv (audit), "
                    "queue.csv (uncertain pairs) and decisions.csv (reviewers' verdicts).")
    dedup_commands = dedup.add_subparsers(dest="action", metavar="ACTION")
    dedup.set_defaults(handler=cmd_dedup)
    dedup_review = dedup_commands.add_parser(
        "review", help="decide the uncertain pairs (interactive, or a filled queue CSV)",
        description="Ask about each uncertain pair, or read FILE (queue.csv with the "
                    "duplicate column filled with yes or no). Decisions are never asked again.")
    dedup_review.add_argument("--reviewer", required=True)
    dedup_review.add_argument("--file", metavar="QUEUE.csv")
    dedup_review.set_defaults(handler=cmd_dedup_review)

    screen = commands.add_parser(
        "screen", help="screen records (interactive), import, conflicts, adjudicate",
        description="Without an action: screen one record at a time in the terminal "
                    "(--stage and --reviewer). Keys: i include, e exclude, m maybe, r not "
                    "retrieved (full text), n note, u undo, b back, f forward, q quit.")
    screen.add_argument("--stage", help="title-abstract or full-text")
    screen.add_argument("--reviewer", help="your name as the protocol lists it")
    screen.set_defaults(handler=cmd_screen)
    screen_commands = screen.add_subparsers(dest="action", metavar="ACTION")
    screen_import = screen_commands.add_parser(
        "import", help="decisions made elsewhere (spreadsheet, Rayyan, ASReview, Covidence)",
        description="Match rows to records by record_id, PMID, DOI or title; validate every "
                    "row; store nothing unless all are valid. Rayyan's per-reviewer "
                    "decisions are read for --reviewer only.")
    screen_import.add_argument("file", metavar="FILE")
    screen_import.add_argument("--stage", required=True)
    screen_import.add_argument("--reviewer", required=True)
    screen_import.add_argument("--decision", metavar="DECISION",
                               help="the decision of every row, for an export of one list "
                                    "(e.g. Covidence's Included) without a decision column")
    screen_import.add_argument("--rayyan-name", metavar="NAME",
                               help="your name in Rayyan's decisions, if not --reviewer")
    screen_import.set_defaults(handler=cmd_screen_import)
    screen_export = screen_commands.add_parser(
        "export", help="a stage's decisions (CSV, XLSX) or its included records (RIS)",
        description="One row per record with every reviewer's vote, reason and note, the "
                    "final decision and its adjudicator (CSV or XLSX, formula-safe); or the "
                    "records the stage included, as RIS for a reference manager.",
        epilog="example: review screen export --stage title-abstract --format xlsx "
               "--out decisions.xlsx",
    )
    screen_export.add_argument("--stage", required=True)
    screen_export.add_argument("--format", choices=("csv", "xlsx", "ris"), default="csv")
    screen_export.add_argument("--out", metavar="FILE", help="write to FILE (default: print)")
    screen_export.set_defaults(handler=cmd_screen_export)
    tag = screen_commands.add_parser(
        "tag", help="put free tags on a record (your own, blinded)",
        description="Add (or with --remove, take off) the reviewer's own tags on a record; "
                    "kept in data/screening/tags/<reviewer>.jsonl.",
        epilog="example: review screen tag r3f2a --reviewer ana pediatric 'ask ben'")
    tag.add_argument("record", metavar="RECORD_ID",
                     help="the record id or any start of it that is unique")
    tag.add_argument("tags", nargs="+", metavar="TAG")
    tag.add_argument("--reviewer", required=True)
    tag.add_argument("--remove", action="store_true")
    tag.set_defaults(handler=cmd_screen_tag)
    listing = screen_commands.add_parser(
        "list", help="the stage's records, filtered",
        description="The records of a stage that every --filter keeps: decision (your own: "
                    "undecided, include, exclude, maybe, not-retrieved), tag, source, year "
                    "(2019 or 2015-2020), keyword, fulltext (yes/no).",
        epilog="example: review screen list --stage title-abstract --reviewer ana "
               "--filter decision=maybe --filter year=2015-2020 --json")
    listing.add_argument("--stage", required=True)
    listing.add_argument("--reviewer", required=True)
    listing.add_argument("--filter", action="append", metavar="KEY=VALUE")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_screen_list)
    screen_conflicts = screen_commands.add_parser(
        "conflicts", help="records where reviewers disagree",
        description="Records where an exclusion meets an inclusion or maybe, with each "
                    "vote; exit 1 while any remain.")
    screen_conflicts.add_argument("--stage", required=True)
    screen_conflicts.set_defaults(handler=cmd_screen_conflicts)
    adjudicate = screen_commands.add_parser(
        "adjudicate", help="resolve a record's conflict",
        description="Record an adjudicator's decision, which becomes the final one.")
    adjudicate.add_argument("record", metavar="RECORD_ID",
                            help="the record id or any start of it that is unique")
    adjudicate.add_argument("--stage", required=True)
    adjudicate.add_argument("--decision", required=True,
                            choices=["include", "exclude", "maybe", "not-retrieved"])
    adjudicate.add_argument("--reason", help="exclusion reason id from the protocol")
    adjudicate.add_argument("--note")
    adjudicate.add_argument("--adjudicator", required=True)
    adjudicate.set_defaults(handler=cmd_screen_adjudicate)
    seed = screen_commands.add_parser(
        "from-extraction", help="the sheet's reports as other-method records, included",
        description="For a review assembled from web and reference-list searches: add each "
                    "report of the extraction sheet as a record identified via other methods "
                    "and record its full-text inclusion.")
    seed.add_argument("--source", required=True, help="how the reports were found")
    seed.add_argument("--reviewer", required=True)
    seed.set_defaults(handler=cmd_screen_from_extraction)
    stop = screen_commands.add_parser(
        "stop", help="may this reviewer stop screening? (the stopping rule)",
        description="The hypergeometric stopping rule (Callaghan & Müller-Hansen 2020) on the "
                    "reviewer's own decisions in the order made: whether recall of the "
                    "protocol's target (screening.stopping.recall_target, default 95%%) is "
                    "shown with its confidence (default 95%%), the recall shown, and the "
                    "records screened and left. Exit 0 either way.",
        epilog="example: review screen stop --stage title-abstract --reviewer ana --json")
    stop.add_argument("--stage", required=True)
    stop.add_argument("--reviewer", required=True)
    stop.add_argument("--json", action="store_true", help="print one JSON object")
    stop.set_defaults(handler=cmd_screen_stop)
    simulate = screen_commands.add_parser(
        "simulate", help="replay a labelled review to measure the ranking and stopping rule",
        description="Screen a labelled set (CSV, TSV or XLSX with title, abstract and a 0/1 "
                    "label column) in the model's order as a reviewer who always answers "
                    "truthfully, and print WSS@95, WSS@100, RRF@10, recall after 10/25/50%% "
                    "screened, where the stopping rule stopped with the recall there, and "
                    "the time per retrain. Nothing in the workspace is read or changed.",
        epilog="example: review screen simulate labelled.csv --seeds 5 "
               "--drop-missing-abstracts --json")
    simulate.add_argument("file", metavar="LABELLED")
    simulate.add_argument("--label-column", default="label_included")
    simulate.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    simulate.add_argument("--seeds", type=int, default=1, help="how many seeds to run")
    simulate.add_argument("--prior-included", type=int, default=1, metavar="K")
    simulate.add_argument("--prior-excluded", type=int, default=1, metavar="K")
    simulate.add_argument("--model", choices=RANKING_MODELS,
                          default="naive_bayes")
    simulate.add_argument("--recall-target", type=float, default=0.95)
    simulate.add_argument("--confidence", type=float, default=0.95)
    simulate.add_argument("--drop-missing-abstracts", action="store_true",
                          help="leave out records without an abstract, as published "
                               "simulation studies do")
    simulate.add_argument("--json", action="store_true", help="print one JSON object")
    simulate.set_defaults(handler=cmd_screen_simulate)

    add_fulltext_commands(commands, _workspace)

    serve = commands.add_parser(
        "serve", help="the reviewers' web app: screening, conflicts, progress",
        description="Serve the workspace to reviewers in the browser, on the same files and "
                    "locks as the CLI. Bound to 127.0.0.1 by default, with a chooser of the "
                    "protocol's reviewers; another address needs --tokens (one sign-in link "
                    "per reviewer, printed at start).")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--tokens", action="store_true",
                       help="sign reviewers in by a per-reviewer token (required off 127.0.0.1)")
    serve.set_defaults(handler=cmd_serve)

    prisma = commands.add_parser(
        "prisma", help="the PRISMA 2020 flow diagram and counts",
        description="Draw the PRISMA 2020 flow diagram (SVG, PNG) and write its counts in "
                    "the PRISMA2020 R package's CSV format.")
    prisma.add_argument("--out", metavar="DIR", help="output folder (default: reports/<id>/)")
    prisma.add_argument("--json", action="store_true",
                        help="print the counts as JSON only (the files are still written)")
    prisma.set_defaults(handler=cmd_prisma)

    status = commands.add_parser("status", help="where the review stands",
                                 description="Records identified per source, search runs, "
                                             "imports and extraction.")
    status.add_argument("--json", action="store_true", help="machine-readable counts")
    status.set_defaults(handler=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except DataProblems as problems:
        _print_problems(problems)
        return EXIT_DATA
    except ReviewErrors as errors:
        for message in errors.messages:
            print(f"review: error: {one_line(message)}", file=sys.stderr)
        return EXIT_USAGE
    except ReviewError as error:
        print(f"review: error: {one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `head`) has gone; stop quietly instead of failing on flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"review: error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("review: interrupted", file=sys.stderr)
        return 130
