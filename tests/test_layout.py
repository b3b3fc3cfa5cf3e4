"""Data flows one way: a step never imports a later one (shared pieces, such as the figure
style, the workspace and the HTTP client, live below them all)."""

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


# In the order the data flows; each may import only the steps before it.
STEPS = ("search", "screening", "fulltext", "extraction", "report", "web")


def imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module


def test_no_step_imports_a_later_one():
    found = []
    for position, step in enumerate(STEPS):
        later = [f"review.{name}" for name in STEPS[position + 1:]]
        if step != "report" and step != "web":
            later.append("analysis")
        for path in sorted((ROOT / "review" / step).rglob("*.py")):
            found += [f"{path.relative_to(ROOT)}:{line}: {name}"
                      for line, name in imported_modules(path)
                      if any(name == target or name.startswith(f"{target}.")
                             for target in later)]
    assert found == []


def test_the_cli_only_assembles_the_steps_commands():
    """review/cli.py declares the workspace-wide commands only; a step's live beside it."""
    tree = ast.parse((ROOT / "review" / "cli.py").read_text(encoding="utf-8"))
    declared = {node.args[0].value for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_parser"
                and node.args and isinstance(node.args[0], ast.Constant)}
    assert declared == {"init", "status"}
    for step in ("search", "screening", "fulltext", "extraction", "report", "web"):
        assert (ROOT / "review" / step / "commands.py").is_file()
    assert (ROOT / "review" / "protocol_commands.py").is_file()
