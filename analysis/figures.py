"""Figures of the review, in one colour-blind-safe style (Okabe–Ito), readable with small n.

Every function returns a matplotlib Figure built without pyplot's global state;
`review.figure_style.figure_files` (the style shared with the PRISMA diagram) renders one to
SVG and 300-dpi PNG bytes that are identical on every run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import patches
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.path import Path
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D

from review.figure_style import EDGE, OKABE_ITO, styled

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from analysis.pooling import PooledProportion
    from analysis.survival import SurvivalByGroup
    from review.protocol import Appraisal

NONE_COLOUR = "#E6E6E6"
# Answers by their role in the protocol's judgement rule, as robvis colours risk of bias.
FAVOURABLE, UNFAVOURABLE, UNSURE = OKABE_ITO[2], OKABE_ITO[5], OKABE_ITO[1]
FOREST_LABELLED_STUDIES = 40


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _percent_axis(ax: Axes, limit: float = 100) -> None:
    ax.set_xlim(0, limit)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.0f}%"))


@styled
def site_frequency_plot(frequencies: pd.DataFrame, title: str | None = None) -> Figure:
    """Horizontal bars with confidence intervals: regions above, single sites below."""
    regions = frequencies[frequencies["kind"] == "region"]
    sites = frequencies[(frequencies["kind"] == "site") & (frequencies["patients"] > 0)]
    sites = sites.sort_values("percent", kind="stable")
    heights = [max(len(regions), 1), max(len(sites), 1)]
    figure = _figure(7.0, 0.28 * sum(heights) + 1.6)
    axes = figure.subplots(2, 1, height_ratios=heights)
    highest = float(frequencies["ci_high"].max()) if len(frequencies) else math.nan
    limit = 100.0 if math.isnan(highest) else min(100.0, 10 * math.ceil((highest + 12) / 10))
    for ax, table, colour, heading in ((axes[0], regions, OKABE_ITO[0], "Regions"),
                                       (axes[1], sites, OKABE_ITO[1], "Single sites")):
        positions = np.arange(len(table))[::-1] if heading == "Regions" else np.arange(len(table))
        # Arrays, not Series: matplotlib calls float() on a one-row Series, which pandas
        # deprecates (a review with a single region).
        share, low, high = (table[column].to_numpy(dtype=float)
                            for column in ("percent", "ci_low", "ci_high"))
        ax.barh(positions, share, color=colour, height=0.65)
        ax.errorbar(share, positions,
                    # Clipped at 0: at 0% or 100% the Wilson limit equals the estimate only up
                    # to rounding, and matplotlib refuses a negative length of 1e-14.
                    xerr=[np.maximum(share - low, 0), np.maximum(high - share, 0)],
                    fmt="none", ecolor=EDGE, elinewidth=0.8, capsize=2)
        ax.set_yticks(positions, table["label"])
        for y, row in zip(positions, table.itertuples(index=False), strict=True):
            ax.text(row.ci_high + limit / 80, y, f"{row.patients}/{row.denominator}",
                    va="center", fontsize=7.5, color=EDGE)
        _percent_axis(ax, limit)
        ax.set_title(heading, loc="left")
    denominator = int(frequencies["denominator"].iloc[0]) if len(frequencies) else 0
    axes[1].set_xlabel(f"Patients with the site, % of {denominator} with sites reported "
                       "(95% CI)")
    if title:
        figure.suptitle(title, x=0.01, ha="left", fontweight="bold")
    return figure


@styled
def vertebral_levels_plot(levels: pd.DataFrame, region: str = "the region",
                          title: str | None = None) -> Figure:
    """Patients per vertebral level, coloured by segment."""
    figure = _figure(7.0, 2.8)
    ax = figure.subplots()
    segments = list(dict.fromkeys(levels["segment"]))
    colours = {segment: OKABE_ITO[i % len(OKABE_ITO)] for i, segment in enumerate(segments)}
    positions = np.arange(len(levels))
    ax.bar(positions, levels["patients"], color=[colours[s] for s in levels["segment"]],
           width=0.75)
    ax.set_xticks(positions, levels["level"], rotation=90, fontsize=7.5)
    ax.set_ylabel("Patients")
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    names = {"C": "Cervical", "T": "Thoracic", "L": "Lumbar", "S": "Sacral"}
    handles = [patches.Patch(color=colours[s], label=names.get(s, s)) for s in segments]
    ax.legend(handles=handles, frameon=False, ncols=len(handles), loc="upper right")
    # Head room above the tallest bar, so the legend never covers it.
    ax.set_ylim(0, max(1, int(levels["patients"].max()) if len(levels) else 1) * 1.3)
    total = int(levels["denominator"].iloc[0]) if len(levels) else 0
    spinal = int(levels["spinal_patients"].iloc[0]) if len(levels) else 0
    ax.set_title(title or f"Levels reported for {total} of the {spinal} patients whose "
                          f"sites include {region.lower()}", loc="left")
    return figure


@styled
def reports_per_year_plot(studies: pd.DataFrame, year_column: str = "pub_year") -> Figure:
    """Included reports by year of publication, with the number whose year is unknown."""
    years = pd.to_numeric(studies[year_column], errors="coerce")
    known = years.dropna().astype(int)
    figure = _figure(7.0, 2.6)
    ax = figure.subplots()
    if len(known):
        counts = known.value_counts().sort_index()
        span = np.arange(counts.index.min(), counts.index.max() + 1)
        ax.bar(span, counts.reindex(span, fill_value=0), color=OKABE_ITO[2], width=0.8)
        ax.set_xlim(span[0] - 1, span[-1] + 1)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    # Years are whole: a short span must not be ticked 2005.0, 2007.5.
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("Reports")
    ax.set_xlabel("Year of publication")
    unknown = int(years.isna().sum())
    ax.set_title(f"{len(studies)} reports" + (f" ({unknown} without a known year)"
                                             if unknown else ""), loc="left")
    return figure


@styled
def kaplan_meier_plot(result: SurvivalByGroup, ax: Axes | None = None,
                      title: str | None = None) -> Figure:
    """Curves with censor marks and median lines, and an at-risk table under the axis."""
    curves = list(result.curves.items()) or [("overall", result.overall)]
    labels = result.group_labels or {"overall": "All patients"}
    if ax is None:
        figure = _figure(7.0, 4.2 + 0.22 * len(curves))
        ax, table_ax = figure.subplots(2, 1, height_ratios=[4, 0.5 + 0.28 * len(curves)],
                                       sharex=True)
    else:
        figure, table_ax = ax.figure, None
    horizon = max(float(curve.time.max()) for _, curve in curves if len(curve.time))
    for index, (name, curve) in enumerate(curves):
        colour = OKABE_ITO[index % len(OKABE_ITO)]
        times = np.concatenate([[0.0], curve.time])
        survival = np.concatenate([[1.0], curve.survival])
        ax.step(times, survival, where="post", color=colour, linewidth=1.6,
                label=f"{labels.get(name, name)} (n = {curve.n}, {result.events_label} = "
                      f"{curve.total_events})")
        # The confidence band the Methods describe, where it is defined.
        ax.fill_between(times, np.concatenate([[1.0], curve.ci_low]),
                        np.concatenate([[1.0], curve.ci_high]), step="post", color=colour,
                        alpha=0.15, linewidth=0)
        censored = curve.censored > 0
        ax.plot(curve.time[censored], curve.survival[censored], linestyle="none", marker="|",
                markersize=8, color=colour)
        median = curve.median[0]
        # A median between two times (R's rule where the curve is flat at one half) marks no
        # observed event, so no line points at it.
        if not math.isnan(median) and np.isin(median, curve.time[curve.events > 0]):
            ax.plot([0, median, median], [0.5, 0.5, 0], linestyle=":", linewidth=0.9,
                    color=colour)
    ax.set_ylim(0, 1.04)
    ax.set_xlim(0, horizon * 1.03)
    ax.set_ylabel(f"{result.analysis_label[:1].upper()}{result.analysis_label[1:]} probability")
    logrank = result.logrank
    test = (f"Log-rank χ² = {logrank.chi2:.2f}, df = {logrank.df}, p = {logrank.p_value:.3f}"
            if logrank is not None and not math.isnan(logrank.p_value) else None)
    legend = ax.legend(frameon=False, loc="upper right", fontsize=8, title=test,
                       title_fontsize=8)
    legend._legend_box.align = "right"
    if title:
        ax.set_title(title, loc="left")
    ticks = matplotlib.ticker.MaxNLocator(nbins=8, integer=True).tick_values(0, horizon)
    ticks = [t for t in ticks if 0 <= t <= horizon * 1.03]
    ax.set_xticks(ticks)
    if table_ax is not None:
        table_ax.set_ylim(-0.5, len(curves) - 0.5)
        table_ax.invert_yaxis()
        for index, (_, curve) in enumerate(curves):
            colour = OKABE_ITO[index % len(OKABE_ITO)]
            for tick in ticks:
                table_ax.text(tick, index, str(curve.number_at_risk(tick)), ha="center",
                              va="center", fontsize=8, color=colour)
        table_ax.set_yticks(range(len(curves)),
                            [_shortened(labels.get(name, name), 24) for name, _ in curves],
                            fontsize=8)
        for index, tick_label in enumerate(table_ax.get_yticklabels()):
            tick_label.set_color(OKABE_ITO[index % len(OKABE_ITO)])
        table_ax.tick_params(axis="y", length=0, pad=14)
        for spine in ("left", "bottom"):
            table_ax.spines[spine].set_visible(False)
        table_ax.tick_params(axis="x", length=0)
        table_ax.set_xlabel(f"Time since {result.time_origin} ({result.time_unit})")
        table_ax.set_title("Number at risk", loc="left", fontsize=8)
    return figure


def _shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


@styled
def forest_plot(result: PooledProportion, ax: Axes | None = None,
                title: str | None = None) -> Figure:
    """Study proportions (exact CIs) and the pooled estimate as a diamond, on 0–100%.

    Up to FOREST_LABELLED_STUDIES studies are drawn one labelled row each; more become a
    caterpillar plot sorted by proportion, since hundreds of labels cannot be read."""
    studies = result.studies
    k = len(studies)
    labelled = k <= FOREST_LABELLED_STUDIES
    if not labelled:
        studies = studies.sort_values(["proportion", "total"], kind="stable")
    if ax is None:
        figure = _figure(7.0, 1.4 + 0.16 * (k + 3) if labelled else 6.0)
        ax = figure.subplots()
    else:
        figure = ax.figure
    positions = np.arange(k)[::-1] + 3
    # Segments from limit to limit, not error bars around the estimate: an interval drawn as
    # computed, even one that misses its estimate, is shown rather than refused.
    ax.hlines(positions, 100 * studies["ci_low"], 100 * studies["ci_high"], color=EDGE,
              linewidth=0.7 if labelled else 0.3)
    ax.plot(100 * studies["proportion"], positions, "s", markersize=3 if labelled else 1,
            color=OKABE_ITO[0])
    if labelled:
        names = [f"{s} ({e}/{n})" for s, e, n in zip(studies["study"], studies["events"],
                                                      studies["total"], strict=True)]
        ax.set_yticks([*positions, 1], [*names, "Pooled"], fontsize=6.5 if k > 30 else 8)
    else:
        ax.set_yticks([1], ["Pooled"])
        ax.set_ylabel(f"{k} studies, sorted by proportion")
    diamond = patches.Polygon([(100 * result.ci_low, 1), (100 * result.estimate, 1.4),
                               (100 * result.ci_high, 1), (100 * result.estimate, 0.6)],
                              closed=True, color=OKABE_ITO[5])
    ax.add_patch(diamond)
    ax.plot([100 * result.pi_low, 100 * result.pi_high], [0.2, 0.2], color=OKABE_ITO[5],
            linewidth=1.2)
    ax.axvline(100 * result.estimate, color=OKABE_ITO[5], linestyle=":", linewidth=0.8)
    ax.set_ylim(-0.5, k + 3.5)
    _percent_axis(ax)
    ax.set_xlabel("Proportion of patients (95% CI; line under the diamond: prediction "
                  "interval)")
    model = {"glmm": "GLMM", "logit": "inverse-variance logit",
             "freeman_tukey": "inverse-variance Freeman–Tukey",
             "arcsine": "inverse-variance arcsine"}[result.method]
    heading = (f"{100 * result.estimate:.1f}% (95% CI {100 * result.ci_low:.1f}–"
               f"{100 * result.ci_high:.1f}); τ² = {result.tau2:.2f}, I² = {result.i2:.0f}%, "
               f"k = {result.k}; {model}")
    ax.set_title(f"{title}\n{heading}" if title else heading, loc="left")
    return figure


@styled
def share_plot(shares: pd.DataFrame, xlabel: str, title: str | None = None) -> Figure:
    """Shares of patients with their confidence intervals, one row each, top to bottom in
    the table's order, in panels by `panel` (e.g. regions, then values): columns `panel`,
    `label`, `events`, `n`, `percent`, `ci_low`, `ci_high` (percentages)."""
    panels = list(dict.fromkeys(shares["panel"]))
    heights = [max(int((shares["panel"] == panel).sum()), 1) for panel in panels]
    figure = _figure(7.0, 0.3 * sum(heights) + 0.9 + 0.35 * len(panels))
    axes = figure.subplots(len(panels), 1, height_ratios=heights, squeeze=False)[:, 0]
    for ax, panel, colour in zip(axes, panels, OKABE_ITO, strict=False):
        rows = shares[shares["panel"] == panel]
        positions = np.arange(len(rows))[::-1]
        share, low, high = (rows[column].to_numpy(dtype=float)
                            for column in ("percent", "ci_low", "ci_high"))
        ax.barh(positions, share, color=colour, height=0.65)
        # Clipped at 0, as in the site plot: a Wilson limit equals a 0% or 100% estimate
        # only up to rounding.
        ax.errorbar(share, positions,
                    xerr=[np.maximum(share - low, 0), np.maximum(high - share, 0)],
                    fmt="none", ecolor=EDGE, elinewidth=0.8, capsize=2)
        ax.set_yticks(positions, [_shortened(str(label), 40) for label in rows["label"]])
        for y, row in zip(positions, rows.itertuples(index=False), strict=True):
            ax.text(min(row.ci_high, 100) + 1.2, y, f"{row.events}/{row.n}", va="center",
                    fontsize=7.5, color=EDGE)
        _percent_axis(ax, 112)
        ax.set_xticks(range(0, 101, 20))
        if len(panels) > 1:
            ax.set_title(str(panel), loc="left")
    axes[-1].set_xlabel(xlabel)
    if title:
        figure.suptitle(title, x=0.01, ha="left", fontweight="bold")
    return figure


@styled
def spread_plot(values: dict[str, np.ndarray], xlabel: str, title: str | None = None
                ) -> Figure:
    """Every patient's value as a dot over a box of the quartiles (R's type 7, whiskers to
    the range), one row per group, top to bottom in the mapping's order."""
    labels = list(values)
    figure = _figure(7.0, 0.45 * len(labels) + 1.1)
    ax = figure.subplots()
    positions = np.arange(len(labels))[::-1]
    ax.boxplot([values[label] for label in labels], positions=positions, orientation="horizontal",
               whis=(0, 100), widths=0.5, showfliers=False, patch_artist=True,
               boxprops={"facecolor": NONE_COLOUR, "edgecolor": EDGE},
               medianprops={"color": OKABE_ITO[5], "linewidth": 1.5},
               whiskerprops={"color": EDGE}, capprops={"color": EDGE})
    for y, label in zip(positions, labels, strict=True):
        found = np.sort(values[label])
        # Spread evenly across the row, not at random, so the figure's bytes never change;
        # equal values stand side by side rather than on top of each other.
        offsets = np.linspace(-0.18, 0.18, len(found)) if len(found) > 1 else np.zeros(1)
        ax.plot(found, y + offsets, "o", markersize=3, color=OKABE_ITO[0], alpha=0.8)
    ax.set_yticks(positions, [f"{_shortened(label, 36)} (n = {len(values[label])})"
                              for label in labels])
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, loc="left")
    return figure


# A front view of the skeleton on a 10 × 20 canvas: each site code is one or more patches.
def _skeleton_parts() -> list[tuple[str, patches.Patch]]:
    parts: list[tuple[str, patches.Patch]] = [
        ("skull", patches.Ellipse((5, 18.4), 2.3, 2.5)),
        ("orbit", patches.Ellipse((4.55, 18.35), 0.55, 0.45)),
        ("orbit", patches.Ellipse((5.45, 18.35), 0.55, 0.45)),
        ("maxilla", patches.FancyBboxPatch((4.45, 17.45), 1.1, 0.35,
                                           boxstyle="round,pad=0.03")),
        ("mandible", patches.Polygon([(4.2, 17.4), (5.8, 17.4), (5.6, 16.85), (5.0, 16.65),
                                      (4.4, 16.85)])),
    ]
    y = 16.55
    # Behind the vertebrae, the whole column: patients whose report names no spinal level
    # colour it, so the spine does not look spared when only its levels are unknown.
    parts.append(("spine_unspecified", patches.FancyBboxPatch(
        (4.5, 10.85), 1.0, 5.75, boxstyle="round,pad=0.05")))
    for _ in range(7):
        parts.append(("cervical_spine", patches.Rectangle((4.78, y - 0.15), 0.44, 0.13)))
        y -= 0.16
    for _ in range(12):
        parts.append(("thoracic_spine", patches.Rectangle((4.72, y - 0.24), 0.56, 0.21)))
        y -= 0.25
    for _ in range(5):
        parts.append(("lumbar_spine", patches.Rectangle((4.64, y - 0.30), 0.72, 0.27)))
        y -= 0.31
    parts.append(("sacrum", patches.Polygon([(4.55, y), (5.45, y), (5.0, y - 1.0)])))
    pelvis_top = y + 0.2
    for side in (-1, 1):
        parts += [
            ("clavicle", patches.Polygon([(5 + side * 0.1, 15.35),
                                          (5 + side * 1.9, 15.55), (5 + side * 1.9, 15.35),
                                          (5 + side * 0.1, 15.15)])),
            ("scapula", patches.Polygon([(5 + side * 1.35, 15.2), (5 + side * 2.0, 15.2),
                                         (5 + side * 1.55, 13.6)])),
            ("humerus", patches.FancyBboxPatch((5 + side * 2.25 - 0.17, 12.2), 0.34, 3.0,
                                               boxstyle="round,pad=0.05")),
            ("forearm", patches.Polygon([(5 + side * 2.2, 12.0), (5 + side * 2.55, 12.0),
                                         (5 + side * 2.85, 9.4), (5 + side * 2.5, 9.4)])),
            ("hand", patches.Ellipse((5 + side * 2.8, 8.85), 0.6, 0.9)),
            ("pelvis", patches.Polygon([(5 + side * 0.5, pelvis_top), (5 + side * 1.7,
                                        pelvis_top + 0.5), (5 + side * 1.5, pelvis_top - 1.0),
                                        (5 + side * 0.4, pelvis_top - 1.6)])),
            ("femur", patches.FancyBboxPatch((5 + side * 0.95 - 0.2, 5.3), 0.4, 3.9,
                                             boxstyle="round,pad=0.05")),
            ("tibia_fibula", patches.Polygon([(5 + side * 0.75, 5.0), (5 + side * 1.25, 5.0),
                                              (5 + side * 1.2, 1.3), (5 + side * 0.85, 1.3)])),
            ("foot", patches.Ellipse((5 + side * 1.15, 0.85), 0.9, 0.5)),
        ]
        for row in range(9):
            top = 14.9 - row * 0.27
            parts.append(("rib", patches.Arc((5 + side * 0.35, top - 0.35), 2.6 - row * 0.04,
                                             0.8, theta1=0 if side > 0 else 90,
                                             theta2=90 if side > 0 else 180, linewidth=3)))
    parts.append(("sternum", patches.FancyBboxPatch((4.9, 12.9), 0.2, 2.2,
                                                    boxstyle="round,pad=0.02")))
    return parts


@styled
def skeleton_map(frequencies: pd.DataFrame, title: str | None = None) -> Figure:
    """A drawn skeleton with every site shaded by the % of patients with it (grey: none
    reported), and labelled with its count; sites are matched to the drawing by their codes."""
    sites = frequencies[frequencies["kind"] == "site"].set_index("id")
    largest = float(sites["percent"].max()) if len(sites) else math.nan
    highest = largest if largest >= 1.0 else 1.0
    colour_map = matplotlib.colormaps["YlGnBu"]
    # Start the scale below 0 so that the rarest site is visibly coloured, not near-white.
    norm = matplotlib.colors.Normalize(vmin=-0.2 * highest, vmax=highest)
    # A fixed layout: constrained layout would cost more than the rest of this figure.
    figure = Figure(figsize=(6.0, 7.6))
    ax = figure.add_axes((0.02, 0.02, 0.82, 0.93))
    for code, patch in _skeleton_parts():
        share = float(sites.loc[code, "percent"]) if code in sites.index else 0.0
        colour = colour_map(norm(share)) if share > 0 else NONE_COLOUR
        if isinstance(patch, patches.Arc):
            patch.set_edgecolor(colour)
        else:
            patch.set_facecolor(colour)
            patch.set_edgecolor(EDGE)
            patch.set_linewidth(0.5)
        ax.add_patch(patch)
    anchors = {"skull": (3.7, 19.3, 0.8, 19.3), "orbit": (4.35, 18.35, 0.8, 18.5),
               "maxilla": (4.45, 17.6, 0.8, 17.7), "mandible": (4.3, 17.1, 0.8, 16.9),
               "cervical_spine": (5.22, 16.1, 9.2, 16.7), "clavicle": (6.7, 15.5, 9.2, 15.9),
               "scapula": (6.8, 14.7, 9.2, 15.1), "sternum": (5.1, 14.0, 9.2, 14.3),
               "thoracic_spine": (5.28, 13.2, 9.2, 13.5), "rib": (6.2, 12.9, 9.2, 12.7),
               "humerus": (7.4, 12.5, 9.2, 11.9), "lumbar_spine": (5.36, 11.4, 9.2, 11.1),
               "forearm": (7.7, 10.5, 9.2, 10.3), "sacrum": (5.2, 10.0, 9.2, 9.5),
               "hand": (8.1, 8.9, 9.2, 8.7), "pelvis": (3.4, 10.2, 0.8, 10.2),
               "femur": (3.85, 7.5, 0.8, 7.5), "tibia_fibula": (3.9, 3.2, 0.8, 3.2),
               "foot": (3.5, 0.85, 0.8, 1.0),
               "spine_unspecified": (4.55, 12.2, 0.8, 12.4)}
    for code, (x, y, text_x, text_y) in anchors.items():
        if code not in sites.index:
            continue
        row = sites.loc[code]
        ax.annotate(f"{row['label']}\n{row['patients']} ({row['percent']:.0f}%)",
                    xy=(x, y), xytext=(text_x, text_y), fontsize=6.8,
                    ha="left" if text_x > 5 else "right", va="center",
                    arrowprops={"arrowstyle": "-", "color": "#8C8C8C", "linewidth": 0.5})
    notes = [f"{sites.loc[code, 'label']}: {sites.loc[code, 'patients']} "
             f"({sites.loc[code, 'percent']:.0f}%)"
             for code in sites.index if code not in anchors and sites.loc[code, "patients"]]
    denominator = int(sites["denominator"].iloc[0]) if len(sites) else 0
    ax.text(5, -0.6, "; ".join([f"Of {denominator} patients with sites reported", *notes]),
            ha="center", va="top", fontsize=7, wrap=True)
    ax.set_xlim(-1.6, 11.6)
    ax.set_ylim(-1.6, 20.0)
    ax.set_aspect("equal")
    ax.axis("off")
    bar = figure.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=colour_map),
                          cax=figure.add_axes((0.86, 0.3, 0.03, 0.4)))
    bar.ax.set_ylim(0, highest)
    bar.ax.tick_params(labelsize=7)
    bar.set_label("Patients with the site (%)", fontsize=8)
    ax.set_title(title or "Where the reported sites were", loc="left")
    return figure


def _answer_roles(appraisal: Appraisal) -> dict[str, tuple[str, str]]:
    """Colour and mark of each answer."""
    rule = appraisal.judgement
    roles = {}
    for answer in appraisal.answers:
        if answer in rule.favourable:
            roles[answer] = (FAVOURABLE, "+")
        elif answer in rule.unfavourable:
            roles[answer] = (UNFAVOURABLE, "−")
        elif answer in rule.not_counted:
            roles[answer] = (NONE_COLOUR, "")
        else:
            roles[answer] = (UNSURE, "?")
    return roles


def _level_colours(count: int) -> list[str]:
    """Best level green, worst red, those between amber."""
    return [FAVOURABLE] + [UNSURE] * (count - 2) + [UNFAVOURABLE]


def _glyph_marker(glyph: str) -> Path:
    """A character in bold, centred, as a marker: one collection draws it in every cell."""
    outline = TextPath((0, 0), glyph, size=1, prop=FontProperties(weight="bold"))
    box = outline.get_extents()
    return outline.transformed(Affine2D().translate(-(box.x0 + box.x1) / 2,
                                                    -(box.y0 + box.y1) / 2))


@styled
def traffic_light_plot(judged: pd.DataFrame, appraisal: Appraisal,
                       title: str | None = None) -> Figure:
    """robvis's two views in one figure: above, each item's answers as a share of the
    reports; below, one row per report and one column per item, with the overall judgement
    in the last column."""
    items = list(appraisal.items)
    roles = _answer_roles(appraisal)
    levels = [level.label for level in appraisal.judgement.levels]
    level_colour = dict(zip(levels, _level_colours(len(levels)), strict=True))
    reports = len(judged)
    summary_height = 0.3 * (len(items) + 1) + 1.0
    grid_height = 0.17 * reports + 1.2
    figure = _figure(7.0, summary_height + grid_height)
    summary, grid = figure.subplots(2, 1, height_ratios=[summary_height, grid_height])

    rows = [*reversed(items)]
    for y, item in enumerate(rows):
        left = 0.0
        for answer in appraisal.answers:
            share = 100 * float((judged[item.id] == answer).sum()) / reports if reports else 0
            summary.barh(y, share, left=left, color=roles[answer][0], height=0.7,
                         edgecolor="white", linewidth=0.5)
            left += share
        unanswered = 100 * float((judged[item.id] == "").sum()) / reports if reports else 0
        if unanswered:
            summary.barh(y, unanswered, left=left, color="white", height=0.7, edgecolor=EDGE,
                         linewidth=0.5)
    summary.set_yticks(range(len(rows)),
                       [f"{item.domain}: {item.id}" if item.domain else item.id
                        for item in rows])
    _percent_axis(summary)
    summary.set_xlabel(f"Share of the {reports} reports")
    summary.legend(handles=[patches.Patch(facecolor=roles[answer][0], edgecolor=EDGE,
                                          linewidth=0.5, label=answer)
                            for answer in appraisal.answers],
                   loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(appraisal.answers),
                   frameon=False, fontsize=7.5)

    columns = [item.id for item in items] + ["judgement"]
    # One collection of circles and one of each mark, not an artist per cell: a review of a
    # hundred reports has a thousand cells, which as artists took seconds to draw and save.
    cells: list[tuple[int, int, str]] = []
    marks: dict[str, list[tuple[int, int]]] = defaultdict(list)
    # Records, not tuples: an item id may hold a hyphen, which a namedtuple renames.
    for y, values in enumerate(judged.to_dict("records")):
        for x, column in enumerate(columns):
            answer = values[column]
            if column == "judgement":
                colour, mark = level_colour.get(answer, "white"), ""
            else:
                colour, mark = roles.get(answer, ("white", ""))
            cells.append((x, y, colour))
            if mark:
                marks[mark].append((x, y))
    if cells:
        xs, ys, colours = zip(*cells, strict=True)
        grid.scatter(xs, ys, s=55, c=colours, edgecolors=EDGE, linewidths=0.4)
    for mark, places in marks.items():
        xs, ys = zip(*places, strict=True)
        grid.scatter(xs, ys, s=30, c="white", marker=_glyph_marker(mark), linewidths=0)
    grid.set_xlim(-0.6, len(columns) - 0.4)
    grid.set_ylim(reports - 0.5, -0.5)
    grid.set_xticks(range(len(columns)), [*columns[:-1], "Overall"], rotation=45, ha="left",
                    fontsize=7)
    grid.xaxis.tick_top()
    grid.set_yticks(range(reports), judged["study_id"], fontsize=6)
    grid.tick_params(length=0)
    for side in grid.spines.values():
        side.set_visible(False)
    grid.legend(handles=[patches.Patch(facecolor=level_colour[level], edgecolor=EDGE,
                                       linewidth=0.5, label=level) for level in levels],
                loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=len(levels),
                frameon=False, fontsize=7.5, title="Overall judgement", title_fontsize=7.5)
    if title:
        figure.suptitle(title, x=0.01, ha="left", fontweight="bold")
    return figure
