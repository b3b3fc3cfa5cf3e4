"""The figures' one style, below every step that draws: colour-blind-safe Okabe–Ito colours,
fonts, and rendering to SVG and 300-dpi PNG bytes that are identical on every run.

Screening draws the PRISMA diagram and analysis its plots; both take their style from here, so
neither step imports the other for it.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import ParamSpec

import matplotlib
from matplotlib.figure import Figure

P = ParamSpec("P")
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
             "#000000"]
EDGE = "#4D4D4D"
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "svg.hashsalt": "casereview",
    "svg.fonttype": "none",
    "path.simplify": False,
    # Labels come from protocols and exports: a '$' in a source name is text, not TeX.
    "text.parse_math": False,
}


def styled(build: Callable[P, Figure]) -> Callable[P, Figure]:
    """Build a figure under the review's style (rcParams apply when artists are created)."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with matplotlib.rc_context(STYLE):
            return build(*args, **kwargs)

    return wrapper


def figure_files(figure: Figure) -> dict[str, bytes]:
    """The figure as SVG and 300-dpi PNG bytes, free of dates and version stamps.

    The layout is solved once, while the SVG is drawn, and then frozen: constrained layout
    otherwise re-solves at every save and moves axes by rounding noise, which changes the
    SVG's clip-path identifiers.
    """
    files = {}
    with matplotlib.rc_context(STYLE):
        for kind, options in (("svg", {"metadata": {"Date": None, "Creator": None}}),
                              ("png", {"dpi": 300, "metadata": {"Software": None},
                                       "pil_kwargs": {"compress_level": 1}})):
            buffer = io.BytesIO()
            figure.savefig(buffer, format=kind, **options)
            files[kind] = buffer.getvalue()
            figure.set_layout_engine("none")
    return files
