"""Attaching PDFs to the records assessed in full text: one file to a named record, or a
folder of files matched to records by the DOI, PMID or title they carry."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from review.errors import ReviewError
from review.fulltext.store import CheckedPdf, FullText, FullTextStore, check_pdf
from review.screening.decisions import resolve_record
from review.screening.flow import screening_state
from review.search.records import Record, identity_key, normalise_doi, normalise_pmid
from review.workspace import Workspace

DOI_IN_TEXT = re.compile(r"\b10\.\d{4,9}/[^\s\"'<>]+", re.IGNORECASE)
PMID_IN_TEXT = re.compile(r"\bPMID[:\s_-]*(\d{1,8})\b", re.IGNORECASE)
# A title this short matches too much unrelated text to name a report on its own.
SHORTEST_MATCHING_TITLE = 25


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def full_text_records(workspace: Workspace) -> list[Record]:
    """The records whose full text is sought: advanced on title and abstract, or found by
    other methods."""
    return screening_state(workspace).full_text


def read_pdf_file(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ReviewError(f"{path}: {size / 1e6:.1f} MB, over the protocol's limit of "
                              f"{max_bytes / 1e6:g} MB (fulltext.max_megabytes)")
        return path.read_bytes()
    except FileNotFoundError:
        raise ReviewError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReviewError(f"{path}: is a folder, not a file") from None
    except OSError as error:
        raise ReviewError(f"{path}: cannot read: {error.strerror}") from None


def attach(workspace: Workspace, record: str, data: bytes, *, source: str, origin: str,
           shown_as: str, replace: bool = False, records: Iterable[Record] | None = None,
           wait: float | None = None) -> tuple[FullText, bool]:
    """Check `data` as a PDF and store it as the full text of `record` (its id or a unique
    start of it) among `records` (default: those sought in full text); `shown_as` names the
    file in errors."""
    known = [item.record_id for item in (records if records is not None
                                         else full_text_records(workspace))]
    record_id = resolve_record(record, known, "full-text")
    checked = check_pdf(data, shown_as, workspace.protocol.fulltext.max_bytes)
    return FullTextStore(workspace).store(record_id, data, checked, source=source,
                                          origin=origin, added=now(), replace=replace,
                                          wait=wait)


def _doi_forms(doi: str) -> set[str]:
    """How a DOI appears in a file name: as it is, or with its slash replaced."""
    return {doi, doi.replace("/", "_"), doi.replace("/", "-"), doi.replace("/", "%2f")}


@dataclass(frozen=True)
class Match:
    record_id: str
    evidence: str


def match_record(name: str, checked: CheckedPdf, records: list[Record]) -> list[Match]:
    """The records a PDF names: by DOI or PMID in its file name, its metadata or its first
    page, else by its record's title on the first page. More than one record is ambiguous."""
    stem = urllib.parse.unquote(name).lower()
    first_page = checked.text.split("\f", 1)[0]
    told = f"{checked.doi} {checked.subject} {checked.title}"
    text_dois = {normalise_doi(found.rstrip(".,;)]")) for found in
                 DOI_IN_TEXT.findall(f"{told} {first_page}")}
    text_pmids = {normalise_pmid(found) for found in PMID_IN_TEXT.findall(f"{told} {first_page}")}
    name_pmids = set(PMID_IN_TEXT.findall(stem))
    if re.fullmatch(r"\d{1,8}", Path(stem).stem):
        name_pmids.add(Path(stem).stem)
    found: dict[str, str] = {}
    for record in records:
        doi = normalise_doi(record.doi)
        if doi and any(re.search(re.escape(form) + r"(?![a-z0-9])", stem)
                       for form in _doi_forms(doi)):
            found.setdefault(record.record_id, f"DOI {doi} in the file name")
        elif doi and doi in text_dois:
            found.setdefault(record.record_id, f"DOI {doi} in the PDF")
        elif record.pmid and record.pmid in name_pmids:
            found.setdefault(record.record_id, f"PMID {record.pmid} in the file name")
        elif record.pmid and record.pmid in text_pmids:
            found.setdefault(record.record_id, f"PMID {record.pmid} in the PDF")
    if not found:
        page = f" {identity_key(first_page)} "
        for record in records:
            title = identity_key(record.title)
            if len(title) >= SHORTEST_MATCHING_TITLE and f" {title} " in page:
                found[record.record_id] = "its title on the first page"
    return [Match(record_id, evidence) for record_id, evidence in found.items()]


@dataclass
class FolderResult:
    attached: list[tuple[Path, str, str]] = field(default_factory=list)  # file, record, why
    unchanged: list[tuple[Path, str]] = field(default_factory=list)
    unmatched: list[Path] = field(default_factory=list)
    ambiguous: list[tuple[Path, list[str]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # one-line errors

    @property
    def complete(self) -> bool:
        return not (self.unmatched or self.ambiguous or self.refused)


def attach_folder(workspace: Workspace, folder: Path, *, replace: bool = False
                  ) -> FolderResult:
    """Attach every PDF under `folder` to the record it names; each file is stored as its
    own change, so an interrupted run keeps what it stored and a rerun goes on."""
    if not folder.is_dir():
        raise ReviewError(f"{folder}: not a folder")
    records = full_text_records(workspace)
    limit = workspace.protocol.fulltext.max_bytes
    store = FullTextStore(workspace)
    result = FolderResult()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()
                       and p.suffix.lower() == ".pdf" and not p.name.startswith(".")):
        try:
            data = read_pdf_file(path, limit)
            checked = check_pdf(data, str(path), limit)
        except ReviewError as error:
            result.refused.append(str(error))
            continue
        matches = match_record(path.name, checked, records)
        if not matches:
            result.unmatched.append(path)
            continue
        if len(matches) > 1:
            result.ambiguous.append((path, [match.record_id for match in matches]))
            continue
        try:
            entry, changed = store.store(matches[0].record_id, data, checked, source="path",
                                         origin=path.name, added=now(), replace=replace)
        except ReviewError as error:
            result.refused.append(f"{path}: {error}")
            continue
        if changed:
            result.attached.append((path, entry.record_id, matches[0].evidence))
        else:
            result.unchanged.append((path, entry.record_id))
    return result
