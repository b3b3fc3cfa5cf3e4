"""A review that is not about cancer, through the CLI: spinal epidural abscess after an
epidural steroid injection. Its outcomes are neurological recovery by management among the
patients with a deficit (binary, with a denominator rule), the time from injection to
symptoms (continuous, in days), the organism (categorical, with a tie), the spinal levels
(multi-valued, no body map) and death, with times in days and landmarks at 30 and 365 days.
The report must say all of it in the protocol's words and with numbers computed by hand."""

from __future__ import annotations

import html
import math
import re

import pandas as pd
import pytest
import yaml
from scipy.stats import fisher_exact

LEVELS = [f"C{n}" for n in range(1, 8)] + [f"T{n}" for n in range(1, 13)] + \
    [f"L{n}" for n in range(1, 6)] + ["S1"]
# study, age, sex, management, deficit, recovery, days to symptoms, organism, levels,
# vital status, follow-up days
PATIENTS = [
    ("adams_2015", 64, "F", "surgery", "yes", "full", 3, "s_aureus", "L3;L4", "alive", 400),
    ("adams_2015", 71, "M", "surgery", "yes", "partial", 5, "mrsa", "L4;L5", "alive", 380),
    ("baker_2016", 58, "M", "antibiotics", "yes", "none", 2, "s_aureus", "T10;T11", "dead",
     21),
    ("baker_2016", 66, "F", "surgery", "no", "", 7, "streptococcus", "L2", "alive", 500),
    ("chen_2017", 49, "F", "antibiotics", "yes", "full", 4, "mrsa", "C5;C6", "alive", 365),
    ("chen_2017", 77, "M", "surgery", "yes", "none", 1, "s_aureus", "L4", "dead", 12),
    ("diaz_2018", 53, "M", "antibiotics", "no", "", 10, "mrsa", "L5;S1", "alive", 90),
    ("diaz_2018", 62, "F", "surgery", "yes", "full", 6, "s_aureus", "T12;L1", "alive", 730),
    ("evans_2019", 69, "M", "antibiotics", "yes", "partial", 3, "mrsa", "L3", "dead", 200),
    ("evans_2019", 45, "F", "surgery", "yes", "full", 2, "other", "L4;L5", "alive", 45),
    ("fox_2020", 80, "M", "antibiotics", "yes", "none", 8, "s_aureus", "C6", "dead", 5),
    ("fox_2020", 57, "F", "surgery", "no", "", 4, "mrsa", "L2;L3", "alive", 300),
]


def _protocol(template: dict) -> dict:
    document = template
    document.update(title="Spinal epidural abscess after epidural steroid injection")
    document["question"].update(
        statement="In patients with a spinal epidural abscess after an epidural steroid "
                  "injection, how do they present, how are they managed and do they recover?",
        population="Adults with a spinal epidural abscess after an epidural steroid injection.",
        condition="Spinal epidural abscess.")
    document["search"]["concepts"] = [
        {"id": "abscess", "label": "Spinal epidural abscess",
         "mesh": ["Epidural Abscess"], "tiab": ["epidural abscess*"]},
        {"id": "injection", "label": "Epidural steroid injection",
         "mesh": ["Injections, Epidural"], "tiab": ["epidural steroid*", "epidural injection*"]},
        {"id": "case_design", "label": "Case reports and case series",
         "publication_types": ["Case Reports"], "tiab": ["case report*", "case series"]}]
    document["eligibility"] = {
        "inclusion": ["A spinal epidural abscess after an epidural steroid injection.",
                      "Patient-level data are reported."],
        "exclusion": ["Animal or in-vitro studies."]}
    document["question"]["outcomes"] = {
        "primary": ["Neurological recovery by management"],
        "secondary": ["Time from injection to symptoms", "Organism", "Death"]}
    extraction = document["extraction"]
    kept = [field for field in extraction["fields"]
            if field["name"] not in ("survival_months", "sites", "treatments")]
    kept[-2:-2] = [
        {"name": "management", "type": "codes", "values": ["surgery", "antibiotics"],
         "description": "Surgical drainage, or antibiotics alone."},
        {"name": "neurological_deficit", "type": "code", "values": ["yes", "no"]},
        {"name": "recovery", "type": "code", "values": ["full", "partial", "none"]},
        {"name": "days_to_symptoms", "type": "number", "min": 0, "unit": "days"},
        {"name": "organism", "type": "code",
         "values": ["s_aureus", "mrsa", "streptococcus", "other"],
         "labels": {"s_aureus": "Staphylococcus aureus (MSSA)", "mrsa": "MRSA",
                    "streptococcus": "Streptococcus", "other": "Other"}},
        {"name": "spinal_levels", "type": "codes", "values": LEVELS},
        {"name": "follow_up_days", "type": "number", "min": 0, "unit": "days"},
    ]
    extraction["fields"] = kept
    extraction["rules"] = [{"rule": "requires", "field": "follow_up_days",
                            "needs": "vital_status"}]
    document["analysis"] = {
        "population": "patients with a spinal epidural abscess after an injection",
        "population_short": "patients with an abscess",
        "sites_field": "spinal_levels",
        "words": {"sites": "Spinal levels involved", "finding": "an abscess",
                  "sites_per_patient": "Levels per patient"},
        "characteristics": ["age", "sex", "management", "neurological_deficit"],
        "site_regions": [
            {"id": "cervical", "label": "Cervical", "sites": LEVELS[:7]},
            {"id": "thoracic", "label": "Thoracic", "sites": LEVELS[7:19]},
            {"id": "lumbosacral", "label": "Lumbosacral", "sites": LEVELS[19:]}],
        "survival": {"time_field": "follow_up_days", "status_field": "vital_status",
                     "event_value": "dead", "censored_value": "alive", "time_unit": "days",
                     "origin": "the injection", "landmarks": [30, 365]},
        "treatment_groupings": [{"id": "management", "label": "Management",
                                 "field": "management", "groups": [
                                     {"id": "surgery", "label": "Surgical drainage",
                                      "any_of": ["surgery"]},
                                     {"id": "antibiotics", "label": "Antibiotics alone",
                                      "any_of": ["antibiotics"]}]}],
        "outcomes": [
            {"id": "recovery", "label": "Neurological recovery", "kind": "binary",
             "field": "recovery", "events": ["full", "partial"],
             "among": {"field": "neurological_deficit", "value": "yes",
                       "label": "patients with a deficit"},
             "groupings": ["management"], "min_per_group": 3},
            {"id": "delay", "label": "Time from injection to symptoms", "kind": "continuous",
             "field": "days_to_symptoms", "groupings": ["management"]},
            {"id": "organism", "label": "Organism", "kind": "categorical",
             "field": "organism", "pool": ["mrsa", "s_aureus"]},
            {"id": "levels", "label": "Levels of the abscess", "kind": "categorical",
             "field": "spinal_levels", "groupings": ["management"], "regions": [
                 {"id": "cervical", "label": "Cervical", "values": LEVELS[:7]},
                 {"id": "thoracolumbar", "label": "Thoracolumbar junction",
                  "values": ["T12", "L1"]},
                 {"id": "lumbosacral", "label": "Lumbosacral", "values": LEVELS[19:]}]},
            {"id": "deficit_deaths", "label": "Death after a deficit", "kind": "time_to_event",
             "time_to_event": {"time_field": "follow_up_days", "status_field": "vital_status",
                               "event_value": "dead", "censored_value": "alive",
                               "time_unit": "days", "origin": "the injection",
                               "landmarks": [30, 365]},
             "among": {"field": "neurological_deficit", "value": "yes",
                       "label": "patients with a deficit"},
             "groupings": ["management"]},
        ],
    }
    return document


def _cases_csv(path) -> None:
    rows = []
    numbers: dict[str, int] = {}
    for (study, age, sex, management, deficit, recovery, days, organism, levels, status,
         follow_up) in PATIENTS:
        numbers[study] = numbers.get(study, 0) + 1
        year = study.split("_")[1]
        rows.append({
            "case_id": f"{study}_{numbers[study]}", "study_id": study, "record_id": "",
            "source_title": f"Epidural abscess after injection: {study}",
            "source_url": f"https://example.org/{study}", "doi": "", "pmid": "",
            "pub_year": year, "age": age, "sex": sex, "vital_status": status,
            "management": management, "neurological_deficit": deficit, "recovery": recovery,
            "days_to_symptoms": days, "organism": organism, "spinal_levels": levels,
            "follow_up_days": follow_up, "notes": "", "extraction_basis": "full_text"})
    pd.DataFrame(rows).to_csv(path, index=False)


MURAD_ITEMS = ["selection", "exposure_ascertained", "outcome_ascertained",
               "alternative_causes", "rechallenge", "dose_response", "follow_up", "reporting"]
# Items 5 and 6 (rechallenge, dose-response) are for drug reactions: not applicable here, so
# six items count. adams and diaz reach 75% with both ascertainment items "Yes" (low risk);
# baker's 5 of 6 lacks the exposure (moderate); chen 4 of 6 (moderate); evans 2 of 6 (high);
# fox left one item blank (not judged).
APPRAISALS = {
    "adams_2015": ["Yes", "Yes", "Yes", "Yes", "Not applicable", "Not applicable", "Yes", "Yes"],
    "baker_2016": ["Yes", "Unclear", "Yes", "Yes", "Not applicable", "Not applicable", "Yes",
                   "Yes"],
    "chen_2017": ["No", "Yes", "Yes", "Yes", "Not applicable", "Not applicable", "No", "Yes"],
    "diaz_2018": ["Yes", "Yes", "Yes", "Yes", "Not applicable", "Not applicable", "Yes",
                  "Unclear"],
    "evans_2019": ["No", "Yes", "No", "Unclear", "Not applicable", "Not applicable", "No",
                   "Yes"],
    "fox_2020": ["Yes", "Yes", "Yes", "", "Not applicable", "Not applicable", "Yes", "Yes"],
}
LOW_RISK = ("adams_2015", "diaz_2018")


def _appraisal_csv(path) -> None:
    pd.DataFrame([{"study_id": study, "appraiser": "ann", **dict(zip(MURAD_ITEMS, answers,
                                                                       strict=True)),
                   "notes": ""} for study, answers in APPRAISALS.items()]
                 ).to_csv(path, index=False)


def _visible(report) -> str:
    """The report's text as a reader sees it."""
    page = (report / "report.html").read_text(encoding="utf-8")
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _section(report, anchor: str) -> str:
    page = (report / "report.html").read_text(encoding="utf-8")
    return page[page.index(f'<section id="{anchor}">'):].split("</section>", 1)[0]


def _wilson(events: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    share = events / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return 100 * (centre - half), 100 * (centre + half)


@pytest.fixture
def abscess_report(tmp_path, run_cli):
    root = tmp_path / "abscess-review"
    assert run_cli("init", root, "--no-git", "--appraisal", "murad-2018")[0] == 0
    path = root / "protocols" / "abscess-review.yaml"
    path.write_text(yaml.safe_dump(_protocol(yaml.safe_load(path.read_text(encoding="utf-8"))),
                                   sort_keys=False), encoding="utf-8")
    _cases_csv(root / "data" / "extraction" / "cases.csv")
    _appraisal_csv(root / "data" / "extraction" / "appraisal.csv")
    project = ("--project", root)
    assert run_cli(*project, "protocol", "render")[0] == 0
    status, out, _ = run_cli(*project, "extract", "validate")
    assert status == 0, out
    status, out, err = run_cli(*project, "build", "--quiet")
    assert status == 0, out + err
    return root / "reports" / "abscess-review"


def test_the_report_says_days_and_the_protocols_words(abscess_report):
    visible = _visible(abscess_report)
    assert "Median, days (95% CI)" in visible and "Alive at 365 days" in visible
    assert "Alive at 30 days" in visible
    assert "month" not in visible
    for word in ("metasta", "cancer", "tumour", "tumor", "carcinoma", "bone", "Bone",
                 "skeleton", "Skeleton", "vertebral"):
        assert word not in visible, word
    assert not (abscess_report / "figures" / "skeleton_map.svg").exists()
    assert "Skeleton map" not in visible
    assert "Spinal levels involved" in visible and "Levels per patient" in visible


def test_the_binary_outcome_is_the_hand_computed_share_and_fisher_p(abscess_report):
    visible = _visible(abscess_report)
    deficit = [p for p in PATIENTS if p[4] == "yes"]
    recovered = [p for p in deficit if p[5] in ("full", "partial")]
    low, high = _wilson(len(recovered), len(deficit))
    share = 100 * len(recovered) / len(deficit)
    assert (f"Neurological recovery: {len(recovered)} of {len(deficit)} patients with a deficit "
            f"({share:.1f}%; 95% CI {low:.1f}% to {high:.1f}%).") in visible

    table = [[sum(p[5] in ("full", "partial") for p in deficit if p[3] == group),
              sum(p[5] == "none" for p in deficit if p[3] == group)]
             for group in ("surgery", "antibiotics")]
    expected = fisher_exact(table).pvalue
    tests = pd.read_csv(abscess_report / "tables" / "outcome_recovery_tests.csv")
    assert tests.loc[0, "method"] == "Fisher's exact test"
    assert tests.loc[0, "p_value"] == pytest.approx(expected, abs=5e-6)  # six digits
    assert f"Fisher's exact test across the groups: p = {expected:.3f}." in visible
    # One figure per grouping, in that grouping's part of the section; its label is the
    # caption's text, escaped once.
    section = _section(abscess_report, "outcome-recovery")
    assert section.index("<h3>By Management</h3>") < section.index(
        '<figure id="figure-outcome_recovery_management">')
    assert ('aria-label="Neurological recovery: the share of the patients with a deficit with '
            'the outcome, with Wilson 95% confidence intervals."') in section
    assert "outcome_recovery.svg" not in {p.name for p in (abscess_report / "figures").iterdir()}


def test_the_continuous_and_categorical_outcomes_read_their_fields(abscess_report):
    visible = _visible(abscess_report)
    days = pd.Series([p[6] for p in PATIENTS], dtype=float)
    assert (f"Time from injection to symptoms: median {days.median():g} days (interquartile "
            f"range {days.quantile(0.25):g} to {days.quantile(0.75):g}; range {days.min():g} "
            f"to {days.max():g}) in {len(days)} patients with an abscess.") in visible
    # Five patients each with MSSA and MRSA: both are named.
    assert ("Organism: reported for 12 patients with an abscess; the most frequent were "
            "Staphylococcus aureus (MSSA) and MRSA (5 each, 41.7%).") in visible
    counts = {level: sum(level in p[8].split(";") for p in PATIENTS) for level in LEVELS}
    top = max(counts.values())
    (leader,) = [level for level, count in counts.items() if count == top]
    assert (f"Levels of the abscess: reported for 12 patients with an abscess; the most "
            f"frequent was {leader} ({top}, {100 * top / 12:.1f}%). A patient may have several "
            "values") in visible


def test_a_categorical_outcome_counts_each_patient_once_per_region(abscess_report):
    regions = {"cervical": set(LEVELS[:7]), "thoracolumbar": {"T12", "L1"},
               "lumbosacral": set(LEVELS[19:])}
    patients = {region: [p for p in PATIENTS if values & set(p[8].split(";"))]
                for region, values in regions.items()}
    # The T12;L1 patient has two values in the junction and is counted there once; so is
    # each patient with two lumbar levels in the lumbosacral region.
    assert [len(found) for found in patients.values()] == [2, 1, 9]
    table = pd.read_csv(abscess_report / "tables" / "outcome_levels.csv",
                        keep_default_na=False)
    overall = table[(table["grouping"] == "overall") & (table["kind"] == "region")]
    assert list(overall["value"]) == list(regions)
    assert list(overall["count"]) == [len(found) for found in patients.values()]
    assert set(overall["n"]) == {12}
    surgery = table[(table["group"] == "surgery") & (table["kind"] == "region")
                    & (table["value"] == "lumbosacral")].iloc[0]
    operated = [p for p in PATIENTS if p[3] == "surgery"]
    assert (surgery["count"], surgery["n"]) == (
        sum(p in patients["lumbosacral"] for p in operated), len(operated))
    visible = _visible(abscess_report)
    cervical, lumbosacral = _wilson(2, 12), _wilson(9, 12)
    assert (f"By region: Cervical 2 of 12 (16.7%; 95% CI {cervical[0]:.1f}% to "
            f"{cervical[1]:.1f}%), Thoracolumbar junction 1 of 12") in visible
    page = (abscess_report / "report.html").read_text(encoding="utf-8")
    assert ('<figure id="figure-outcome_levels">' in page
            and "Levels of the abscess: the patients with each region and value, with Wilson "
                "95% confidence intervals; values no patient has are left out." in visible)
    assert (f"and Lumbosacral 9 of 12 (75.0%; 95% CI {lumbosacral[0]:.1f}% to "
            f"{lumbosacral[1]:.1f}%); a patient with several values in a region counts once "
            "in it.") in visible


def test_the_murad_appraisal_judges_each_report_and_repeats_the_analysis_on_the_best(
        abscess_report):
    visible = _visible(abscess_report)
    assert "Reports were appraised with the tool of Murad et al. (2018)" in visible
    assert "(Selection, Ascertainment, Causality, Reporting)" in visible
    assert ("Overall judgement of the 6 appraised reports: 2 low risk of bias, 2 moderate risk "
            "of bias, 1 high risk of bias, 1 not judged (an item unanswered).") in visible
    judged = pd.read_csv(abscess_report / "tables" / "appraisal_judgements.csv",
                         keep_default_na=False).set_index("study_id")
    assert judged.loc["baker_2016", "share"] == pytest.approx(5 / 6, abs=1e-6)
    assert judged.loc["baker_2016", "judgement"] == "moderate risk of bias"
    assert judged.loc["fox_2020", "judgement"] == "" and judged.loc["fox_2020", "unanswered"] == 1
    assert (judged["counted"].drop("fox_2020") == 6).all()
    assert (abscess_report / "figures" / "appraisal_traffic_light.svg").exists()

    kept = [p for p in PATIENTS if p[0] in LOW_RISK]
    deficit = [p for p in kept if p[4] == "yes"]
    recovered = [p for p in deficit if p[5] in ("full", "partial")]
    every_deficit = [p for p in PATIENTS if p[4] == "yes"]
    every_recovered = [p for p in every_deficit if p[5] in ("full", "partial")]
    comparison = pd.read_csv(abscess_report / "tables" / "appraisal_sensitivity.csv",
                             keep_default_na=False).set_index("measure")
    assert comparison.loc["Patients"].tolist() == [str(len(PATIENTS)), str(len(kept))]
    assert comparison.loc["Reports", "restricted"] == str(len(LOW_RISK))
    assert comparison.loc["Neurological recovery"].tolist() == [
        f"{len(every_recovered)}/{len(every_deficit)} "
        f"({100 * len(every_recovered) / len(every_deficit):.0f}%)",
        f"{len(recovered)}/{len(deficit)} ({100 * len(recovered) / len(deficit):.0f}%)"]
    assert "Sensitivity analysis: reports judged low risk of bias" in visible


def _kaplan_meier(patients, at: float) -> float:
    """The product-limit estimate at `at`, by hand: (time, died) pairs."""
    survival = 1.0
    for time in sorted({time for time, died in patients if died and time <= at}):
        at_risk = sum(other >= time for other, _ in patients)
        deaths = sum(other == time and died for other, died in patients)
        survival *= 1 - deaths / at_risk
    return survival


def test_a_time_to_event_outcome_has_its_own_curves_among_its_patients(abscess_report):
    deficit = [(p[10], p[9] == "dead") for p in PATIENTS if p[4] == "yes"]
    summary = pd.read_csv(abscess_report / "tables" / "outcome_deficit_deaths.csv")
    overall = summary[summary["grouping"] == "overall"].iloc[0]
    assert overall["n"] == len(deficit) and overall["events"] == sum(d for _, d in deficit)
    for landmark in (30, 365):
        assert overall[f"survival_{landmark}"] == pytest.approx(
            _kaplan_meier(deficit, landmark), abs=1e-6)
    assert math.isnan(overall["median"])  # the curve stays above one half
    groups = summary[summary["grouping"] == "management"].set_index("group")
    surgical = [(p[10], p[9] == "dead") for p in PATIENTS if p[4] == "yes" and p[3] == "surgery"]
    assert groups.loc["surgery", "n"] == len(surgical)
    assert groups.loc["surgery", "survival_365"] == pytest.approx(
        _kaplan_meier(surgical, 365), abs=1e-6)
    assert (abscess_report / "figures" / "outcome_deficit_deaths_overall.svg").exists()
    assert (abscess_report / "figures" / "outcome_deficit_deaths_management.svg").exists()
    visible = _visible(abscess_report)
    outside = sum(p[4] != "yes" for p in PATIENTS)
    assert (f"Death after a deficit, among patients with a deficit: {len(deficit)} with a usable "
            f"time; {outside} are not patients with a deficit and not counted.") in visible
    section = visible[visible.index("Death after a deficit, among"):]
    assert "Alive at 365 days" in section and "month" not in section
    # 1 and 3 deaths: below the protocol's 5 per group, described rather than tested.
    assert "The groups are described, not compared." in section
    assert "time-to-event outcomes as Kaplan–Meier curves" in visible
    document = (abscess_report.parent.parent / "protocols" / "abscess-review.md").read_text(
        encoding="utf-8")
    assert ("- Death after a deficit (time to event: `follow_up_days` (days from the "
            "injection), event `vital_status` = dead") in document


def test_a_categorical_outcome_pools_the_values_the_protocol_names(abscess_report):
    from analysis.pooling import pool_proportions

    pooled = pd.read_csv(abscess_report / "tables" / "outcome_organism_pooled.csv",
                         keep_default_na=False).set_index("value")
    studies = sorted({p[0] for p in PATIENTS})
    visible = _visible(abscess_report)
    assert "Pooled across reports (sensitivity analysis)" in visible
    for code, label in (("mrsa", "MRSA"), ("s_aureus", "Staphylococcus aureus (MSSA)")):
        events = [sum(p[7] == code for p in PATIENTS if p[0] == study) for study in studies]
        totals = [sum(p[0] == study for p in PATIENTS) for study in studies]
        assert pooled.loc[code, "k"] == len(studies)
        assert (pooled.loc[code, "events"], pooled.loc[code, "total"]) == (sum(events),
                                                                          sum(totals))
        # The estimator itself is checked against metafor in test_pooling*.py.
        expected = pool_proportions(events, totals, method="glmm")
        assert pooled.loc[code, "estimate"] == pytest.approx(expected.estimate, abs=1e-5)
        share = f"{100 * expected.estimate:.1f}%"
        assert f"{label} {len(studies)} {share}" in visible
        assert (abscess_report / "figures" / f"forest_outcome_organism_{code}.svg").exists()
