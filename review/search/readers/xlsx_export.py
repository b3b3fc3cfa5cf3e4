"""XLSX exports (ASReview, Rayyan, Covidence, Scopus, Web of Science "Excel"), read with
openpyxl in read-only mode, so that memory stays flat; the first sheet, header in row 1."""

from __future__ import annotations

import datetime as dt
import io

from review.errors import ReviewError, one_line
from review.fileio import DAMAGED_WORKBOOK
from review.search.readers.columns import records_from_rows


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def read(data: bytes, source_file: str) -> list[tuple[int, dict[str, object]]]:
    # Imported here: openpyxl takes a quarter of a second to import, which every other
    # format's import would otherwise pay.
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except DAMAGED_WORKBOOK as error:
        raise ReviewError(f"{source_file}:1: not a readable XLSX workbook "
                          f"({one_line(error)})") from None
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [_text(value).strip() for value in next(rows, ())]
        while header and not header[-1]:
            header.pop()
        # A sheet leaves trailing blank cells out of a row; they are blank, not missing.
        body = [(number, [_text(value) for value in row]
                 + [""] * (len(header) - len(row)))
                for number, row in enumerate(rows, start=2)]
    except DAMAGED_WORKBOOK as error:
        raise ReviewError(f"{source_file}:1: damaged XLSX workbook ({one_line(error)})") from None
    finally:
        workbook.close()
    return records_from_rows(body, header, source_file)
