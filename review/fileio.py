"""File edges shared by every step: tolerant text decoding and atomic writes."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from review.errors import ReviewError, one_line

if TYPE_CHECKING:
    import pandas as pd

UTF8_BOM = b"\xef\xbb\xbf"
# The temporary siblings that writes make (`.NAME.XXXX.tmp` here, `.NAME.XXXX.new` in
# review.transaction); a kill can leave them, and they are never data or output.
TEMPORARY = re.compile(r"^\..+\.(tmp|new)$")


def is_temporary(path: str | os.PathLike) -> bool:
    return bool(TEMPORARY.match(Path(path).name))


# What openpyxl raises on a damaged workbook: a broken zip or deflate stream, a compression
# method flipped to an unknown one, XML that does not parse, parts that do not fit together.
DAMAGED_WORKBOOK = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, KeyError,
                    IndexError, OSError, ValueError, SyntaxError)

# A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, quoted with a leading
    apostrophe as OWASP recommends; numbers (also negative ones) and other cells unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) \
            and not NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_csv(frame: pd.DataFrame, **options: object) -> str:
    """A table as CSV for people to open in a spreadsheet, with formula-like text quoted."""
    return frame.map(spreadsheet_safe).to_csv(index=False, lineterminator="\n", **options)


def decode_text(data: bytes, source: str | os.PathLike, encoding: str | None = None) -> str:
    """Decode file bytes; UTF-8 (with or without BOM) unless another encoding is named.

    Undeclared latin-1 is refused rather than guessed, because a wrong guess silently changes
    names and units; the error says where the first foreign byte is and how to proceed.
    """
    if encoding:
        try:
            return data.decode(encoding).removeprefix("\ufeff")
        except (LookupError, UnicodeDecodeError) as exc:
            raise ReviewError(f"{source}: cannot decode as {encoding}: {one_line(exc)}") from None
    try:
        return data.removeprefix(UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ReviewError(
            f"{source}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as "
            "UTF-8 (review extract validate also takes --encoding latin-1)"
        ) from None


def read_text(path: str | os.PathLike, encoding: str | None = None) -> str:
    """Read a whole text file, with the errors of `decode_text` and a one-line OS error."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ReviewError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReviewError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise ReviewError(f"{path}: cannot read: {exc.strerror}") from None
    return decode_text(data, path, encoding)


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)


def write_files_atomically(contents: Mapping[Path, bytes | bytearray]) -> None:
    """Write several files so that each is either wholly old or wholly new.

    Every file is written and flushed to a temporary sibling first; only when all of them are
    on disk are they renamed over their targets, so a failure while writing changes nothing.
    """
    for target in contents:
        if Path(target).is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(target))
    with contextlib.ExitStack() as stack:
        ready: list[tuple[Path, Path]] = []
        for target, data in contents.items():
            temporary = stack.enter_context(_temporary_beside(Path(target)))
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if Path(target).exists():
                os.chmod(temporary, Path(target).stat().st_mode & 0o777)
            else:
                os.chmod(temporary, 0o644)
            ready.append((temporary, Path(target)))
        for temporary, target in ready:
            os.replace(temporary, target)


def write_atomically(path: str | os.PathLike, data: bytes | str) -> None:
    """Write one file atomically (text is encoded as UTF-8)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    write_files_atomically({Path(path): payload})
