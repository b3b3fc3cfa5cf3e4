"""Data flows one way: the steps before analysis never import it (shared pieces, such as the
figure style, live below both)."""

from __future__ import annotations

import ast

from tests.conftest import ROOT

EARLIER_STEPS = ("search", "screening", "extraction")


def test_no_earlier_step_imports_analysis():
    found = []
    for step in EARLIER_STEPS:
        for path in sorted((ROOT / "review" / step).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                found += [f"{path.relative_to(ROOT)}:{node.lineno}: {name}"
                          for name in names if name == "analysis"
                          or name.startswith("analysis.")]
    assert found == []
