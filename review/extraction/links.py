"""Each extraction row's screening record, and a first patient prefilled from a record.

A schema with a field of type `record` carries each row's record id; a row without one (a
sheet begun before the field existed) is matched to the record its report names: the study
id a record made from the sheet carries, the PMID, the DOI, or the title. Counting extracted
reports by these links, never by how many study ids the sheet has, keeps PRISMA's "studies
included" and "reports included, not yet extracted" adding up to the reports included.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from review.errors import ReviewError
from review.extraction.sheet import format_cases_csv, read_cases
from review.protocol import ExtractionSchema, FieldSpec
from review.screening.flow import ScreeningState, screening_state
from review.search.records import Record, identity_key, normalise_doi, normalise_pmid
from review.transaction import commit, workspace_lock
from review.workspace import Workspace


def title_field(schema: ExtractionSchema) -> FieldSpec | None:
    """The field holding the report's title: a report-level text field named for it."""
    for name in (*schema.study.fields, *schema.columns):
        spec = schema.field(name)
        if spec.type == "text" and "title" in name:
            return spec
    return None


def can_link(schema: ExtractionSchema) -> bool:
    """Whether any column of the schema can tell which record a row comes from."""
    return (schema.record_field is not None or title_field(schema) is not None
            or any(spec.type in ("pmid", "doi") for spec in schema.fields))


@dataclass(frozen=True)
class RowLinks:
    """Per row of the sheet (in its order), the record it comes from ('' when none) and
    what linked it; the rows whose record id names no record."""

    records: tuple[str, ...]
    evidence: tuple[str, ...]
    unknown: tuple[int, ...]

    @property
    def linked(self) -> set[str]:
        return {record for record in self.records if record}

    def unmatched(self) -> list[int]:
        return [row for row, record in enumerate(self.records) if not record]


def link_rows(cases: pd.DataFrame, schema: ExtractionSchema, records: Iterable[Record],
              kept_for: Mapping[str, str] | None = None) -> RowLinks:
    """Link each row of `cases` to one of `records`; `kept_for` maps a duplicate's id to the
    record kept in its place."""
    kept_for = kept_for or {}
    records = list(records)
    known = {record.record_id for record in records}
    index: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in records:
        if record.extra.get("study_id"):
            index["study", record.extra["study_id"]].add(record.record_id)
        if record.pmid:
            index["pmid", record.pmid].add(record.record_id)
        if normalise_doi(record.doi):
            index["doi", normalise_doi(record.doi)].add(record.record_id)
        if identity_key(record.title):
            index["title", identity_key(record.title)].add(record.record_id)
    record_spec = schema.record_field
    title = title_field(schema)
    keys: list[tuple[str, str, str]] = [("study", schema.study.key, "study id")]
    keys += [("pmid", spec.name, "PMID") for spec in schema.fields if spec.type == "pmid"]
    keys += [("doi", spec.name, "DOI") for spec in schema.fields if spec.type == "doi"]
    if title is not None:
        keys.append(("title", title.name, "title"))
    found: list[str] = []
    evidence: list[str] = []
    unknown: list[int] = []
    for number, row in enumerate(cases.to_dict("records")):
        named = str(row.get(record_spec.name) or "").strip() if record_spec else ""
        if named:
            record = kept_for.get(named, named)
            if record in known:
                found.append(record)
                evidence.append("record id")
            else:
                found.append("")
                evidence.append("")
                unknown.append(number)
            continue
        match = ""
        why = ""
        for kind, column, label in keys:
            value = str(row.get(column) or "").strip()
            value = {"pmid": normalise_pmid, "doi": normalise_doi,
                     "title": identity_key}.get(kind, str)(value)
            candidates = index.get((kind, value), set()) if value else set()
            if len(candidates) == 1:
                match, why = next(iter(candidates)), label
                break
        found.append(match)
        evidence.append(why)
    return RowLinks(tuple(found), tuple(evidence), tuple(unknown))


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "", folded)


def prefilled_patient(record: Record, schema: ExtractionSchema) -> dict[str, str]:
    """The first patient of a report as far as its record tells: the record id, the report's
    bibliographic fields, and ids in the schema's own patterns where they can be built from
    the first author and year."""
    row = {name: "" for name in schema.columns}
    if schema.record_field is not None:
        row[schema.record_field.name] = record.record_id
    url = record.extra.get("url") or (f"https://doi.org/{record.doi}" if record.doi else "") \
        or (f"https://pubmed.ncbi.nlm.nih.gov/{record.pmid}/" if record.pmid else "")
    title = title_field(schema)
    for name in (*schema.study.fields, *schema.columns):
        spec = schema.field(name)
        if row[name]:
            continue
        if spec.type == "doi":
            row[name] = record.doi
        elif spec.type == "pmid":
            row[name] = record.pmid
        elif spec.type == "url" and name in schema.study.fields:
            row[name] = url
        elif spec.type == "year" and name in schema.study.fields:
            row[name] = record.year
        elif title is not None and name == title.name:
            row[name] = record.title
    surname = _ascii_word(record.authors[0].split(",")[0].split(" ")[0]) if record.authors \
        else ""
    study = record.extra.get("study_id") or (f"{surname}_{record.year or 'nd'}" if surname
                                             else "")
    for name, value in ((schema.study.key, study), (schema.study.id_field, f"{study}_1")):
        spec = schema.field(name)
        if study and (spec.pattern is None or re.fullmatch(spec.pattern, value)):
            row[name] = value
    return row


@dataclass(frozen=True)
class SheetLinks:
    """What `link_sheet` did: rows given their record id, and the rows it could not link."""

    filled: list[tuple[int, str, str]]  # sheet row number, record id, evidence
    unmatched: list[int]
    unknown: list[tuple[int, str]]  # sheet row number, the record id that names no record


def _kept_for(state: ScreeningState) -> dict[str, str]:
    return {member: cluster.kept for cluster in state.dedup.clusters
            for member in cluster.members}


def link_sheet(workspace: Workspace) -> SheetLinks:
    """Fill the record id of every row that lacks one and whose report names a record
    assessed in full text, as the workspace's one writer."""
    schema = workspace.protocol.extraction
    spec = schema.record_field
    if spec is None:
        raise ReviewError(f"{workspace.protocol_path}: extraction.fields has no field of type "
                          "record; add one (name: record_id, type: record) and run 'review "
                          "extract migrate'")
    with workspace_lock(workspace.root, "extract link"):
        cases = read_cases(workspace.cases_path, schema)
        state = screening_state(workspace)
        links = link_rows(cases, schema, state.full_text, _kept_for(state))
        filled = []
        updated = cases.copy()
        for position, (record, why) in enumerate(zip(links.records, links.evidence,
                                                     strict=True)):
            if record and not str(cases.iloc[position][spec.name] or "").strip():
                updated.iloc[position, updated.columns.get_loc(spec.name)] = record
                filled.append((position + 2, record, why))
        if filled:
            commit(workspace.root, {workspace.cases_path:
                                    format_cases_csv(updated, schema).encode("utf-8")})
    unknown = [(position + 2, str(cases.iloc[position][spec.name]))
               for position in links.unknown]
    return SheetLinks(filled, [position + 2 for position in links.unmatched()
                               if position not in links.unknown], unknown)


def included_records(state: ScreeningState) -> list[Record]:
    """The records included at full text, in record order."""
    return [record for record in state.full_text
            if (final := state.final["full-text"].get(record.record_id)) is not None
            and final.decision == "include"]


def linked_included(cases: pd.DataFrame, schema: ExtractionSchema, state: ScreeningState
                    ) -> set[str]:
    """The included records that a row of the sheet comes from."""
    return link_rows(cases, schema, included_records(state), _kept_for(state)).linked


def reports_to_extract(workspace: Workspace, cases: pd.DataFrame,
                       state: ScreeningState | None = None) -> list[Record]:
    """The reports included at full text that no row of the sheet comes from."""
    state = state or screening_state(workspace)
    linked = linked_included(cases, workspace.protocol.extraction, state)
    return [record for record in included_records(state) if record.record_id not in linked]
