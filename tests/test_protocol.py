from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from review.errors import ReviewError
from review.protocol import load_protocol, parse_protocol
from review.protocol_document import render_protocol_markdown
from tests.conftest import PROTOCOL_PATH

DOCUMENT = yaml.safe_load(PROTOCOL_PATH.read_text(encoding="utf-8"))


def broken(edit) -> dict:
    document = copy.deepcopy(DOCUMENT)
    edit(document)
    return document


def error_of(document: dict) -> str:
    with pytest.raises(ReviewError) as caught:
        parse_protocol(document, source="p.yaml")
    return str(caught.value)


def test_shipped_protocol_describes_the_review(protocol):
    assert protocol.id == "hcc-bone-metastasis"
    schema = protocol.extraction
    assert schema.field("bone_sites").multi_valued
    assert "spine_unspecified" in schema.field("bone_sites").values
    assert schema.field("systemic_treatments").exclusive == ("none",)
    assert [c.id for c in protocol.search.concepts] == ["hcc", "bone_metastasis", "case_design"]
    assert len(schema.appraisal.items) == 8
    groupings = {g.id: g for g in protocol.analysis.treatment_groupings}
    assert [g.id for g in groupings["bone_directed"].groups] == ["surgery", "radiotherapy", "none"]
    assert protocol.analysis.survival.time_field == "survival_months_after_bone_met"


def test_markdown_protocol_agrees_with_yaml(protocol):
    committed = PROTOCOL_PATH.with_suffix(".md").read_text(encoding="utf-8")
    assert committed == render_protocol_markdown(protocol, PROTOCOL_PATH.name)
    for spec in protocol.extraction.fields:
        assert f"`{spec.name}`" in committed
    for reason in protocol.screening.exclusion_reasons:
        assert f"`{reason.id}`" in committed


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["extraction"]["fields"][3].update(type="strng"),
         "extraction.fields[3].type: 'strng' is not one of: text, identifier"),
        (lambda d: d["extraction"]["fields"][9].update(colour="red"),
         "extraction.fields[9].colour: unknown key"),
        (lambda d: d.pop("screening"), "screening: missing"),
        (lambda d: d["extraction"]["fields"][10].update(values=[]),
         "extraction.fields[10].values: a 'codes' field must list its allowed values"),
        (lambda d: d["extraction"]["fields"][10].update(exclusive=["never"]),
         "extraction.fields[10].exclusive[0]: 'never' is not one of"),
        (lambda d: d["analysis"]["treatment_groupings"][0]["groups"][0]["any_of"].append("laser"),
         "analysis.treatment_groupings[0].groups[0].any_of[4]: 'laser' is not one of"),
        (lambda d: d["extraction"]["rules"][0].update(needs="no_such_field"),
         "extraction.rules[0].needs: 'no_such_field' is not one of"),
        (lambda d: d["search"]["limits"].update(date_from="1/1/1990"),
         "search.limits.date_from: '1/1/1990' must be YYYY, YYYY/MM or YYYY/MM/DD"),
        (lambda d: d["search"]["concepts"][2].update(tiab=[], publication_types=[]),
         "search.concepts[2]: a concept needs at least one"),
        (lambda d: d["extraction"]["fields"].append(dict(d["extraction"]["fields"][0])),
         "extraction.fields: 'case_id' is listed twice"),
        (lambda d: d["extraction"]["fields"][8].update(min=200),
         "extraction.fields[8]: min 200 is above max 110"),
        (lambda d: d["extraction"]["fields"][0].update(pattern="(unclosed"),
         "extraction.fields[0].pattern: not a regular expression"),
        (lambda d: d["analysis"]["survival"].update(event_value="deceased"),
         "analysis.survival.event_value: 'deceased' is not one of: dead, alive"),
        (lambda d: d["screening"].update(stages=["abstract"]),
         "screening.stages[0]: 'abstract' is not one of"),
    ],
)
def test_a_wrong_key_is_named(edit, expected):
    assert expected in error_of(broken(edit))


def test_every_error_is_reported_at_once():
    def two_errors(document):
        document["extraction"]["fields"][3]["type"] = "strng"
        document["id"] = "1bad id"
    message = error_of(broken(two_errors))
    assert "p.yaml: id: '1bad id' must start with a letter" in message
    assert "p.yaml: extraction.fields[3].type" in message


def test_malformed_yaml_names_the_line(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text("id: x\ntitle: [unclosed\nversion: 1\n", encoding="utf-8")
    with pytest.raises(ReviewError, match=r"p\.yaml:\d+: not valid YAML"):
        load_protocol(path)


def test_empty_protocol_is_an_error(tmp_path: Path):
    path = tmp_path / "p.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ReviewError, match="empty protocol"):
        load_protocol(path)


def test_protocol_check_fails_on_stale_markdown(hcc_workspace, run_cli):
    status, out, _ = run_cli("--project", hcc_workspace.root, "protocol", "check")
    assert status == 0, out
    hcc_workspace.protocol_document_path.write_text("# edited by hand\n", encoding="utf-8")
    status, out, _ = run_cli("--project", hcc_workspace.root, "protocol", "check")
    assert status == 1
    assert "out of date" in out
    assert run_cli("--project", hcc_workspace.root, "protocol", "render")[0] == 0
    assert run_cli("--project", hcc_workspace.root, "protocol", "check")[0] == 0


def _protocol_file(tmp_path: Path, old: str, new: str) -> Path:
    text = PROTOCOL_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "p.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), start=1)
                if text in line)


def test_a_protocol_error_names_its_yaml_line(tmp_path: Path):
    path = _protocol_file(tmp_path, "      type: integer\n", "      type: intger\n")
    with pytest.raises(ReviewError) as caught:
        load_protocol(path)
    assert f"p.yaml:{_line_of(path, 'type: intger')}: extraction.fields[" in str(caught.value)
    # A missing key is reported at the line of the mapping that lacks it.
    path = _protocol_file(tmp_path, "          distance: 3\n", "")
    with pytest.raises(ReviewError) as caught:
        load_protocol(path)
    first = _line_of(path, "- words: [[metastasis")
    assert (f"p.yaml:{first}: search.concepts[1].tiab_proximity[0].distance: missing"
            in str(caught.value))


def test_a_mesh_heading_may_be_a_plain_string(tmp_path: Path):
    path = _protocol_file(tmp_path, "        - heading: Spinal Cord Compression\n",
                          "        - Spinal Cord Compression\n")
    heading = load_protocol(path).search.concepts[1].mesh[-1]
    assert (heading.heading, heading.subheading, heading.major, heading.explode) == (
        "Spinal Cord Compression", None, False, True)


def test_proximity_words_list_their_forms():
    from review.search.query import build_query

    protocol = load_protocol(PROTOCOL_PATH)
    near = protocol.search.concepts[1].tiab_proximity[0]
    assert near.describe() == "metastasis/metastases/metastatic vertebra/vertebrae/vertebral"
    assert len(near.phrases) == 9
    query = build_query(protocol.search)
    assert '"metastases vertebral"[tiab:~3]' in query
    assert '"metastatic vertebrae"[tiab:~3]' in query
    both = broken(lambda d: d["search"]["concepts"][1]["tiab_proximity"][0].update(
        phrase="metastasis vertebra"))
    assert "give either phrase (exact words) or words" in error_of(both)
    many = broken(lambda d: d["search"]["concepts"][1]["tiab_proximity"][0].update(
        words=[[f"a{i}" for i in range(9)], [f"b{i}" for i in range(9)]]))
    assert "81 combinations of forms; at most 64" in error_of(many)
