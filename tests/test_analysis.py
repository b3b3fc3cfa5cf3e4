"""Site frequencies, Table 1, treatment groups and the whole analysis of the shipped review."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.review_analysis import (
    analysis_figures,
    analysis_tables,
    analyze_review,
    render_figures,
)
from analysis.sites import site_frequencies, sites_per_patient, vertebral_levels
from analysis.survival import assign_groups, survival_data
from analysis.tables import characteristics_table
from review.extraction.sheet import typed_cases
from review.figure_style import figure_files


@pytest.fixture(scope="module")
def shipped_analysis(protocol, shipped_cases):
    return analyze_review(shipped_cases, protocol)


def small_cases(protocol, rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame([{name: row.get(name, "") for name in protocol.extraction.columns}
                          for row in rows])
    return typed_cases(frame, protocol.extraction)


def test_site_frequencies_by_hand(protocol):
    cases = small_cases(protocol, [
        {"case_id": "a_2020_1", "bone_sites": "skull;thoracic_spine"},
        {"case_id": "b_2020_1", "bone_sites": "thoracic_spine;lumbar_spine"},
        {"case_id": "c_2020_1", "bone_sites": "rib"},
        {"case_id": "d_2020_1", "bone_sites": ""},
    ])
    table = site_frequencies(cases, protocol.analysis,
                             protocol.extraction.field("bone_sites")).set_index(["kind", "id"])
    spine = table.loc[("region", "spine")]
    assert (spine.patients, spine.denominator) == (2, 3)
    assert table.loc[("site", "thoracic_spine"), "percent"] == pytest.approx(200 / 3)
    assert table.loc[("region", "skull"), "patients"] == 1
    assert table.loc[("region", "thoracic_cage"), "patients"] == 1
    # Wilson interval of 2/3 at 95%
    assert spine.ci_low == pytest.approx(20.765, abs=1e-3)
    assert spine.ci_high == pytest.approx(93.851, abs=1e-3)
    exact = site_frequencies(cases, protocol.analysis, protocol.extraction.field("bone_sites"),
                             method="clopper-pearson").set_index(["kind", "id"])
    assert exact.loc[("region", "spine"), "ci_low"] == pytest.approx(9.4299, abs=1e-3)
    per_patient = sites_per_patient(cases, protocol.analysis)
    assert per_patient.set_index("sites")["patients"].to_dict() == {1: 1, 2: 2}


def test_vertebral_levels_have_explicit_denominators(protocol, shipped_cases):
    cases = typed_cases(shipped_cases, protocol.extraction)
    levels = vertebral_levels(cases, protocol.analysis,
                              protocol.extraction.field("vertebral_levels")).set_index("level")
    assert list(levels.index[:3]) == ["C1", "C2", "C3"] and len(levels) == 29
    assert levels.loc["T9", "patients"] == 4
    assert levels.loc["T9", "denominator"] == 19
    assert levels.loc["T9", "spinal_patients"] == 44


def test_characteristics_table_reports_denominators(protocol, shipped_cases):
    cases = typed_cases(shipped_cases, protocol.extraction)
    table = characteristics_table(cases, protocol.extraction, ["age", "sex", "etiology"])
    age = table[table.characteristic == "Age, years"].iloc[0]
    assert age.reported == 94 and age.total == 120
    assert age.summary.startswith("57 (")
    sex = table[table.characteristic == "Sex"].set_index("value")
    assert sex.loc["M", "summary"] == "88/105 (84%)"
    etiology = table[table.characteristic == "Etiology"].set_index("value")
    assert etiology.loc["HBV", "patients"] == 23 and etiology.loc["HBV", "reported"] == 47


def test_treatment_groups_take_the_first_match(protocol):
    grouping = protocol.analysis.treatment_groupings[0]
    cases = small_cases(protocol, [
        {"case_id": "a_2020_1", "bone_treatments": "radiotherapy;decompression_surgery"},
        {"case_id": "b_2020_1", "bone_treatments": "SBRT"},
        {"case_id": "c_2020_1", "bone_treatments": "none"},
        {"case_id": "d_2020_1", "bone_treatments": "embolization"},
        {"case_id": "e_2020_1", "bone_treatments": ""},
    ])
    assert list(assign_groups(cases, grouping)) == ["surgery", "radiotherapy", "none", None,
                                                    None]


def test_survival_data_counts_who_is_left_out(protocol, shipped_cases):
    cases = typed_cases(shipped_cases, protocol.extraction)
    data = survival_data(cases, protocol.analysis.survival)
    # Data v3: 28 times, 12 of them from the protocol's origin (the bone-metastasis diagnosis).
    assert len(data.frame) == 12
    assert data.excluded == {"no time or status reported": 80, "dead without a time": 10,
                             "alive without a time": 2, "time without a status": 0,
                             "time counted from surgery": 6,
                             "time counted from another event": 5,
                             "time counted from admission": 3,
                             "time counted from bone met treatment start": 2}
    assert data.frame.event.sum() == 8
    every = survival_data(cases, protocol.analysis.survival, any_origin=True)
    assert len(every.frame) == 28 and "time counted from surgery" not in every.excluded


def test_shipped_review_analysis(shipped_analysis):
    regions = shipped_analysis.site_frequencies.set_index(["kind", "id"])
    spine = regions.loc[("region", "spine")]
    assert (spine.patients, spine.denominator) == (44, 118)
    # Every multi-patient report is all-or-none, so the GLMM has no maximum, and the logit
    # fallback would need a continuity correction on 106 single-patient reports: not pooled.
    assert shipped_analysis.pooled == {}
    assert set(shipped_analysis.not_pooled) == {"spine", "skull"}
    assert "0.5 to the cells of 106 single-patient reports" in \
        shipped_analysis.not_pooled["spine"]
    survival = shipped_analysis.survival
    assert survival.usable == 12 and survival.any_origin.overall.n == 28
    assert set(survival.by_grouping) == {"bone_directed", "systemic"}
    assert survival.overall.overall.median[0] == 10.5


def test_every_table_and_figure_is_produced(shipped_analysis):
    tables = analysis_tables(shipped_analysis)
    assert {"studies", "characteristics", "completeness", "site_frequencies",
            "vertebral_levels", "survival_summary",
            "survival_exclusions"} <= set(tables)
    # 8 deaths from the origin: too few for a test or a model by the protocol's minimums.
    assert not any(name.startswith(("survival_cox", "survival_logrank")) for name in tables)
    assert len(tables["studies"]) == 113
    drawn = analysis_figures(shipped_analysis)
    assert set(drawn) == {"site_frequencies", "skeleton_map", "reports_per_year",
                          "vertebral_levels",
                          "survival_overall", "survival_bone_directed", "survival_systemic"}


def test_figures_are_the_same_bytes_in_parallel_and_serially(shipped_analysis):
    parallel = render_figures(shipped_analysis)
    serial = render_figures(shipped_analysis, workers=1)
    assert parallel == serial
    assert parallel["skeleton_map"]["png"].startswith(b"\x89PNG")
    assert b"Where the reported sites were" in parallel["skeleton_map"]["svg"]
    assert b"<dc:date>" not in parallel["skeleton_map"]["svg"]


def test_partial_review_without_survival_or_sites(protocol):
    frame = pd.DataFrame([{name: "" for name in protocol.extraction.columns}])
    frame.loc[0, ["case_id", "study_id", "source_title", "source_url", "extraction_basis"]] = [
        "x_2020_1", "x_2020", "A case", "https://example.org", "abstract"]
    analysis = analyze_review(frame, protocol)
    assert analysis.survival.overall is None
    assert analysis.site_frequencies["denominator"].eq(0).all()
    figures = analysis_figures(analysis)
    assert "survival_overall" not in figures
    assert figure_files(figures["skeleton_map"])["svg"]


def test_analyze_cli_writes_tables_and_figures(run_cli, hcc_workspace, tmp_path):
    status, out, _ = run_cli("--project", hcc_workspace.root, "analyze", "--out", tmp_path)
    assert status == 0, out
    assert "Spine (any level): 44/118 (37.3%" in out
    assert "median 10.5 months (95% CI 1.6–not reached)" in out
    assert (tmp_path / "tables" / "site_frequencies.csv").exists()
    assert (tmp_path / "figures" / "survival_bone_directed.svg").exists()
    assert (tmp_path / "figures" / "skeleton_map.png").stat().st_size > 10_000


def test_analyze_refuses_an_invalid_sheet(run_cli, hcc_workspace, tmp_path):
    path = hcc_workspace.cases_path
    path.write_text(path.read_text().replace(",55,F,HCV,", ",555,F,HCV,", 1))
    status, out, _ = run_cli("--project", hcc_workspace.root, "analyze", "--out", tmp_path)
    assert status == 1
    assert "age: above the maximum 110 years" in out
    assert not (tmp_path / "tables").exists()


def test_table_one_says_reported_where_no_other_value_was_ever_recorded(protocol,
                                                                         shipped_cases):
    cases = typed_cases(shipped_cases, protocol.extraction)
    table = characteristics_table(cases, protocol.extraction,
                                  ["age", "spinal_cord_compression", "bone_treatments"])
    age = table[table.characteristic == "Age, years"].iloc[0]
    assert age.summary.endswith("; n = 94")
    compression = table[table.characteristic == "Spinal cord compression"]
    assert list(compression.summary) == ["reported in 20 patients (no never recorded)"]
    assert compression.percent.isna().all()
    treatments = table[table.characteristic == "Bone treatments"].set_index("value")
    assert treatments.loc["Decompression surgery", "summary"] == "12/63 (19%)"


def test_the_skeleton_map_draws_patients_whose_spinal_level_is_unknown(shipped_analysis):
    from analysis.figures import NONE_COLOUR, skeleton_map

    figure = skeleton_map(shipped_analysis.site_frequencies)
    labels = [text.get_text() for text in figure.axes[0].texts]
    assert "Spine unspecified\n16 (14%)" in labels
    from matplotlib.colors import to_hex
    from matplotlib.patches import FancyBboxPatch

    column = next(patch for patch in figure.axes[0].patches
                  if isinstance(patch, FancyBboxPatch) and patch.get_height() > 5)
    assert to_hex(column.get_facecolor()) != NONE_COLOUR.lower()


def test_a_forest_of_mostly_single_patient_reports_is_not_drawn(shipped_analysis):
    import dataclasses

    from analysis.pooling import pool_proportions
    from analysis.review_analysis import figure_builders

    analysis = dataclasses.replace(
        shipped_analysis,
        pooled={"spine": pool_proportions([1, 0, 1, 0, 1, 2], [1, 1, 1, 1, 1, 3], method="glmm"),
                "skull": pool_proportions(*([3, 5, 2], [10, 12, 8]), method="glmm")})
    drawn = figure_builders(analysis)
    assert "forest_skull" in drawn and "forest_spine" not in drawn


def test_the_years_of_a_short_span_are_ticked_as_whole_years():
    import pandas as pd

    from analysis.figures import reports_per_year_plot

    figure = reports_per_year_plot(pd.DataFrame({"pub_year": ["2005", "2006", "2006"]}))
    figure.canvas.draw()
    ticks = [tick for tick in figure.axes[0].get_xticks() if 2004 <= tick <= 2010]
    assert ticks and all(float(tick).is_integer() for tick in ticks)
