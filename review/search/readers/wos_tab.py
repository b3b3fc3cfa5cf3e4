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
        fields = dict(zip(header, row, strict=False))
        start, end = fields.get("BP", ""), fields.get("EP", "")
        records.append((number, dict(
            export_id=fields.get("UT", ""), pmid=fields.get("PM"), doi=fields.get("DI"),
            title=fields.get("TI"), abstract=fields.get("AB"),
            authors=[a.strip() for a in fields.get("AU", "").split(";")],
            journal=fields.get("SO"), year=fields.get("PY"), volume=fields.get("VL"),
            issue=fields.get("IS"), pages=f"{start}-{end}" if start and end else start,
            publication_types=[t.strip() for t in fields.get("DT", "").split(";")],
            keywords=[k.strip() for k in (fields.get("DE", "") + ";" +
                                          fields.get("ID", "")).split(";")],
            language=fields.get("LA"),
        )))
    return records
