"""Shared helpers for the measurement scripts (not tests): a scratch workspace with the sample."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from segtui.core.optimize import OptimizeSettings, optimize_project
from segtui.core.sample import SampleProjects, register_sample
from segtui.core.workspace import ProjectRecord, Workspace


def scratch_workspace(keep: str | None = None) -> Workspace:
    """A workspace for one benchmark run: $SEGTUI_BENCH_WS if set (reused), else a temp folder."""
    root = Path(
        keep or os.environ.get("SEGTUI_BENCH_WS") or tempfile.mkdtemp(prefix="segtui-bench-")
    )
    return Workspace(root)


def sample(ws: Workspace, name: str = "shapes") -> SampleProjects:
    return register_sample(ws, name)


def default_int8_child(ws: Workspace, parent_id: int) -> ProjectRecord:
    """The parent's child from the Default method (reused), optimized now if there is none.

    A shared $SEGTUI_BENCH_WS may also hold an AccuracyAware child: it is not this one.
    """
    for child in ws.children(parent_id):
        optimization = ws.model(child.model_id).optimization or {}
        if optimization.get("method") == "default":
            return child
    return optimize_project(ws, parent_id, OptimizeSettings(), ws.root / "bench-work")


def median_ratio(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median, min and max of the pairwise ratios a[i] / b[i] (runs taken alternately)."""
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)
