"""Bibliographic records in one normalised schema, and the review's record store.

Every search run and every imported export lands in `data/search/records.jsonl`, one JSON
record per line, in the order they arrived. Every record is kept: a record's id depends on
where it came from (its `origin`: the SHA-256 of the imported file, the search run, or the
extraction sheet) and its position there, never on its content, so two records that share a
DOI or PMID stay two records until de-duplication says they are one work, and importing a
byte-identical file again adds nothing.
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

from review.errors import ReviewError, one_line
from review.fileio import read_text, write_atomically

# Reports found by reference lists, web searches and the like, not by a database search.
OTHER_METHODS = "other methods"
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


LIST_FIELDS = ("authors", "publication_types", "mesh_terms", "keywords")


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
    origin: str = ""
    position: int = 0
    export_id: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def legacy(self) -> bool:
        """Imported or searched by casereview 0.1, whose ids came from the content (so it
        merged records that shared a PMID, DOI or title on import)."""
        return not self.origin and self.extra.get("identified_via") != OTHER_METHODS

    def to_json(self) -> str:
        # The instance's own fields, copied in one step (no property is ever stored on it);
        # the encoder sorts the keys.
        data = dict(vars(self))
        if not data["extra"]:
            del data["extra"]
        return JSON_LINE.encode(data)

    @classmethod
    def from_json(cls, text: str) -> Record:
        """A stored record; ValueError naming the field for anything not of its type (a line
        edited by hand or by a merge must not fail later, far from its cause)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        for item in dataclasses.fields(cls):
            if item.name not in data:
                continue
            value = data[item.name]
            if item.name in LIST_FIELDS:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{item.name}: expected a list of texts, got {value!r:.60}")
                data[item.name] = tuple(value)
            elif item.name == "position":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f"position: expected a whole number, got {value!r:.60}")
            elif item.name == "extra":
                if not isinstance(value, dict):
                    raise ValueError(f"extra: expected an object, got {value!r:.60}")
            elif not isinstance(value, str):
                raise ValueError(f"{item.name}: expected text, got {json.dumps(value):.60}")
        return cls(**data)


# One encoder for every line: json.dumps with options builds a new one per call.
JSON_LINE = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def clean(text: str | None) -> str:
    """Collapse white space (exports wrap long fields over several lines)."""
    if not text:
        return ""
    # Most fields need nothing: every white space character but the plain space is
    # unprintable, so a printable text without doubled or outer spaces is clean already.
    if text.isprintable() and "  " not in text and text[0] != " " and text[-1] != " ":
        return text
    return " ".join(text.split())


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


def identified_via_other_methods(record: Record) -> bool:
    return record.extra.get("identified_via") == OTHER_METHODS


def record_id_for(origin: str, position: int) -> str:
    """The id of the record at `position` (from 1) of `origin`."""
    digest = hashlib.sha256(f"{origin}\n{position}".encode()).hexdigest()[:16]
    return f"r{digest}"


def legacy_record_id(record: Record) -> str:
    """The id casereview 0.1 gave a record: from its source and PMID, DOI or title, year
    and first author. Kept to upgrade stores written by that version."""
    if record.pmid:
        identity = f"pmid:{record.pmid}"
    elif record.doi:
        identity = f"doi:{record.doi}"
    else:
        first_author = record.authors[0] if record.authors else ""
        identity = "|".join(("text", identity_key(record.title), record.year,
                             identity_key(first_author)))
    digest = hashlib.sha256(f"{record.source}\n{identity}".encode()).hexdigest()[:16]
    return f"r{digest}"


def _cleaned(values: Iterable[str] | None) -> tuple[str, ...]:
    """A list field's values, cleaned, without the blank ones."""
    return tuple(filter(None, map(clean, values or ())))


def make_record(source: str, source_file: str, *, origin: str, position: int,
                export_id: str = "", **fields: object) -> Record:
    """A normalised record; its id comes from `origin` and `position`, not its content."""
    values = {
        "pmid": normalise_pmid(str(fields.get("pmid") or "")),
        "doi": normalise_doi(str(fields.get("doi") or "")),
        "title": clean(str(fields.get("title") or "")).rstrip("."),
        "abstract": clean(str(fields.get("abstract") or "")),
        "authors": _cleaned(fields.get("authors")),
        "journal": clean(str(fields.get("journal") or "")),
        "year": year_of(str(fields.get("year") or "")),
        "volume": clean(str(fields.get("volume") or "")),
        "issue": clean(str(fields.get("issue") or "")),
        "pages": clean(str(fields.get("pages") or "")),
        "publication_types": _cleaned(fields.get("publication_types")),
        "mesh_terms": _cleaned(fields.get("mesh_terms")),
        "keywords": _cleaned(fields.get("keywords")),
        "language": normalise_language(str(fields.get("language") or "")),
    }
    extra = {key: str(value) for key, value in (fields.get("extra") or {}).items() if value}
    return Record(record_id=record_id_for(origin, position), source=source,
                  source_file=source_file, origin=origin, position=position,
                  export_id=clean(export_id), extra=extra, **values)


def is_empty(record: Record) -> bool:
    """A record with no bibliographic field at all (an RIS entry with only TY and ER, an
    empty <PubmedArticle/>); its type and the export's own id do not count."""
    return not any((record.title, record.pmid, record.doi, record.abstract, record.authors,
                    record.journal, record.year, record.volume, record.issue, record.pages,
                    record.keywords))


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
                raise ReviewError(f"{self.path}:{number}: not a record "
                                  f"({one_line(error)})") from None
        return records

    def contents_after(self, new: Iterable[Record], upgraded: Iterable[Record] = (),
                       existing: list[Record] | None = None) -> bytearray:
        """The store's bytes once `new` records are appended and stored ones replaced by
        their `upgraded` versions (same id); `existing` is what `load` gave, if the caller
        has read it already. A new record whose id is stored already is a programming
        error, never a silent skip: ids are positions, not content."""
        existing = self.load() if existing is None else existing
        replacements = {record.record_id: record for record in upgraded}
        missing = set(replacements) - {record.record_id for record in existing}
        if missing:
            raise ReviewError(f"{self.path}: cannot upgrade records that are not stored: "
                              f"{', '.join(sorted(missing))}")
        known = {record.record_id for record in existing}
        records = [replacements.get(record.record_id, record) for record in existing]
        for record in new:
            if record.record_id in known:
                raise ReviewError(f"{self.path}: record {record.record_id} "
                                  f"({record.source_file} #{record.position}) is stored already")
            known.add(record.record_id)
            records.append(record)
        # Line by line into one buffer, returned as it is: a joined text and then its bytes
        # held a large store three times over, and a copy into bytes twice.
        contents = bytearray()
        for record in records:
            contents += record.to_json().encode("utf-8")
            contents += b"\n"
        return contents

    def add(self, new: Iterable[Record]) -> list[Record]:
        """Append records, atomically; returns them."""
        added = list(new)
        if added:
            write_atomically(self.path, self.contents_after(added))
        return added
