"""Write appraisal.csv: the JBI appraisal of each report, answered from what the extraction
sheet records about it.

Nobody has read the 113 reports against the checklist yet, so this is the appraisal the sheet
itself supports, honestly labelled: appraiser `extraction-rule`, and each row's notes name
the basis (abstract, full text or mixed) and this rule. An item is "Yes" when every patient
of the report has the fields that evidence it recorded; otherwise "No" when the report was
read in full (the fields would have been recorded had it described them) and "Unclear" when
only its abstract was. The sheet records nothing about harms or a report's lessons, so those
two items are "Unclear" for every report. Rerun after the sheet changes:

    .venv/bin/python data/extraction/derive_appraisal.py

`tests/test_appraisal_judgement.py` checks that the committed file is what this script writes.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
APPRAISER = "extraction-rule"

# JBI item -> groups of sheet fields; each group needs one recorded field, every group must hold.
EVIDENCE: dict[str, list[list[str]]] = {
    "demographics": [["age"], ["sex"]],
    "history": [["bone_met_first_presentation"], ["etiology", "cirrhosis"]],
    "presentation": [["bone_sites"], ["spinal_cord_compression", "pathological_fracture",
                                      "other_extrahepatic_sites", "afp_ng_ml"]],
    "diagnostics": [["diagnostics"]],
    "intervention": [["liver_treatments", "bone_treatments", "systemic_treatments"]],
    "post_intervention": [["vital_status", "survival_months_after_bone_met",
                           "survival_months_after_hcc_dx"]],
}
NOT_RECORDED = ("adverse_events", "lessons")
ITEMS = [*EVIDENCE, *NOT_RECORDED]


def _evidenced(patient: pd.Series, groups: list[list[str]]) -> bool:
    return all(any(patient[field].strip() for field in group) for group in groups)


def appraise(cases: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for study, patients in cases.groupby("study_id", sort=True):
        bases = set(patients["extraction_basis"])
        basis = bases.pop() if len(bases) == 1 else "mixed"
        lacking = "No" if basis == "full_text" else "Unclear"
        answers = {item: "Yes" if all(_evidenced(patient, groups)
                                      for _, patient in patients.iterrows()) else lacking
                   for item, groups in EVIDENCE.items()}
        answers.update({item: "Unclear" for item in NOT_RECORDED})
        rows.append({"study_id": study, "appraiser": APPRAISER, **answers,
                     "notes": f"basis: {basis.replace('_', ' ')}; answered from the fields the "
                              "extraction sheet records (data/extraction/derive_appraisal.py), "
                              "not from a reading against the checklist"})
    return rows


def appraisal_csv(cases: pd.DataFrame) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["study_id", "appraiser", *ITEMS, "notes"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(appraise(cases))
    return out.getvalue()


if __name__ == "__main__":
    sheet = pd.read_csv(HERE / "cases.csv", dtype=str, keep_default_na=False)
    (HERE / "appraisal.csv").write_text(appraisal_csv(sheet), encoding="utf-8")
