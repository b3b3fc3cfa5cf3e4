"""Shared fixtures: the shipped HCC review, copied so tests never touch the repository."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from review.cli import main
from review.extraction.sheet import read_cases
from review.protocol import Protocol, load_protocol
from review.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_PATH = ROOT / "protocols" / "hcc-bone-metastasis.yaml"
CASES_PATH = ROOT / "data" / "extraction" / "cases.csv"


@pytest.fixture(scope="session")
def protocol() -> Protocol:
    return load_protocol(PROTOCOL_PATH)


@pytest.fixture(scope="session")
def shipped_cases(protocol: Protocol):
    return read_cases(CASES_PATH, protocol.extraction)


@pytest.fixture
def hcc_workspace(tmp_path: Path) -> Workspace:
    """A private copy of the HCC review workspace (protocol and extraction data)."""
    root = tmp_path / "hcc"
    shutil.copytree(ROOT / "protocols", root / "protocols")
    (root / "data" / "extraction").mkdir(parents=True)
    shutil.copy(CASES_PATH, root / "data" / "extraction" / "cases.csv")
    return Workspace(root)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run the `review` command in-process; returns (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        status = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run
