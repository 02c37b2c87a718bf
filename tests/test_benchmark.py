"""Benchmarks, their comparison and the sweet spot of a sweep, without a UI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
from tiny_models import build_omz_maskrcnn_conv

from segtui.cli import main
from segtui.cli.commands.performance import sweep_notes, sweep_rows
from segtui.core import jobs, performance, priority
from segtui.core.accuracy_settings import record_settings
from segtui.core.benchmark import HINTS, BenchmarkRun, BenchmarkSettings, run_benchmark
from segtui.core.datasets import image_path
from segtui.core.errors import Cancelled, SegtuiError
from segtui.core.inference import compile_model
from segtui.core.job_kinds import sweep_job
from segtui.core.job_registry import JobContext
from segtui.core.machine import machine_info
from segtui.core.models import load_registered
from segtui.core.performance import (
    SweepCell,
    SweepSettings,
    actual_streams,
    cell_keys,
    compare_projects,
    estimate_sweep_seconds,
    latest_benchmarks,
    latest_sweep,
    layer_deltas,
    requested_precisions,
    streams_text,
    sweep_project,
    sweet_spot,
)
from segtui.core.progress import CancelToken
from segtui.core.projects import create_project_from_paths
from segtui.core.runtime_graph import (
    RuntimeProfile,
    by_label,
    computed_precision,
    precision_label,
    summarize_runtime,
)
from segtui.core.settings import SettingError
from segtui.core.types import Hint, JobKind, Precision
from segtui.core.workspace import ProjectRecord, Workspace


def run(
    precision: str,
    fps: float,
    latency: float,
    *,
    requested: str | None = None,
    by_type: dict[str, float] | None = None,
) -> BenchmarkRun:
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
        "model_id": 1,
        "int8": False,
    }


def store(workspace: Workspace, project_id: int, data: BenchmarkRun) -> None:
    workspace.add_result(project_id=project_id, kind="benchmark", data=dict(data))


@pytest.fixture
def conv_project(workspace: Workspace, image_folder: Path, tmp_path: Path) -> ProjectRecord:
    model_path = build_omz_maskrcnn_conv(tmp_path / "conv" / "model.xml", input_hw=(64, 64))
    return create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="Conv"
    )


def test_run_benchmark_reports_the_precision_it_ran_at(
    workspace: Workspace, conv_project: ProjectRecord
) -> None:
    loaded = load_registered(workspace.model(conv_project.model_id))
    dataset = workspace.dataset(conv_project.dataset_id)
    paths = [image_path(dataset, im) for im in workspace.dataset_images(dataset.id)]
    result = run_benchmark(
        loaded.model,
        loaded.adapter,
        paths,
        BenchmarkSettings(duration_s=1.0, precision=Precision.F32),
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


def test_precision_labels_say_what_was_computed() -> None:
    # At f32 inference a narrower float reported is the weights' storage, not the compute.
    assert precision_label("F16", "f32") == "F32 (FP16 weights)"
    assert precision_label("f16", "f32") == "F32 (FP16 weights)"
    assert precision_label("BF16", "f32") == "F32 (BF16 weights)"
    assert computed_precision("F16", "f32") == "F32"
    # At bf16 or f16 inference the layer does compute in what it reports; F32 there is real.
    assert precision_label("BF16", "bf16") == "BF16"
    assert precision_label("F16", "f16") == "F16"
    assert precision_label("F32", "bf16") == "F32"
    assert precision_label("I8", "f32") == "I8"
    assert precision_label("F16", None) == "F16"  # the run's precision unknown: as reported
    assert by_label({"F16": 53, "F32": 12, "I8": 4}, "f32") == {
        "F32 (FP16 weights)": 53,
        "F32": 12,
        "I8": 4,
    }


def _conv_ir(path: Path, weights: np.ndarray, *, fp16: bool) -> Path:
    x = ops.parameter([1, 3, 16, 16], np.float32, name="image")
    conv = ops.convolution(x, ops.constant(weights), [1, 1], [1, 1], [1, 1], [1, 1])
    model = ov.Model([ops.relu(conv)], [x], "conv")
    ov.save_model(model, str(path), compress_to_fp16=fp16)
    return path


def test_fp16_weights_at_f32_are_computed_in_f32(tmp_path: Path) -> None:
    """OpenVINO reports F16 for a convolution whose weights are stored in FP16 even at f32;
    the same (FP16-exact) weights stored as FP32 give bit-identical outputs: it computed in f32."""
    weights = np.random.default_rng(0).normal(size=(8, 3, 3, 3)).astype(np.float16)
    weights32 = weights.astype(np.float32)
    core = ov.Core()
    half = compile_model(
        core.read_model(_conv_ir(tmp_path / "f16.xml", weights32, fp16=True)), "CPU", "f32"
    )
    full = compile_model(
        core.read_model(_conv_ir(tmp_path / "f32.xml", weights32, fp16=False)), "CPU", "f32"
    )
    image = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    assert np.array_equal(half(image)[0], full(image)[0])
    reported = summarize_runtime(half)
    assert reported.inference_precision == "f32"
    assert [layer.precision for layer in reported.compute_layers] == ["F16"]
    profile = reported.to_json()
    assert profile["inference_precision"] == "f32"
    assert profile["by_computed_precision"]["F32 (FP16 weights)"] == 1
    assert "F16" not in profile["by_computed_precision"]
    assert sum(profile["by_computed_precision"].values()) == profile["layers"]
    stored32 = summarize_runtime(full).to_json()
    assert stored32["by_computed_precision"] == stored32["by_precision"]
    assert all(layer.precision == "F32" for layer in summarize_runtime(full).compute_layers)


def test_benchmark_settings_are_validated() -> None:
    with pytest.raises(SettingError, match="Hint 'FAST' is not one of"):
        BenchmarkSettings(hint="FAST").validate()  # type: ignore[arg-type]
    with pytest.raises(SettingError, match="Batch 0 is out of range"):
        BenchmarkSettings(batch=0).validate()
    with pytest.raises(SettingError, match=r"Duration 0\.1 is out of range: use 0\.5–3600 s"):
        BenchmarkSettings(duration_s=0.1).validate()
    with pytest.raises(SettingError, match="Streams 0 is out of range"):
        BenchmarkSettings(streams=0).validate()
    assert issubclass(SettingError, SegtuiError)
    BenchmarkSettings().validate()


def test_benchmark_settings_come_from_the_schema() -> None:
    settings = BenchmarkSettings()
    assert (settings.hint, settings.streams, settings.batch) == (Hint.THROUGHPUT, None, 1)
    assert (settings.duration_s, settings.precision) == (20.0, Precision.F32)
    assert HINTS == (Hint.THROUGHPUT, Hint.LATENCY)
    # Job params: checked and converted to the enums; names that are not settings are left out.
    params = {"hint": "latency", "batch": 2, "duration_s": 0.5, "precision": "default"}
    loaded = BenchmarkSettings.from_values(params | {"per_layer": False}, device="GPU")
    assert loaded == BenchmarkSettings(
        hint=Hint.LATENCY, batch=2, duration_s=0.5, precision=Precision.DEFAULT, device="GPU"
    )
    assert type(loaded.hint) is Hint and type(loaded.precision) is Precision
    assert loaded.job_params(per_layer=False) == {
        "hint": "LATENCY",
        "streams": None,
        "requests": None,
        "batch": 2,
        "duration_s": 0.5,
        "precision": "default",
        "per_layer": False,
    }
    with pytest.raises(SettingError, match="Batch 300 is out of range"):
        BenchmarkSettings.from_values({"batch": 300})


def test_sweep_settings_come_from_the_schema() -> None:
    settings = SweepSettings.from_values(
        {"batches": [1, 2], "streams": [1, 4], "duration_s": 1, "latency_limit_ms": 50.0}
    )
    assert settings == SweepSettings((1, 2), (1, 4), 1.0, Precision.DEFAULT)
    assert settings.cells == [(1, 1), (1, 4), (2, 1), (2, 4)]
    assert settings.job_params() == {
        "batches": [1, 2],
        "streams": [1, 4],
        "duration_s": 1.0,
        "precision": "default",
    }
    with pytest.raises(SettingError, match="lists a value twice"):
        SweepSettings.from_values({"streams": [2, 2]})
    with pytest.raises(SettingError, match=r"Seconds per cell 0\.1 is out of range"):
        SweepSettings(duration_s=0.1).validate()


def test_sweet_spot_is_the_best_throughput_under_the_limit() -> None:
    cells: list[SweepCell] = [
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
    # No limit: the best throughput overall.
    best = sweet_spot(cells, None)
    assert best is not None and best["streams"] == 4


def fake_cells(
    monkeypatch: pytest.MonkeyPatch, *, cores: int = 2, failing_batch: int = 0
) -> list[tuple[int, int]]:
    """Sweep cells without OpenVINO: the 'device' caps streams to `cores`, refuses a batch."""
    asked: list[tuple[int, int]] = []

    def fake_benchmark(
        subject: object,
        settings: BenchmarkSettings,
        *,
        per_layer: bool,
        progress: object,
        cancel: object,
    ) -> BenchmarkRun:
        asked.append((settings.batch, settings.streams or 0))
        if settings.batch == failing_batch:
            raise SegtuiError(f"This model cannot run with batch {settings.batch}: no reshape.")
        ran = min(settings.streams or 1, cores)
        return {**run("f32", 10.0 * ran, 5.0 * ran), "streams": ran, "batch": settings.batch}

    monkeypatch.setattr(performance, "_benchmark", fake_benchmark)
    monkeypatch.setattr(performance, "_subject", lambda ws, project_id: None)
    return asked


def test_sweep_cells_keep_the_configuration_asked_and_the_one_run(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = fake_cells(monkeypatch, cores=2, failing_batch=2)
    data = sweep_project(workspace, 1, SweepSettings((1, 2), (1, 2, 4), 0.5))
    assert asked == [(1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (2, 4)]
    cells = data["cells"]
    # 4 streams asked ran as 2: the cell stays 1 × 4, with what ran beside it.
    assert [(c["batch"], c["streams"], actual_streams(c)) for c in cells] == [
        (1, 1, 1),
        (1, 2, 2),
        (1, 4, 2),
        (2, 1, None),
        (2, 2, None),
        (2, 4, None),
    ]
    assert cells[2]["actual_batch"] == 1 and cells[2]["throughput_fps"] == 20.0
    assert [streams_text(c) for c in cells[:3]] == ["1", "2", "4 → 2"]
    assert cell_keys(cells) == ["1x1", "1x2", "1x4", "2x1", "2x2", "2x4"]
    assert "cannot run with batch 2" in cells[3].get("error", "")
    # The command line's table and notes say the same.
    assert sweep_rows(cells)[2] == ["1", "4 → 2", "20.00", "10.00"]
    assert sweep_rows(cells)[3] == ["2", "1", "failed", "-"]
    notes = sweep_notes(cells)
    assert notes[0] == "batch 1 × 4 streams ran with 2 streams (the device reduced it)"
    assert notes[1].startswith("batch 2 × 1 streams failed: This model cannot run with batch 2")
    assert len(notes) == 4


def test_cell_keys_of_an_older_sweep_with_repeated_configurations_are_unique() -> None:
    older: list[SweepCell] = [
        {"batch": 1, "streams": 2, "ok": True, "throughput_fps": 30.0, "latency_median_ms": 9.0},
        {"batch": 1, "streams": 2, "ok": True, "throughput_fps": 80.0, "latency_median_ms": 9.5},
        {"batch": 1, "streams": 2, "ok": False, "error": "x"},
    ]
    assert cell_keys(older) == ["1x2", "1x2#2", "1x2#3"]
    assert [streams_text(c) for c in older] == ["2", "2", "2"]


def test_a_sweep_whose_every_cell_failed_is_not_stored(
    workspace: Workspace,
    pair: tuple[ProjectRecord, ProjectRecord],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    parent, _ = pair
    previous = workspace.add_result(project_id=parent.id, kind="sweep", data={"cells": []})
    fake_cells(monkeypatch, failing_batch=2)
    job = workspace.add_job(
        kind=JobKind.SWEEP, project_id=parent.id, params={"batches": [2], "streams": [1, 2]}
    )
    context = JobContext(workspace, job, tmp_path, CancelToken())
    with pytest.raises(SegtuiError, match=r"Every cell of the sweep failed \(2 of 2\)") as info:
        sweep_job(context)
    assert "cannot run with batch 2" in info.value.message
    assert "previous sweep is kept" in info.value.hint
    assert [r.id for r in workspace.results(parent.id, "sweep")] == [previous.id]


def test_a_cancelled_sweep_stops_instead_of_failing_its_cells(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = CancelToken()
    asked = fake_cells(monkeypatch)
    real = performance._benchmark

    def cancelled_on_the_second(
        subject: object, settings: BenchmarkSettings, **kw: object
    ) -> BenchmarkRun:
        if len(asked) == 1:
            token.cancel()
            token.raise_if_cancelled()
        return real(subject, settings, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(performance, "_benchmark", cancelled_on_the_second)
    with pytest.raises(Cancelled):
        sweep_project(workspace, 1, SweepSettings((1,), (1, 2, 4), 0.5), cancel=token)
    assert asked == [(1, 1)]


def test_estimate_sweep_seconds() -> None:
    # 3 × 2 cells, each measuring 5 s plus ~2 s to compile and warm up.
    assert estimate_sweep_seconds(SweepSettings((1, 2, 4), (1, 2), 5.0)) == pytest.approx(42.0)


def test_compare_projects_ratios_from_stored_results(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = pair
    store(workspace, parent.id, run("f32", 10.0, 100.0, by_type={"Convolution": 80.0, "If": 20.0}))
    store(
        workspace,
        parent.id,
        run("bf16", 16.0, 62.5, requested="default", by_type={"Convolution": 50.0}),
    )
    # An older, slower child run is superseded by the newer one at the same precision.
    store(workspace, child.id, run("bf16", 20.0, 50.0))
    store(
        workspace,
        child.id,
        run("bf16", 30.0, 25.0, requested="default", by_type={"Convolution": 20.0, "If": 25.0}),
    )
    assert latest_benchmarks(workspace, child.id)["bf16"]["throughput_fps"] == 30.0
    assert requested_precisions(workspace, parent.id) == {"f32", "default"}

    comparison = compare_projects(workspace, child.id, parent.id)
    assert comparison["a_best"]["throughput_fps"] == 30.0
    # A has no f32 run: its best (bf16) run stands against B's f32 one, and says so.
    assert comparison["ratios_vs_b"]["f32"] == {
        "throughput_ratio": 3.0,
        "latency_ratio": 4.0,
        "a_precision": "bf16",
        "b_precision": "f32",
    }
    assert comparison["ratios_vs_b"]["bf16"] == {
        "throughput_ratio": 1.875,
        "latency_ratio": 2.5,
        "a_precision": "bf16",
        "b_precision": "bf16",
    }
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


def test_compare_pairs_runs_of_the_same_precision_not_a_best_run_with_an_f32_one(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    """Issue #16: "A vs B@f32 ×2.15" was A's bf16 run over B's f32 run; A's f32 run gives ×1.80."""
    parent, child = pair
    store(workspace, parent.id, run("f32", 100.0, 40.0))
    store(workspace, parent.id, run("bf16", 179.0, 22.0, requested="default"))
    store(workspace, child.id, run("f32", 180.0, 20.0))
    store(workspace, child.id, run("bf16", 215.0, 16.0, requested="default"))
    ratios = compare_projects(workspace, child.id, parent.id)["ratios_vs_b"]
    assert ratios["f32"] == {
        "throughput_ratio": 1.8,
        "latency_ratio": 2.0,
        "a_precision": "f32",
        "b_precision": "f32",
    }
    assert ratios["bf16"]["throughput_ratio"] == pytest.approx(215.0 / 179.0, abs=1e-4)
    assert ratios["bf16"]["a_precision"] == "bf16"


def test_compare_projects_without_a_benchmark_says_which(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = pair
    store(workspace, parent.id, run("f32", 10.0, 100.0))
    with pytest.raises(SegtuiError, match="Mask R-CNN INT8"):
        compare_projects(workspace, child.id, parent.id)


def test_layer_deltas_cover_types_on_either_side() -> None:
    a: RuntimeProfile = {"time_by_type_ms": {"Convolution": 1.0}}
    rows = layer_deltas(a, {"time_by_type_ms": {"MatMul": 2.0}})
    assert rows == [
        {"layer_type": "MatMul", "a_ms": 0.0, "b_ms": 2.0, "delta_ms": -2.0},
        {"layer_type": "Convolution", "a_ms": 1.0, "b_ms": 0.0, "delta_ms": 1.0},
    ]


def test_benchmark_job_stores_a_result(workspace: Workspace, conv_project: ProjectRecord) -> None:
    settings = BenchmarkSettings(hint=Hint.LATENCY, duration_s=0.5, precision=Precision.F32)
    params = settings.job_params(per_layer=True)
    job = jobs.submit(workspace, "benchmark", conv_project.id, dict(params))
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
    # The processor it ran on, with what "default" means there, is stored with the run.
    assert data["machine"] == machine_info("CPU").to_json()
    assert data["machine"]["name"] and data["machine"]["default_precision"] in ("bf16", "f32")
    # And the niceness it ran at (a job started from the TUI gives way to the TUI).
    assert data["niceness"] == max(os.nice(0), priority.requested_niceness())
    assert runtime["inference_precision"] == "f32"
    assert sum(runtime["by_computed_precision"].values()) == runtime["layers"]
    assert runtime["slowest"][0]["precision_label"] == precision_label(
        runtime["slowest"][0]["precision"], "f32"
    )


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_benchmark_sweep_and_compare(
    capsys: pytest.CaptureFixture[str],
    workspace: Workspace,
    pair: tuple[ProjectRecord, ProjectRecord],
) -> None:
    parent, child = pair
    ws = ["--workspace", str(workspace.root)]
    code, out, err = cli(
        capsys, "benchmark", str(parent.id), "--time", "0.5", "--hint", "latency", *ws, "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert (data["hint"], data["requested_precision"], data["batch"]) == ("LATENCY", "f32", 1)
    assert data["throughput_fps"] > 0 and data["model_id"] == parent.model_id
    assert data["result_id"] == latest_benchmarks(workspace, parent.id)["f32"]["result_id"]
    assert data["runtime"]["time_by_type_ms"]  # the per-layer profile is on by default

    code, out, err = cli(capsys, "benchmark", str(child.id), "--time", "0.5", "--no-per-layer", *ws)
    assert code == 0, err
    assert out.startswith(f"Project {child.id}: ") and " FPS, latency median " in out
    assert "CPU, f32, THROUGHPUT" in out
    assert f"\n  on {machine_info('CPU').summary}\n" in out
    assert "\n  layers computed in: " in out

    code, out, err = cli(capsys, "compare", str(child.id), *ws, "--json")
    assert code == 0, err
    compared = json.loads(out)
    assert (compared["a"]["project_id"], compared["b"]["project_id"]) == (child.id, parent.id)
    ratio = compared["ratios_vs_b"]["f32"]
    a_fps, b_fps = compared["a_best"]["throughput_fps"], compared["b_best"]["throughput_fps"]
    assert ratio["throughput_ratio"] == pytest.approx(a_fps / b_fps, abs=1e-4)

    code, out, err = cli(
        capsys,
        "sweep",
        str(parent.id),
        "--batch",
        "1",
        "--streams",
        "1,2",
        "--time",
        "0.5",
        "--latency-limit",
        "100000",
        *ws,
        "--json",
    )
    assert code == 0, err
    swept = json.loads(out)
    assert [(c["batch"], c["streams"], c["ok"]) for c in swept["cells"]] == [
        (1, 1, True),
        (1, 2, True),
    ]
    assert swept["settings"]["duration_s"] == 0.5 and swept["settings"]["precision"] == "default"
    best = max(swept["cells"], key=lambda c: c["throughput_fps"])
    assert swept["sweet_spot"]["streams"] == best["streams"]
    assert latest_sweep(workspace, parent.id) == {
        "cells": swept["cells"],
        "settings": swept["settings"],
        # The model's accuracy settings it ran with, once (core.settings_versions).
        "accuracy_settings_version": record_settings(workspace.model(parent.model_id)).version,
    }


def test_cli_sweep_refuses_too_many_cells(
    capsys: pytest.CaptureFixture[str],
    workspace: Workspace,
    pair: tuple[ProjectRecord, ProjectRecord],
) -> None:
    parent, _ = pair
    batches = ",".join(str(n) for n in range(1, 10))
    code, _, err = cli(
        capsys,
        "sweep",
        str(parent.id),
        "--batch",
        batches,
        "--streams",
        "1,2,3,4,5,6,7,8",
        "--workspace",
        str(workspace.root),
    )
    assert code == 1
    assert "72 cells is too many (at most 64)." in err
    assert workspace.jobs(parent.id) == []
