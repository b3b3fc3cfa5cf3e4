"""The `review` command: a thin layer over the Python API of each step. Each step declares
its own subcommands beside its code (`review/<step>/commands.py`); this module assembles them
and maps errors to exit statuses.

Exit status: 0 success, 1 the data has problems, 2 usage or file errors. Data and file
problems are reported as lines addressed FILE:ROW:COLUMN, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from review import __version__
from review.commands import EXIT_DATA, EXIT_OK, EXIT_USAGE, shown, workspace_of
from review.errors import DataProblems, ReviewError, ReviewErrors, one_line
from review.extraction.commands import add_commands as add_extraction_commands
from review.fulltext.commands import add_commands as add_fulltext_commands
from review.protocol_commands import add_commands as add_protocol_commands
from review.report.commands import add_commands as add_report_commands
from review.screening.commands import add_commands as add_screening_commands
from review.search.commands import add_commands as add_search_commands
from review.web.commands import add_commands as add_web_commands
from review.workspace import APPRAISAL_TOOLS, PROJECT_VARIABLE


def _print_problems(problems: DataProblems) -> None:
    for problem in problems.problems:
        print(problem)
    print(f"{len(problems.problems)} problem(s)")


def cmd_init(args: argparse.Namespace) -> int:
    from review.workspace import create_workspace, start_git_repository

    workspace = create_workspace(args.directory, args.from_protocol, args.appraisal)
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


def cmd_status(args: argparse.Namespace) -> int:
    from review.status import review_status, status_lines

    status = review_status(workspace_of(args))
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print("\n".join(status_lines(status)))
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
                                           "under git.",
        epilog="example: review init ../abscess-review --from ~/protocols/abscess.yaml")
    init.add_argument("directory", metavar="DIR", help="the new workspace (must not exist or "
                                                       "be empty)")
    init.add_argument("--from", dest="from_protocol", metavar="PROTOCOL",
                      help="copy this protocol YAML instead of the commented template")
    init.add_argument("--appraisal", choices=APPRAISAL_TOOLS, default="jbi",
                      help="the critical appraisal tool of the template: the JBI checklist "
                           "for case reports (default) or the tool of Murad et al. (2018)")
    init.add_argument("--no-git", action="store_true",
                      help="do not start a git repository (one is started, and the workspace "
                           "committed, unless a repository already encloses DIR)")
    init.set_defaults(handler=cmd_init)

    # Each step declares its own commands, in the order the data flows.
    add_protocol_commands(commands)
    add_search_commands(commands)
    screen_commands = add_screening_commands(commands)
    add_fulltext_commands(commands, screen_commands)
    add_extraction_commands(commands, screen_commands)
    add_report_commands(commands)
    add_web_commands(commands)

    status = commands.add_parser("status", help="where the review stands",
                                 description="Records identified per source, search runs, "
                                             "imports and extraction.",
        epilog="example: review status --json")
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
