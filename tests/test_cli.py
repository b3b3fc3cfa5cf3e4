"""The `review` command as a user meets it: workspaces, exit codes, errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CASES_PATH, PROTOCOL_PATH, ROOT

REVIEW = [sys.executable, "-m", "review"]


def review(*args: str | Path, cwd: Path = ROOT, env: dict | None = None):
    return subprocess.run([*REVIEW, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_default_workspace_is_the_repository():
    result = review("extract", "validate", cwd=ROOT / "data")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "extraction/cases.csv: 120 patients from 113 studies, " \
                                    "no problems"


def test_every_command_has_help(run_cli):
    for command in (["init"], ["protocol", "check"], ["protocol", "render"],
                    ["extract", "validate"], ["extract", "template"], ["extract", "import"],
                    ["extract", "compare"], ["extract", "summary"], ["extract", "studies"],
                    ["analyze"], ["build"], ["search", "query"], ["search", "run"],
                    ["search", "diff"], ["search", "log"], ["import"], ["status"], ["dedup"],
                    ["dedup", "review"], ["screen"], ["screen", "import"],
                    ["screen", "conflicts"], ["screen", "adjudicate"],
                    ["screen", "from-extraction"], ["prisma"]):
        with pytest.raises(SystemExit) as caught:
            run_cli(*command, "--help")
        assert caught.value.code == 0


def test_usage_error_exits_2():
    result = review("extract", "frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_data_problems_exit_1_with_one_line_each(tmp_path):
    bad = tmp_path / "bad.csv"
    lines = CASES_PATH.read_text().splitlines(keepends=True)
    row = next(i for i, line in enumerate(lines, 1) if line.startswith("merhaben_2025_1,"))
    lines[row - 1] = lines[row - 1].replace(",55,F,HCV,", ",555,female,HCV,")
    bad.write_text("".join(lines))
    result = review("extract", "validate", bad)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{bad}:{row}:age: above the maximum 110 years (got '555')",
        f"{bad}:{row}:sex: not in the vocabulary (got 'female'; allowed: F, M)",
        "2 problem(s)",
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not UTF-8"),
        (b"case_id;study_id\n", "separated by ';'"),
    ],
)
def test_file_errors_exit_2_without_traceback(tmp_path, content, message):
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    result = review("extract", "validate", path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_missing_file_and_not_a_workspace(tmp_path):
    result = review("extract", "validate", tmp_path / "nope.csv")
    assert (result.returncode, result.stderr.strip()) == (
        2, f"review: error: {tmp_path / 'nope.csv'}: no such file")
    result = review("extract", "validate", cwd=tmp_path)
    assert result.returncode == 2
    assert "no review workspace here" in result.stderr
    result = review("--project", tmp_path, "extract", "validate")
    assert result.returncode == 2
    assert "not a review workspace" in result.stderr


def test_broken_protocol_names_the_key(hcc_workspace):
    path = hcc_workspace.protocol_path
    path.write_text(path.read_text().replace("type: integer", "type: whole", 1))
    result = review("--project", hcc_workspace.root, "extract", "validate")
    assert result.returncode == 2
    line = next(n for n, row in enumerate(path.read_text().splitlines(), start=1)
                if "type: whole" in row)
    assert (f"hcc-bone-metastasis.yaml:{line}: extraction.fields[8].type: 'whole' is not one "
            "of: text, identifier") in result.stderr
    assert "Traceback" not in result.stderr


def test_project_from_environment(hcc_workspace, tmp_path):
    result = review("extract", "summary", cwd=tmp_path,
                    env={"REVIEW_PROJECT": str(hcc_workspace.root)})
    assert result.returncode == 0, result.stderr
    assert "120 patients from 113 studies" in result.stdout


def test_init_from_template_gives_a_working_review(tmp_path, run_cli):
    target = tmp_path / "My Review"
    status, out, _ = run_cli("init", target)
    assert status == 0, out
    yaml_path = target / "protocols" / "my-review.yaml"
    assert yaml_path.exists() and yaml_path.with_suffix(".md").exists()
    assert "# (required)" in yaml_path.read_text()
    for folder in ("data/search", "data/screening", "data/extraction", "reports"):
        assert (target / folder).is_dir()
    assert run_cli("--project", target, "protocol", "check")[0] == 0
    status, out, _ = run_cli("--project", target, "extract", "validate")
    assert status == 0
    assert out.strip().endswith("cases.csv: 0 patients from 0 studies, no problems")


def test_init_from_protocol_copies_it(tmp_path, run_cli):
    status, _, _ = run_cli("init", tmp_path / "second", "--from", PROTOCOL_PATH)
    assert status == 0
    copied = tmp_path / "second" / "protocols" / PROTOCOL_PATH.name
    assert copied.read_text() == PROTOCOL_PATH.read_text()
    header = (tmp_path / "second" / "data" / "extraction" / "cases.csv").read_text()
    assert header == CASES_PATH.read_text().splitlines()[0] + "\n"


def test_init_refuses_a_folder_in_use(tmp_path, run_cli):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file.txt").write_text("x")
    status, _, err = run_cli("init", tmp_path / "used")
    assert status == 2
    assert "already exists and is not an empty folder" in err


def test_init_refuses_an_invalid_protocol(tmp_path, run_cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROTOCOL_PATH.read_text().replace("id: hcc-bone-metastasis", "id: 9x"))
    status, _, err = run_cli("init", tmp_path / "new", "--from", bad)
    assert status == 2
    line = PROTOCOL_PATH.read_text().splitlines().index("id: hcc-bone-metastasis") + 1
    assert f"bad.yaml:{line}: id: '9x' must start with a letter" in err
    assert not (tmp_path / "new").exists()


def test_import_cli_reports_every_problem_and_keeps_the_sheet(hcc_workspace, tmp_path):
    from openpyxl import load_workbook
    out = tmp_path / "t.xlsx"
    assert review("--project", hcc_workspace.root, "extract", "template", "--out", out,
                  "--with-cases").returncode == 0
    workbook = load_workbook(out)
    workbook["Cases"]["J2"] = "Female"
    workbook["Cases"]["I3"] = 300
    workbook.save(out)
    before = hcc_workspace.cases_path.read_bytes()
    result = review("--project", hcc_workspace.root, "extract", "import", out)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == "2 problem(s)"
    assert f"{out}[Cases]:2:sex: not in the vocabulary (got 'Female'" in result.stdout
    assert f"{out}[Cases]:3:age: above the maximum 110 years (got '300')" in result.stdout
    assert hcc_workspace.cases_path.read_bytes() == before


def test_init_starts_a_git_repository_unless_one_encloses_the_folder(tmp_path, run_cli):
    import shutil

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    target = tmp_path / "fresh"
    status, out, _ = run_cli("init", target)
    assert status == 0 and (target / ".git").is_dir()
    assert "started a git repository" in out
    if "committed the new workspace" in out:  # git knows a name and e-mail here
        tracked = subprocess.run(["git", "ls-files"], cwd=target, capture_output=True,
                                 text=True, check=True).stdout
        assert "protocols/fresh.yaml" in tracked
    inner = target / "nested"
    status, out, _ = run_cli("init", inner)
    assert status == 0 and not (inner / ".git").exists()
    assert "inside an existing git repository" in out


def test_every_error_is_one_line_and_several_errors_one_line_each(tmp_path, hcc_workspace,
                                                                  monkeypatch, run_cli):
    result = review("extract", "import")  # a wrong call: argparse's usage block, made one line
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "review extract import: error: the following arguments are required: FILE.xlsx (see "
        "'review extract import --help')"]
    protocol = hcc_workspace.root / "protocols" / "hcc-bone-metastasis.yaml"
    text = protocol.read_text()
    protocol.write_text(text.replace("  stages:", "  stages: 5\n  old_stages:", 1)
                        .replace("  reviewers: [pilot-team]", "  reviewers: pilot-team", 1))
    result = review("--project", hcc_workspace.root, "protocol", "check")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"review: error: {protocol}:")
                                   for line in lines)

    from review import cli
    from review.errors import ReviewError

    def failing(_args):
        raise ReviewError("a library's message\n  spread over\n  three lines")

    monkeypatch.setattr(cli, "cmd_status", failing)
    status, _, err = run_cli("--project", hcc_workspace.root, "status")
    assert (status, err) == (2, "review: error: a library's message spread over three lines\n")


def test_every_command_shows_an_example_in_its_help():
    import argparse

    from review.cli import build_parser

    missing = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    runs = sub.get_default("handler") is not None
                    if runs and "example: review " not in (sub.epilog or "").replace(
                            "NCBI_EMAIL=you@example.org ", "").replace(
                            "UNPAYWALL_EMAIL=you@example.org ", ""):
                        missing.append(" ".join([*path, name]))
                    walk(sub, [*path, name])

    walk(build_parser(), [])
    assert missing == []
