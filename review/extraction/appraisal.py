"""The critical appraisal table: one row per report and appraiser, the protocol's items."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from review.errors import DataProblems, Problem, ReviewError
from review.extraction.sheet import header_problems
from review.fileio import read_text
from review.protocol import Appraisal


def appraisal_columns(appraisal: Appraisal) -> list[str]:
    return ["study_id", "appraiser", *(item.id for item in appraisal.items), "notes"]


def read_appraisal(path: Path, appraisal: Appraisal) -> pd.DataFrame:
    """data/extraction/appraisal.csv, or an empty table when nobody has appraised yet."""
    columns = appraisal_columns(appraisal)
    if not path.exists():
        return pd.DataFrame(columns=columns, dtype=object)
    text = read_text(path)
    if not text.strip():
        raise ReviewError(f"{path}:1: empty file (expected the header "
                          f"{','.join(columns[:3])},...; delete the file if nobody has "
                          "appraised yet)")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as error:
        raise ReviewError(f"{path}:{reader.line_num}: not valid CSV ({error})") from None
    problems = header_problems(header, columns, str(path))
    problems += [Problem(str(path), number, "", f"{len(row)} cells, but the header has "
                                                f"{len(header)}")
                 for number, row in rows if len(row) != len(header) and any(row)]
    if problems:
        raise DataProblems(problems)
    frame = pd.DataFrame([row for _, row in rows if any(cell.strip() for cell in row)],
                         columns=header, dtype=object)
    return frame[columns].reset_index(drop=True)


# The appraiser name of a report's agreed appraisal, recorded by an adjudicator when two
# appraisers differ; the report counts it in their place.
CONSENSUS = "consensus"


@dataclass(frozen=True)
class AppraisalAgreement:
    """How two or more appraisers of the same reports agreed, item by item."""

    reports: int  # appraised by two or more
    compared: int  # item answers compared (both answered)
    agreed: int
    consensus: int  # reports whose differences an adjudicator settled
    awaiting: tuple[str, ...]  # reports that differ and have no consensus yet

    @property
    def percent(self) -> float:
        return 100 * self.agreed / self.compared if self.compared else float("nan")


def _answers(row: pd.Series, appraisal: Appraisal) -> tuple[str, ...]:
    return tuple(str(row[item.id] or "").strip() for item in appraisal.items)


def appraisal_agreement(table: pd.DataFrame, appraisal: Appraisal) -> AppraisalAgreement:
    """Agreement over the reports that two or more appraisers answered: each pair of
    answers to an item that both gave; and which differing reports await consensus."""
    reports = compared = agreed = settled = 0
    awaiting = []
    for study, rows in table.groupby("study_id", sort=True):
        own = rows[rows["appraiser"] != CONSENSUS]
        if len(own) < 2:
            continue
        reports += 1
        answers = [_answers(row, appraisal) for _, row in own.iterrows()]
        differs = False
        for item in range(len(appraisal.items)):
            given = [row[item] for row in answers if row[item]]
            for first in range(len(given)):
                for second in range(first + 1, len(given)):
                    compared += 1
                    agreed += given[first] == given[second]
            differs |= len(set(given)) > 1
        if (rows["appraiser"] == CONSENSUS).any():
            settled += 1
        elif differs:
            awaiting.append(str(study))
    return AppraisalAgreement(reports, compared, agreed, settled, tuple(awaiting))


def report_appraisals(table: pd.DataFrame, appraisal: Appraisal) -> pd.DataFrame:
    """One appraisal per report: its consensus row, else the one appraiser's, else (several
    appraisers who agree on every item) the first's; reports still awaiting consensus are
    left out, never counted twice."""
    awaiting = set(appraisal_agreement(table, appraisal).awaiting)
    chosen = []
    for study, rows in table.groupby("study_id", sort=True):
        if study in awaiting:
            continue
        consensus = rows[rows["appraiser"] == CONSENSUS]
        chosen.append(consensus.iloc[0] if len(consensus) else rows.iloc[0])
    return pd.DataFrame(chosen, columns=table.columns).reset_index(drop=True)


def judge_reports(counted: pd.DataFrame, appraisal: Appraisal) -> pd.DataFrame:
    """Each counted report's overall judgement by the protocol's rule: its favourable answers,
    the items counted (not-counted answers left out), their share and the first level it
    reaches. A report with an item unanswered is not judged: `judgement` is empty and
    `unanswered` says how many."""
    rule = appraisal.judgement
    if rule is None:
        raise ValueError(f"the {appraisal.tool} has no judgement rule in the protocol")
    rows = []
    for _, row in counted.iterrows():
        answers = dict(zip((item.id for item in appraisal.items), _answers(row, appraisal),
                           strict=True))
        unanswered = sum(not answer for answer in answers.values())
        scored = {item: answer for item, answer in answers.items()
                  if answer and answer not in rule.not_counted}
        favourable = {item for item, answer in scored.items() if answer in rule.favourable}
        # Nothing counted (every item not applicable) is no evidence of quality: the last level.
        share = len(favourable) / len(scored) if scored else 0.0
        judgement = ""
        if not unanswered:
            judgement = next(level.label for level in rule.levels
                             if share >= level.at_least and set(level.required) <= favourable)
        rows.append({"study_id": row["study_id"], **answers, "favourable": len(favourable),
                     "counted": len(scored), "share": share, "judgement": judgement,
                     "unanswered": unanswered})
    return pd.DataFrame(rows, columns=["study_id", *(item.id for item in appraisal.items),
                                       "favourable", "counted", "share", "judgement",
                                       "unanswered"])
