"""Outcomes declared in the protocol: the estimators equal R (tests/r/outcomes.R), are strict
about their inputs, and a review that declares a binary outcome with a denominator rule and a
continuous one gets a section for each, its numbers computed from its own sheet."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import fisher_exact

from analysis.outcomes import BinaryOutcome, CategoricalOutcome, ContinuousOutcome
from review.errors import ReviewError
from review.extraction.sheet import read_cases
from review.protocol import load_protocol, parse_protocol
from review.report.build import build_report
from review.workspace import Workspace
from tests.conftest import PROTOCOL_PATH

R = json.loads((Path(__file__).parent / "fixtures" / "r" / "outcomes.json").read_text())


@pytest.mark.parametrize("share", R["wilson"], ids=lambda s: f"{s['events']}of{s['n']}")
def test_the_share_and_its_wilson_interval_equal_r(share):
    events = [True] * share["events"] + [False] * (share["n"] - share["events"])
    overall = BinaryOutcome().fit(pd.Series(events)).overall
    assert (overall.events, overall.n) == (share["events"], share["n"])
    assert overall.ci_low == pytest.approx(100 * share["ci"][0], abs=1e-9)
    assert overall.ci_high == pytest.approx(100 * share["ci"][1], abs=1e-9)


@pytest.mark.parametrize("name", sorted(R["exact"]))
def test_the_exact_test_between_groups_equals_r(name):
    table = R["exact"][name]
    event, group = [], []
    for index, (yes, no) in enumerate(zip(table["events"], table["others"], strict=True)):
        event += [True] * yes + [False] * no
        group += [f"g{index}"] * (yes + no)
    result = BinaryOutcome(min_per_group=1).fit(pd.Series(event), pd.Series(group))
    assert result.test.method == ("Fisher's exact test" if len(table["events"]) == 2
                                  else "Fisher–Freeman–Halton exact test")
    assert result.test.p_value == pytest.approx(table["p"], rel=1e-9)
    assert [share.events for share in result.groups] == table["events"]


@pytest.mark.parametrize("sample", R["spread"], ids=lambda s: str(s["values"])[:20])
def test_median_and_quartiles_equal_r(sample):
    values = sample["values"] if isinstance(sample["values"], list) else [sample["values"]]
    overall = ContinuousOutcome().fit(pd.Series(values)).overall
    assert (overall.q1, overall.median, overall.q3) == pytest.approx(
        (sample["q1"], sample["median"], sample["q3"]), abs=1e-12)
    assert (overall.min, overall.max, overall.n) == (min(values), max(values), len(values))


def test_groups_too_small_for_a_test_are_described_not_tested():
    event = pd.Series([True, False, True, True, False, True, False])
    group = pd.Series(["a", "a", "a", "a", "b", "b", "b"])
    result = BinaryOutcome(min_per_group=4).fit(event, group, {"a": "Surgery",
                                                                 "b": "Antibiotics"})
    assert result.test is None
    assert result.untested == "fewer than 4 patients in Antibiotics (3)"
    assert [share.label for share in result.groups] == ["Surgery", "Antibiotics"]
    same = BinaryOutcome(min_per_group=1).fit(pd.Series([True] * 4), pd.Series(list("aabb")))
    assert same.untested == "every patient had the same outcome"


def test_a_region_counts_a_patient_once_however_many_of_its_values_they_have():
    levels = pd.Series([("L4", "L5"), ("C5",), ("L4",), ("T12", "C5")])
    group = pd.Series(["surgery", "surgery", "antibiotics", "antibiotics"])
    result = CategoricalOutcome({"C5": "C5", "T12": "T12", "L4": "L4", "L5": "L5"},
                                regions={"cervical": ("Cervical", ["C5"]),
                                         "lumbar": ("Lumbar", ["L4", "L5"])}).fit(levels, group)
    assert [(r.value, r.count, r.n) for r in result.regions] == [("cervical", 2, 4),
                                                                 ("lumbar", 2, 4)]
    # The L4;L5 patient is one of the two lumbar patients and counts under each level.
    assert {c.value: c.count for c in result.overall} == {"C5": 2, "T12": 1, "L4": 2, "L5": 1}
    assert [c.label for c in result.most_frequent] == ["C5", "L4"]
    summary = result.summary()
    assert list(summary.loc[summary["group"] == "overall", "kind"]) == ["region"] * 2 + \
        ["value"] * 4
    surgery = summary[(summary["group"] == "surgery") & (summary["kind"] == "region")]
    assert list(surgery["count"]) == [1, 1] and set(surgery["n"]) == {2}


def _bars(ax) -> dict[str, float]:
    """Each bar's width by its row label, top to bottom."""
    labels = {round(tick.get_position()[1]): tick.get_text() for tick in ax.get_yticklabels()}
    bars = sorted(ax.patches, key=lambda bar: -bar.get_y())
    return {labels[round(bar.get_y() + bar.get_height() / 2)]: bar.get_width() for bar in bars}


def test_each_estimator_plots_what_it_counted():
    levels = pd.Series([("L4", "L5"), ("C5",), ("L4",), ("L4",)])
    categorical = CategoricalOutcome({"C5": "C5", "T12": "T12", "L4": "L4", "L5": "L5"},
                                     regions={"lumbar": ("Lumbar", ["L4", "L5"])}).fit(levels)
    regions, values = categorical.plot().axes
    assert _bars(regions) == {"Lumbar": 75.0}
    # T12, which no patient has, is left out; the rest keep the vocabulary's order.
    assert _bars(values) == {"C5": 25.0, "L4": 75.0, "L5": 25.0}
    assert [text.get_text() for text in values.texts] == ["1/4", "3/4", "1/4"]

    binary = BinaryOutcome(min_per_group=1).fit(
        pd.Series([True, False, True, True]), pd.Series(["a", "a", "b", "b"]),
        {"a": "Surgery", "b": "Antibiotics"})
    (ax,) = binary.plot("Recovered, %").axes
    assert _bars(ax) == {"All": 75.0, "Surgery": 50.0, "Antibiotics": 100.0}
    assert ax.get_xlabel() == "Recovered, %"

    continuous = ContinuousOutcome().fit(pd.Series([1.0, 2.0, 4.0]), pd.Series(list("aab")),
                                         {"a": "Surgery", "b": "Antibiotics"})
    (ax,) = continuous.plot("Days").axes
    assert [tick.get_text() for tick in ax.get_yticklabels()] == [
        "All (n = 3)", "Surgery (n = 2)", "Antibiotics (n = 1)"]
    dots = sorted(value for line in ax.lines if line.get_marker() == "o"
                  for value in line.get_xdata())
    assert dots == [1.0, 1.0, 2.0, 2.0, 4.0, 4.0]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: BinaryOutcome().fit(pd.Series(["dead", "alive"])),
     r"event: row 0 is 'dead'; events must be True/False or 1/0"),
    (lambda: BinaryOutcome().fit(pd.Series([True, np.nan])), r"event: row 1 is nan"),
    (lambda: BinaryOutcome().fit(pd.Series([1, 2])), r"event: row 1 is 2"),
    (lambda: BinaryOutcome().fit(pd.Series([], dtype=bool)), r"no patients to count"),
    (lambda: BinaryOutcome().fit(pd.Series([True, False]), pd.Series(["a"])),
     r"group: 1 values for 2 patients"),
    (lambda: BinaryOutcome().fit(pd.Series([True, False]), pd.Series(["a", None])),
     r"group: row 1 has no group"),
    (lambda: BinaryOutcome().fit(pd.Series([True, False]), pd.Series(["a", "zzz"]),
                                 {"a": "A", "b": "B"}),
     r"group: 'zzz' is not one of the labelled groups: a, b"),
    (lambda: ContinuousOutcome().fit(pd.Series([1.0, np.inf])), r"values: row 1 is inf"),
    (lambda: ContinuousOutcome().fit(pd.Series(["4", "x"])), r"values: row 1 is 'x'"),
    (lambda: BinaryOutcome(level=95), r"level: 95 is not between 0 and 1"),
    (lambda: CategoricalOutcome({"a": "A"}).fit(pd.Series(["a", ("a", "b")])),
     r"values: row 1 is \('a', 'b'\); each value must be one of: a"),
    (lambda: CategoricalOutcome({"a": "A"}, regions={"r": ("R", ["a", "b"])}),
     r"regions: 'r' must list values, each one of: a"),
    (lambda: CategoricalOutcome({"a": "A"}, regions={"r": ("R", [])}),
     r"regions: 'r' must list values"),
])
def test_the_estimators_refuse_what_they_cannot_count(call, message):
    with pytest.raises(ValueError, match=message):
        call()


OUTCOMES = [
    {"id": "death", "label": "Death during follow-up", "kind": "binary",
     "field": "vital_status", "events": "dead", "groupings": ["bone_directed"],
     "min_per_group": 1},
    {"id": "death_after_compression", "label": "Death after cord compression",
     "kind": "binary", "field": "vital_status", "events": ["dead"],
     "among": {"field": "spinal_cord_compression", "value": "yes",
               "label": "patients with cord compression"}},
    {"id": "age", "label": "Age at diagnosis", "kind": "continuous", "field": "age",
     "unit": "years", "groupings": ["bone_directed"]},
    {"id": "treatments", "label": "Bone-directed treatments", "kind": "categorical",
     "field": "bone_treatments", "groupings": ["bone_directed"]},
]


@pytest.fixture
def review_with_outcomes(hcc_workspace) -> Workspace:
    path = hcc_workspace.protocol_path
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["analysis"]["outcomes"] = copy.deepcopy(OUTCOMES)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return Workspace(hcc_workspace.root)


def test_each_declared_outcome_gets_its_section_with_numbers_from_the_sheet(
        review_with_outcomes, tmp_path):
    protocol = load_protocol(review_with_outcomes.protocol_path)
    cases = read_cases(review_with_outcomes.cases_path, protocol.extraction)
    build_report(review_with_outcomes, tmp_path / "report", force=True)
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    visible = " ".join(re.sub(r"<[^>]+>", " ", page).split())

    titles = re.findall(r'<section id="outcome-([^"]+)"><h2>([^<]+)</h2>', page)
    assert titles == [(outcome["id"], outcome["label"]) for outcome in OUTCOMES]

    status = cases["vital_status"][cases["vital_status"] != ""]
    dead, known = int((status == "dead").sum()), len(status)
    assert f"Death during follow-up: {dead} of {known} " in visible
    compressed = cases[(cases["spinal_cord_compression"] == "yes") & (cases["vital_status"] != "")]
    among_dead = int((compressed["vital_status"] == "dead").sum())
    assert (f"Death after cord compression: {among_dead} of {len(compressed)} patients with "
            "cord compression (") in visible

    # The exact test the report prints is scipy's on the table of the sheet's own groups.
    tests = pd.read_csv(tmp_path / "report" / "tables" / "outcome_death_tests.csv")
    shares = pd.read_csv(tmp_path / "report" / "tables" / "outcome_death.csv")
    by_group = shares[shares["grouping"] == "bone_directed"]
    table = np.column_stack([by_group["events"], by_group["n"] - by_group["events"]])
    assert tests.loc[0, "p_value"] == pytest.approx(fisher_exact(table).pvalue, rel=1e-12)
    assert tests.loc[0, "method"] == "Fisher–Freeman–Halton exact test"

    ages = pd.to_numeric(cases["age"][cases["age"] != ""])
    median = np.median(ages)
    assert f"Age at diagnosis: median {median:g} years" in visible
    assert f"in {len(ages)} patients" in visible
    assert "Declared outcomes (Death during follow-up; Death after cord compression; Age at " \
           "diagnosis; Bone-directed treatments)" in visible

    # A multi-valued field counts a patient under each value; the most frequent are named.
    treated = [set(value.split(";")) for value in cases["bone_treatments"] if value]
    counts = {code: sum(code in codes for codes in treated)
              for code in protocol.extraction.field("bone_treatments").values}
    top = max(counts.values())
    leaders = [code for code, count in counts.items() if count == top]
    labels = " and ".join(code[:1].upper() + code[1:].replace("_", " ") for code in leaders)
    assert (f"Bone-directed treatments: reported for {len(treated)} patients") in visible
    assert f"the most frequent {'were' if len(leaders) > 1 else 'was'} {labels} ({top}" \
        in visible
    assert "A patient may have several values" in visible


def test_a_tie_for_the_most_frequent_value_names_every_value_tied():
    from analysis.outcomes import CategoricalOutcome

    levels = pd.Series([("T4",), ("T9", "T4"), ("T9",), ("L1",), ("T4", "T9"), ("T9", "T4")])
    result = CategoricalOutcome({"T4": "T4", "T9": "T9", "L1": "L1", "C2": "C2"}).fit(levels)
    assert [category.value for category in result.most_frequent] == ["T4", "T9"]
    assert [category.count for category in result.overall] == [4, 4, 1, 0]
    assert result.multi_valued and result.n == 6
    with pytest.raises(ValueError, match=r"values: row 0 is 'T13'; each value must be one of"):
        CategoricalOutcome({"T4": "T4"}).fit(pd.Series(["T13"]))


TIMED = {"id": "timed", "label": "Death", "kind": "time_to_event",
         "time_to_event": {"time_field": "survival_months_after_hcc_dx",
                           "status_field": "vital_status", "event_value": "dead",
                           "censored_value": "alive", "time_unit": "months"}}


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda o: o[0].update(events=["deceased"]),
     "analysis.outcomes[0].events[0]: 'deceased' is not one of: dead, alive"),
    (lambda o: o[2].update(field="sex"),
     "analysis.outcomes[2].field: 'sex' is not an integer or number field"),
    (lambda o: o[0].update(groupings=["by_surgeon"]),
     "analysis.outcomes[0].groupings[0]: 'by_surgeon' is not one of: bone_directed"),
    (lambda o: o[1]["among"].update(value="maybe"),
     "analysis.outcomes[1].among.value: 'maybe' is not one of: yes, no"),
    (lambda o: o[0].pop("events"),
     "analysis.outcomes[0].events: a binary outcome lists the values that count as the event"),
    (lambda o: o[2].update(events=["x"]),
     "analysis.outcomes[2].events: only a binary outcome takes events"),
    (lambda o: o[2].update(kind="ordinal"),
     "analysis.outcomes[2].kind: 'ordinal' is not one of: binary, categorical, continuous, "
     "time_to_event"),
    (lambda o: o.append(dict(o[0])), "analysis.outcomes: 'death' is listed twice"),
    (lambda o: o[3].update(field="age"), "analysis.outcomes[3].field: 'age' is not a coded "
                                         "field"),
    (lambda o: o[2].update(kind="time_to_event"),
     "analysis.outcomes[2].time_to_event: a time_to_event outcome needs its time_to_event "
     "block"),
    (lambda o: o.append(dict(TIMED, field="age")),
     "analysis.outcomes[4].field: a time_to_event outcome names its fields in its "
     "time_to_event block"),
    (lambda o: o[0].update(time_to_event=TIMED["time_to_event"]),
     "analysis.outcomes[0].time_to_event: only a time_to_event outcome takes this block"),
    (lambda o: o.append(dict(TIMED, time_to_event=dict(TIMED["time_to_event"],
                                                       time_field="sex"))),
     "analysis.outcomes[4].time_to_event.time_field: 'sex' is not a number field"),
    (lambda o: o.append(dict(TIMED, time_to_event=dict(TIMED["time_to_event"],
                                                       event_value="deceased"))),
     "analysis.outcomes[4].time_to_event.event_value: 'deceased' is not one of: dead, alive"),
    (lambda o: o.append({"id": "nothing", "label": "Nothing", "kind": "binary",
                         "events": ["yes"]}),
     "analysis.outcomes[4].field: missing"),
    (lambda o: o[0].update(pool=["dead"]),
     "analysis.outcomes[0].pool: only a categorical outcome pools its values"),
    (lambda o: o[3].update(pool=["zzz"]), "analysis.outcomes[3].pool[0]: 'zzz' is not one of"),
    (lambda o: o[0].update(regions=[{"id": "r", "label": "R", "values": ["dead"]}]),
     "analysis.outcomes[0].regions: only a categorical outcome groups its values into regions"),
    (lambda o: o[3].update(regions=[{"id": "r", "label": "R", "values": ["radiotherapy",
                                                                          "zzz"]}]),
     "analysis.outcomes[3].regions[0].values[1]: 'zzz' is not one of"),
    (lambda o: o[3].update(regions=[{"id": "r", "label": "R", "values": ["radiotherapy"]}] * 2),
     "analysis.outcomes[3].regions: 'r' is listed twice"),
    (lambda o: o[3].update(regions=[{"id": "r", "label": "R", "values": []}]),
     "analysis.outcomes[3].regions[0].values:"),
])
def test_a_wrong_outcome_is_named_at_its_key(edit, expected):
    document = yaml.safe_load(PROTOCOL_PATH.read_text(encoding="utf-8"))
    outcomes = copy.deepcopy(OUTCOMES)
    edit(outcomes)
    document["analysis"]["outcomes"] = outcomes
    with pytest.raises(ReviewError) as caught:
        parse_protocol(document, source="p.yaml")
    assert expected in str(caught.value)
