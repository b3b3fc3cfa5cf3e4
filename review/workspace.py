"""A review workspace: a folder holding protocols/, data/ and reports/.

Where each step keeps its files is decided here and nowhere else, so the folders show the flow
protocol → search records → deduplicated records → screening decisions → full texts →
extraction sheet → analysis tables → report.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

import yaml

from review.errors import ReviewError
from review.fileio import read_text, write_atomically
from review.protocol import (
    Protocol,
    load_protocol,
    not_one_of,
    parse_protocol,
    write_protocol_schema,
)
from review.protocol_document import render_protocol_markdown

PROJECT_VARIABLE = "REVIEW_PROJECT"


@dataclass(frozen=True)
class Workspace:
    """The folders of one review and the protocol that governs them."""

    root: Path

    @classmethod
    def locate(cls, explicit: str | os.PathLike | None = None) -> Workspace:
        """The workspace named by --project, else $REVIEW_PROJECT, else the nearest parent
        of the current folder that holds a protocols/ folder."""
        chosen = explicit or os.environ.get(PROJECT_VARIABLE)
        if chosen:
            root = Path(chosen)
            if not (root / "protocols").is_dir():
                raise ReviewError(f"{root}: not a review workspace (no protocols/ folder); "
                                  "create one with 'review init DIR'")
            return cls(root.resolve())
        here = Path.cwd().resolve()
        for folder in (here, *here.parents):
            if (folder / "protocols").is_dir():
                return cls(folder)
        raise ReviewError("no review workspace here (no protocols/ folder in this folder or "
                          "its parents); use --project DIR or create one with 'review init DIR'")

    @property
    def protocol_path(self) -> Path:
        found = sorted((self.root / "protocols").glob("*.yaml"))
        if len(found) != 1:
            names = ", ".join(path.name for path in found) or "none"
            raise ReviewError(f"{self.root / 'protocols'}: expected exactly one protocol "
                              f"*.yaml, found {names}")
        return found[0]

    @cached_property
    def protocol(self) -> Protocol:
        return load_protocol(self.protocol_path)

    @property
    def protocol_document_path(self) -> Path:
        return self.protocol_path.with_suffix(".md")

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def search_dir(self) -> Path:
        return self.data_dir / "search"

    @property
    def screening_dir(self) -> Path:
        return self.data_dir / "screening"

    @property
    def fulltext_dir(self) -> Path:
        """The full texts' index and lookups (committed) and their PDFs (`files/`, ignored)."""
        return self.data_dir / "fulltext"

    @property
    def extraction_dir(self) -> Path:
        return self.data_dir / "extraction"

    @property
    def cases_path(self) -> Path:
        return self.extraction_dir / "cases.csv"

    @property
    def extractors_dir(self) -> Path:
        """One sheet per extractor of a double extraction, `<extractor>.csv`."""
        return self.extraction_dir / "extractors"

    @property
    def appraisal_path(self) -> Path:
        return self.extraction_dir / "appraisal.csv"

    @property
    def duplicate_decisions_path(self) -> Path:
        """The reviewers' decisions on the pairs of the duplicate-patient screen."""
        return self.extraction_dir / "duplicate_patients.csv"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports" / self.protocol.id


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug if slug[:1].isalpha() else f"review-{slug}".rstrip("-")


APPRAISAL_TOOLS = ("jbi", "murad-2018")


def _template_text(appraisal_tool: str) -> str:
    """The commented protocol template, with the chosen appraisal tool's block."""
    templates = resources.files("review") / "templates"
    text = (templates / "protocol.yaml").read_text(encoding="utf-8")
    if appraisal_tool == "jbi":
        return text
    if appraisal_tool not in APPRAISAL_TOOLS:
        raise ReviewError(f"--appraisal: {not_one_of(appraisal_tool, APPRAISAL_TOOLS)}")
    start = text.index("  # The JBI checklist")
    end = text.index("\nanalysis:", start) + 1
    tool = (templates / "appraisal" / f"{appraisal_tool}.yaml").read_text(encoding="utf-8")
    return text[:start] + tool + "\n" + text[end:]


def create_workspace(target: str | os.PathLike, from_protocol: str | os.PathLike | None = None,
                     appraisal_tool: str = "jbi") -> Workspace:
    """Lay out a new review: its protocol (copied, or the commented template with the chosen
    appraisal tool), the data folders, an empty extraction sheet in the protocol's columns
    and the rendered protocol."""
    # Imported here: pandas is too heavy for the commands that only locate a workspace.
    from review.extraction.sheet import empty_cases, format_cases_csv

    root = Path(target)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ReviewError(f"{root}: already exists and is not an empty folder")
    if from_protocol is not None and appraisal_tool != "jbi":
        raise ReviewError("--appraisal chooses the template's tool; a protocol given with "
                          "--from keeps its own appraisal")
    if from_protocol is not None:
        source = Path(from_protocol)
        text = read_text(source)
        protocol = load_protocol(source)
        name = source.name
    else:
        text = _template_text(appraisal_tool).replace("REVIEW_ID", _slug(root.name), 1)
        protocol = parse_protocol(yaml.safe_load(text), source="the protocol template")
        name = f"{protocol.id}.yaml"
    workspace = Workspace(root.resolve())
    for folder in (workspace.search_dir, workspace.screening_dir, workspace.extraction_dir,
                   workspace.root / "reports"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".gitkeep").touch()
    (workspace.root / "protocols").mkdir(exist_ok=True)
    protocol_path = workspace.root / "protocols" / name
    write_atomically(protocol_path, text)
    write_protocol_schema(protocol_path)
    write_atomically(workspace.cases_path, format_cases_csv(empty_cases(protocol.extraction),
                                                            protocol.extraction))
    write_atomically(protocol_path.with_suffix(".md"),
                     render_protocol_markdown(protocol, protocol_path.name))
    return workspace


def start_git_repository(root: Path) -> str:
    """Start a git repository at `root` unless one already encloses it, and commit the new
    workspace (the report is dated by the last commit of its data). Returns what was done."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=60, check=False)

    try:
        inside = git("rev-parse", "--is-inside-work-tree")
    except OSError:
        return "git is not installed: put the workspace under version control yourself"
    if inside.returncode == 0:
        return "the workspace is inside an existing git repository; commit it there"
    if git("init", "--quiet").returncode != 0:
        return "could not start a git repository here"
    git("add", "--all")
    committed = git("commit", "--quiet", "--message", "Start the review workspace")
    if committed.returncode != 0:
        return ("started a git repository; commit the workspace (git add -A && git commit) "
                "once git knows your name and e-mail")
    return "started a git repository and committed the new workspace"
