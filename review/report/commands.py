"""`review analyze` and `review build`: the report step's commands, registered by `review.cli`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from review.commands import EXIT_DATA, EXIT_OK, shown, workspace_of


def cmd_analyze(args: argparse.Namespace) -> int:
    from analysis.review_analysis import analyze_review, headline, write_analysis
    from review.extraction.validate import validated_cases

    workspace = workspace_of(args)
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

    workspace = workspace_of(args)

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


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `analyze` and `build` to `commands`."""
    analyze = commands.add_parser(
        "analyze", help="write every analysis table and figure",
        description="Site frequencies, pooled proportions, survival by treatment and Table 1 "
                    "from the validated sheet: CSV tables and SVG/PNG figures under "
                    "reports/<review>/ (or --out).",
        epilog="example: review analyze --out /tmp/analysis",
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
        epilog="example: review build --check",
    )
    build.add_argument("--out", metavar="DIR", help="output folder (default: reports/<id>/)")
    build.add_argument("--check", action="store_true",
                       help="rebuild into a temporary folder and exit 1 when the committed "
                            "report differs (stale)")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    build.add_argument("--quiet", action="store_true", help="no progress messages")
    build.set_defaults(handler=cmd_build)
