"""docs/: the worked example runs, and every name docs/api.md lists exists."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

from tests.conftest import ROOT


def test_the_worked_example_runs_and_prints_the_reviews_figures(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "worked_example.py"),
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert ": 120 patients from 113 reports" in out
    assert "Kaplan-Meier: n = 12, 8 events, median 10.5 months (95% CI 1.6 to not reached)" \
        in out
    assert "Cox (Efron): group: b HR" in out and "reference a" in out
    assert "10 events without a time: medians from 1.3 to 10.5 months" in out
    assert (tmp_path / "survival.png").stat().st_size > 1000
    assert (tmp_path / "forest.png").stat().st_size > 1000


def test_every_name_the_api_reference_lists_exists():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    names = re.findall(r"^\| `((?:review|analysis)\.[\w.]+)", text, re.MULTILINE)
    assert len(names) >= 20
    for dotted in names:
        module, _, name = dotted.rpartition(".")
        while module and not _importable(module):
            module, _, parent = module.rpartition(".")
            name = f"{parent}.{name}"
        target = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
        assert target is not None, dotted


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError:
        return False
    return True
