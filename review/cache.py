"""Derived state stored, not recomputed: a result kept in the workspace's local state, keyed by
the bytes of every input it was computed from and by the code that computed it.

A result is read back only when its key matches; any change to an input or to the package's
code gives another key, so a stale result is never served. A damaged cache file is
recomputed, with a warning, never trusted. The cache is this machine's (`.review/cache/`,
ignored by git): deleting it loses nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from review.fileio import write_atomically
from review.transaction import state_folder

T = TypeVar("T")
PACKAGE = Path(__file__).resolve().parent
FORMAT = 1
KEPT_PER_NAME = 3


@functools.cache
def code_fingerprint() -> str:
    """The package's own source: a result computed by other code is another result."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def inputs_key(root: Path, inputs: Iterable[Path]) -> str:
    """The key of a result: each input's path and bytes (a missing input counts as such)."""
    digest = hashlib.sha256(f"format {FORMAT}\n{code_fingerprint()}\n".encode())
    for path in sorted(set(inputs)):
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest() if path.is_file()
                      else b"missing")
    return digest.hexdigest()


def cached(root: Path, name: str, inputs: Iterable[Path], compute: Callable[[], T],
           encode: Callable[[T], Any], decode: Callable[[Any], T]) -> T:
    """`compute()` once per state of its `inputs`; `encode` makes the result JSON, `decode`
    reads it back."""
    key = inputs_key(root, inputs)
    path = _cache_path(root, name, key)
    if path.exists():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            payload = json.dumps(stored["result"], sort_keys=True)
            if stored["key"] != key or stored["check"] != _check(payload):
                raise ValueError("its key or checksum does not match")
            return decode(stored["result"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(f"review: warning: {path}: a damaged cache ({error}); recomputed",
                  file=sys.stderr)
    payload = _store(path, key, encode(compute()))
    _prune(path.parent, name, keep=path)
    # Read back as a cached result would be, so that the first call and every later one
    # give the same result, to the type.
    return decode(json.loads(payload))


def remember(root: Path, name: str, inputs: Iterable[Path], result: T,
             encode: Callable[[T], Any]) -> None:
    """Keep a result computed elsewhere (by the command that also wrote its inputs) for the
    present state of its `inputs`, so that `cached` reads it instead of computing it again."""
    key = inputs_key(root, inputs)
    path = _cache_path(root, name, key)
    if not path.exists():
        _store(path, key, encode(result))
        _prune(path.parent, name, keep=path)


def _cache_path(root: Path, name: str, key: str) -> Path:
    return state_folder(root) / "cache" / f"{name}-{key[:40]}.json"


def _store(path: Path, key: str, encoded: Any) -> str:
    payload = json.dumps(encoded, sort_keys=True)
    write_atomically(path, json.dumps({"key": key, "check": _check(payload),
                                       "result": encoded}, sort_keys=True))
    return payload


def _check(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _prune(folder: Path, name: str, keep: Path) -> None:
    """Only the newest few results of a name stay: older inputs rarely come back."""
    older = sorted((path for path in folder.glob(f"{name}-*.json") if path != keep),
                   key=lambda path: path.stat().st_mtime, reverse=True)
    for path in older[KEPT_PER_NAME - 1:]:
        path.unlink(missing_ok=True)
