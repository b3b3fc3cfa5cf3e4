"""The Excel round trip: reviewers extract in a workbook that the protocol generates.

`build_template` writes a workbook whose Cases sheet carries the schema's columns with drop-down
lists and input messages, a Vocabularies sheet, and the JBI appraisal sheet. `import_workbook`
validates a filled workbook and merges it into the sheet and the appraisal table; with any
problem it changes nothing and reports every problem, addressed by sheet, row and column.

A workbook exported with the sheet's rows also holds, in hidden sheets, every row as it was
exported with its version. The import then merges three ways: a cell the person did not change
keeps what the sheet holds now (a correction made in the web form meanwhile survives), a cell
changed only in the workbook is applied, and a cell changed on both sides is a conflict,
refused unless the person says which side wins.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation

from review.errors import DataProblems, Problem, ReviewError, one_line
from review.extraction.appraisal import appraisal_columns, read_appraisal
from review.extraction.migrate import apply_plan, plan_columns
from review.extraction.sheet import (
    Location,
    ensure_sheet,
    format_cases_csv,
    header_problems,
    row_version,
    sheet_locations,
)

# Excel holds at most 32,767 characters in a cell, and openpyxl cuts longer ones on reading.
from review.extraction.validate import CELL_LIMIT, validate_cases
from review.fileio import DAMAGED_WORKBOOK
from review.protocol import Appraisal, ExtractionSchema, FieldSpec, Protocol
from review.transaction import commit, workspace_lock
from review.workspace import Workspace

CASES_SHEET = "Cases"
VOCABULARY_SHEET = "Vocabularies"
APPRAISAL_SHEET = "Appraisal"
ABOUT_SHEET = "About"
CASES_BASE_SHEET = "Cases as exported"
APPRAISAL_BASE_SHEET = "Appraisal as exported"
PREFILLED_SHEET = "Prefilled"
VERSION_COLUMN = "row_version"
APPRAISAL_KEY = ["study_id", "appraiser"]
Side = Literal["workbook", "sheet"]
LAST_ROW = 5000
HEADER_FILL = PatternFill("solid", fgColor="DDE6F0")


def _prompt(spec: FieldSpec, separator: str) -> str:
    parts = [spec.description] if spec.description else []
    if spec.type == "codes":
        parts.append(f"Pick a value, or type several separated by '{separator}'.")
    elif spec.type == "code":
        parts.append("Pick one value from the list.")
    elif spec.numeric:
        bounds = [f"≥ {spec.min:g}" if spec.min is not None else "",
                  f"≤ {spec.max:g}" if spec.max is not None else ""]
        unit = f" in {spec.unit}" if spec.unit else ""
        parts.append(f"A number{unit} {' '.join(b for b in bounds if b)}".strip() + ".")
    if spec.required:
        parts.append("Required.")
    parts.append("Leave blank when not reported.")
    return " ".join(parts)[:255]


def _validation_for(
    spec: FieldSpec, vocabulary_column: str | None, separator: str
) -> DataValidation:
    if spec.coded and vocabulary_column:
        size = len(spec.values) + 1
        reference = (f"{quote_sheetname(VOCABULARY_SHEET)}!${vocabulary_column}$2:"
                     f"${vocabulary_column}${size}")
        # A multi-valued cell holds several codes joined by the separator, which a strict list
        # check would reject; the drop-down still offers the codes and the import validates.
        validation = DataValidation(type="list", formula1=reference,
                                    showErrorMessage=spec.type == "code")
    elif spec.type in ("integer", "year"):
        low = 1900 if spec.type == "year" else spec.min if spec.min is not None else -1e9
        high = 2100 if spec.type == "year" else spec.max if spec.max is not None else 1e9
        validation = DataValidation(type="whole", operator="between",
                                    formula1=f"{low:g}", formula2=f"{high:g}",
                                    showErrorMessage=True)
    elif spec.type == "number":
        low = spec.min if spec.min is not None else -1e12
        high = spec.max if spec.max is not None else 1e12
        validation = DataValidation(type="decimal", operator="between",
                                    formula1=f"{low:g}", formula2=f"{high:g}",
                                    showErrorMessage=True)
    else:
        validation = DataValidation()
    validation.allow_blank = True
    validation.showInputMessage = True
    validation.promptTitle = spec.name[:32]
    validation.prompt = _prompt(spec, separator)
    if validation.showErrorMessage:
        validation.errorTitle = f"{spec.name}"[:32]
        validation.error = (f"Not allowed in {spec.name}. "
                            + (f"Allowed: {', '.join(spec.values)}" if spec.coded else
                               _prompt(spec, separator)))[:255]
    return validation


def _header(sheet: Any, names: list[str]) -> None:
    sheet.append(names)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(vertical="top")
    for index, name in enumerate(names, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(12, min(40, len(name) + 4))


def _append_text(sheet: Any, values: list[Any]) -> None:
    """A row of text cells: written as strings, never as formulas, whatever they start with
    ('=> pain improved', '=Japan'), so that a round trip changes nothing."""
    row = sheet.max_row + 1
    for column, value in enumerate(values, start=1):
        if value is None or value == "":
            continue
        text = str(value)
        if len(text) >= CELL_LIMIT:
            raise ReviewError(f"{sheet.title}!{get_column_letter(column)}{row}: "
                              f"{len(text):,} characters, over Excel's cell limit of "
                              f"{CELL_LIMIT - 1:,}; shorten it in the sheet first")
        control = ILLEGAL_CHARACTERS_RE.search(text)
        if control:
            raise ReviewError(f"{sheet.title}!{get_column_letter(column)}{row} "
                              f"({sheet.cell(row=1, column=column).value}, row {row} of the "
                              f"sheet): a control character (U+{ord(control.group(0)):04X}) "
                              "that a workbook cannot hold; remove it in the sheet first")
        cell = sheet.cell(row=row, column=column)
        cell.value = text
        cell.data_type = "s"


def _write_base(workbook: Any, name: str, rows: pd.DataFrame) -> None:
    """A hidden sheet holding the exported rows with their versions, for the import's
    three-way merge."""
    sheet = workbook.create_sheet(name)
    sheet.sheet_state = "hidden"
    sheet.append([VERSION_COLUMN, *rows.columns])
    for row in rows.itertuples(index=False):
        cells = ["" if cell is None else str(cell) for cell in row]
        _append_text(sheet, [row_version(cells), *cells])


def build_template(protocol: Protocol, cases: pd.DataFrame | None = None,
                   appraisals: pd.DataFrame | None = None,
                   prefilled: pd.DataFrame | None = None) -> bytes:
    """The extraction workbook for a protocol as XLSX bytes, optionally holding the sheet's
    cases and appraisal rows (with a record of them as exported, see the module's text), and
    the first patients of reports still to extract, prefilled from their records (a row left
    as prefilled is not imported)."""
    schema = protocol.extraction
    workbook = Workbook()
    workbook.properties.title = f"Extraction workbook: {protocol.title}"[:255]
    workbook.properties.identifier = protocol.id
    workbook.properties.subject = f"{protocol.id} {protocol.version}"
    workbook.properties.creator = "review"
    fixed = dt.datetime(2000, 1, 1)
    workbook.properties.created = fixed
    workbook.properties.modified = fixed

    sheet = workbook.active
    sheet.title = CASES_SHEET
    _header(sheet, schema.columns)
    sheet.freeze_panes = "B2"
    vocabulary = workbook.create_sheet(VOCABULARY_SHEET)
    coded = [spec for spec in schema.fields if spec.coded]
    appraisal = schema.appraisal
    _header(vocabulary, [spec.name for spec in coded]
            + (["appraisal_answers"] if appraisal else []))
    lists = [list(spec.values) for spec in coded] + ([list(appraisal.answers)] if appraisal else [])
    for row in range(max((len(values) for values in lists), default=0)):
        vocabulary.append([values[row] if row < len(values) else None for values in lists])
    vocabulary.freeze_panes = "A2"
    vocabulary_columns = {spec.name: get_column_letter(i) for i, spec in enumerate(coded, 1)}

    for index, spec in enumerate(schema.fields, start=1):
        letter = get_column_letter(index)
        validation = _validation_for(spec, vocabulary_columns.get(spec.name),
                                     schema.list_separator)
        validation.add(f"{letter}2:{letter}{LAST_ROW}")
        sheet.add_data_validation(validation)
    if cases is not None:
        for row in cases[schema.columns].itertuples(index=False):
            _append_text(sheet, list(row))
    if prefilled is not None:
        for row in prefilled[schema.columns].itertuples(index=False):
            _append_text(sheet, list(row))

    if appraisal:
        appraisal_sheet = workbook.create_sheet(APPRAISAL_SHEET)
        columns = appraisal_columns(appraisal)
        _header(appraisal_sheet, columns)
        appraisal_sheet.freeze_panes = "C2"
        answers = get_column_letter(len(coded) + 1)
        reference = f"{quote_sheetname(VOCABULARY_SHEET)}!${answers}$2:${answers}$" \
                    f"{len(appraisal.answers) + 1}"
        for offset, item in enumerate(appraisal.items, start=3):
            letter = get_column_letter(offset)
            validation = DataValidation(type="list", formula1=reference, allow_blank=True,
                                        showErrorMessage=True, showInputMessage=True)
            validation.promptTitle = item.id[:32]
            validation.prompt = item.question[:255]
            validation.add(f"{letter}2:{letter}{LAST_ROW}")
            appraisal_sheet.add_data_validation(validation)
        appraised: set[str] = set()
        if appraisals is not None:
            for row in appraisals[columns].itertuples(index=False):
                _append_text(appraisal_sheet, list(row))
            appraised = set(appraisals["study_id"])
        if cases is not None and len(cases):
            for study in sorted(set(cases[schema.study.key]) - {""} - appraised):
                _append_text(appraisal_sheet, [study])

    about = workbook.create_sheet(ABOUT_SHEET)
    about.append(["Review", protocol.title])
    about.append(["Protocol", f"{protocol.id} version {protocol.version}"])
    about.append(["Unit", f"one row per {schema.unit} on the {CASES_SHEET} sheet"])
    about.append(["Lists", f"separate several codes with '{schema.list_separator}'"])
    about.append(["Blank", "a blank cell means: not reported"])
    if appraisal:
        about.append(["Appraisal", appraisal.tool])
        for item in appraisal.items:
            about.append([item.id, item.question])
    about.column_dimensions["A"].width = 18
    about.column_dimensions["B"].width = 100
    if cases is not None:
        _write_base(workbook, CASES_BASE_SHEET, cases[schema.columns])
        if appraisals is not None and appraisal:
            _write_base(workbook, APPRAISAL_BASE_SHEET, appraisals[appraisal_columns(appraisal)])
    if prefilled is not None and len(prefilled):
        _write_base(workbook, PREFILLED_SHEET, prefilled[schema.columns])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return _fixed_times(buffer.getvalue())


def _fixed_times(xlsx: bytes) -> bytes:
    """The same archive with every member, and the document's modified time, dated
    2000-01-01: openpyxl stamps both with the clock when it saves, so two saves a second
    apart would differ."""
    packed = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as source, \
            zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            fixed = zipfile.ZipInfo(member.filename, date_time=(2000, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            content = source.read(member.filename)
            if member.filename == "docProps/core.xml":
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                                 rb"\g<1>2000-01-01T00:00:00Z\g<2>", content)
            target.writestr(fixed, content)
    return packed.getvalue()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


@dataclass(frozen=True)
class SheetRows:
    """Rows of one workbook sheet as text cells, with their addresses."""

    frame: pd.DataFrame
    locations: list[Location]


def _cell_problem(value: Any, formula: Any) -> str:
    """Why a cell cannot be imported as it is ('' when it can)."""
    if getattr(formula, "data_type", "") == "f" and value is None:
        return (f"a formula ({formula.value}) without a saved value; open the workbook in "
                "Excel and save it, or type the value")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return (f"Excel turned this cell into a date or time (got {value}); format the column "
                "as text and retype")
    if isinstance(value, str) and len(value) >= CELL_LIMIT:
        return (f"{len(value):,} characters, at Excel's cell limit of {CELL_LIMIT:,} (the "
                "text may have been cut); shorten it")
    return ""


def _read_sheet(
    workbook: Any, formulas: Any, name: str, columns: list[str], source: str,
    problems: list[Problem], schema: ExtractionSchema | None = None,
    notes: list[str] | None = None,
) -> SheetRows:
    """The rows of one sheet; `formulas` is the same workbook read without cached values,
    which tells a formula whose value was never saved from a blank cell. With `schema`, the
    columns are matched by name, so a workbook made before the schema changed still imports:
    renamed columns (`renamed_from`) are read as their new field, new fields as blank, and
    each such change is added to `notes`."""
    sheet = workbook[name]
    address = f"{source}[{name}]"
    rows = sheet.iter_rows(values_only=True)
    formula_rows = formulas[name].iter_rows()
    next(formula_rows, None)
    header = [_cell_text(cell) for cell in next(rows, ())]
    while header and not header[-1]:
        header.pop()
    by_name = schema is not None and len(set(header)) == len(header)
    mismatched = [] if by_name else header_problems(header, columns, address)
    if mismatched:
        problems.extend(mismatched)
        return SheetRows(pd.DataFrame(columns=columns), [])
    records, locations = [], []
    for number, values in enumerate(rows, start=2):
        raw = list(next(formula_rows, ()))[: len(header)]
        raw += [None] * (len(header) - len(raw))
        cells = list(values[: len(header)]) + [None] * (len(header) - len(values))
        if all((cell is None or (isinstance(cell, str) and not cell.strip()))
               and getattr(formula, "data_type", "") != "f"
               for cell, formula in zip(cells, raw, strict=True)):
            continue
        for column, cell, formula in zip(header, cells, raw, strict=True):
            problem = _cell_problem(cell, formula)
            if problem:
                problems.append(Problem(address, number, column, problem))
        records.append({column: _cell_text(cell) for column, cell in zip(header, cells,
                                                                         strict=True)})
        locations.append((address, number))
    frame = pd.DataFrame(records, columns=header, dtype=object)
    if schema is None:
        return SheetRows(frame[columns], locations)
    plan = plan_columns(header, frame.itertuples(index=False), schema)
    for column, count in plan.holding_data.items():
        problems.append(Problem(address, 1, column, f"not a field of the protocol's schema, "
                                                    f"but {count} rows hold data in it (if "
                                                    "the field was renamed, list this name "
                                                    "in its renamed_from)"))
    if plan.holding_data:
        return SheetRows(pd.DataFrame(columns=columns), [])
    if notes is not None:
        notes += [f"{address}: {change}" for change in plan.describe()]
    return SheetRows(apply_plan(frame, plan, schema), locations)


def _unstarted_removed(rows: SheetRows) -> SheetRows:
    """Drop appraisal rows that name a study and nothing else: the template lists every
    study, and an appraisal not yet begun is not an error."""
    others = [column for column in rows.frame.columns if column != "study_id"]
    started = (rows.frame[others].fillna("").astype(str).apply(lambda c: c.str.strip()) != "") \
        .any(axis=1).tolist()
    kept = [i for i, flag in enumerate(started) if flag]
    return SheetRows(rows.frame.iloc[kept].reset_index(drop=True),
                     [rows.locations[i] for i in kept])


def _untouched_prefills_removed(rows: SheetRows, prefilled: Base, columns: list[str]
                                ) -> SheetRows:
    """Drop the prefilled first patients nobody began: a report still to extract is not a
    patient until someone extracts one."""
    values = rows.frame[columns].fillna("").astype(str).itertuples(index=False)
    kept = [i for i, row in enumerate(values) if tuple(row) not in prefilled]
    return SheetRows(rows.frame.iloc[kept].reset_index(drop=True),
                     [rows.locations[i] for i in kept])


# The rows of a sheet as exported, by their key: the base of the three-way merge.
Base = dict[tuple[str, ...], dict[str, str]]


def _read_base(workbook: Any, name: str, key: list[str], renamed: dict[str, str],
               source: str, problems: list[Problem]) -> Base | None:
    """The hidden record of an export, or None for a workbook made without one (a blank
    template, or one made before exports were recorded); `renamed` maps a column's old name
    to its field, as the schema's renamed_from says."""
    if name not in workbook.sheetnames:
        return None
    address = f"{source}[{name}]"
    rows = workbook[name].iter_rows(values_only=True)
    header = [_cell_text(cell) for cell in next(rows, ())]
    while header and not header[-1]:
        header.pop()
    if not header or header[0] != VERSION_COLUMN:
        problems.append(Problem(address, 1, "", "the hidden record of the export was edited; "
                                                "export a fresh workbook"))
        return None
    names = [renamed.get(column, column) for column in header[1:]]
    base: Base = {}
    for number, values in enumerate(rows, start=2):
        cells = [_cell_text(cell) for cell in values[: len(header)]]
        cells += [""] * (len(header) - len(cells))
        if not any(cells):
            continue
        if row_version(cells[1:]) != cells[0]:
            problems.append(Problem(address, number, VERSION_COLUMN,
                                    "this hidden record of the export was edited, so the "
                                    "import cannot tell your changes from the sheet's; "
                                    "export a fresh workbook"))
            continue
        row = dict(zip(names, cells[1:], strict=True))
        base[tuple(row.get(column, "") for column in key)] = row
    return base


@dataclass(frozen=True)
class WorkbookContent:
    cases: SheetRows
    appraisal: SheetRows | None
    notes: tuple[str, ...] = ()
    cases_base: Base | None = None
    appraisal_base: Base | None = None


def read_workbook(path: str | os.PathLike, protocol: Protocol) -> WorkbookContent:
    """Read a filled extraction workbook; raise `DataProblems` for a wrong structure."""
    source = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            if "xl/workbook.xml" not in archive.namelist():
                raise zipfile.BadZipFile("no workbook part")
        workbook = load_workbook(path, read_only=True, data_only=True)
        formulas = load_workbook(path, read_only=True, data_only=False)
    except FileNotFoundError:
        raise ReviewError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ReviewError(f"{source}: is a folder, not a file") from None
    except PermissionError:
        raise ReviewError(f"{source}: cannot read: permission denied") from None
    except zipfile.BadZipFile:
        raise ReviewError(f"{source}: not an Excel workbook (.xlsx); save it from Excel as "
                          "'Excel Workbook (*.xlsx)'") from None
    except (InvalidFileException, *DAMAGED_WORKBOOK) as error:
        raise ReviewError(f"{source}: a damaged Excel workbook ({type(error).__name__}: "
                          f"{one_line(error)[:80]}); save it again from Excel") from None
    try:
        if CASES_SHEET not in workbook.sheetnames:
            made_for = workbook.properties.identifier
            origin = f" (made for the review '{made_for}')" if made_for else ""
            raise ReviewError(f"{source}: no '{CASES_SHEET}' sheet{origin}; expected the "
                              f"extraction workbook of '{protocol.id}' "
                              "(make one with 'review extract template')")
        problems: list[Problem] = []
        schema = protocol.extraction
        notes: list[str] = []
        # Columns are matched by name only in this review's own workbooks: one made for
        # another review is refused whole, however many column names it shares.
        same_review = workbook.properties.identifier in (None, "", protocol.id)
        cases = _read_sheet(workbook, formulas, CASES_SHEET, schema.columns, source, problems,
                            schema if same_review else None, notes)
        appraisal = None
        if schema.appraisal and APPRAISAL_SHEET in workbook.sheetnames:
            appraisal = _unstarted_removed(_read_sheet(
                workbook, formulas, APPRAISAL_SHEET, appraisal_columns(schema.appraisal),
                source, problems))
        renamed = {old: spec.name for spec in schema.fields for old in spec.renamed_from}
        prefilled = _read_base(workbook, PREFILLED_SHEET, schema.columns, renamed, source,
                               problems)
        if prefilled:
            cases = _untouched_prefills_removed(cases, prefilled, schema.columns)
        cases_base = _read_base(workbook, CASES_BASE_SHEET, [schema.study.id_field], renamed,
                                source, problems)
        appraisal_base = _read_base(workbook, APPRAISAL_BASE_SHEET, APPRAISAL_KEY, {}, source,
                                    problems) if appraisal is not None else None
        made_for = workbook.properties.identifier
        if problems and made_for and made_for != protocol.id:
            problems.insert(0, Problem(source, 0, "", f"this workbook was made for the review "
                                                      f"'{made_for}', not '{protocol.id}'"))
    except DAMAGED_WORKBOOK as error:
        raise ReviewError(f"{source}: a damaged Excel workbook ({type(error).__name__}: "
                          f"{one_line(error)[:80]}); save it again from Excel") from None
    finally:
        workbook.close()
        formulas.close()
    if problems:
        raise DataProblems(problems)
    return WorkbookContent(cases, appraisal, tuple(notes), cases_base, appraisal_base)


@dataclass(frozen=True)
class Merge:
    """Rows merged into a sheet: the rows, the address of each, the counts of added,
    updated and unchanged rows, the conflicts refused and the conflicts settled as asked."""

    frame: pd.DataFrame
    locations: list[Location]
    counts: dict[str, int]
    conflicts: list[Problem] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)


def _shown(value: str) -> str:
    return f"'{value[:60]}…'" if len(value) > 60 else f"'{value}'" if value else "blank"


CONFLICT_HINT = ("type the value to keep in this cell and import again, or import with "
                 "--on-conflict workbook (or sheet)")


def merge_rows(
    existing: pd.DataFrame,
    existing_locations: list[Location],
    incoming: SheetRows,
    key: list[str],
    base: Base | None = None,
    prefer: Side | None = None,
) -> Merge:
    """Merge incoming rows into existing ones by key.

    Without `base` an incoming row replaces its match and the others are appended. With the
    rows as they were exported (`base`), the merge is three-way, cell by cell: a cell left as
    exported keeps the sheet's current value, a cell changed only in the workbook is applied,
    and a cell changed on both sides is a conflict, refused unless `prefer` names the side
    that wins. A row exported and since removed from the sheet is not brought back unless the
    workbook changed it. An incoming row is addressed in the workbook.
    """
    columns = list(existing.columns)
    position = {tuple(row): i for i, row in enumerate(existing[key].itertuples(index=False))}
    rows = [list(row) for row in existing.itertuples(index=False)]
    locations = list(existing_locations)
    counts = {"added": 0, "updated": 0, "unchanged": 0}
    conflicts: list[Problem] = []
    settled: list[str] = []

    def conflict(source: str, number: int, column: str, message: str,
                 ours: str, theirs: str) -> str:
        if prefer is None:
            conflicts.append(Problem(source, number, column, f"{message}; {CONFLICT_HINT}"))
            return ours
        kept = ours if prefer == "workbook" else theirs
        settled.append(f"{source}:{number}:{column}: {message}; kept the {prefer}'s "
                       f"{_shown(kept)}")
        return kept

    for values, (source, number) in zip(incoming.frame[columns].itertuples(index=False),
                                        incoming.locations, strict=True):
        mine = dict(zip(columns, values, strict=True))
        ident = tuple(mine[name] for name in key)
        found = position.get(ident)
        current = dict(zip(columns, rows[found], strict=True)) if found is not None else None
        merged = dict(mine)
        if base is not None:
            was = base.get(ident)
            if was is None and current is not None:
                for column in columns:
                    if mine[column] != current[column]:
                        merged[column] = conflict(
                            source, number, column,
                            f"this row is new in the workbook, but '{ident[0]}' was added "
                            f"to the sheet since the export with {_shown(current[column])} "
                            f"here, not {_shown(mine[column])}", mine[column], current[column])
            elif was is not None and current is None:
                if all(mine[column] == was.get(column, "") for column in columns):
                    continue  # removed from the sheet since the export, unchanged here
                conflict(source, number, key[0], f"'{ident[0]}' was removed from the sheet "
                         "since the export, but this workbook changed it", "its row", "no row")
                if prefer == "sheet":
                    continue  # the removal stands
            elif was is not None and current is not None:
                for column in columns:
                    before, ours, theirs = was.get(column, ""), mine[column], current[column]
                    if ours == before or theirs == ours:
                        merged[column] = theirs
                    elif theirs != before:
                        merged[column] = conflict(
                            source, number, column,
                            f"changed in the workbook to {_shown(ours)} and in the sheet to "
                            f"{_shown(theirs)} since the export (it was {_shown(before)})",
                            ours, theirs)
        row = [merged[column] for column in columns]
        if found is None:
            position[ident] = len(rows)
            rows.append(row)
            locations.append((source, number))
            counts["added"] += 1
        elif rows[found] == row:
            counts["unchanged"] += 1
        else:
            rows[found] = row
            locations[found] = (source, number)
            counts["updated"] += 1
    return Merge(pd.DataFrame(rows, columns=columns, dtype=object), locations, counts,
                 conflicts, settled)


def validate_appraisal(
    frame: pd.DataFrame, locations: list[Location], appraisal: Appraisal, studies: set[str]
) -> list[Problem]:
    """Problems of appraisal rows: known study, named appraiser, answers from the list."""
    problems = []
    seen: dict[tuple[str, str], Location] = {}
    for (_, row), (source, number) in zip(frame.iterrows(), locations, strict=True):
        study, appraiser = row["study_id"].strip(), row["appraiser"].strip()
        if not study:
            problems.append(Problem(source, number, "study_id", "required, but blank"))
        elif study not in studies:
            problems.append(Problem(source, number, "study_id",
                                    f"no such study in the extraction sheet (got '{study}')"))
        if not appraiser:
            problems.append(Problem(source, number, "appraiser", "required, but blank"))
        key = (study, appraiser)
        if study and appraiser and key in seen:
            problems.append(Problem(source, number, "study_id",
                                    f"'{study}' appraised twice by '{appraiser}' (first at "
                                    f"{seen[key][0]}:{seen[key][1]})"))
        seen.setdefault(key, (source, number))
        for item in appraisal.items:
            answer = row[item.id]
            if answer and answer not in appraisal.answers:
                problems.append(Problem(source, number, item.id,
                                        f"not an appraisal answer (got '{answer}'; allowed: "
                                        f"{', '.join(appraisal.answers)})"))
    return problems


@dataclass(frozen=True)
class ImportResult:
    cases: dict[str, int]
    appraisal: dict[str, int] | None
    notes: tuple[str, ...] = ()
    settled: tuple[str, ...] = ()


def import_workbook(workspace: Workspace, path: str | os.PathLike,
                    on_conflict: Side | None = None) -> ImportResult:
    """Validate a filled workbook and merge it into the workspace's sheet, all or nothing,
    as the workspace's one writer; `on_conflict` settles cells changed on both sides since
    the export (otherwise they are refused)."""
    with workspace_lock(workspace.root, "extract import"):
        return _import_workbook(workspace, path, on_conflict)


def _import_workbook(workspace: Workspace, path: str | os.PathLike,
                     on_conflict: Side | None) -> ImportResult:
    protocol = workspace.protocol
    schema = protocol.extraction
    content = read_workbook(path, protocol)
    existing = ensure_sheet(workspace.cases_path, schema)
    existing_locations = sheet_locations(existing, str(workspace.cases_path))
    problems = validate_cases(content.cases.frame, schema, locations=content.cases.locations)
    cases = merge_rows(existing, existing_locations, content.cases, [schema.study.id_field],
                       content.cases_base, on_conflict)
    problems += cases.conflicts
    problems += validate_cases(cases.frame, schema, locations=cases.locations)
    settled = list(cases.settled)

    outputs = {workspace.cases_path: format_cases_csv(cases.frame, schema).encode("utf-8")}
    appraisal_counts = None
    if schema.appraisal and content.appraisal is not None:
        current = read_appraisal(workspace.appraisal_path, schema.appraisal)
        appraisal = merge_rows(current, sheet_locations(current, str(workspace.appraisal_path)),
                               content.appraisal, APPRAISAL_KEY, content.appraisal_base,
                               on_conflict)
        appraisal_counts = appraisal.counts
        problems += appraisal.conflicts
        settled += appraisal.settled
        studies = set(cases.frame[schema.study.key])
        problems += validate_appraisal(content.appraisal.frame, content.appraisal.locations,
                                       schema.appraisal, studies)
        problems += validate_appraisal(appraisal.frame, appraisal.locations,
                                       schema.appraisal, studies)
        ordered = appraisal.frame.sort_values(APPRAISAL_KEY, kind="stable")
        if len(ordered) or workspace.appraisal_path.exists():
            outputs[workspace.appraisal_path] = ordered.to_csv(
                index=False, lineterminator="\n").encode("utf-8")
    unique = sorted(set(problems))
    if unique:
        raise DataProblems(unique)
    commit(workspace.root, outputs)
    return ImportResult(cases.counts, appraisal_counts, content.notes, tuple(settled))
