"""Web of Science "Plain text file" exports: `FN`/`VR` header, two-letter tags, values
continued on lines indented by three spaces, `ER` after each record and `EF` at the end."""

from __future__ import annotations

import re

from review.errors import ReviewError
from review.search.readers.wos_tab import wos_fields

TAG = re.compile(r"^([A-Z][A-Z0-9]) (.*)$")
# Fields whose continuation lines are list items (one author per line), not wrapped text.
LIST_TAGS = {"AU", "AF", "CR", "C1", "DE", "ID", "EM", "RI", "OI", "BA", "BF", "CA", "GP"}


def read(text: str, source_file: str) -> list[tuple[int, dict[str, object]]]:
    records = []
    tags: dict[str, list[str]] | None = None
    started = last = 0
    tag = ""
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip() or line.startswith(("FN ", "VR ")) or line.strip() == "EF":
            continue
        if line.strip() == "ER":
            if tags is None:
                raise ReviewError(f"{source_file}:{number}: ER without a record (no PT)")
            records.append((started, wos_fields({key: "; ".join(values) if key in LIST_TAGS
                                                 else " ".join(values)
                                                 for key, values in tags.items()})))
            tags = None
            continue
        if line.startswith("   ") and tags is not None and tag:
            tags[tag].append(line.strip())
            continue
        match = TAG.match(line)
        if not match:
            raise ReviewError(f"{source_file}:{number}: not a Web of Science line "
                              f"('{line.strip()[:40]}')")
        tag = match.group(1)
        if tags is None:
            if tag != "PT":
                raise ReviewError(f"{source_file}:{number}: tag {tag} outside a record "
                                  "(records start with PT)")
            tags, started = {}, number
        tags.setdefault(tag, []).append(match.group(2).strip())
        last = number
    if tags is not None:
        raise ReviewError(f"{source_file}:{started}: the record starting here has no ER line "
                          f"(truncated file? last line read: {last})")
    return records
