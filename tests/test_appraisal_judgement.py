"""The appraisal's overall judgement (the protocol's rule, computed by hand here), its
traffic-light figure and sensitivity analysis, the protocol's checks of the rule, the Murad
tool of `review init`, and the shipped review's appraisal derived from its extraction sheet."""

from __future__ import annotations

import copy
import html
import importlib.util
import re

import pandas as pd
import pytest
import yaml

from analysis.appraisal import AppraisalAnalysis
from review.errors import ReviewError
from review.extraction.appraisal import judge_reports, read_appraisal
from review.protocol import Appraisal, parse_protocol
from tests.conftest import PROTOCOL_PATH, ROOT

DOCUMENT = yaml.safe_load(PROTOCOL_PATH.read_text(encoding="utf-8"))
RULE = {"favourable": ["Yes"], "unfavourable": ["No"], "not_counted": ["Not applicable"],
        "levels": [{"label": "good", "at_least": 0.75, "required": ["b"]},
                   {"label": "fair", "at_least": 0.5},
                   {"label": "poor", "at_least": 0}]}
TOOL = Appraisal(tool="a four-item tool", answers=["Yes", "No", "Unclear", "Not applicable"],
                 items=[{"id": item, "question": f"{item}?"} for item in "abcd"],
                 judgement=RULE)


def _table(rows: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame([{"study_id": study, "appraiser": "ann",
                          **dict(zip("abcd", answers, strict=True)), "notes": ""}
                         for study, answers in rows.items()])


def test_each_report_takes_the_first_level_it_meets():
    judged = judge_reports(_table({
        "all_yes": ["Yes", "Yes", "Yes", "Yes"],            # 4/4
        "three_of_four": ["Yes", "Yes", "No", "Yes"],      # 3/4 = 0.75, b is Yes: good
        "b_unclear": ["Yes", "Unclear", "Yes", "Yes"],     # 3/4 but b is not Yes: fair
        "not_counted": ["Yes", "Yes", "Not applicable", "No"],  # 2/3 = 0.67: fair
        "half": ["No", "Yes", "Unclear", "Yes"],           # 2/4 = 0.5: fair
        "one": ["No", "Yes", "No", "No"],                  # 1/4: poor
        "none_counted": ["Not applicable"] * 4,            # nothing counted: poor
        "blank": ["Yes", "Yes", "", "Yes"],                # an item unanswered: not judged
    }), TOOL).set_index("study_id")
    assert judged["judgement"].to_dict() == {
        "all_yes": "good", "three_of_four": "good", "b_unclear": "fair", "not_counted": "fair",
        "half": "fair", "one": "poor", "none_counted": "poor", "blank": ""}
    assert judged.loc["not_counted", ["favourable", "counted"]].tolist() == [2, 3]
    assert judged.loc["not_counted", "share"] == pytest.approx(2 / 3)
    assert judged.loc["none_counted", "counted"] == 0
    assert judged.loc["blank", "unanswered"] == 1


def test_the_result_counts_levels_keeps_the_best_and_refuses_bad_input():
    result = AppraisalAnalysis(TOOL).fit(_table({
        "x": ["Yes"] * 4, "y": ["No"] * 4, "z": ["Yes", "", "Yes", "Yes"]}))
    assert result.levels.to_dict("records") == [
        {"judgement": "good", "reports": 1}, {"judgement": "fair", "reports": 0},
        {"judgement": "poor", "reports": 1},
        {"judgement": "not judged (an item unanswered)", "reports": 1}]
    assert result.kept() == ["x"]
    with pytest.raises(ValueError, match="no report"):
        AppraisalAnalysis(TOOL).fit(_table({}))
    with pytest.raises(ValueError, match="no column c"):
        AppraisalAnalysis(TOOL).fit(_table({"x": ["Yes"] * 4}).drop(columns="c"))
    with pytest.raises(ValueError, match="has no judgement rule"):
        judge_reports(_table({"x": ["Yes"] * 4}), TOOL.model_copy(update={"judgement": None}))


def _error(edit) -> str:
    document = copy.deepcopy(DOCUMENT)
    edit(document["extraction"]["appraisal"]["judgement"])
    with pytest.raises(ReviewError) as caught:
        parse_protocol(document, source="p.yaml")
    return str(caught.value)


@pytest.mark.parametrize("edit, expected", [
    (lambda j: j.update(favourable=["Yess"]),
     "extraction.appraisal.judgement.favourable[0]: 'Yess' is not one of: Yes, No"),
    (lambda j: j.update(unfavourable=["Yes"]),
     "extraction.appraisal.judgement.unfavourable[0]: 'Yes' is already favourable"),
    (lambda j: j["levels"][1].update(at_least=0.9),
     "extraction.appraisal.judgement.levels[1].at_least: levels go from the best"),
    (lambda j: j["levels"][2].update(at_least=0.2),
     "extraction.appraisal.judgement.levels[2]: the last level must take every report"),
    (lambda j: j["levels"][0].update(required=["lesons"]),
     "extraction.appraisal.judgement.levels[0].required[0]: 'lesons' is not one of"),
    (lambda j: j["levels"][0].update(at_least=1.5),
     "extraction.appraisal.judgement.levels[0].at_least"),
    (lambda j: j.update(levels=j["levels"][:1]),
     "extraction.appraisal.judgement.levels"),
])
def test_a_broken_judgement_rule_is_named(edit, expected):
    assert expected in _error(edit)


def test_init_offers_the_murad_tool_and_refuses_it_with_a_protocol_of_its_own(
        tmp_path, run_cli):
    status, _, _ = run_cli("init", tmp_path / "murad", "--no-git", "--appraisal", "murad-2018")
    assert status == 0
    protocol = parse_protocol(yaml.safe_load(
        (tmp_path / "murad" / "protocols" / "murad.yaml").read_text(encoding="utf-8")))
    appraisal = protocol.extraction.appraisal
    assert [item.domain for item in appraisal.items] == [
        "Selection", "Ascertainment", "Ascertainment", "Causality", "Causality", "Causality",
        "Causality", "Reporting"]
    assert appraisal.judgement.best.required == ("exposure_ascertained", "outcome_ascertained")
    status, _, err = run_cli("init", tmp_path / "other", "--no-git", "--from", PROTOCOL_PATH,
                             "--appraisal", "murad-2018")
    assert status != 0 and "keeps its own appraisal" in err
    assert not (tmp_path / "other").exists()


def _derive_module():
    spec = importlib.util.spec_from_file_location(
        "derive_appraisal", ROOT / "data" / "extraction" / "derive_appraisal.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_appraisal_is_what_the_rule_derives_from_the_sheet(protocol):
    derive = _derive_module()
    cases = pd.read_csv(ROOT / "data" / "extraction" / "cases.csv", dtype=str,
                        keep_default_na=False)
    committed = (ROOT / "data" / "extraction" / "appraisal.csv").read_text(encoding="utf-8")
    assert committed == derive.appraisal_csv(cases)
    table = read_appraisal(ROOT / "data" / "extraction" / "appraisal.csv",
                           protocol.extraction.appraisal)
    assert len(table) == cases["study_id"].nunique() == 113
    assert set(table["appraiser"]) == {"extraction-rule"}
    # A report read in full lacks what its sheet does not record; an abstract leaves it open.
    row = table.set_index("study_id").loc["jiang_2014"]
    assert row["notes"].startswith("basis: full text")
    assert row["demographics"] == "No"  # age and sex not in the review table it came from
    assert (table["adverse_events"] == "Unclear").all()


def test_the_report_shows_the_judgements_figure_and_sensitivity_analysis(protocol):
    report = ROOT / "reports" / protocol.id
    page = (report / "report.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="appraisal"'):]
    section = section[:section.index("</section>")]
    visible = " ".join(html.unescape(re.sub(r"<svg.*?</svg>|<[^>]+>", " ", section,
                                            flags=re.S)).split())
    levels = pd.read_csv(report / "tables" / "appraisal_levels.csv")
    assert levels["reports"].sum() == 113
    sentence = ", ".join(f"{row.reports} {row.judgement}" for row in levels.itertuples())
    assert f"Overall judgement of the 113 appraised reports: {sentence}." in visible
    assert "113 reports appraised by 1 appraiser (extraction-rule)" in visible
    assert 'id="figure-appraisal_traffic_light"' in section
    low = int(levels.set_index("judgement").loc["low risk of bias", "reports"])
    assert (f"on the patients of the {low} reports judged low risk of bias" in visible)
    comparison = pd.read_csv(report / "tables" / "appraisal_sensitivity.csv")
    assert comparison.set_index("measure").loc["Reports", "restricted"] == str(low)
    methods = html.unescape(page[page.index("Reports were appraised"):][:1500])
    assert "appraiser extraction-rule" in methods and "low risk of bias (at least 70%)" in methods
