"""Where the findings are: site and region frequencies, sites per patient, levels.

Every proportion states its denominator: patients with the site over patients whose sites
were reported. A patient with several sites counts once per site, so site counts add up to
more than the patients.
"""

from __future__ import annotations

import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from analysis.pooling import PooledProportion, pool_proportions
from review.protocol import SKELETON_PARTS, AnalysisSpec, FieldSpec

CI_METHODS = {"wilson": "wilson", "clopper-pearson": "beta"}


def code_label(code: str) -> str:
    """A readable label for a vocabulary code: 'cervical_spine' → 'Cervical spine'."""
    text = code.replace("_", " ")
    return text[:1].upper() + text[1:]


def wilson_interval(count: int, total: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of count/total (as R's prop.test without correction)."""
    return _interval(count, total, "wilson", level)


def _interval(count: int, total: int, method: str, level: float) -> tuple[float, float]:
    if total == 0:
        return (float("nan"), float("nan"))
    low, high = proportion_confint(count, total, alpha=1 - level, method=CI_METHODS[method])
    return (float(low), float(high))


def _frequency_row(kind: str, identifier: str, label: str, count: int, total: int,
                   method: str, level: float) -> dict:
    low, high = _interval(count, total, method, level)
    return {"kind": kind, "id": identifier, "label": label, "patients": count,
            "denominator": total, "percent": 100 * count / total if total else float("nan"),
            "ci_low": 100 * low, "ci_high": 100 * high}


def site_frequencies(
    cases: pd.DataFrame, spec: AnalysisSpec, sites: FieldSpec, *, method: str = "wilson",
    level: float = 0.95,
) -> pd.DataFrame:
    """Regions, then single sites: patients with it / patients with sites reported, as % with
    a confidence interval (Wilson by default, or Clopper–Pearson)."""
    if method not in CI_METHODS:
        raise ValueError(f"unknown interval '{method}' (allowed: {', '.join(CI_METHODS)})")
    reported = cases[spec.sites_field].dropna()
    total = len(reported)
    rows = []
    for region in spec.site_regions:
        members = set(region.sites)
        count = int(sum(bool(members & set(codes)) for codes in reported))
        rows.append(_frequency_row("region", region.id, region.label, count, total, method,
                                   level))
    for code in sites.values:
        count = int(sum(code in codes for codes in reported))
        rows.append(_frequency_row("site", code, code_label(code), count, total, method, level))
    return pd.DataFrame(rows)


def body_map_frequencies(cases: pd.DataFrame, spec: AnalysisSpec, sites: FieldSpec
                         ) -> pd.DataFrame:
    """Patients per bone of the skeleton map over patients with sites reported (`drawn`),
    then the sites on no bone (listed beside the map): the bones the protocol's `body_map`
    maps site codes onto (a patient counts once per bone, whatever the number of its codes
    there), or without one, the sites whose codes are bone names. No row is drawn when no
    site is a bone, and then no map is drawn."""
    mapping = spec.body_map if spec.body_map is not None else {
        code: (code,) for code in sites.values if code in SKELETON_PARTS}
    on_a_bone = {code for codes in mapping.values() for code in codes}
    reported = cases[spec.sites_field].dropna()
    total = len(reported)
    rows = []
    for part, codes in mapping.items():
        members = set(codes)
        count = int(sum(bool(members & set(found)) for found in reported))
        label = code_label(codes[0]) if len(codes) == 1 else code_label(part)
        rows.append((part, label, count, True))
    for code in sites.values:
        if code not in on_a_bone:
            rows.append((code, code_label(code), int(sum(code in found for found in reported)),
                         False))
    return pd.DataFrame(
        [{"kind": "site", "id": identifier, "label": label, "patients": count,
          "denominator": total, "percent": 100 * count / total if total else float("nan"),
          "drawn": drawn} for identifier, label, count, drawn in rows],
        columns=["kind", "id", "label", "patients", "denominator", "percent", "drawn"])


def sites_per_patient(cases: pd.DataFrame, spec: AnalysisSpec) -> pd.DataFrame:
    """How many distinct sites each patient with reported sites has."""
    counts = cases[spec.sites_field].dropna().map(lambda codes: len(set(codes)))
    table = counts.value_counts().sort_index().rename_axis("sites").reset_index(name="patients")
    table["percent"] = 100 * table["patients"] / max(len(counts), 1)
    return table


def vertebral_levels(
    cases: pd.DataFrame, spec: AnalysisSpec, levels: FieldSpec
) -> pd.DataFrame:
    """Patients with each level, over patients with disease in the protocol's
    `levels_region` whose levels were reported; the number in that region beside it."""
    region = next((r for r in spec.site_regions if r.id == spec.levels_region), None)
    spinal = cases[spec.sites_field].map(
        lambda codes: bool(codes) and region is not None and bool(set(region.sites) & set(codes)))
    reported = cases.loc[spinal, levels.name].dropna()
    total = len(reported)
    rows = []
    for level in levels.values:
        count = int(sum(level in codes for codes in reported))
        rows.append({"level": level, "segment": level[0], "patients": count,
                     "denominator": total,
                     "percent": 100 * count / total if total else float("nan"),
                     "spinal_patients": int(spinal.sum())})
    return pd.DataFrame(rows)


def region_events_by_study(
    cases: pd.DataFrame, spec: AnalysisSpec, region_id: str, study_key: str
) -> pd.DataFrame:
    """Per study: patients with the region (events) over patients with sites reported."""
    region = next(r for r in spec.site_regions if r.id == region_id)
    reported = cases[cases[spec.sites_field].notna()]
    has_region = reported[spec.sites_field].map(lambda codes: bool(set(region.sites) & set(codes)))
    table = pd.DataFrame({"study": reported[study_key], "event": has_region.astype(int)})
    grouped = table.groupby("study", sort=True)["event"].agg(["sum", "count"]).reset_index()
    return grouped.rename(columns={"sum": "events", "count": "total"})


def pooled_region_proportions(
    cases: pd.DataFrame, spec: AnalysisSpec, study_key: str
) -> dict[str, PooledProportion]:
    """The protocol's pooled regions, each pooled across studies by the protocol's method."""
    if spec.pooling is None:
        return {}
    results = {}
    for region_id in spec.pooling.regions:
        counts = region_events_by_study(cases, spec, region_id, study_key)
        if not counts.empty:
            results[region_id] = pool_proportions(counts["events"], counts["total"],
                                                  method=spec.pooling.method,
                                                  labels=list(counts["study"]))
    return results


def pooling_refusal(result: PooledProportion, requested: str) -> str | None:
    """Why a pooled result should not be shown: the requested model could not be fitted and
    the inverse-variance fallback had to add 0.5 to the cells of single-patient reports,
    which pulls each of them to 25% or 75% whatever it showed. None when it may be shown."""
    if result.method == requested:
        return None
    corrected = int((result.studies["total"] == 1).sum())  # 0 or all events, every one
    if not corrected:
        return None
    failure = next((note for note in result.notes if note.startswith("GLMM not fitted")),
                   f"the {requested} model could not be fitted")
    return (f"{failure.split('; inverse-variance')[0]}; the inverse-variance fallback would "
            f"add 0.5 to the cells of {corrected} single-patient reports, pulling each to 25% "
            "or 75% whatever it showed, so the reports are not pooled")
