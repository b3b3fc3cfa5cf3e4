"""A review that is not the HCC review: the engine takes every word about the condition, the
event and the time origin from the protocol, and optional fields stay optional."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from review.extraction.sheet import format_cases_csv, read_cases
from review.protocol import load_protocol
from review.report.build import build_report
from review.workspace import Workspace
from tests.conftest import CASES_PATH, PROTOCOL_PATH, ROOT

HCC_WORDS = re.compile(r"hepatocellular|\bHCC\b|bone metastas|liver", re.IGNORECASE)
HCC_FIELDS = ("bone_met_", "survival_months_after", "bone_sites", "afp_ng_ml", "extrahepatic")


def test_the_engine_names_no_condition_and_no_field_of_the_hcc_review():
    offenders = []
    for package in ("review", "analysis"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if HCC_WORDS.search(code) or any(name in code for name in HCC_FIELDS):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


# Words of a condition, an anatomy or an event: the report takes them from the protocol. The
# protocol model holds the defaults (survival's death words), and the skeleton map, a drawing
# of bones the protocol maps its codes onto, names its bones where it is drawn.
ENGINE_WORDS = re.compile(r"metasta|tumou?r|cancer|carcinoma|\bdeaths?\b|\bdead\b|\bdied\b|"
                          r"\balive\b|\bsurvivors?\b|\bbones?\b|skeleton",
                          re.IGNORECASE)
WORDS_AT_HOME = {"review/protocol.py": ENGINE_WORDS,
                 "analysis/figures.py": re.compile(r"\bbones?\b|skeleton", re.IGNORECASE),
                 "analysis/sites.py": re.compile(r"\bbones?\b|skeleton", re.IGNORECASE),
                 "analysis/review_analysis.py": re.compile(r"\bbones?\b|skeleton", re.I),
                 "review/report/templates/sections.html": re.compile(r"\bbones?\b|skeleton",
                                                                    re.I)}


def test_the_engine_writes_no_word_of_a_condition_an_anatomy_or_an_event():
    offenders = []
    for package in ("review", "analysis"):
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix not in (".py", ".html"):
                continue
            name = path.relative_to(ROOT).as_posix()
            allowed = WORDS_AT_HOME.get(name)
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0] if path.suffix == ".py" else line
                found = [match.group(0) for match in ENGINE_WORDS.finditer(code)
                         if allowed is None or not allowed.fullmatch(match.group(0))]
                if found:
                    offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []


@pytest.fixture
def spinal_rcc_review(tmp_path) -> Workspace:
    """Renal cell carcinoma metastatic to the spine: six patients, no country field, survival
    counted from surgery."""
    protocol = yaml.safe_load(PROTOCOL_PATH.read_text(encoding="utf-8"))
    protocol.update(id="rcc-spine", title="Renal cell carcinoma metastatic to the spine")
    protocol["question"].update({key: "Renal cell carcinoma metastatic to the spine."
                                 for key in ("statement", "population", "condition")})
    schema = protocol["extraction"]
    schema["fields"] = [field for field in schema["fields"] if field["name"] != "country"]
    duplicates = schema["duplicate_patients"]
    duplicates["differ_not"] = [name for name in duplicates["differ_not"] if name != "country"]
    analysis = protocol["analysis"]
    analysis.update(population="patients with renal cell carcinoma metastatic to the spine",
                    population_short="patients with spinal RCC metastases",
                    headline_regions=["spine"], headline_findings=[])
    analysis["survival"]["origin"] = "spinal surgery"
    root = tmp_path / "rcc"
    (root / "protocols").mkdir(parents=True)
    (root / "data" / "extraction").mkdir(parents=True)
    path = root / "protocols" / "rcc-spine.yaml"
    path.write_text(yaml.safe_dump(protocol, sort_keys=False), encoding="utf-8")
    loaded = load_protocol(path)
    cases = read_cases(CASES_PATH, load_protocol(PROTOCOL_PATH).extraction)
    cases = cases[cases["survival_months_after_bone_met"] != ""].head(6).copy()
    cases = cases.drop(columns=["country"])
    for index, study in enumerate(sorted(set(cases["study_id"])), start=1):
        cases.loc[cases["study_id"] == study, "source_title"] = f"Spinal case report {index}"
    cases["notes"] = ""
    (root / "data" / "extraction" / "cases.csv").write_text(
        format_cases_csv(cases, loaded.extraction), encoding="utf-8")
    return Workspace(root)


def test_a_review_of_another_condition_builds_in_its_own_words(spinal_rcc_review, tmp_path):
    result = build_report(spinal_rcc_review, tmp_path / "report", force=True)
    assert "report.html" in result.files
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    visible = re.sub(r"<[^>]+>", " ", page)
    assert "patients with renal cell carcinoma metastatic to the spine" in visible
    assert "Survival from spinal surgery" in visible
    assert "Time since spinal surgery" in (tmp_path / "report" / "figures" /
                                           "survival_overall.svg").read_text()
    # The copied protocol still speaks of HCC in its eligibility and search; what the engine
    # itself used to write about HCC must not appear.
    for phrase in ("metastatic to bone", "with HCC", "HCC bone metastases",
                   "Survival after the bone metastasis", "diagnosis of HCC",
                   "spinal metastases had"):
        assert phrase not in visible
    assert "not patients with spinal RCC metastases in general" in visible
    assert "<th>Country</th>" not in page


def test_the_shipped_protocol_still_builds_after_its_workspace_is_copied(tmp_path):
    root = tmp_path / "hcc"
    shutil.copytree(ROOT / "protocols", root / "protocols")
    shutil.copytree(ROOT / "data", root / "data")
    build_report(Workspace(root), tmp_path / "out", force=True)
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "patients with hepatocellular carcinoma metastatic to bone from" in page
    assert "Survival from the diagnosis of the bone metastasis" in page
    assert Path(tmp_path / "out" / "figures" / "survival_overall.svg").exists()


def test_a_review_counting_days_says_days_everywhere_survival_is_told(spinal_rcc_review,
                                                                       tmp_path):
    path = spinal_rcc_review.protocol_path
    protocol = yaml.safe_load(path.read_text(encoding="utf-8"))
    protocol["analysis"]["survival"].update(time_unit="days", landmarks=[30, 365])
    path.write_text(yaml.safe_dump(protocol, sort_keys=False), encoding="utf-8")
    build_report(Workspace(spinal_rcc_review.root), tmp_path / "report", force=True)
    visible = re.sub(r"<[^>]+>", " ", (tmp_path / "report" / "report.html")
                     .read_text(encoding="utf-8"))
    assert "Median, days (95% CI)" in visible and "Alive at 365 days" in visible
    assert "Alive at 30 days" in visible
    survival = visible[visible.index("Survival from spinal surgery"):]
    assert re.search(r"alive at 365 days", survival)
    start = visible.index("Survival by treatment")
    assert "months" not in visible[start:visible.index("Methods", start)
                                   if "Methods" in visible[start:] else len(visible)]


def test_a_body_map_is_drawn_only_where_the_protocol_sites_are_bones(spinal_rcc_review,
                                                                     tmp_path):
    from analysis.review_analysis import analyze_review, figure_builders
    from analysis.sites import body_map_frequencies

    path = spinal_rcc_review.protocol_path
    protocol = yaml.safe_load(path.read_text(encoding="utf-8"))
    sites = next(field for field in protocol["extraction"]["fields"]
                 if field["name"] == "bone_sites")
    # Sites that are no bone names (here: coded by letter), as an abscess review's would be.
    codes = {code: f"site_{index}" for index, code in enumerate(sites["values"])}
    sites["values"] = list(codes.values())
    for region in protocol["analysis"]["site_regions"]:
        region["sites"] = [codes[code] for code in region["sites"]]
    for rule in protocol["extraction"].get("rules", []):
        for key in ("regions",):
            if key in rule:
                rule[key] = {prefix: codes.get(site, site) for prefix, site in rule[key].items()}
    path.write_text(yaml.safe_dump(protocol, sort_keys=False), encoding="utf-8")
    sheet = spinal_rcc_review.cases_path
    loaded = load_protocol(path)
    cases = read_cases(sheet, loaded.extraction)
    cases["bone_sites"] = [";".join(codes[c] for c in cell.split(";") if c) for cell in
                           cases["bone_sites"]]
    sheet.write_text(format_cases_csv(cases, loaded.extraction), encoding="utf-8")
    analysis = analyze_review(read_cases(sheet, loaded.extraction), loaded)
    assert not analysis.body_map["drawn"].any()
    assert "skeleton_map" not in figure_builders(analysis)
    build_report(Workspace(spinal_rcc_review.root), tmp_path / "report", force=True)
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "grey: none" not in page and "Skeleton map" not in page
    # Mapped by the protocol, the same codes are drawn, a patient counted once per bone.
    lumbar = codes["lumbar_spine"]
    spine = [codes[c] for c in ("cervical_spine", "thoracic_spine", "lumbar_spine")]
    mapped = loaded.analysis.model_copy(update={"body_map": {"lumbar_spine": (lumbar,),
                                                             "spine_unspecified": tuple(spine)}})
    frequencies = body_map_frequencies(analysis.cases, mapped,
                                       loaded.extraction.field("bone_sites"))
    drawn = frequencies[frequencies["drawn"]].set_index("id")
    reported = analysis.cases["bone_sites"].dropna()
    assert drawn.loc["spine_unspecified", "patients"] == sum(
        bool(set(spine) & set(found)) for found in reported)
    assert drawn.loc["lumbar_spine", "label"] == "Site " + lumbar.split("_")[1]


def test_a_body_map_names_bones_of_the_drawing_and_codes_of_the_sites(tmp_path):
    text = PROTOCOL_PATH.read_text(encoding="utf-8")
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace("  headline_regions:", "  body_map:\n    wing: [skull]\n"
                                 "    femur: [thigh]\n  headline_regions:", 1),
                    encoding="utf-8")
    from review.errors import ReviewError

    with pytest.raises(ReviewError) as caught:
        load_protocol(path)
    message = str(caught.value)
    assert "analysis.body_map.wing: 'wing' is not one of: skull, orbit" in message
    assert "analysis.body_map.femur[0]: 'thigh' is not one of:" in message


def test_a_review_of_another_event_says_its_own_words(spinal_rcc_review, tmp_path):
    path = spinal_rcc_review.protocol_path
    protocol = yaml.safe_load(path.read_text(encoding="utf-8"))
    protocol["analysis"]["survival"]["words"] = {
        "event": "recurrence", "events": "recurrences", "event_free": "recurrence-free",
        "had_event": "recurred", "status": "recurrence status",
        "analysis": "recurrence-free survival"}
    path.write_text(yaml.safe_dump(protocol, sort_keys=False), encoding="utf-8")
    build_report(Workspace(spinal_rcc_review.root), tmp_path / "report", force=True)
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    told = " ".join(re.sub(r"<[^>]+>", " ", page[page.index('<section id="survival">'):
                                                   page.index('<section id="completeness">')]
                           ).split())
    told += " ".join(re.sub(r"<[^>]+>", " ", page[page.index("<li>Recurrence-free survival:"):
                                                   page.index("<li>Software:")]).split())
    assert told.startswith("Recurrence-free survival by treatment")
    assert "Recurrences" in told and "Recurrence-free at 12 months" in told
    for word in ("death", "Death", "alive", "Alive", "died", "vital status", "living"):
        assert word not in told, word
    figure = (tmp_path / "report" / "figures" / "survival_overall.svg").read_text()
    assert "recurrences = " in figure and "deaths = " not in figure
    assert "Recurrence-free survival probability" in figure


def test_sites_and_levels_are_named_in_the_protocols_words(spinal_rcc_review, tmp_path):
    path = spinal_rcc_review.protocol_path
    protocol = yaml.safe_load(path.read_text(encoding="utf-8"))
    protocol["analysis"].pop("words")
    path.write_text(yaml.safe_dump(protocol, sort_keys=False), encoding="utf-8")
    build_report(Workspace(spinal_rcc_review.root), tmp_path / "default", force=True)
    page = (tmp_path / "default" / "report.html").read_text(encoding="utf-8")
    assert '<section id="sites"><h2>Sites</h2>' in page
    assert "Patients with a finding at each level." in page
    assert "Metastatic" not in page[page.index('<section id="sites">'):]

    protocol["analysis"]["words"] = {"sites": "Sites of the lesions", "finding": "an abscess",
                                     "levels": "Spinal levels", "level": "spinal level"}
    path.write_text(yaml.safe_dump(protocol, sort_keys=False), encoding="utf-8")
    build_report(Workspace(spinal_rcc_review.root), tmp_path / "words", force=True)
    page = (tmp_path / "words" / "report.html").read_text(encoding="utf-8")
    assert '<section id="sites"><h2>Sites of the lesions</h2>' in page
    assert "Patients with an abscess at each spinal level." in page
    assert '<section id="levels"><h2>Spinal levels</h2>' in page
    assert "because of where the abscess was" in page
