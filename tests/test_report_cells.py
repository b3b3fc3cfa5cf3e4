"""Report cells that cannot hold a number say why, not "NA"."""

from __future__ import annotations

import html
import re

import pandas as pd

from analysis.survival import SurvivalByGroup
from review.protocol import EventWords
from review.report.html import _survival_table
from tests.conftest import ROOT


def _cells(markup: str) -> list[str]:
    return [html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", markup)]


def test_a_landmark_beyond_the_last_follow_up_names_it():
    frame = pd.DataFrame({"time": [1.0, 2.0, 4.0, 3.0, 9.0, 14.0],
                          "event": [True, False, False, True, False, True],
                          "group": ["a", "a", "a", "b", "b", "b"]})
    result = SurvivalByGroup(landmarks=(6.0, 12.0), time_unit="weeks").fit(frame)
    cells = _cells(_survival_table(result, (6.0, 12.0), EventWords()))
    # Group a is followed to 4 weeks only; group b reaches 14.
    a = cells[cells.index("a"):cells.index("b")]
    assert a[-2:] == ["not estimable: last follow-up 4 weeks"] * 2
    b = cells[cells.index("b"):]
    assert b[-2:] == ["67%", "67%"]  # one death of three at 3 weeks
    assert "NA" not in cells


def test_a_label_inside_a_sentence_loses_its_capital_but_a_code_keeps_it():
    from review.report.wording import in_sentence

    assert in_sentence("Spine (any level)") == "spine (any level)"
    assert in_sentence("Cervical spine") == "cervical spine"
    for code in ("T4 and T9", "MRSA", "HbA1c above 7%", "C1-C2", "L5"):
        assert in_sentence(code) == code
    page = (ROOT / "reports" / "hcc-bone-metastasis" / "report.html").read_text(encoding="utf-8")
    assert "patients whose sites include spine (any level);" in page
