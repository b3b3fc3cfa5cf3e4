"""Protocol formats: which shape of the protocol file this toolkit reads, and how a file
written for an earlier format is brought up to it, in memory when read and on disk by
`review protocol upgrade`.

Format 1 is every protocol written before the file named its format; format 2 names it
(`protocol_format: 2`) and points editors to the JSON Schema. Each upgrade step changes a
parsed document (reading) and, for the file, edits only the lines it must, so the reviewer's
comments, quoting, wrapping and order stay as they wrote them. A YAML round trip (ruamel.yaml)
was tried and rejected: it re-wraps flow lists, drops `null` and moves the header comment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from review.errors import ReviewError
from review.fileio import read_text, write_atomically

FORMAT = 2
SCHEMA_FILE = "protocol.schema.json"
SCHEMA_COMMENT = f"# yaml-language-server: $schema={SCHEMA_FILE}"


def _first_key_line(text: str) -> int:
    """The index of the line of the document's first top-level key."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode) or not root.value:
        raise ReviewError("not a protocol mapping")
    return root.value[0][0].start_mark.line


def _name_the_format(document: dict[str, Any]) -> None:
    document["protocol_format"] = 2


def _name_the_format_in_text(text: str) -> str:
    lines = text.splitlines(keepends=True)
    first = _first_key_line(text)
    return "".join([*lines[:first], "protocol_format: 2\n", *lines[first:]])


@dataclass(frozen=True)
class Upgrade:
    """The step from one format to the next: on a parsed document and on the file's text."""

    document: Callable[[dict[str, Any]], None]
    text: Callable[[str], str]
    summary: str


# The step from format n to n + 1, by n.
UPGRADES: dict[int, Upgrade] = {
    1: Upgrade(_name_the_format, _name_the_format_in_text, "names its format"),
}


def declared_format(document: Any, source: str) -> int | None:
    """The format a parsed protocol says it is written in (1 when it names none); None when
    the document is no mapping or its `protocol_format` is no whole number (the protocol's
    validation then says what is wrong)."""
    if not isinstance(document, dict):
        return None
    declared = document.get("protocol_format", 1)
    if isinstance(declared, bool) or not isinstance(declared, int) or declared < 1:
        return None
    if declared > FORMAT:
        raise ReviewError(f"{source}: protocol_format {declared} is newer than this toolkit "
                          f"reads (formats 1 to {FORMAT}); install a newer casereview")
    return declared


def upgraded_document(document: Any, source: str) -> tuple[Any, list[str]]:
    """The document in the current format (a copy when it changed) and a note when it was
    upgraded."""
    declared = declared_format(document, source)
    if declared is None or declared == FORMAT:
        return document, []
    upgraded = dict(document)
    for step in range(declared, FORMAT):
        UPGRADES[step].document(upgraded)
    return upgraded, [f"{source}: written for protocol format {declared}, read as format "
                      f"{FORMAT}; 'review protocol upgrade' rewrites the file"]


def upgrade_file(path: Path) -> list[str]:
    """Rewrite a protocol file in the current format, every other line kept, with the schema
    comment editors read first; returns what was done to it (nothing when it is current)."""
    text = read_text(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        document = None
    declared = declared_format(document, str(path))
    if declared is None:
        raise ReviewError(f"{path}: not a protocol mapping with a whole-number "
                          "protocol_format; fix it ('review protocol check') before upgrading")
    done, upgraded = [], text
    for step in range(declared, FORMAT):
        upgraded = UPGRADES[step].text(upgraded)
        done.append(f"format {step} to {step + 1}: {UPGRADES[step].summary}")
    expected, _ = upgraded_document(document, str(path))
    if yaml.safe_load(upgraded) != expected:
        raise ReviewError(f"{path}: the upgraded text does not read as the upgraded protocol; "
                          "the file is left as it was")
    if SCHEMA_COMMENT not in upgraded.splitlines():
        upgraded = f"{SCHEMA_COMMENT}\n{upgraded}"
        done.append(f"points editors to {SCHEMA_FILE} (YAML language server)")
    if done:
        write_atomically(path, upgraded)
    return done
