"""Benchmarks, their comparison and the sweet spot of a sweep, without a UI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tiny_models import build_omz_maskrcnn, build_omz_maskrcnn_conv

from segtui.core import jobs
from segtui.core.benchmark import BenchmarkSettings, run_benchmark
from segtui.core.datasets import image_path
from segtui.core.errors import SegtuiError
from segtui.core.models import import_model, load_registered
from segtui.core.performance import (
    compare_projects,
    estimate_sweep_seconds,
    latest_benchmarks,
    layer_deltas,
    sweet_spot,
)
from segtui.core.projects import create_project_from_paths
from segtui.core.workspace import ProjectRecord, Workspace


def run(
    precision: str,
    fps: float,
    latency: float,
    *,
    requested: str | None = None,
    by_type: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A stored benchmark result as benchmark_project returns it (hand-made numbers)."""
    return {
        "throughput_fps": fps,
        "latency_median_ms": latency,
        "latency_avg_ms": latency * 1.1,
        "latency_min_ms": latency * 0.8,
        "latency_max_ms": latency * 1.5,
        "iterations": 100,
        "wall_s": 1.0,
        "device": "CPU",
        "hint": "THROUGHPUT",
        "streams": 2,
        "requests": 2,
        "batch": 1,
        "duration_s": 1.0,
        "precision": precision,
        "requested_precision": requested or precision,
        "images": 3,
        "runtime": {"time_by_type_ms": by_type or {}},
    }


@pytest.fixture
def conv_project(workspace: Workspace, image_folder: Path, tmp_path: Path) -> ProjectRecord:
    model_path = build_omz_maskrcnn_conv(tmp_path / "conv" / "model.xml", input_hw=(64, 64))
    return create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="Conv"
    )


@pytest.fixture
def parent_and_child(
    workspace: Workspace, image_folder: Path, tmp_path: Path
) -> tuple[ProjectRecord, ProjectRecord]:
    model_path = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    parent = create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="Parent"
    )
    child_model = import_model(
        workspace, model_path, name="model INT8", optimized_from=parent.model_id
    )
    child = workspace.add_project(
        name="Parent INT8",
        model_id=child_model.id,
        dataset_id=parent.dataset_id,
        device="CPU",
        parent_id=parent.id,
    )
    return parent, child


def test_run_benchmark_reports_the_precision_it_ran_at(
    workspace: Workspace, conv_project: ProjectRecord
) -> None:
    loaded = load_registered(workspace.model(conv_project.model_id))
    dataset = workspace.dataset(conv_project.dataset_id)
    paths = [image_path(dataset, im) for im in workspace.dataset_images(dataset.id)]
    result = run_benchmark(
        loaded.model, loaded.adapter, paths, BenchmarkSettings(duration_s=1.0, precision="f32")
    )
    assert result.precision == "f32"
    assert result.requested_precision == "f32"
    assert result.throughput_fps > 0
    assert result.iterations > 0
    assert result.latency_min_ms <= result.latency_median_ms <= result.latency_max_ms
    assert result.latency_min_ms > 0
    assert result.images == 3
    # Throughput is batch × completed inferences / wall time, over about the asked duration.
    assert result.throughput_fps == pytest.approx(result.iterations / result.wall_s, rel=1e-6)
    assert 1.0 <= result.wall_s < 5.0
    assert result.to_json()["precision"] == "f32"


def test_benchmark_settings_are_validated() -> None:
    with pytest.raises(SegtuiError):
        BenchmarkSettings(hint="FAST").validate()
    with pytest.raises(SegtuiError):
        BenchmarkSettings(batch=0).validate()
    with pytest.raises(SegtuiError):
        BenchmarkSettings(duration_s=0.1).validate()


def test_sweet_spot_is_the_best_throughput_under_the_limit() -> None:
    cells = [
        {"batch": 1, "streams": 1, "ok": True, "throughput_fps": 10.0, "latency_median_ms": 20.0},
        {"batch": 1, "streams": 2, "ok": True, "throughput_fps": 18.0, "latency_median_ms": 45.0},
        # The fastest, but over a 50 ms limit.
        {"batch": 1, "streams": 4, "ok": True, "throughput_fps": 25.0, "latency_median_ms": 90.0},
        # A failed cell: no figures, never chosen.
        {"batch": 2, "streams": 1, "ok": False, "error": "cannot reshape"},
    ]
    best = sweet_spot(cells, 50.0)
    assert best is not None and (best["batch"], best["streams"]) == (1, 2)
    best = sweet_spot(cells, 100.0)
    assert best is not None and best["streams"] == 4
    assert sweet_spot(cells, 5.0) is None
    # The limit is inclusive.
    best = sweet_spot(cells, 20.0)
    assert best is not None and best["streams"] == 1


def test_estimate_sweep_seconds() -> None:
    # 3 × 2 cells, each measuring 5 s plus ~2 s to compile and warm up.
    assert estimate_sweep_seconds([1, 2, 4], [1, 2], 5.0) == pytest.approx(42.0)


def test_compare_projects_ratios_from_stored_results(
    workspace: Workspace, parent_and_child: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = parent_and_child
    workspace.add_result(
        project_id=parent.id,
        kind="benchmark",
        data=run("f32", 10.0, 100.0, by_type={"Convolution": 80.0, "If": 20.0}),
    )
    workspace.add_result(
        project_id=parent.id,
        kind="benchmark",
        data=run("bf16", 16.0, 62.5, requested="default", by_type={"Convolution": 50.0}),
    )
    # An older, slower child run is superseded by the newer one at the same precision.
    workspace.add_result(project_id=child.id, kind="benchmark", data=run("bf16", 20.0, 50.0))
    workspace.add_result(
        project_id=child.id,
        kind="benchmark",
        data=run(
            "bf16", 30.0, 25.0, requested="default", by_type={"Convolution": 20.0, "If": 25.0}
        ),
    )
    assert latest_benchmarks(workspace, child.id)["bf16"]["throughput_fps"] == 30.0

    comparison = compare_projects(workspace, child.id, parent.id)
    assert comparison["a_best"]["throughput_fps"] == 30.0
    assert comparison["ratios_vs_b"]["f32"] == {"throughput_ratio": 3.0, "latency_ratio": 4.0}
    assert comparison["ratios_vs_b"]["bf16"] == {"throughput_ratio": 1.875, "latency_ratio": 2.5}
    # Per-layer deltas are against B's best run (the bf16 one), largest saving first.
    deltas = {d["layer_type"]: d for d in comparison["layer_deltas"]}
    assert deltas["Convolution"] == {
        "layer_type": "Convolution",
        "a_ms": 20.0,
        "b_ms": 50.0,
        "delta_ms": -30.0,
    }
    assert deltas["If"]["delta_ms"] == 25.0
    assert comparison["layer_deltas"][0]["layer_type"] == "Convolution"

    # Swapped: the ratios invert.
    swapped = compare_projects(workspace, parent.id, child.id)
    assert swapped["ratios_vs_b"]["bf16"]["throughput_ratio"] == pytest.approx(
        16.0 / 30.0, abs=1e-4
    )


def test_compare_projects_without_a_benchmark_says_which(
    workspace: Workspace, parent_and_child: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = parent_and_child
    workspace.add_result(project_id=parent.id, kind="benchmark", data=run("f32", 10.0, 100.0))
    with pytest.raises(SegtuiError, match="Parent INT8"):
        compare_projects(workspace, child.id, parent.id)


def test_layer_deltas_cover_types_on_either_side() -> None:
    rows = layer_deltas(
        {"time_by_type_ms": {"Convolution": 1.0}}, {"time_by_type_ms": {"MatMul": 2.0}}
    )
    assert rows == [
        {"layer_type": "MatMul", "a_ms": 0.0, "b_ms": 2.0, "delta_ms": -2.0},
        {"layer_type": "Convolution", "a_ms": 1.0, "b_ms": 0.0, "delta_ms": 1.0},
    ]


def test_benchmark_job_stores_a_result(workspace: Workspace, conv_project: ProjectRecord) -> None:
    params = {
        "hint": "LATENCY",
        "streams": None,
        "requests": None,
        "batch": 1,
        "duration_s": 0.5,
        "precision": "f32",
        "per_layer": True,
    }
    job = jobs.submit(workspace, "benchmark", conv_project.id, params)
    job = jobs.wait(workspace, job.id, poll=0.1)
    assert job.state == "done", job.error
    records = workspace.results(conv_project.id, "benchmark")
    assert len(records) == 1
    data = records[0].data
    assert data["precision"] == "f32"
    assert data["hint"] == "LATENCY"
    assert data["throughput_fps"] > 0
    assert job.result is not None and job.result["result_id"] == records[0].id
    runtime = data["runtime"]
    assert runtime["time_by_type_ms"] and "Convolution" in runtime["time_by_type_ms"]
    assert 0.0 <= runtime["non_compute_share"] <= 1.0
    assert latest_benchmarks(workspace, conv_project.id)["f32"]["result_id"] == records[0].id
