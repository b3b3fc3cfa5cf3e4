"""A second review, not about HCC, from `review init` to the report through the CLI alone:
init, protocol edit, import of a PubMed XML and an RIS export with duplicates, dedup, two
reviewers screening with a conflict, adjudication, a full-text exclusion, extraction through
the Excel workbook, analysis and build."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from pathlib import Path

from openpyxl import load_workbook

FIXTURES = Path(__file__).parent / "fixtures" / "second_review"
CONDITION = "renal cell carcinoma metastatic to the spine"


def edit_protocol(path: Path) -> None:
    """The edits the README asks a new team to make to the template."""
    text = path.read_text(encoding="utf-8")
    for old, new in (
            ("  Title of the review", "  Renal cell carcinoma metastatic to the spine: a "
                                      "systematic review of case reports"),
            ("reviewers: [reviewer-one, reviewer-two]", "reviewers: [ana, ben]"),
            ("adjudicators: [adjudicator]", "adjudicators: [cleo]"),
            ("        - heading: Neoplasm Metastasis", "        - Carcinoma, Renal Cell"),
            ("        - metasta*", "        - renal cell carcinoma"),
            ("  population: patients with the condition",
             f"  population: patients with {CONDITION}"),
            ("  population_short: patients with the condition",
             "  population_short: patients with spinal RCC metastases")):
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")


def decisions_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["title", "decision", "reason"])
        writer.writerows(rows)
    return path


PATIENTS = [
    # study, n, pmid, doi, year, age, sex, vital status, months, sites, treatments
    ("okafor_2021", 1, "90000001", "10.9999/rcc.2021.001", 2021, 61, "M", "alive", 18.0,
     "bone", "radiotherapy"),
    ("haddad_2019", 1, "90000002", "10.9999/rcc.2019.002", 2019, 54, "F", "dead", 7.5,
     "bone;lung", "surgery;radiotherapy"),
    ("brandt_2020", 1, "90000003", "10.9999/rcc.2020.003", 2020, 70, "M", "dead", 4.0,
     "bone;liver", "none"),
    ("brandt_2020", 2, "90000003", "10.9999/rcc.2020.003", 2020, 66, "F", "alive", 26.0,
     "bone", "surgery"),
]


def test_a_second_review_from_init_to_its_report(tmp_path, run_cli):
    root = tmp_path / "rcc-spine"
    project = ("--project", root)

    status, out, _ = run_cli("init", root, "--no-git")
    assert status == 0 and "next steps:" in out
    protocol_path = root / "protocols" / "rcc-spine.yaml"
    edit_protocol(protocol_path)
    assert run_cli(*project, "protocol", "render")[0] == 0
    assert run_cli(*project, "protocol", "check")[0] == 0
    status, query, _ = run_cli(*project, "search", "query")
    assert status == 0 and '"Carcinoma, Renal Cell"[Mesh]' in query

    assert run_cli(*project, "import", FIXTURES / "pubmed.xml", "--source", "PubMed")[0] == 0
    assert run_cli(*project, "import", FIXTURES / "embase.ris", "--source", "Embase")[0] == 0
    status, out, _ = run_cli(*project, "dedup")
    assert status == 0

    titles = {
        "c2": "Solitary C2 metastasis of clear cell renal cell carcinoma treated with "
              "stereotactic radiosurgery: a case report.",
        "t7": "Thoracic spinal cord compression as the first sign of renal cell carcinoma.",
        "sacrum": "Renal cell carcinoma metastatic to the sacrum: two cases.",
        "trial": "Cabozantinib versus everolimus in advanced renal cell carcinoma: a "
                 "randomised phase 3 trial.",
        "mouse": "Lumbar vertebral metastasis of chromophobe renal cell carcinoma in a mouse "
                 "xenograft model",
        "narrative": "Spinal metastases of renal cell carcinoma: a narrative review",
    }
    title_abstract = {
        "ana": [(titles["c2"], "include", ""), (titles["t7"], "include", ""),
                (titles["sacrum"], "include", ""), (titles["trial"], "exclude", ""),
                (titles["mouse"], "include", ""), (titles["narrative"], "maybe", "")],
        "ben": [(titles["c2"], "include", ""), (titles["t7"], "maybe", ""),
                (titles["sacrum"], "include", ""),
                (titles["trial"], "exclude", "No patient-level data"),
                (titles["mouse"], "exclude", "Animal or in-vitro study"),
                (titles["narrative"], "include", "")],
    }
    for reviewer, rows in title_abstract.items():
        sheet = decisions_csv(tmp_path / f"{reviewer}_ta.csv", rows)
        status, out, _ = run_cli(*project, "screen", "import", sheet, "--stage",
                                 "title-abstract", "--reviewer", reviewer)
        assert status == 0 and f"6 decisions of {reviewer} imported" in out
    status, out, _ = run_cli(*project, "screen", "conflicts", "--stage", "title-abstract")
    assert status == 1 and "1 conflicts" in out
    conflict = out.split(":", 1)[0]
    status, out, _ = run_cli(*project, "screen", "adjudicate", conflict[:8], "--stage",
                             "title-abstract", "--decision", "exclude", "--reason",
                             "animal_or_in_vitro", "--adjudicator", "cleo")
    assert status == 0 and out.startswith(f"{conflict}: exclude")

    full_text = [(titles["c2"], "include", ""), (titles["t7"], "include", ""),
                 (titles["sacrum"], "include", ""),
                 (titles["narrative"], "exclude", "No patient-level data")]
    for reviewer in ("ana", "ben"):
        sheet = decisions_csv(tmp_path / f"{reviewer}_ft.csv", full_text)
        status, out, _ = run_cli(*project, "screen", "import", sheet, "--stage", "full-text",
                                 "--reviewer", reviewer)
        assert status == 0 and f"4 decisions of {reviewer} imported" in out
    assert run_cli(*project, "screen", "conflicts", "--stage", "full-text")[0] == 0

    workbook_path = tmp_path / "sheet.xlsx"
    assert run_cli(*project, "extract", "template", "--out", workbook_path)[0] == 0
    workbook = load_workbook(workbook_path)
    sheet = workbook["Cases"]
    header = [cell.value for cell in sheet[1]]
    report_titles = {"90000001": titles["c2"], "90000002": titles["t7"],
                     "90000003": titles["sacrum"]}
    for study, n, pmid, doi, year, age, sex, vital, months, sites, treatments in PATIENTS:
        row = {"case_id": f"{study}_{n}", "study_id": study,
               "source_title": report_titles[pmid],
               "source_url": f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/", "doi": doi,
               "pmid": pmid, "pub_year": year, "age": age, "sex": sex,
               "vital_status": vital, "survival_months": months, "sites": sites,
               "treatments": treatments, "extraction_basis": "full_text"}
        sheet.append([row.get(column) for column in header])
    workbook.save(workbook_path)
    status, out, _ = run_cli(*project, "extract", "import", workbook_path)
    assert status == 0 and "4 added" in out

    status, out, _ = run_cli(*project, "prisma", "--json")
    counts = json.loads(out)
    assert counts["identified"] == {"Embase": 4, "PubMed": 4}
    assert counts["duplicates_removed"] == 2
    assert counts["records_identified"] == counts["records_screened"] + \
        counts["duplicates_removed"]
    assert (counts["records_screened"], counts["records_excluded"],
            counts["records_awaiting_screening"]) == (6, 2, 0)
    assert (counts["reports_sought"], counts["reports_assessed"],
            counts["reports_included"]) == (4, 4, 3)
    assert counts["reports_excluded"] == {"No patient-level data": 1}
    assert (counts["studies_included"], counts["cases_included"],
            counts["reports_included_not_extracted"]) == (3, 4, 0)
    status, out, _ = run_cli(*project, "status", "--json")
    status_counts = json.loads(out)
    assert {key: status_counts[key] for key in counts} == counts
    agreement = status_counts["agreement"]["title-abstract"]
    assert agreement["records"] == 6 and agreement["percent_agreement"] == 83.33

    status, out, _ = run_cli(*project, "analyze")
    assert status == 0, out
    status, out, err = run_cli(*project, "build", "--quiet")
    assert status == 0, err
    report = root / "reports" / "rcc-spine" / "report.html"
    visible = re.sub(r"<[^>]+>", " ", report.read_text(encoding="utf-8"))
    assert f"patients with {CONDITION}" in visible
    assert "time since the diagnosis" in visible.lower()
    for word in ("hepatocellular", "HCC", "cirrhosis", "skull"):
        assert word not in visible, word
    from sklearn import __version__ as sklearn_version

    methods = " ".join(visible.split())
    assert "Titles and abstracts were screened in prioritised order" in methods
    assert f"(seed 0); scikit-learn {sklearn_version}." in methods
    assert "a recall of at least 95% with 95% confidence" in methods
    prisma_csv = (root / "reports" / "rcc-spine" / "tables" / "prisma2020.csv").read_text()
    rows = {row["data"]: row["n"] for row in csv.DictReader(io.StringIO(prisma_csv))}
    assert (rows["database_results"], rows["duplicates"], rows["records_screened"]) == (
        "8", "2", "6")
    assert rows["new_studies"] == "3"
    # The report tells how each stage was screened, with the agreement `review status` gives.
    low, high = agreement["kappa_ci"]
    assert -1 <= low <= high <= 1
    assert (f"Title and abstract: 6 records decided by 2 reviewers (ana, ben), 6 of them "
            f"independently by two or more; on the 6 decided by all, they agreed on 83.3% "
            f"({agreement['statistic']} {agreement['kappa']:.2f}, 95% CI {low:.2f} to "
            f"{high:.2f}). 1 record was settled by an adjudicator.") in html.unescape(methods)
    assert "Full text: 4 records decided by 2 reviewers (ana, ben)" in methods
    assert run_cli(*project, "build", "--check", "--quiet")[0] == 0
