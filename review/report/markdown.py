"""Tables as Markdown, for pasting into a manuscript."""

from __future__ import annotations

import html
import math

import pandas as pd


def format_cell(value: object) -> str:
    """A table cell as text: blanks for missing values, six significant digits for floats."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.6g}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; pipes inside cells are escaped, and so are <, > and
    & (Markdown renders HTML, so a title holding a tag must stay text)."""
    def cell(value: object) -> str:
        return (html.escape(format_cell(value), quote=False).replace("|", "\\|")
                .replace("\n", " "))

    header = "| " + " | ".join(cell(name) for name in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(value) for value in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"
