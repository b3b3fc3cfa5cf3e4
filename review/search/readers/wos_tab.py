"""Web of Science "Tab delimited file" exports (UTF-8, one record per line, two-letter tags
as the header)."""

from __future__ import annotations

import csv
import io

from review.errors import ReviewError

csv.field_size_limit(10_000_000)


def read(text: str, source_file: str) -> list[tuple[int, dict[str, object]]]:
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or "TI" not in rows[0]:
        raise ReviewError(f"{source_file}:1: not a Web of Science tab-delimited export (no TI "
                          "column in the header)")
    header = [name.strip() for name in rows[0]]
    records = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header) - 1 or len(row) > len(header) + 1:
            raise ReviewError(f"{source_file}:{number}: {len(row)} fields, but the header has "
                              f"{len(header)}")
        records.append((number, wos_fields(dict(zip(header, row, strict=False)))))
    return records


def wos_fields(tags: dict[str, str]) -> dict[str, object]:
    """Record fields from Web of Science's two-letter tags (lists joined by '; ')."""
    start, end = tags.get("BP", ""), tags.get("EP", "")
    return dict(
        export_id=tags.get("UT", ""), pmid=tags.get("PM"), doi=tags.get("DI"),
        title=tags.get("TI"), abstract=tags.get("AB"),
        authors=[a.strip() for a in tags.get("AU", "").split(";")],
        journal=tags.get("SO"), year=tags.get("PY"), volume=tags.get("VL"),
        issue=tags.get("IS"), pages=f"{start}-{end}" if start and end else start,
        publication_types=[t.strip() for t in tags.get("DT", "").split(";")],
        keywords=[k.strip() for k in (tags.get("DE", "") + ";" + tags.get("ID", "")).split(";")],
        language=tags.get("LA"),
    )
