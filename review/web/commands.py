"""`review serve`: the web app's command, registered by `review.cli`."""

from __future__ import annotations

import argparse

from review.commands import EXIT_OK, workspace_of


def cmd_serve(args: argparse.Namespace) -> int:
    from review.web.app import serve

    workspace = workspace_of(args)
    serve(workspace.root, args.host, args.port, args.tokens)
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `serve` to `commands`."""
    serve = commands.add_parser(
        "serve", help="the reviewers' web app: screening, conflicts, progress",
        description="Serve the workspace to reviewers in the browser, on the same files and "
                    "locks as the CLI. Bound to 127.0.0.1 by default, with a chooser of the "
                    "protocol's reviewers; another address needs --tokens (one sign-in link "
                    "per reviewer, printed at start).",
        epilog="example: review serve --port 8765")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--tokens", action="store_true",
                       help="sign reviewers in by a per-reviewer token (required off 127.0.0.1)")
    serve.set_defaults(handler=cmd_serve)
