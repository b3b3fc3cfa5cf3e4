"""The full-text store: each report's PDF, content-addressed, with a committed index.

`data/fulltext/index.csv` maps a record id to the SHA-256 of its PDF, with where the file came
from (uploaded, an open-access service, a path), when, its size and its page count. The PDFs
themselves live in `data/fulltext/files/<sha256>.pdf`, a folder git ignores: publishers
rarely allow redistributing them, so the review's history keeps only which file each record
had, and a clone without the PDFs still builds its report. The text of each PDF is extracted
once, when it is stored, into `<sha256>.txt` beside it.

Only real PDFs are stored: the header and end-of-file markers, then a full parse with pypdf
(damaged, truncated and password-protected files are refused), and no larger than the
protocol's `fulltext.max_megabytes`. A store is one change under the workspace lock: the PDF,
its text and the new index are committed together (`review.transaction.commit`), so after a
kill the store and the index are either as before or complete. The same bytes are kept once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from review.errors import ReviewError, one_line
from review.fileio import read_text
from review.transaction import commit, workspace_lock
from review.workspace import Workspace

SOURCES = ("uploaded", "unpaywall", "pmc", "path")
SHA256 = re.compile(r"[0-9a-f]{64}")
# A PDF's header may follow a little junk (the specification allows 1,024 bytes); the
# end-of-file marker is near the end, after which some writers add a newline or padding.
HEADER_WINDOW = 1024
TRAILER_WINDOW = 2048


class TruncatedPdf(ReviewError):
    """A PDF cut short, as a broken download leaves it: asking again may bring it whole."""


@dataclass(frozen=True)
class FullText:
    """One record's PDF as the index lists it."""

    record_id: str
    sha256: str
    bytes: int
    pages: int
    source: str
    origin: str
    added: str


@dataclass(frozen=True)
class CheckedPdf:
    """A PDF that parsed: its page count and its text, page by page."""

    pages: int
    text: str
    title: str
    subject: str
    doi: str


def _describe_start(data: bytes) -> str:
    start = data[:HEADER_WINDOW].lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html")) or b"<html" in start[:200]:
        return "an HTML page, not a PDF"
    if start.startswith(b"pk\x03\x04"):
        return "a zip archive (a Word or EPUB file?), not a PDF"
    if not start:
        return "empty, not a PDF"
    return "not a PDF (no %PDF- header)"


def check_pdf(data: bytes, source: str, max_bytes: int) -> CheckedPdf:
    """The PDF in `data`, or a one-line error naming `source`."""
    if len(data) > max_bytes:
        raise ReviewError(f"{source}: {len(data) / 1e6:.1f} MB, over the protocol's limit of "
                          f"{max_bytes / 1e6:g} MB (fulltext.max_megabytes)")
    if b"%PDF-" not in data[:HEADER_WINDOW]:
        raise ReviewError(f"{source}: {_describe_start(data)}")
    if b"%%EOF" not in data[-TRAILER_WINDOW:]:
        raise TruncatedPdf(f"{source}: a truncated PDF (no end-of-file marker); download it "
                           "again")
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    # pypdf logs every repair it makes to a damaged file; the refusal below says what matters.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ReviewError(f"{source}: the PDF is encrypted with a password; save an "
                              "unprotected copy")
        pages = len(reader.pages)
        texts = []
        for page in reader.pages:
            try:
                texts.append(page.extract_text() or "")
            except Exception:  # one unreadable page keeps the others' text
                texts.append("")
        metadata = reader.metadata or {}
        title = str(metadata.get("/Title") or "")
        subject = str(metadata.get("/Subject") or "")
        doi = str(metadata.get("/doi") or metadata.get("/DOI") or "")
    except (FileNotDecryptedError, DependencyError):
        raise ReviewError(f"{source}: the PDF is encrypted and cannot be opened without its "
                          "password; save an unprotected copy") from None
    except ReviewError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, OSError, AssertionError) as error:
        raise ReviewError(f"{source}: a damaged PDF ({one_line(error) or type(error).__name__})"
                          ) from None
    if pages == 0:
        raise ReviewError(f"{source}: a damaged PDF (no pages)")
    return CheckedPdf(pages, "\f".join(texts), title, subject, doi)


class FullTextStore:
    """The full texts of one workspace."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.folder = workspace.fulltext_dir
        self.index_path = self.folder / "index.csv"
        self.files = self.folder / "files"

    def pdf_path(self, sha256: str) -> Path:
        if not SHA256.fullmatch(sha256):
            raise ReviewError(f"{self.index_path}: '{sha256}' is not a SHA-256")
        return self.files / f"{sha256}.pdf"

    def text_path(self, sha256: str) -> Path:
        return self.pdf_path(sha256).with_suffix(".txt")

    def index(self) -> dict[str, FullText]:
        """record id → its full text, as the committed index lists them."""
        if not self.index_path.exists():
            return {}
        text = read_text(self.index_path)
        reader = csv.DictReader(io.StringIO(text, newline=""))
        names = [item.name for item in fields(FullText)]
        if reader.fieldnames != names:
            raise ReviewError(f"{self.index_path}:1: expected the columns {', '.join(names)}")
        entries = {}
        for number, row in enumerate(reader, start=2):
            try:
                entry = FullText(row["record_id"], row["sha256"], int(row["bytes"]),
                                 int(row["pages"]), row["source"], row["origin"], row["added"])
            except (TypeError, ValueError):
                raise ReviewError(f"{self.index_path}:{number}: bytes and pages must be whole "
                                  "numbers") from None
            if not SHA256.fullmatch(entry.sha256):
                raise ReviewError(f"{self.index_path}:{number}: sha256: not a SHA-256")
            if entry.source not in SOURCES:
                raise ReviewError(f"{self.index_path}:{number}: source: '{entry.source}' is "
                                  f"not one of {', '.join(SOURCES)}")
            entries[entry.record_id] = entry
        return entries

    def has_file(self, entry: FullText) -> bool:
        """Whether this machine holds the PDF the index names (a clone may not)."""
        return self.pdf_path(entry.sha256).is_file()

    def read_pdf(self, entry: FullText) -> bytes:
        path = self.pdf_path(entry.sha256)
        if not path.is_file():
            raise ReviewError(f"{path}: the PDF of record {entry.record_id} is not on this "
                              "machine (the index lists it; PDFs are not committed); attach "
                              "it again or copy data/fulltext/files/ from a colleague")
        return path.read_bytes()

    def read_text(self, entry: FullText) -> str:
        path = self.text_path(entry.sha256)
        return path.read_text(encoding="utf-8") if path.is_file() else ""

    def _index_bytes(self, entries: Iterable[FullText]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([item.name for item in fields(FullText)])
        for entry in sorted(entries, key=lambda item: item.record_id):
            writer.writerow(asdict(entry).values())
        return buffer.getvalue().encode("utf-8")

    def store(self, record_id: str, data: bytes, checked: CheckedPdf, *, source: str,
              origin: str, added: str, replace: bool = False, wait: float | None = None
              ) -> tuple[FullText, bool]:
        """Store a checked PDF as the record's full text; returns the entry and whether the
        index changed (the same bytes attached again change nothing); `wait` bounds the wait
        for the workspace lock (see `workspace_lock`)."""
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        digest = hashlib.sha256(data).hexdigest()
        with workspace_lock(self.workspace.root, "fulltext attach", wait=wait):
            entries = self.index()
            present = entries.get(record_id)
            if present is not None and present.sha256 == digest:
                return present, False
            if present is not None and not replace:
                raise ReviewError(f"record {record_id} already has a full text ({present.pages} "
                                  f"pages, {present.source} {present.added[:10]}); attach "
                                  "with --replace to put this one in its place")
            entry = FullText(record_id, digest, len(data), checked.pages, source,
                             one_line(origin), added)
            entries[record_id] = entry
            self._ensure_ignored()
            changes: dict[Path, bytes] = {}
            if not self.pdf_path(digest).is_file():
                changes[self.pdf_path(digest)] = data
                changes[self.text_path(digest)] = checked.text.encode("utf-8")
            changes[self.index_path] = self._index_bytes(entries.values())
            commit(self.workspace.root, changes)
        return entry, True

    def _ensure_ignored(self) -> None:
        ignore = self.files / ".gitignore"
        if not ignore.exists():
            self.files.mkdir(parents=True, exist_ok=True)
            # Publishers' PDFs stay out of the review's history; the index records them.
            ignore.write_text("*\n!.gitignore\n", encoding="utf-8")
