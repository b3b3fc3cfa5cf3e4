"""`review extract …`, `review screen from-extraction` and `review prisma`: the extraction
step's commands, registered by `review.cli`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from review.commands import EXIT_DATA, EXIT_OK, shown, workspace_of
from review.errors import DataProblems, ReviewError
from review.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd

    from review.extraction.compare import ExtractionComparison

def cmd_extract_validate(args: argparse.Namespace) -> int:
    from review.extraction.sheet import read_cases
    from review.extraction.validate import validate_cases

    workspace = workspace_of(args)
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

    workspace = workspace_of(args)
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

    workspace = workspace_of(args)
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

    workspace = workspace_of(args)
    plan = migrate_sheet(workspace, args.drop or ())
    changes = plan.describe()
    for change in changes:
        print(f"{shown(workspace.cases_path)}: {change}")
    print(f"{shown(workspace.cases_path)}: " + (f"{len(changes)} column changes written"
                                              if changes else "already in the schema's columns"))
    return EXIT_OK


def cmd_extract_link(args: argparse.Namespace) -> int:
    from review.extraction.links import link_sheet

    workspace = workspace_of(args)
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

    workspace = workspace_of(args)
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

    workspace = workspace_of(args)
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

    workspace = workspace_of(args)
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

    workspace = workspace_of(args)
    schema = workspace.protocol.extraction
    table = study_table(read_cases(workspace.cases_path, schema), schema)
    text = safe_csv(table)
    if args.out:
        write_atomically(args.out, text)
        print(f"wrote {shown(args.out)}: {len(table)} studies")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_screen_from_extraction(args: argparse.Namespace) -> int:
    from review.extraction.seed import include_extracted_reports

    workspace = workspace_of(args)
    records, decisions = include_extracted_reports(workspace, args.source, args.reviewer)
    print(f"{records} reports added as records identified via other methods ({args.source}); "
          f"{decisions} full-text inclusions recorded by {args.reviewer}")
    return EXIT_OK


def cmd_prisma(args: argparse.Namespace) -> int:
    from review.extraction.prisma_counts import write_prisma

    workspace = workspace_of(args)
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


def add_commands(commands: argparse._SubParsersAction,
                 screen_commands: argparse._SubParsersAction) -> None:
    """Add `extract` and `prisma` to `commands`, and `from-extraction` to `screen`."""
    extract = commands.add_parser("extract", help="the extraction sheet",
                                  description="Validate, summarise, compare and exchange the "
                                              "extraction sheet (one row per patient).")
    extract_commands = extract.add_subparsers(dest="action", metavar="ACTION", required=True)
    validate = extract_commands.add_parser(
        "validate", help="check the sheet against the protocol's schema",
        description="Check every cell and cross-field rule; one line per problem "
                    "(FILE:ROW:COLUMN: message), exit 1 when any.",
        epilog="example: review extract validate data/extraction/cases.csv",
    )
    validate.add_argument("file", nargs="?", metavar="FILE",
                          help="a sheet CSV (default: data/extraction/cases.csv)")
    validate.add_argument("--encoding", help="the file's encoding when not UTF-8, e.g. latin-1")
    validate.set_defaults(handler=cmd_extract_validate)

    template = extract_commands.add_parser(
        "template", help="write the Excel extraction workbook",
        description="Write an XLSX workbook: Cases sheet with drop-down lists and input "
                    "messages, Vocabularies, JBI Appraisal and About sheets.",
        epilog="example: review extract template --out extraction.xlsx --with-cases",
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
        epilog="example: review extract migrate --drop old_column",
    )
    migrate.add_argument("--drop", action="append", metavar="COLUMN",
                         help="remove this column even though it holds data (repeatable)")
    migrate.set_defaults(handler=cmd_extract_migrate)

    link = extract_commands.add_parser(
        "link", help="give each row the id of its screening record",
        description="Fill the schema's record field (type record) of every row that lacks "
                    "it with the record its report names (study id, PMID, DOI or title) "
                    "among the records assessed in full text; list the rows no record "
                    "matched. Exit 1 while any row is unlinked.",
        epilog="example: review extract link")
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
        epilog="example: review extract summary --json",
    )
    summary.add_argument("file", nargs="?", metavar="FILE")
    summary.add_argument("--json", action="store_true", help="machine-readable output")
    summary.set_defaults(handler=cmd_extract_summary)

    studies = extract_commands.add_parser(
        "studies", help="the study table derived from the sheet",
        description="One row per report (citation, identifiers, year, patients, basis).",
        epilog="example: review extract studies --out studies.csv",
    )
    studies.add_argument("--out", metavar="FILE.csv")
    studies.set_defaults(handler=cmd_extract_studies)

    seed = screen_commands.add_parser(
        "from-extraction", help="the sheet's reports as other-method records, included",
        description="For a review assembled from web and reference-list searches: add each "
                    "report of the extraction sheet as a record identified via other methods "
                    "and record its full-text inclusion.",
        epilog="example: review screen from-extraction --source 'Web and reference-list "
               "searches' --reviewer pilot-team")
    seed.add_argument("--source", required=True, help="how the reports were found")
    seed.add_argument("--reviewer", required=True)
    seed.set_defaults(handler=cmd_screen_from_extraction)

    prisma = commands.add_parser(
        "prisma", help="the PRISMA 2020 flow diagram and counts",
        description="Draw the PRISMA 2020 flow diagram (SVG, PNG) and write its counts in "
                    "the PRISMA2020 R package's CSV format.",
        epilog="example: review prisma --json")
    prisma.add_argument("--out", metavar="DIR", help="output folder (default: reports/<id>/)")
    prisma.add_argument("--json", action="store_true",
                        help="print the counts as JSON only (the files are still written)")
    prisma.set_defaults(handler=cmd_prisma)
