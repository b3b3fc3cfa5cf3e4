"""The two kinds of failure a user can meet, and how each is addressed.

`ReviewError` is a usage or file problem (exit 2): the file cannot be read, the command was
called wrongly. `DataProblems` is a readable file whose content breaks the protocol (exit 1);
it carries every `Problem`, so a reviewer fixes them all in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass


class ReviewError(Exception):
    """A usage or file error, reported as one line and exit status 2."""


class ReviewErrors(ReviewError):
    """Several usage or file errors of one file (a protocol's), each reported on its own
    line, all at once."""

    def __init__(self, messages: list[str]):
        super().__init__("\n".join(messages))
        self.messages = messages


def one_line(text: object) -> str:
    """A message as one line: a library's text may hold line breaks."""
    return " ".join(str(text).split())


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a data file, addressed like a compiler message: FILE:ROW:COLUMN."""

    source: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        place = f"{self.source}:{self.row}" if self.row else self.source
        if self.column:
            place = f"{place}:{self.column}"
        # One problem, one line: a value that holds a line break is shown with it escaped.
        message = self.message.replace("\r", "\\r").replace("\n", "\\n")
        return f"{place}: {message}"


class DataProblems(Exception):
    """Content that breaks the protocol; exit status 1."""

    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems
