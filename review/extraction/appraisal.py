"""The critical appraisal table: one row per report and appraiser, the protocol's items."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from review.protocol import Appraisal


def appraisal_columns(appraisal: Appraisal) -> list[str]:
    return ["study_id", "appraiser", *(item.id for item in appraisal.items), "notes"]


def read_appraisal(path: Path, appraisal: Appraisal) -> pd.DataFrame:
    """data/extraction/appraisal.csv, or an empty table when nobody has appraised yet."""
    columns = appraisal_columns(appraisal)
    if not path.exists():
        return pd.DataFrame(columns=columns, dtype=object)
    return pd.read_csv(path, dtype=str, keep_default_na=False)[columns]
