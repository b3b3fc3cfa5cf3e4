"""The protocol's published JSON Schema and its formats: the committed schema is the one the
typed model generates, the shipped protocols validate against it with an off-the-shelf
validator (jsonschema), and every format this project has shipped is read, and upgraded on
disk with every line of the reviewer's file kept."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from review.errors import ReviewError
from review.protocol import load_protocol, parse_protocol, protocol_schema_text
from review.protocol_format import FORMAT, SCHEMA_COMMENT
from tests.conftest import PROTOCOL_PATH

SCHEMA_PATH = PROTOCOL_PATH.parent / "protocol.schema.json"
FIXTURES = Path(__file__).parent / "fixtures" / "protocols"
# The HCC protocol as shipped at its versions 1.0 and 1.1, before the file named its format.
FORMAT_1 = sorted(FIXTURES.glob("*-format1.yaml"))


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def _paths(errors) -> set[str]:
    """Where each error is, and where each alternative of an `anyOf` failed (a key that may
    also be null fails in both)."""
    return {path for error in errors
            for path in {error.json_path} | _paths(error.context or [])}


def _template_document() -> dict:
    template = resources.files("review") / "templates" / "protocol.yaml"
    return yaml.safe_load(template.read_text(encoding="utf-8").replace("REVIEW_ID", "rcc-spine"))


def test_the_committed_schema_is_the_generated_one(run_cli):
    assert SCHEMA_PATH.read_text(encoding="utf-8") == protocol_schema_text()
    status, out, _ = run_cli("protocol", "schema")
    assert status == 0 and json.loads(out) == json.loads(protocol_schema_text())


@pytest.mark.parametrize("document", [
    yaml.safe_load(PROTOCOL_PATH.read_text(encoding="utf-8")), _template_document(),
    *(yaml.safe_load(path.read_text(encoding="utf-8")) for path in FORMAT_1),
], ids=["hcc", "init-template", *(path.stem for path in FORMAT_1)])
def test_shipped_protocols_validate_against_the_schema(document):
    errors = sorted(_validator().iter_errors(document), key=lambda error: error.json_path)
    assert [f"{error.json_path}: {error.message}" for error in errors] == []


@pytest.mark.parametrize(("edit", "where"), [
    (lambda d: d["extraction"]["fields"][3].update(type="strng"), "$.extraction.fields[3].type"),
    (lambda d: d["extraction"]["fields"][9].update(colour="red"), "$.extraction.fields[9]"),
    (lambda d: d["screening"].update(order="sorted"), "$.screening.order"),
    (lambda d: d["screening"].update(stopping={"recall_target": 1.5}),
     "$.screening.stopping.recall_target"),
    (lambda d: d["search"]["limits"].update(date_from="1/1/1990"), "$.search.limits.date_from"),
    (lambda d: d.pop("screening"), "$"),
    (lambda d: d["analysis"]["body_map"].update(wing=["skull"]), "$.analysis.body_map"),
    (lambda d: d["search"]["concepts"][1]["tiab_proximity"][0].update(phrase="a b"),
     "$.search.concepts[1].tiab_proximity[0]"),
])
def test_the_schema_tells_an_editor_what_the_model_refuses(edit, where):
    document = copy.deepcopy(yaml.safe_load(PROTOCOL_PATH.read_text(encoding="utf-8")))
    document["analysis"].setdefault("body_map", {"skull": ["skull"]})
    edit(document)
    assert where in _paths(_validator().iter_errors(document))
    with pytest.raises(ReviewError):
        parse_protocol(document, source="p.yaml")


def test_an_unknown_key_is_told_the_key_it_likely_meant():
    document = copy.deepcopy(yaml.safe_load(PROTOCOL_PATH.read_text(encoding="utf-8")))
    document["extraction"]["fields"][10]["exlusive"] = ["none"]
    with pytest.raises(ReviewError) as caught:
        parse_protocol(document, source="p.yaml")
    assert ("p.yaml: extraction.fields[10].exlusive: unknown key; did you mean 'exclusive'? "
            "(allowed: name, type, description,") in str(caught.value)


@pytest.mark.parametrize("path", FORMAT_1, ids=lambda path: path.stem)
def test_every_shipped_format_is_read_and_an_old_one_says_so(path):
    protocol = load_protocol(path)
    assert protocol.protocol_format == FORMAT
    assert protocol.notes == (f"{path}: written for protocol format 1, read as format {FORMAT}; "
                              "'review protocol upgrade' rewrites the file",)
    assert load_protocol(PROTOCOL_PATH).notes == ()


def test_a_newer_format_than_the_toolkit_reads_is_one_clear_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(PROTOCOL_PATH.read_text(encoding="utf-8").replace(
        "protocol_format: 2", "protocol_format: 3", 1), encoding="utf-8")
    with pytest.raises(ReviewError, match=r"p\.yaml: protocol_format 3 is newer than this "
                                          r"toolkit reads \(formats 1 to 2\)"):
        load_protocol(path)


@pytest.mark.parametrize("path", FORMAT_1, ids=lambda path: path.stem)
def test_upgrade_rewrites_an_old_protocol_keeping_every_line(tmp_path, run_cli, path):
    status, _, err = run_cli("init", tmp_path / "review", "--from", path, "--no-git")
    assert status == 0, err
    target = tmp_path / "review" / "protocols" / path.name
    before = target.read_text(encoding="utf-8")
    (tmp_path / "review" / "protocols" / "protocol.schema.json").unlink()
    status, out, _ = run_cli("--project", tmp_path / "review", "protocol", "check", "--json")
    checked = json.loads(out)
    assert status == 0 and checked["format"] == FORMAT and checked["stale"] == []
    assert checked["notes"][0].endswith("written for protocol format 1, read as format 2; "
                                        "'review protocol upgrade' rewrites the file")

    status, out, err = run_cli("--project", tmp_path / "review", "protocol", "upgrade")
    assert status == 0, err
    assert "format 1 to 2: names its format" in out and "protocol.schema.json" in out
    after = target.read_text(encoding="utf-8")
    added = after.splitlines()
    for line in before.splitlines():
        added.remove(line)  # every line of the reviewer's file, comments too, is still there
    assert added == [SCHEMA_COMMENT, "protocol_format: 2"]
    assert after.startswith(SCHEMA_COMMENT + "\n#")  # above the reviewer's own header
    kept = [line for line in after.splitlines() if line not in added]
    assert kept == before.splitlines()  # and in its order
    assert load_protocol(target).notes == ()
    assert (tmp_path / "review" / "protocols" / "protocol.schema.json").read_text(
        encoding="utf-8") == protocol_schema_text()
    assert run_cli("--project", tmp_path / "review", "protocol", "check")[0] == 0

    status, out, _ = run_cli("--project", tmp_path / "review", "protocol", "upgrade")
    assert status == 0 and target.read_text(encoding="utf-8") == after
    assert "already in the current format" in out


def test_an_invalid_protocol_is_not_upgraded(tmp_path, run_cli):
    root = tmp_path / "review"
    assert run_cli("init", root, "--from", FORMAT_1[0], "--no-git")[0] == 0
    target = root / "protocols" / FORMAT_1[0].name
    broken = target.read_text(encoding="utf-8").replace(
        "  stages:\n    - title-abstract", "  stages:\n    - abstract\n    - title-abstract", 1)
    target.write_text(broken, encoding="utf-8")
    status, _, err = run_cli("--project", root, "protocol", "upgrade")
    assert status == 2 and "screening.stages[0]: 'abstract' is not one of" in err
    assert target.read_text(encoding="utf-8") == broken


def test_a_stale_schema_beside_the_protocol_fails_the_check(hcc_workspace, run_cli):
    schema = hcc_workspace.protocol_path.parent / "protocol.schema.json"
    assert schema.exists()
    schema.write_text("{}\n", encoding="utf-8")
    status, out, _ = run_cli("--project", hcc_workspace.root, "protocol", "check")
    assert status == 1 and "protocol.schema.json: not the schema of this version" in out
    assert run_cli("--project", hcc_workspace.root, "protocol", "schema", "--out", schema)[0] == 0
    assert run_cli("--project", hcc_workspace.root, "protocol", "check")[0] == 0
