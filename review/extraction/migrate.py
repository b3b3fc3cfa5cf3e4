"""When the protocol's schema changes during a review: the sheet's columns brought in line.

A field added to the schema becomes a blank column ("not reported" until someone extracts
it); a field renamed with `renamed_from` in the protocol takes its old column's cells; a
column the schema no longer has is removed when it is blank, and kept (the sheet refused)
while it holds data, unless the reviewer names it to drop. Nothing else changes: every cell
of every other column is written back as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from review.errors import DataProblems, ReviewError
from review.extraction.sheet import format_cases_csv, split_sheet
from review.fileio import read_text
from review.protocol import ExtractionSchema
from review.transaction import commit, workspace_lock
from review.workspace import Workspace


@dataclass(frozen=True)
class ColumnPlan:
    """How a sheet's columns map onto the schema's."""

    renamed: dict[str, str] = field(default_factory=dict)  # sheet column → schema field
    added: tuple[str, ...] = ()
    removed_blank: tuple[str, ...] = ()
    dropped: dict[str, int] = field(default_factory=dict)  # column → rows whose data goes
    holding_data: dict[str, int] = field(default_factory=dict)  # column → rows with data

    @property
    def changes(self) -> bool:
        return bool(self.renamed or self.added or self.removed_blank or self.dropped
                    or self.holding_data)

    def describe(self) -> list[str]:
        return ([f"column '{old}' renamed to '{new}'" for old, new in self.renamed.items()]
                + [f"column '{name}' added, blank" for name in self.added]
                + [f"blank column '{name}' removed (not in the schema)"
                   for name in self.removed_blank]
                + [f"column '{name}' dropped with its data in {count} rows, as asked"
                   for name, count in self.dropped.items()])


def plan_columns(header: Sequence[str], rows: Iterable[Sequence[str]],
                 schema: ExtractionSchema, drop: Iterable[str] = ()) -> ColumnPlan:
    """The plan for one sheet; columns named in `drop` are removed even with data."""
    drop = set(drop)
    present = set(header)
    renamed = {}
    for spec in schema.fields:
        if spec.name in present:
            continue
        for old_name in spec.renamed_from:
            if old_name in present:
                renamed[old_name] = spec.name
                break
    added = tuple(spec.name for spec in schema.fields
                  if spec.name not in present and spec.name not in renamed.values())
    extra = [name for name in header if name not in schema.columns and name not in renamed]
    filled = {name: 0 for name in extra}
    for row in rows:
        for name, cell in zip(header, row, strict=False):
            if name in filled and str(cell or "").strip():
                filled[name] += 1
    blank = tuple(name for name in extra if not filled[name])
    dropped = {name: count for name, count in filled.items() if count and name in drop}
    holding = {name: count for name, count in filled.items() if count and name not in drop}
    return ColumnPlan(renamed, added, blank, dropped, holding)


def apply_plan(frame: pd.DataFrame, plan: ColumnPlan, schema: ExtractionSchema
               ) -> pd.DataFrame:
    """The sheet in the schema's columns (a plan holding data must be resolved first)."""
    if plan.holding_data:
        raise ReviewError(_holding_message(plan))
    moved = frame.rename(columns=plan.renamed)
    for name in plan.added:
        moved[name] = ""
    return moved[schema.columns].reset_index(drop=True)


def _holding_message(plan: ColumnPlan) -> str:
    listed = ", ".join(f"'{name}' ({count} rows with data)"
                       for name, count in plan.holding_data.items())
    return (f"columns not in the schema hold data: {listed}; add them back to the protocol, "
            "name the field they became with renamed_from, or drop them with --drop NAME")


def _read_raw(path: str, text: str) -> tuple[list[str], list[list[str]]]:
    header, rows, ragged = split_sheet(text, path)
    if ragged:
        raise DataProblems(ragged)
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ReviewError(f"{path}:1: column '{repeated[0]}' appears twice")
    return header, rows


def migrate_sheet(workspace: Workspace, drop: Iterable[str] = ()) -> ColumnPlan:
    """Bring the workspace's extraction sheet in line with the protocol's schema, written
    atomically as the workspace's one writer; returns what changed."""
    schema = workspace.protocol.extraction
    with workspace_lock(workspace.root, "extract migrate"):
        path = workspace.cases_path
        if not path.exists():
            raise ReviewError(f"{path}: no extraction sheet yet; nothing to migrate")
        header, rows = _read_raw(str(path), read_text(path))
        unknown = sorted(set(drop) - set(header))
        if unknown:
            raise ReviewError(f"{path}:1: --drop {unknown[0]}: the sheet has no such column")
        plan = plan_columns(header, rows, schema, drop)
        if plan.holding_data:
            raise ReviewError(f"{path}:1: {_holding_message(plan)}")
        if plan.changes or header != schema.columns:
            frame = pd.DataFrame(rows, columns=header, dtype=object)
            migrated = apply_plan(frame, plan, schema)
            commit(workspace.root, {path: format_cases_csv(migrated, schema).encode("utf-8")})
    return plan
