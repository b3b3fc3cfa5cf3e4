"""The PRISMA 2020 flow diagram, drawn in the template's layout, and its counts as the
PRISMA2020 R package's input CSV."""

from __future__ import annotations

import csv
import io
import textwrap
from typing import TYPE_CHECKING, Any

from matplotlib import patches
from matplotlib.figure import Figure

from review.figure_style import EDGE, OKABE_ITO, styled

if TYPE_CHECKING:
    from matplotlib.axes import Axes

STAGE_COLOUR = "#8FB8DE"
TITLE_COLOUR = {"databases": "#F4D35E", "other": "#D9D9D9"}


def _reasons(excluded: dict[str, int]) -> str:
    return "; ".join(f"{reason}, {n}" for reason, n in excluded.items()) or "0"


def _other_method_row(source: str) -> str:
    name = source.lower()
    if "citation" in name:
        return "citations_results"
    if "organisation" in name or "organization" in name:
        return "organisation_results"
    return "website_results"


def prisma_csv(counts: dict[str, Any]) -> bytes:
    """The counts in the layout of the PRISMA2020 package's template (inst/extdata/PRISMA.csv):
    columns data, node, box, description, boxtext, tooltips, url, n."""
    other = {"website_results": 0, "organisation_results": 0, "citations_results": 0}
    for source, n in counts["identified_other_methods"].items():
        other[_other_method_row(source)] += n
    rows = [
        ("previous_studies", "node5", "box1", "Studies included in previous version of review", 0),
        ("previous_reports", "NA", "box1", "Reports of studies included in previous version of "
                                           "review", 0),
        ("database_results", "node7", "box2", "Records identified from: Databases",
         sum(counts["identified"].values())),
        ("register_results", "NA", "box2", "Records identified from: Registers", 0),
        ("website_results", "node17", "box11", "Records identified from: Websites",
         other["website_results"]),
        ("organisation_results", "NA", "box11", "Records identified from: Organisations",
         other["organisation_results"]),
        ("citations_results", "NA", "box11", "Records identified from: Citation searching",
         other["citations_results"]),
        ("duplicates", "node8", "box3", "Duplicate records", counts["duplicates_removed"]),
        ("excluded_automatic", "NA", "box3", "Records marked as ineligible by automation tools",
         0),
        ("excluded_other", "NA", "box3", "Records removed for other reasons",
         counts.get("records_removed_other", 0)),
        ("records_screened", "node9", "box4", "Records screened (databases and registers)",
         counts["records_screened"]),
        ("records_excluded", "node10", "box5", "Records excluded (databases and registers)",
         counts["records_excluded"]),
        ("dbr_sought_reports", "node11", "box6", "Reports sought for retrieval (databases and "
                                                 "registers)", counts["reports_sought"]),
        ("dbr_notretrieved_reports", "node12", "box7", "Reports not retrieved (databases and "
                                                       "registers)",
         counts["reports_not_retrieved"]),
        ("other_sought_reports", "node18", "box12", "Reports sought for retrieval (other)",
         counts["other_reports_sought"]),
        ("other_notretrieved_reports", "node19", "box13", "Reports not retrieved (other)",
         counts["other_reports_not_retrieved"]),
        ("dbr_assessed", "node13", "box8", "Reports assessed for eligibility (databases and "
                                           "registers)", counts["reports_assessed"]),
        ("dbr_excluded", "node14", "box9", "Reports excluded (databases and registers)",
         _reasons(counts["reports_excluded"])),
        ("other_assessed", "node20", "box14", "Reports assessed for eligibility (other)",
         counts["other_reports_assessed"]),
        ("other_excluded", "node21", "box15", "Reports excluded (other)",
         _reasons(counts["other_reports_excluded"])),
        ("new_studies", "node15", "box10", "New studies included in review",
         counts["studies_included"]),
        ("new_reports", "NA", "box10", "Reports of new included studies",
         counts["reports_included"] + counts["other_reports_included"]),
        ("total_studies", "node22", "box16", "Total studies included in review",
         counts["studies_included"]),
        ("total_reports", "NA", "box16", "Reports of total included studies",
         counts["reports_included"] + counts["other_reports_included"]),
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["data", "node", "box", "description", "boxtext", "tooltips", "url", "n"])
    for data, node, box, description, n in rows:
        writer.writerow([data, node, box, description, description, description, "NA", n])
    return buffer.getvalue().encode("utf-8")


def _box(ax: Axes, x: float, y: float, width: float, height: float, text: str,
         colour: str = "white") -> None:
    ax.add_patch(patches.FancyBboxPatch((x, y), width, height, boxstyle="round,pad=0.3",
                                        facecolor=colour, edgecolor=EDGE, linewidth=0.8))
    # About 1.75 characters per unit of width at this font size.
    # Non-breaking spaces keep "(n = 87)" on one line: textwrap breaks at ASCII spaces only.
    text = text.replace("(n = ", "(n\u00a0=\u00a0")
    wrapped = "\n".join(textwrap.fill(line, max(int(width * 1.75), 12))
                        for line in text.split("\n"))
    ax.text(x + width / 2, y + height / 2, wrapped, ha="center", va="center", fontsize=7.2)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate("", xy=end, xytext=start,
                arrowprops={"arrowstyle": "-|>", "color": EDGE, "linewidth": 0.8,
                            "shrinkA": 0, "shrinkB": 0})


def _lines(title: str, entries: dict[str, int] | None = None, total: int | None = None) -> str:
    text = title + (f" (n = {total})" if total is not None else "")
    if entries and list(entries.values()) != [total]:
        text += ":\n" + "\n".join(f"{name} (n = {n})" for name, n in entries.items())
    elif entries:
        text = f"{title}:\n{next(iter(entries))} (n = {total})"
    return text


def _reports_rows(counts: dict[str, Any], prefix: str) -> list[tuple[int, str, str]]:
    """The retrieval and assessment boxes of one column: 'other_' for other methods."""
    excluded = counts[f"{prefix}reports_excluded"]
    awaiting = counts[f"{prefix or 'database_'}reports_awaiting_assessment"]
    return [
        (50, f"Reports sought for retrieval\n(n = {counts[f'{prefix}reports_sought']})",
         f"Reports not retrieved\n(n = {counts[f'{prefix}reports_not_retrieved']})"),
        (34, f"Reports assessed for eligibility\n(n = {counts[f'{prefix}reports_assessed']})"
             + (f"\nAwaiting assessment (n = {awaiting})" if awaiting else ""),
         _lines("Reports excluded", excluded, sum(excluded.values()))),
    ]


def _column(ax: Axes, x: float, width: float, side_x: float, side_width: float,
            rows: list[tuple[int, str, str]], top: float = 78) -> None:
    """A column of boxes flowing down from `top`, each with its exclusion box beside it."""
    previous = top
    for y, main, side in rows:
        _box(ax, x, y, width, 8, main)
        _box(ax, side_x, y, side_width, 8 if y != 34 else 10, side)
        _arrow(ax, (x + width / 2, previous - 0.6), (x + width / 2, y + 8.6))
        _arrow(ax, (x + width + 0.4, y + 4), (side_x - 0.4, y + 4))
        previous = y


@styled
def prisma_diagram(counts: dict[str, Any]) -> Figure:
    """The PRISMA 2020 flow diagram for new reviews with databases, registers and other
    methods."""
    figure = Figure(figsize=(10, 8.6))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.axis("off")
    left, middle, right, width = 8, 31, 58, 20
    _box(ax, left, 94, 48, 3.5, "Identification of new studies via databases and registers",
         TITLE_COLOUR["databases"])
    _box(ax, right, 94, 39, 3.5, "Identification of new studies via other methods",
         TITLE_COLOUR["other"])
    for label, (y, height) in (("Identification", (76, 15)), ("Screening", (18, 55)),
                               ("Included", (2, 12))):
        ax.add_patch(patches.FancyBboxPatch((0.5, y), 4, height, boxstyle="round,pad=0.2",
                                            facecolor=STAGE_COLOUR, edgecolor=EDGE,
                                            linewidth=0.6))
        ax.text(2.5, y + height / 2, label, rotation=90, ha="center", va="center",
                fontsize=8.5, fontweight="bold")
    identified = counts["identified"]
    _box(ax, left, 78, width, 11, _lines("Records identified from databases",
                                         identified, sum(identified.values())))
    removed_other = counts.get("records_removed_other", 0)
    _box(ax, middle, 80, width, 7, "Records removed before screening:\nduplicate records "
                                   f"(n = {counts['duplicates_removed']})"
         + (f"\nempty records (n = {removed_other})" if removed_other else ""))
    _arrow(ax, (left + width + 0.4, 83.5), (middle - 0.4, 83.5))
    _column(ax, left, width, middle, width, [
        (64, f"Records screened\n(n = {counts['records_screened']})"
             + (f"\nAwaiting a decision (n = {counts['records_awaiting_screening']})"
                if counts["records_awaiting_screening"] else ""),
         f"Records excluded\n(n = {counts['records_excluded']})"),
        *_reports_rows(counts, ""),
    ])
    other = counts["identified_other_methods"]
    _box(ax, right, 78, width, 11, _lines("Records identified from" if other else
                                          "Records identified via other methods", other,
                                          sum(other.values())))
    _column(ax, right, width, right + width + 3, 16, _reports_rows(counts, "other_"))
    reports = counts["reports_included"] + counts["other_reports_included"]
    waiting = counts["reports_included_not_extracted"]
    _box(ax, left, 4, width + 4, 9, f"Studies included in review\n(n = "
                                    f"{counts['studies_included']})\nReports of included "
                                    f"studies (n = {reports})\nPatients (n = "
                                    f"{counts['cases_included']})"
                                    + (f"\nReports not yet extracted (n = {waiting})"
                                       if waiting else ""), "#E8F1E4")
    _arrow(ax, (left + width / 2, 33.4), (left + width / 2, 13.6))
    _arrow(ax, (right + width / 2, 33.4), (left + width + 4.4, 9))
    ax.text(99, 0.5, "PRISMA 2020 flow diagram (Page et al., BMJ 2021;372:n71)", ha="right",
            va="bottom", fontsize=6.5, color=OKABE_ITO[7])
    return figure
