"""What a build read and wrote, and when the data last changed.

This module imports nothing heavy: `review build` uses it to decide that nothing has changed
since the last build before pandas, matplotlib or lifelines are loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from review import __version__
from review.fileio import is_temporary
from review.fulltext.store import FullTextStore
from review.workspace import Workspace

MANIFEST = "manifest.json"
PACKAGES = ("pandas", "numpy", "scipy", "statsmodels", "lifelines", "matplotlib", "biopython",
            "openpyxl", "PyYAML", "scikit-learn", "pypdf")
SOURCE_PACKAGES = ("review", "analysis")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_files(workspace: Workspace) -> list[Path]:
    """Every file a build reads: the protocol and everything under data/ but the full texts'
    PDFs, which are not committed (their index, with each PDF's hash, is)."""
    files = [workspace.protocol_path]
    pdfs = workspace.fulltext_dir / "files"
    if workspace.data_dir.exists():
        files += [path for path in workspace.data_dir.rglob("*")
                  if path.is_file() and path.name != ".gitkeep" and not is_temporary(path)
                  and not path.is_relative_to(pdfs)]
    return sorted(files)


def fulltexts_record(workspace: Workspace) -> dict[str, str]:
    """record id → SHA-256 of its full text, from the committed index."""
    return {record: entry.sha256
            for record, entry in sorted(FullTextStore(workspace).index().items())}


def source_fingerprint() -> str:
    """One hash over the toolkit's own source, so that new code is a reason to rebuild."""
    digest = hashlib.sha256()
    for package in SOURCE_PACKAGES:
        root = Path(sys.modules["review"].__file__).resolve().parent.parent / package
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".yaml") and \
                    "__pycache__" not in path.parts:
                digest.update(path.relative_to(root.parent).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass(frozen=True)
class BuildDate:
    """When the inputs last changed: never the wall clock, so rebuilds give the same bytes."""

    timestamp: int | None
    source: str

    @property
    def iso(self) -> str | None:
        if self.timestamp is None:
            return None
        return dt.datetime.fromtimestamp(self.timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def day(self) -> str:
        return self.iso[:10] if self.iso else "undated"


def _recorded_date(workspace: Workspace, out_dir: Path) -> BuildDate | None:
    """The date of the last build in out_dir, if it read exactly the inputs there are now."""
    try:
        recorded = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        stamp = dt.datetime.strptime(recorded["build_date"], "%Y-%m-%dT%H:%M:%SZ")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if recorded.get("inputs") != inputs_record(workspace):
        return None
    return BuildDate(int(stamp.replace(tzinfo=dt.UTC).timestamp()),
                     str(recorded.get("build_date_source") or "last build"))


def build_date(workspace: Workspace, out_dir: Path | None = None) -> BuildDate:
    """SOURCE_DATE_EPOCH when set; else, while the inputs are those of the last build in
    out_dir, that build's date; else the last commit that touched the data or protocol.

    Reusing the recorded date keeps a committed report valid when its history is rebased,
    squashed or cloned shallowly, which changes commit dates but not one input byte."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return BuildDate(int(epoch), "SOURCE_DATE_EPOCH")
        except ValueError:
            pass
    if out_dir is not None:
        recorded = _recorded_date(workspace, out_dir)
        if recorded is not None:
            return recorded
    try:
        found = subprocess.run(
            ["git", "log", "-1", "--format=%ct", "--", "data", "protocols"],
            cwd=workspace.root, capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return BuildDate(None, "none")
    stamp = found.stdout.strip()
    if found.returncode == 0 and stamp.isdigit():
        return BuildDate(int(stamp), "last commit of the data")
    return BuildDate(None, "none")


def relative(path: Path, root: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def inputs_record(workspace: Workspace) -> dict[str, str]:
    return {relative(path, workspace.root): sha256(path) for path in input_files(workspace)}


def manifest_text(workspace: Workspace, date: BuildDate, outputs: dict[str, bytes]) -> str:
    """The manifest of a build: inputs, outputs, versions and date, as stable JSON."""
    record = {
        "review": workspace.protocol.id,
        "protocol_version": workspace.protocol.version,
        "build_date": date.iso,
        "build_date_source": date.source,
        "toolkit": {"name": "casereview", "version": __version__,
                    "source_sha256": source_fingerprint()},
        "packages": package_versions(),
        "inputs": inputs_record(workspace),
        "fulltexts": fulltexts_record(workspace),
        "outputs": {name: hashlib.sha256(data).hexdigest()
                    for name, data in sorted(outputs.items())},
    }
    return json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def is_up_to_date(workspace: Workspace, out_dir: Path) -> bool:
    """True when the manifest in out_dir matches the current inputs, code, versions and date,
    and every output it lists is there unchanged."""
    path = out_dir / MANIFEST
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    date = build_date(workspace, out_dir)
    expected = {
        "review": workspace.protocol.id,
        "protocol_version": workspace.protocol.version,
        "build_date": date.iso,
        "toolkit": {"name": "casereview", "version": __version__,
                    "source_sha256": source_fingerprint()},
        "packages": package_versions(),
        "inputs": inputs_record(workspace),
    }
    if any(recorded.get(key) != value for key, value in expected.items()):
        return False
    outputs = recorded.get("outputs") or {}
    return all((out_dir / name).is_file() and sha256(out_dir / name) == digest
               for name, digest in outputs.items())
