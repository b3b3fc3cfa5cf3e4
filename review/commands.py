"""What every step's commands share: the exit statuses, the workspace a command works on, and
paths shown as the user would type them. Each step declares its own subcommands
(`review/<step>/commands.py`); `review.cli` assembles them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from review.workspace import Workspace

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


def shown(path: str | os.PathLike) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        relative = os.path.relpath(Path(path).resolve(), Path.cwd())
    except (OSError, RuntimeError):  # a symlink loop; the command reports it when it reads
        return str(path)
    return str(path) if relative.startswith("..") else relative


def workspace_of(args: argparse.Namespace) -> Workspace:
    """The workspace `--project` (or the environment, or the current folder) names, with any
    change a killed command left half done completed first."""
    from review.transaction import settle

    workspace = Workspace.locate(args.project)
    settle(workspace.root)
    return workspace
