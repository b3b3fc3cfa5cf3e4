"""`review fulltext …`: the full-text step's commands, registered by `review.cli`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from review.commands import EXIT_DATA, EXIT_OK, workspace_of


def cmd_screen_list(args: argparse.Namespace) -> int:
    """`review screen list`, declared by this step because one of its filters asks which
    records have a full text, which the screening step before it cannot know."""
    from review.fulltext.store import FullTextStore
    from review.screening.decisions import check_reviewer, check_stage
    from review.screening.filters import parse_filter_options, reviewer_view
    from review.screening.flow import screening_state

    workspace = workspace_of(args)
    stage = check_stage(args.stage, workspace.protocol)
    reviewer = check_reviewer(args.reviewer, workspace.protocol)
    rule = parse_filter_options(args.filter or [])
    # The reviewer is in the room: a conflict filter would tell them another's vote.
    view = reviewer_view(screening_state(workspace), workspace.screening_dir, stage, reviewer,
                         rule, fulltexts=set(FullTextStore(workspace).index()))
    chosen, own, tags = view.records, view.own, view.tags
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


def add_commands(commands: argparse._SubParsersAction,
                 screen_commands: argparse._SubParsersAction) -> None:
    """Add `fulltext attach | attach-dir | find | status | not-retrieved` to `commands`, and
    `list` (whose filters know the full texts) to `screen`."""

    def attach(args: argparse.Namespace) -> int:
        from review.fulltext.attach import attach as attach_pdf
        from review.fulltext.attach import read_pdf_file

        workspace = workspace_of(args)
        path = Path(args.file)
        data = read_pdf_file(path, workspace.protocol.fulltext.max_bytes)
        entry, changed = attach_pdf(workspace, args.record, data, source="path",
                                    origin=path.name, shown_as=str(path), replace=args.replace)
        print(f"{entry.record_id}: {'attached' if changed else 'already attached'} "
              f"{path.name} ({entry.pages} pages, {entry.bytes:,} bytes, "
              f"sha256 {entry.sha256[:12]})")
        return EXIT_OK

    def attach_dir(args: argparse.Namespace) -> int:
        from review.fulltext.attach import attach_folder

        result = attach_folder(workspace_of(args), Path(args.folder), replace=args.replace)
        for path, record, why in result.attached:
            print(f"{record}: attached {path.name} (matched by {why})")
        for path, record in result.unchanged:
            print(f"{record}: {path.name} already attached")
        for path in result.unmatched:
            print(f"{path}: no record matched (no DOI, PMID or title of a full-text record "
                  "found); attach it with 'review fulltext attach RECORD_ID FILE'")
        for path, records in result.ambiguous:
            print(f"{path}: matches {len(records)} records ({', '.join(records)}); attach it "
                  "by record id")
        for message in result.refused:
            print(message)
        print(f"{len(result.attached)} attached, {len(result.unchanged)} already attached, "
              f"{len(result.unmatched)} unmatched, {len(result.ambiguous)} ambiguous, "
              f"{len(result.refused)} refused")
        return EXIT_OK if result.complete else EXIT_DATA

    def find(args: argparse.Namespace) -> int:
        from review.fulltext.find import OpenAccessConfig, OpenAccessFinder, find_open_copies

        workspace = workspace_of(args)
        overrides = {name: value for name, value in (("timeout", args.timeout),
                                                     ("max_attempts", args.max_attempts))
                     if value is not None}
        finder = OpenAccessFinder(OpenAccessConfig.from_environment(**overrides),
                                  workspace.protocol.fulltext.services)
        result = find_open_copies(workspace, finder, again=args.again,
                                  report=None if args.quiet else print)
        print(f"{len(result.retrieved)} retrieved, {len(result.no_open_copy)} with no open "
              f"copy, {len(result.failed)} failed (tried again by the next run), "
              f"{result.skipped} already settled; {result.requests} requests")
        return EXIT_DATA if result.failed else EXIT_OK

    def status(args: argparse.Namespace) -> int:
        from review.fulltext.status import fulltext_status

        found = fulltext_status(workspace_of(args))
        if args.json:
            print(json.dumps(found.to_dict(), indent=2))
            return EXIT_OK
        print(f"reports sought: {len(found.sought)}; retrieved {len(found.retrieved)}, not "
              f"retrieved {len(found.not_retrieved)}, no open copy found "
              f"{len(found.no_open_copy)}, lookup failed {len(found.failed)}, not looked up "
              f"{len(found.not_looked_up)}")
        for record, lookup in sorted(found.failed.items()):
            print(f"  {record}: lookup failed: {lookup.detail}")
        for record in sorted(found.no_open_copy):
            print(f"  {record}: no open copy")
        if found.elsewhere:
            print(f"{len(found.elsewhere)} PDFs listed in the index are not on this machine "
                  f"({', '.join(found.elsewhere[:5])}{', …' if len(found.elsewhere) > 5 else ''})",
                  file=sys.stderr)
        return EXIT_OK

    def not_retrieved(args: argparse.Namespace) -> int:
        from review.fulltext.status import mark_not_retrieved

        marked = mark_not_retrieved(workspace_of(args), args.by, args.note or "", args.records)
        for record in marked:
            print(f"{record}: not retrieved ({args.note.strip()}), recorded by {args.by}")
        return EXIT_OK

    fulltext = commands.add_parser(
        "fulltext", help="the reports' PDFs: attach, find open copies, status",
        description="Full texts of the records assessed in full text, kept content-addressed "
                    "in data/fulltext/ (the index is committed, the PDFs are not).")
    actions = fulltext.add_subparsers(dest="fulltext_command", metavar="ACTION", required=True)
    one = actions.add_parser("attach", help="attach a PDF to a record",
                             description="Check FILE as a PDF and store it as the full text "
                                         "of RECORD_ID.",
        epilog="example: review fulltext attach r3f2a okafor2020.pdf")
    one.add_argument("record", metavar="RECORD_ID",
                     help="the record id or any start of it that is unique")
    one.add_argument("file", metavar="FILE.pdf")
    one.add_argument("--replace", action="store_true",
                     help="put this PDF in place of the record's current one")
    one.set_defaults(handler=attach)
    many = actions.add_parser(
        "attach-dir", help="attach a folder of PDFs, matched to records",
        description="Attach every PDF under DIR to the record whose DOI or PMID is in its file "
                    "name, its metadata or its first page (else whose title is on its first "
                    "page); list the files no record, or more than one, matched. Exit 1 "
                    "when any file was not attached.",
        epilog="example: review fulltext attach-dir ~/Downloads/pdfs")
    many.add_argument("folder", metavar="DIR")
    many.add_argument("--replace", action="store_true")
    many.set_defaults(handler=attach_dir)
    finder = actions.add_parser(
        "find", help="retrieve open-access copies (Unpaywall, PubMed Central)",
        description="For each full-text record without a PDF, ask the protocol's services "
                    "(fulltext.services) by DOI and PMID, download and check the open copy "
                    "and store it. Needs UNPAYWALL_EMAIL or NCBI_EMAIL for Unpaywall; "
                    "REVIEW_UNPAYWALL_URL and REVIEW_PMC_URL point at mirrors. Resumes after "
                    "an interruption; exit 1 when a lookup failed.",
        epilog="example: UNPAYWALL_EMAIL=you@example.org review fulltext find")
    finder.add_argument("--stage", choices=["full-text"], default="full-text",
                        help="the records sought (those assessed in full text)")
    finder.add_argument("--again", action="store_true",
                        help="ask again for records found to have no open copy")
    finder.add_argument("--timeout", type=float, help="seconds per reply (default 60)")
    finder.add_argument("--max-attempts", type=int, help="tries per request (default 4)")
    finder.add_argument("--quiet", action="store_true", help="print only the summary")
    finder.set_defaults(handler=find)
    state = actions.add_parser("status", help="sought, retrieved, not retrieved",
                               description="The full texts sought, retrieved and not "
                                           "retrieved (PRISMA 2020), and what is left.",
        epilog="example: review fulltext status --json")
    state.add_argument("--json", action="store_true")
    state.set_defaults(handler=status)
    unobtainable = actions.add_parser(
        "not-retrieved", help="record that full texts could not be obtained",
        description="Record as settled that the named reports (by default every one an "
                    "open-access lookup found no copy of) could not be retrieved, with why; "
                    "PRISMA counts them as reports not retrieved.",
        epilog="example: review fulltext not-retrieved --by judge --note 'not held by the library'")
    unobtainable.add_argument("records", nargs="*", metavar="RECORD_ID")
    unobtainable.add_argument("--by", required=True, help="an adjudicator or reviewer")
    unobtainable.add_argument("--note", required=True,
                              help="why (e.g. 'not held by the library; authors did not reply')")
    unobtainable.set_defaults(handler=not_retrieved)

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
