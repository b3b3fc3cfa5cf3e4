"""Figures drawn to SVG and PNG bytes in forked processes while the caller goes on.

Kept apart from the analysis so that a build can start drawing the figures that need no
analysis (the appraisal's, the PRISMA diagram) before the statistics libraries are imported.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.pool import AsyncResult, Pool

from matplotlib.figure import Figure

from review.figure_style import figure_files

_PENDING_BUILDERS: dict[str, Callable[[], Figure]] = {}


def _render(name: str) -> tuple[str, dict[str, bytes]]:
    return name, figure_files(_PENDING_BUILDERS[name]())


class FigureRendering:
    """SVG and PNG bytes of figures, drawn in forked processes while the caller goes on.

    Rasterising 300-dpi PNGs is most of a build's time and the figures are independent, so
    forked workers (which inherit their builders without pickling them) share the cores. The
    figures are started in batches as their inputs are ready, so that a figure that needs no
    analysis (the appraisal's, the PRISMA diagram) is drawn while the analysis runs.

    Example::

        with FigureRendering() as rendering:
            rendering.start({"prisma_flow": draw_prisma}, workers=1)
            rendering.start(figure_builders(analysis))
            files = rendering.files()  # name → {"svg": ..., "png": ...}
    """

    def __init__(self) -> None:
        self._names: list[str] = []
        self._serial: dict[str, dict[str, bytes]] = {}
        self._batches: list[tuple[Pool, AsyncResult[list[tuple[str, dict[str, bytes]]]]]] = []

    def start(self, builders: dict[str, Callable[[], Figure]], workers: int | None = None
              ) -> None:
        """Start drawing `builders` with up to `workers` processes (default: one per core),
        in their order: list the largest first, so that the workers finish together. Where
        the platform cannot fork, they are drawn at once, here."""
        if not builders:
            return
        self._names += builders
        workers = min(workers or os.cpu_count() or 1, len(builders))
        if "fork" not in multiprocessing.get_all_start_methods():
            self._serial.update({name: figure_files(build()) for name, build in builders.items()})
            return
        _PENDING_BUILDERS.clear()
        _PENDING_BUILDERS.update(builders)
        try:  # the workers are forked here, holding this batch's builders
            pool = multiprocessing.get_context("fork").Pool(workers)
        finally:
            _PENDING_BUILDERS.clear()
        self._batches.append((pool, pool.map_async(_render, list(builders), chunksize=1)))

    def files(self) -> dict[str, dict[str, bytes]]:
        """Every figure started, in the order started, once all are drawn."""
        drawn = dict(self._serial)
        try:
            for _, result in self._batches:
                drawn.update(result.get())
        finally:
            self.close()
        return {name: drawn[name] for name in self._names}

    def close(self) -> None:
        """Stop the workers, drawing or not (the caller failed, or all is drawn)."""
        for pool, _ in self._batches:
            pool.terminate()
        self._batches.clear()

    def __enter__(self) -> FigureRendering:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
