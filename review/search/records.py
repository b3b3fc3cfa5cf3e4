"""Bibliographic records in one normalised schema, and the review's record store.

Every search run and every imported export lands in `data/search/records.jsonl`, one JSON
record per line, in the order they arrived. A record's id depends only on its source and its
identity (PMID, else DOI, else title, year and first author), so importing the same file twice
adds nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from review.errors import ReviewError
from review.fileio import read_text, write_atomically

DOI_PREFIX = re.compile(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
DOI_SHAPE = re.compile(r"10\.\d{4,9}/\S+")
# MEDLINE's three-letter codes, which PubMed exports; RIS and CSV exports spell languages out.
LANGUAGES = {
    "english": "eng", "en": "eng", "spanish": "spa", "es": "spa", "french": "fre",
    "fr": "fre", "fra": "fre", "german": "ger", "de": "ger", "deu": "ger", "italian": "ita",
    "it": "ita", "portuguese": "por", "pt": "por", "japanese": "jpn", "ja": "jpn",
    "chinese": "chi", "zh": "chi", "zho": "chi", "korean": "kor", "ko": "kor", "russian": "rus",
    "ru": "rus", "turkish": "tur", "tr": "tur", "polish": "pol", "pl": "pol", "dutch": "dut",
    "nl": "dut", "nld": "dut",
}


@dataclass(frozen=True)
class Record:
    """One bibliographic record as a source exported it, normalised."""

    record_id: str
    source: str
    source_file: str
    pmid: str = ""
    doi: str = ""
    title: str = ""
    abstract: str = ""
    authors: tuple[str, ...] = ()
    journal: str = ""
    year: str = ""
    volume: str = ""
    issue: str = ""
    pages: str = ""
    publication_types: tuple[str, ...] = ()
    mesh_terms: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    language: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        data = {item.name: getattr(self, item.name) for item in dataclasses.fields(self)}
        if not data["extra"]:
            del data["extra"]
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        for name in ("authors", "publication_types", "mesh_terms", "keywords"):
            data[name] = tuple(data.get(name, ()))
        return cls(**data)


def clean(text: str | None) -> str:
    """Collapse white space (exports wrap long fields over several lines)."""
    return " ".join((text or "").split())


def normalise_doi(value: str | None) -> str:
    """A DOI in lower case without a resolver prefix; '' when it is not a DOI."""
    doi = DOI_PREFIX.sub("", clean(value)).strip().rstrip(".").lower()
    doi = doi.split(" ")[0]
    return doi if DOI_SHAPE.fullmatch(doi) else ""


def normalise_pmid(value: str | None) -> str:
    digits = clean(value)
    return digits if digits.isdigit() and not digits.startswith("0") else ""


def normalise_language(value: str) -> str:
    language = clean(value).lower()
    return LANGUAGES.get(language, language)


def year_of(value: str | None) -> str:
    found = re.search(r"\b(1[89]\d{2}|20\d{2})\b", value or "")
    return found.group(1) if found else ""


def identity_key(title: str) -> str:
    """A title folded to lower-case ASCII letters and digits, for identity and matching."""
    decomposed = unicodedata.normalize("NFKD", title)
    ascii_text = decomposed.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", ascii_text).strip()


def make_record(source: str, source_file: str, **fields: object) -> Record:
    """A normalised record with its stable id."""
    values = {
        "pmid": normalise_pmid(str(fields.get("pmid") or "")),
        "doi": normalise_doi(str(fields.get("doi") or "")),
        "title": clean(str(fields.get("title") or "")).rstrip("."),
        "abstract": clean(str(fields.get("abstract") or "")),
        "authors": tuple(clean(a) for a in fields.get("authors") or () if clean(a)),
        "journal": clean(str(fields.get("journal") or "")),
        "year": year_of(str(fields.get("year") or "")),
        "volume": clean(str(fields.get("volume") or "")),
        "issue": clean(str(fields.get("issue") or "")),
        "pages": clean(str(fields.get("pages") or "")),
        "publication_types": tuple(clean(t) for t in fields.get("publication_types") or ()
                                   if clean(t)),
        "mesh_terms": tuple(clean(t) for t in fields.get("mesh_terms") or () if clean(t)),
        "keywords": tuple(clean(t) for t in fields.get("keywords") or () if clean(t)),
        "language": normalise_language(str(fields.get("language") or "")),
    }
    if values["pmid"]:
        identity = f"pmid:{values['pmid']}"
    elif values["doi"]:
        identity = f"doi:{values['doi']}"
    else:
        first_author = values["authors"][0] if values["authors"] else ""
        identity = "|".join(("text", identity_key(values["title"]), values["year"],
                             identity_key(first_author)))
    digest = hashlib.sha256(f"{source}\n{identity}".encode()).hexdigest()[:16]
    extra = {key: str(value) for key, value in (fields.get("extra") or {}).items() if value}
    return Record(record_id=f"r{digest}", source=source, source_file=source_file,
                  extra=extra, **values)


class RecordStore:
    """The review's records, in arrival order, in data/search/records.jsonl."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> list[Record]:
        if not self.path.exists():
            return []
        records = []
        for number, line in enumerate(read_text(self.path).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(Record.from_json(line))
            except (ValueError, TypeError) as error:
                raise ReviewError(f"{self.path}:{number}: not a record ({error})") from None
        return records

    def add(self, new: Iterable[Record]) -> tuple[list[Record], int]:
        """Append records not yet in the store (by id), atomically; returns those added and
        how many were already there."""
        existing = self.load()
        known = {record.record_id for record in existing}
        added, repeated = [], 0
        for record in new:
            if record.record_id in known:
                repeated += 1
                continue
            known.add(record.record_id)
            added.append(record)
        if added:
            write_atomically(self.path, "".join(f"{r.to_json()}\n" for r in [*existing, *added]))
        return added, repeated
