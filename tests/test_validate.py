"""Every validation rule, each with an example that breaks it."""

from __future__ import annotations

import pandas as pd
import pytest

from review.extraction.validate import validate_cases

INDEX_CASE = "merhaben_2025_1"


@pytest.fixture
def schema(protocol):
    return protocol.extraction


@pytest.fixture
def index_case(shipped_cases) -> pd.DataFrame:
    return shipped_cases[shipped_cases.case_id == INDEX_CASE].reset_index(drop=True)


def problems_after(frame: pd.DataFrame, schema, **cells) -> list[str]:
    frame = frame.copy()
    for column, value in cells.items():
        frame.loc[0, column] = value
    return [str(problem) for problem in validate_cases(frame, schema, source="s.csv",
                                                      latest_year=2026)]


def test_shipped_sheet_is_clean(shipped_cases, schema):
    assert len(shipped_cases) == 120
    assert validate_cases(shipped_cases, schema) == []


def test_index_case_is_clean(index_case, schema):
    assert problems_after(index_case, schema) == []
    assert index_case.loc[0, "vertebral_levels"] == "C1;C2;L3"


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"source_title": ""}, "s.csv:2:source_title: required, but blank"),
        ({"extraction_basis": ""}, "s.csv:2:extraction_basis: required, but blank"),
        ({"case_id": "Merhaben 2025"},
         "s.csv:2:case_id: malformed identifier (got 'Merhaben 2025'"),
        ({"source_url": "www.example.org/x"}, "s.csv:2:source_url: not a web address"),
        ({"doi": "https://doi.org/10.2144/fsoa-2025-0001"},
         "s.csv:2:doi: not a DOI (got 'https://doi.org/10.2144/fsoa-2025-0001'; "
         "write the bare DOI"),
        ({"pmid": "PMID40828566"}, "s.csv:2:pmid: not a PubMed ID"),
        ({"pub_year": "1899"}, "s.csv:2:pub_year: below the minimum 1900"),
        ({"pub_year": "2027"}, "s.csv:2:pub_year: above the maximum 2026"),
        ({"pub_year": "25"}, None),
        ({"age": "111"}, "s.csv:2:age: above the maximum 110 years (got '111')"),
        ({"age": "-1"}, "s.csv:2:age: below the minimum 0 years"),
        ({"age": "55.5"}, "s.csv:2:age: not a whole number (got '55.5')"),
        ({"age": "fifty"}, "s.csv:2:age: not a whole number"),
        ({"survival_months_after_bone_met": "-2"},
         "s.csv:2:survival_months_after_bone_met: below the minimum 0 months"),
        ({"survival_months_after_bone_met": "1,5"},
         "s.csv:2:survival_months_after_bone_met: not a number (got '1,5'; use '.' as the "
         "decimal mark)"),
        ({"afp_ng_ml": "-3"}, "s.csv:2:afp_ng_ml: below the minimum 0 ng/mL"),
        ({"sex": "female"}, "s.csv:2:sex: not in the vocabulary (got 'female'; allowed: F, M)"),
        ({"cirrhosis": "Yes"},
         "s.csv:2:cirrhosis: not in the vocabulary (got 'Yes'; did you mean 'yes'?; "
         "allowed: yes, no)"),
        ({"bone_sites": "cervical_spine;lumbar_spine;knee"},
         "s.csv:2:bone_sites: not in the vocabulary (got 'knee'"),
        ({"bone_sites": "cervical_spine;;lumbar_spine"},
         "s.csv:2:bone_sites: empty item in the ';'-list, a stray ';'"),
        ({"bone_sites": "cervical_spine;lumbar_spine;"},
         "s.csv:2:bone_sites: empty item in the ';'-list"),
        ({"bone_sites": "cervical_spine; lumbar_spine"},
         "s.csv:2:bone_sites: space around an item of the ';'-list"),
        ({"bone_sites": "cervical_spine;lumbar_spine;cervical_spine"},
         "s.csv:2:bone_sites: 'cervical_spine' is listed twice"),
        ({"bone_treatments": "none;radiotherapy"},
         "s.csv:2:bone_treatments: 'none' cannot sit beside another value"),
        ({"systemic_treatments": "none;atezolizumab_bevacizumab"},
         "s.csv:2:systemic_treatments: 'none' cannot sit beside another value"),
        ({"vital_status": "", "survival_months_after_bone_met": "5"},
         "s.csv:2:survival_months_after_bone_met: reported without vital_status"),
        ({"vertebral_levels": "C1;T13"}, "s.csv:2:vertebral_levels: not in the vocabulary "
                                         "(got 'T13'"),
        ({"vertebral_levels": "C1;c2"}, "did you mean 'C2'?"),
        ({"vertebral_levels": "C1;X2"}, "s.csv:2:vertebral_levels: not in the vocabulary "
                                        "(got 'X2'"),
        ({"vertebral_levels": "C1;T4"},
         "s.csv:2:vertebral_levels: level T4 needs 'thoracic_spine' in bone_sites"),
        ({"bone_sites": "skull"},
         "s.csv:2:vertebral_levels: level C1 needs 'cervical_spine' in bone_sites"),
        ({"country": " Tunisia"}, "s.csv:2:country: leading or trailing space"),
        ({"study_id": "other_2025"},
         "s.csv:2:study_id: case_id 'merhaben_2025_1' does not belong to study_id 'other_2025'"),
    ],
)
def test_rule_catches_its_example(index_case, schema, cells, expected):
    found = problems_after(index_case, schema, **cells)
    if expected is None:
        assert found, f"no problem for {cells}"
        return
    assert any(line.startswith(expected) or expected in line for line in found), found


def test_year_of_two_digits_is_below_range(index_case, schema):
    assert problems_after(index_case, schema, pub_year="25") == [
        "s.csv:2:pub_year: below the minimum 1900 (got '25')"
    ]


def test_blank_means_not_reported_and_is_allowed(index_case, schema):
    optional = [spec.name for spec in schema.fields if not spec.required]
    blanked = dict.fromkeys(optional, "")
    assert problems_after(index_case, schema, **blanked) == []


def test_duplicate_case_names_the_first_row(shipped_cases, schema):
    frame = pd.concat([shipped_cases, shipped_cases.iloc[[5]]], ignore_index=True)
    found = [str(p) for p in validate_cases(frame, schema, source="s.csv")]
    assert found == [f"s.csv:122:case_id: duplicate case_id (got '{shipped_cases.case_id[5]}'; "
                     "first at s.csv:7)"]


@pytest.mark.parametrize(("column", "value"), [("source_title", "Another title"),
                                                ("doi", "10.1000/other"),
                                                ("pub_year", "2019")])
def test_rows_of_one_study_must_agree(shipped_cases, schema, column, value):
    frame = shipped_cases.copy()
    rows = frame.index[frame.study_id == "doval_2006"]
    frame.loc[rows[2], column] = value
    found = [str(p) for p in validate_cases(frame, schema, source="s.csv")]
    assert len(found) == 1
    assert found[0].startswith(f"s.csv:{rows[2] + 2}:{column}: rows of study_id 'doval_2006' "
                               f"disagree (got '{value}'; s.csv:{rows[0] + 2} has")


def test_problem_lines_are_sorted_and_complete(index_case, schema):
    found = problems_after(index_case, schema, sex="x", age="200", bone_sites="skull;;")
    assert found == sorted(found)
    # sex, age, the stray ';', and each of C1, C2 and L3 without its region among the sites
    assert len(found) == 6
