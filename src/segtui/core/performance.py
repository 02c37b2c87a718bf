"""Benchmarks of projects, their comparison, and inference-configuration sweeps."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from segtui.core.benchmark import BenchmarkSettings, run_benchmark
from segtui.core.datasets import image_path
from segtui.core.errors import SegtuiError
from segtui.core.models import LoadedModel, load_registered
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.workspace import ModelRecord, Workspace


@dataclass(frozen=True)
class _Subject:
    """What a project's benchmarks run on: its model, loaded once, and its images."""

    device: str
    model: ModelRecord
    loaded: LoadedModel
    paths: list[Path]


def _subject(ws: Workspace, project_id: int) -> _Subject:
    project = ws.project(project_id)
    model = ws.model(project.model_id)
    dataset = ws.dataset(project.dataset_id)
    paths = [image_path(dataset, im) for im in ws.dataset_images(dataset.id)]
    return _Subject(project.device, model, load_registered(model), paths)


def _benchmark(
    subject: _Subject,
    settings: BenchmarkSettings,
    *,
    per_layer: bool,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> dict[str, Any]:
    settings.device = subject.device
    result = run_benchmark(
        subject.loaded.model,
        subject.loaded.adapter,
        subject.paths,
        settings,
        per_layer=per_layer,
        progress=progress,
        cancel=cancel,
    )
    model = subject.model
    return result.to_json() | {"model_id": model.id, "int8": bool(model.analysis.get("int8"))}


def benchmark_project(
    ws: Workspace,
    project_id: int,
    settings: BenchmarkSettings,
    *,
    per_layer: bool = True,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Benchmark a project's model on its own images; returns the result as stored."""
    return _benchmark(
        _subject(ws, project_id), settings, per_layer=per_layer, progress=progress, cancel=cancel
    )


def latest_benchmarks(ws: Workspace, project_id: int) -> dict[str, dict[str, Any]]:
    """The newest benchmark result per actual inference precision ("f32", "bf16", ...)."""
    latest: dict[str, dict[str, Any]] = {}
    for record in ws.results(project_id, "benchmark"):
        latest[str(record.data["precision"])] = record.data | {"result_id": record.id}
    return latest


def best_throughput(ws: Workspace, project_id: int) -> dict[str, Any] | None:
    results = [r.data for r in ws.results(project_id, "benchmark")]
    return max(results, key=lambda d: float(d["throughput_fps"]), default=None)


def compare_projects(ws: Workspace, a_id: int, b_id: int) -> dict[str, Any]:
    """Throughput/latency of A and B with ratios; B is usually the parent, A the optimized child.

    Ratios are A / B for throughput (and B / A for latency) against each of B's
    precisions measured, so "vs f32" and "vs bf16" are both given where measured.
    """
    a, b = ws.project(a_id), ws.project(b_id)
    a_runs, b_runs = latest_benchmarks(ws, a.id), latest_benchmarks(ws, b.id)
    if not a_runs or not b_runs:
        missing = [p.name for p, runs in ((a, a_runs), (b, b_runs)) if not runs]
        raise SegtuiError(
            f"No benchmark yet for {', '.join(missing)}.",
            "Run `segtui benchmark PROJECT` (and with --precision default) first.",
        )
    a_best, b_best = _best(a_runs), _best(b_runs)
    ratios = {}
    for precision, b_run in b_runs.items():
        ratios[precision] = {
            "throughput_ratio": round(
                float(a_best["throughput_fps"]) / float(b_run["throughput_fps"]), 4
            ),
            "latency_ratio": round(
                float(b_run["latency_median_ms"]) / float(a_best["latency_median_ms"]), 4
            ),
        }
    return {
        "a": {"project_id": a.id, "name": a.name, "runs": a_runs},
        "b": {"project_id": b.id, "name": b.name, "runs": b_runs},
        "a_best": a_best,
        "b_best": b_best,
        "ratios_vs_b": ratios,
        "layer_deltas": layer_deltas(a_best.get("runtime", {}), b_best.get("runtime", {})),
    }


def _best(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return max(runs.values(), key=lambda d: float(d["throughput_fps"]))


def layer_deltas(a_runtime: dict[str, Any], b_runtime: dict[str, Any]) -> list[dict[str, Any]]:
    """Per layer type: time in B, time in A, and the difference (from per-layer profiles)."""
    a_types: dict[str, float] = a_runtime.get("time_by_type_ms", {})
    b_types: dict[str, float] = b_runtime.get("time_by_type_ms", {})
    rows = []
    for layer_type in sorted(set(a_types) | set(b_types)):
        ta, tb = a_types.get(layer_type, 0.0), b_types.get(layer_type, 0.0)
        rows.append(
            {
                "layer_type": layer_type,
                "a_ms": round(ta, 4),
                "b_ms": round(tb, 4),
                "delta_ms": round(ta - tb, 4),
            }
        )
    return sorted(rows, key=lambda r: r["delta_ms"])


def sweep_cells(batches: list[int], streams: list[int]) -> list[tuple[int, int]]:
    return list(itertools.product(batches, streams))


def estimate_sweep_seconds(batches: list[int], streams: list[int], duration_s: float) -> float:
    """Each cell: its measuring time plus ~2 s of compile and warm-up."""
    return len(sweep_cells(batches, streams)) * (duration_s + 2.0)


def sweep_project(
    ws: Workspace,
    project_id: int,
    batches: list[int],
    streams: list[int],
    *,
    duration_s: float = 5.0,
    precision: str = "default",
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """A short benchmark per (batch, streams) cell."""
    cells = sweep_cells(batches, streams)
    subject = _subject(ws, project_id)  # the model is loaded once for all cells
    rows = []
    for n, (batch, stream_count) in enumerate(cells):
        settings = BenchmarkSettings(
            hint="THROUGHPUT",
            streams=stream_count,
            batch=batch,
            duration_s=duration_s,
            precision=precision,
        )

        def cell_progress(
            fraction: float,
            stage: str,
            n: int = n,
            batch: int = batch,
            streams_: int = stream_count,
        ) -> None:
            progress((n + fraction) / len(cells), f"batch {batch} × streams {streams_}: {stage}")

        try:
            data = _benchmark(
                subject, settings, per_layer=False, progress=cell_progress, cancel=cancel
            )
            rows.append({"batch": batch, "streams": stream_count, "ok": True} | data)
        except SegtuiError as exc:
            rows.append({"batch": batch, "streams": stream_count, "ok": False, "error": str(exc)})
    return {
        "cells": rows,
        "settings": asdict(BenchmarkSettings(duration_s=duration_s, precision=precision)),
    }


def sweet_spot(cells: list[dict[str, Any]], latency_limit_ms: float) -> dict[str, Any] | None:
    """The best throughput among the cells whose median latency is within the limit."""
    fitting = [
        c for c in cells if c.get("ok") and float(c["latency_median_ms"]) <= latency_limit_ms
    ]
    return max(fitting, key=lambda c: float(c["throughput_fps"]), default=None)
