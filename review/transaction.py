"""One writer at a time, and every multi-file change all or nothing.

Every command that changes a workspace holds its lock, `.review/lock` (an exclusive flock,
so a killed holder releases it), and waits for it with a message or, past
`REVIEW_LOCK_WAIT` seconds (default 30), refuses, naming who holds it. A change of several
files is committed as one unit: each new file is written and flushed beside its target, the
intended renames are recorded in `.review/journal.json`, the renames are made, and the
journal is removed. Whoever next takes the lock finds an unfinished journal and completes its
renames (every new file was whole before the journal existed), then removes temporary files
a killed writer left (`.NAME.*.tmp`, `.NAME.*.new`), so nothing half-done ever counts as data
or output.

Screening decisions are appended to per-reviewer files under their own lock
(`review.screening.decisions`), so reviewers never wait for each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from review.errors import ReviewError, one_line
from review.fileio import is_temporary, write_atomically, write_files_atomically

STATE_FOLDER = ".review"
FAULT_VARIABLE = "REVIEW_FAULT"
_held: dict[Path, int] = {}
_guard = threading.Lock()


def _fault(point: str) -> None:
    """Die here, as a kill would, when the tests ask for it (REVIEW_FAULT=point)."""
    if os.environ.get(FAULT_VARIABLE) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def state_folder(root: Path) -> Path:
    folder = Path(root) / STATE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        # The lock and the journal are this machine's state, never the review's record.
        ignore.write_text("*\n", encoding="utf-8")
    return folder


def _holder(handle: int) -> str:
    os.lseek(handle, 0, os.SEEK_SET)
    text = os.read(handle, 4096).decode("utf-8", "replace")
    try:
        about = json.loads(text)
        return (f"'review {about['command']}' (process {about['pid']}, since "
                f"{about['since']})")
    except (ValueError, KeyError, TypeError):
        return "another review command"


class WorkspaceBusy(ReviewError):
    """Another command holds the workspace's lock longer than the caller would wait."""

    def __init__(self, message: str, holder: str):
        super().__init__(message)
        self.holder = holder


@contextlib.contextmanager
def workspace_lock(root: Path, command: str, wait: float | None = None) -> Iterator[None]:
    """Hold the workspace's lock for the block (re-entrant within one process), waiting at
    most `wait` seconds (default $REVIEW_LOCK_WAIT, else 30) for another command."""
    key = Path(root).resolve()
    with _guard:
        if _held.get(key):
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    handle = os.open(state_folder(key) / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if wait is None:
            wait = float(os.environ.get("REVIEW_LOCK_WAIT", "30"))
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(handle)
                if time.monotonic() >= deadline:
                    raise WorkspaceBusy(f"{key}: the workspace is in use by {holder}; try "
                                        "again when it has finished", holder) from None
                if not told:
                    print(f"review: waiting for {holder} to finish with {key}",
                          file=sys.stderr)
                    told = True
                time.sleep(0.05)
        os.ftruncate(handle, 0)
        os.lseek(handle, 0, os.SEEK_SET)
        os.write(handle, json.dumps({"command": command, "pid": os.getpid(),
                                     "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode())
        with _guard:
            _held[key] = 1
        try:
            recover(key)
            yield
        finally:
            with _guard:
                del _held[key]
            os.ftruncate(handle, 0)
    finally:
        os.close(handle)


def holds_lock(root: Path) -> bool:
    return bool(_held.get(Path(root).resolve()))


def _journal(root: Path) -> Path:
    return state_folder(root) / "journal.json"


def settle(root: Path) -> None:
    """Before reading a workspace: if a killed writer left a change half done, finish it
    (under the lock) so that no reader ever sees half of it."""
    if (Path(root) / STATE_FOLDER / "journal.json").exists() and not holds_lock(root):
        with workspace_lock(root, "recover"):
            pass


def recover(root: Path) -> None:
    """Finish a commit a killed writer left half done, then remove its temporary files."""
    journal = _journal(root)
    if journal.exists():
        try:
            renames = json.loads(journal.read_text(encoding="utf-8"))["renames"]
        except (ValueError, KeyError, OSError) as error:
            raise ReviewError(f"{journal}: unreadable ({one_line(error)}); the previous change was "
                              "interrupted; compare the data with git before deleting "
                              "it") from None
        for temporary, target in renames:
            if Path(temporary).exists():
                os.replace(temporary, target)
        journal.unlink()
    for folder in (Path(root) / "data", Path(root) / "reports"):
        if folder.is_dir():
            for leftover in folder.rglob(".*"):
                if leftover.is_file() and is_temporary(leftover):
                    leftover.unlink()


def commit(root: Path, contents: Mapping[Path, bytes | bytearray]) -> None:
    """Write several files as one change under the workspace's lock: after a kill at any
    point, either all are old or (once the next command has recovered) all are new."""
    if not holds_lock(root):
        raise RuntimeError("commit() needs the workspace lock (use workspace_lock)")
    targets = [Path(target).resolve() for target in contents]
    if len(targets) <= 1:
        write_files_atomically(contents)
        return
    token = f"{os.getpid()}-{time.monotonic_ns()}"
    staged: list[tuple[Path, Path]] = []
    try:
        for target, data in zip(targets, contents.values(), strict=True):
            if target.is_dir():
                raise ReviewError(f"{target}: is a folder, not a file")
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.parent / f".{target.name}.{token}.new"
            staged.append((temporary, target))
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        _fault("commit-staged")
        write_atomically(_journal(root), json.dumps(
            {"renames": [[str(temporary), str(target)] for temporary, target in staged]}))
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise
    for number, (temporary, target) in enumerate(staged):
        os.replace(temporary, target)
        if number == 0:
            _fault("commit-renaming")
    _journal(root).unlink()
