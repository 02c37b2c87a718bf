"""Performance, Compare and Inference-configuration screens, driven with keys (and one snapshot)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any, cast

import pytest
from conftest import sweep_cell
from pilot_screens import opened, table_text, text_of
from pilot_wait import settle
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input, Select
from textual.widgets.data_table import ColumnKey

from segtui.core import settings
from segtui.core.benchmark import BenchmarkRun, BenchmarkSettings
from segtui.core.errors import SegtuiError
from segtui.core.machine import MachineInfo
from segtui.core.performance import SweepData
from segtui.core.runtime_graph import RuntimeProfile
from segtui.core.settings import BENCHMARK, SWEEP
from segtui.core.types import Hint, Precision
from segtui.core.workspace import ProjectRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens import compare as compare_screen
from segtui.ui.screens import configs as configs_screen
from segtui.ui.screens import performance as performance_screen
from segtui.ui.screens.compare import CompareScreen
from segtui.ui.screens.configs import ConfigsScreen
from segtui.ui.screens.performance import PerformanceScreen
from segtui.ui.widgets.benchmark_tables import header_tags, run_settings_text
from segtui.ui.widgets.job_monitor import JobMonitor
from segtui.ui.widgets.table import Row, SortableTable, num, txt

SnapCompare = Callable[..., bool]


def runtime(by_type: dict[str, float], by_precision: dict[str, int], int8: bool) -> RuntimeProfile:
    """A per-layer profile as core.runtime_graph.profile_json stores it (hand-made numbers)."""
    total = sum(by_type.values())
    compute = by_type.get("Convolution", 0.0) + by_type.get("MatMul", 0.0)
    time_by_precision = {
        "I8" if int8 else "FP32": compute,
        "FP32" if int8 else "I32": total - compute,
    }
    return {
        "layers": sum(by_precision.values()),
        "by_precision": by_precision,
        "compute_layers": 10,
        "compute_int8": 8 if int8 else 0,
        "compute_int8_share": 0.8 if int8 else 0.0,
        "compute_float": ["roi_heads/mask_predictor", "rpn/head"] if int8 else [],
        "total_ms": total,
        "time_by_type_ms": by_type,
        "time_by_precision_ms": time_by_precision,
        "compute_share": round(compute / total, 4),
        "non_compute_share": round(1 - compute / total, 4),
        "slowest": [
            {
                "name": name,
                "type": name,
                "precision": "FP32",
                "ms": ms,
                "share": round(ms / total, 4),
                "original": ["rpn/head"] if name == "Convolution" else [],
            }
            for name, ms in by_type.items()
        ],
    }


def bench(
    precision: str, fps: float, latency: float, requested: str, rt: RuntimeProfile
) -> dict[str, object]:
    """A stored benchmark (hand-made numbers), as the database takes it."""
    run: BenchmarkRun = {
        "throughput_fps": fps,
        "latency_median_ms": latency,
        "latency_avg_ms": latency + 1.0,
        "latency_min_ms": latency - 2.0,
        "latency_max_ms": latency + 10.0,
        "iterations": 200,
        "wall_s": 20.0,
        "device": "CPU",
        "hint": "THROUGHPUT",
        "streams": 4,
        "requests": 4,
        "batch": 1,
        "duration_s": 20.0,
        "precision": precision,
        "requested_precision": requested,
        "images": 3,
        "runtime": rt,
        "model_id": 1,
        "int8": rt["compute_int8"] > 0,
    }
    return dict(run)


PARENT_RT = runtime(
    {"Convolution": 1773.0, "If": 329.0, "Eltwise": 40.0}, {"FP32": 120, "I32": 4}, False
)
CHILD_RT = runtime(
    {"Convolution": 484.0, "If": 419.0, "Eltwise": 30.0}, {"I8": 80, "U8": 10, "FP32": 34}, True
)


@pytest.fixture
def measured(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> tuple[ProjectRecord, ProjectRecord]:
    """The pair with fixed stored benchmarks: parent at f32 and bf16, child at bf16."""
    parent, child = pair
    workspace.add_result(
        project_id=parent.id, kind="benchmark", data=bench("f32", 4.0, 250.0, "f32", PARENT_RT)
    )
    workspace.add_result(
        project_id=parent.id, kind="benchmark", data=bench("bf16", 8.0, 125.0, "default", PARENT_RT)
    )
    workspace.add_result(
        project_id=child.id, kind="benchmark", data=bench("bf16", 11.08, 90.0, "default", CHILD_RT)
    )
    return parent, child


async def test_compare_shows_both_throughputs_and_the_ratios(
    workspace: Workspace, measured: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = measured
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, CompareScreen(child.id, parent.id))
        figures = table_text(screen.query_one("#compare-figures", SortableTable))
        assert figures[0] == ["Throughput FPS", "11.08", "4.00", "8.00"]
        assert figures[1] == ["Latency median ms", "90.00", "250.00", "125.00"]
        headers = [
            str(c.label)
            for c in screen.query_one("#compare-figures", SortableTable).ordered_columns
        ]
        assert headers[1:] == ["A at bf16", "B at f32", "B at bf16"]
        ratio = text_of(screen, "#compare-ratio")
        assert "11.08 FPS at bf16" in ratio
        assert "vs B at f32 (true FP32): 2.77× throughput · latency B/A 2.78×" in ratio
        assert "vs B at bf16 (default): 1.39× throughput · latency B/A 1.39×" in ratio
        precisions = table_text(screen.query_one("#compare-precisions", SortableTable))
        assert ["I8", "80", "484.000", "-", "-"] in precisions
        deltas = table_text(screen.query_one("#compare-deltas", SortableTable))
        assert deltas[0] == ["Convolution", "1,773.000", "484.000", "-1,289.000", "3.66×"]
        assert ["If", "329.000", "419.000", "90.000", "0.79×"] in deltas

        await pilot.press("x")
        await settle(pilot)
        assert (screen.a_project_id, screen.b_project_id) == (parent.id, child.id)
        ratio = text_of(screen, "#compare-ratio")
        assert "8.00 FPS at bf16" in ratio
        assert "0.72× throughput" in ratio


XEON = MachineInfo(
    device="CPU",
    name="Intel(R) Xeon(R) Processor",
    capabilities=("BF16", "FP32", "INT8"),
    cpu_features=("AMX-BF16", "AMX-INT8", "AVX2"),
    default_precision="bf16",
)
#: A parent stored with FP16 weights, measured at f32: OpenVINO reports its convolutions F16.
FP16_WEIGHTS_RT = runtime({"Convolution": 1773.0, "If": 329.0}, {"F16": 53, "F32": 12}, False)
FP16_WEIGHTS_RT["time_by_precision_ms"] = {"F16": 1773.0, "F32": 329.0}
FP16_WEIGHTS_RT["slowest"][0]["precision"] = "F16"


async def test_compare_and_performance_say_what_was_computed_and_where(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = pair
    b_run = bench("f32", 4.0, 250.0, "f32", FP16_WEIGHTS_RT) | {"machine": XEON.to_json()}
    a_run = bench("bf16", 11.0, 90.0, "default", CHILD_RT) | {"machine": XEON.to_json()}
    workspace.add_result(project_id=parent.id, kind="benchmark", data=b_run)
    workspace.add_result(project_id=child.id, kind="benchmark", data=a_run)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, CompareScreen(child.id, parent.id))
        precisions = table_text(screen.query_one("#compare-precisions", SortableTable))
        # B ran at f32: its F16-reported layers computed in F32, their weights stored in FP16.
        assert ["F32 (FP16 weights)", "-", "-", "53", "1,773.000"] in precisions
        assert ["F32", "-", "-", "12", "329.000"] in precisions
        assert not any(row[0] == "F16" for row in precisions)
        columns = screen.query_one("#compare-precisions", SortableTable).ordered_columns
        assert str(columns[0].label) == "Computed in"
        ratio = text_of(screen, "#compare-ratio")
        assert "Both measured on Intel(R) Xeon(R) Processor (AMX BF16/INT8, AVX2)." in ratio

        perf = await opened(pilot, PerformanceScreen(parent.id))
        by_precision = table_text(perf.query_one("#perf-by-precision", SortableTable))
        assert [r[:2] for r in by_precision] == [["F32 (FP16 weights)", "53"], ["F32", "12"]]
        slowest = table_text(perf.query_one("#perf-slowest", SortableTable))
        assert slowest[0][:3] == ["Convolution", "Convolution", "F32 (FP16 weights)"]
        assert text_of(perf, "#perf-run").endswith(
            "(asked f32) on Intel(R) Xeon(R) Processor (AMX BF16/INT8, AVX2)"
        )


def test_headers_never_repeat_a_tag_the_name_says(
    pair: tuple[ProjectRecord, ProjectRecord],
) -> None:
    _, child = pair
    named = dataclasses.replace(child, name="Mask R-CNN · INT8")
    page = performance_screen.PerformancePage(named, True, {}, frozenset(), None, None)
    assert performance_screen.title_text(page).plain == f"#{child.id} Mask R-CNN · INT8 · CPU"
    assert header_tags("Mask R-CNN · INT8 AA", "INT8", "CPU") == " · CPU"
    assert header_tags("Mask R-CNN", "FP", "CPU") == " · FP · CPU"
    side = compare_screen.Side(named, True, {})
    assert compare_screen.side_text("A", side).plain == f"A: #{child.id} Mask R-CNN · INT8 · CPU"
    # A run stored before the processor was kept says nothing of one.
    old = cast(BenchmarkRun, bench("f32", 4.0, 250.0, "f32", PARENT_RT))
    assert "machine" not in old
    assert run_settings_text(old) == "THROUGHPUT, 4 streams × 4 requests, batch 1, 20 s (asked f32)"


async def test_compare_says_which_side_needs_a_benchmark(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = pair
    workspace.add_result(
        project_id=parent.id, kind="benchmark", data=bench("f32", 4.0, 250.0, "f32", PARENT_RT)
    )
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(CompareScreen(child.id, parent.id))
        await settle(pilot)
        screen = app.screen
        message = text_of(screen, "#compare-missing")
        assert "No benchmark yet for A: press a to run one." in message
        assert "for B" not in message
        assert not screen.query_one("#compare-body").display


async def test_performance_screen_tables_and_sorting(
    workspace: Workspace, measured: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = measured
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, PerformanceScreen(child.id))
        results = table_text(screen.query_one("#perf-results", SortableTable))
        assert results == [
            [
                "bf16",
                "11.08",
                "90.00",
                "91.00",
                "88.00",
                "100.00",
                "4",
                "4",
                "1",
                "THROUGHPUT",
                "20.0",
            ]
        ]
        ceiling = text_of(screen, "#perf-ceiling")
        # (419 + 30) / 933 ms is outside Convolution/MatMul.
        assert "Quantization cannot touch 48.1 % of the time" in ceiling
        assert "at bf16" in ceiling
        by_type = screen.query_one("#perf-by-type", SortableTable)
        assert [r[0] for r in table_text(by_type)] == ["Convolution", "If", "Eltwise"]
        by_type.focus()
        await pilot.press("right", "s")  # sort by time: largest first
        assert [r[0] for r in table_text(by_type)] == ["Convolution", "If", "Eltwise"]
        await pilot.press("s")  # again: smallest first
        assert [r[0] for r in table_text(by_type)] == ["Eltwise", "If", "Convolution"]
        assert str(by_type.ordered_columns[1].label) == "Time ms ▲"
        await pilot.press("left", "s")  # by name, A–Z
        assert [r[0] for r in table_text(by_type)] == ["Convolution", "Eltwise", "If"]
        await pilot.click(by_type, offset=(3, 0))  # a header click: the same column, reversed
        await pilot.pause()
        assert [r[0] for r in table_text(by_type)] == ["If", "Eltwise", "Convolution"]
        assert by_type.sorted_by == ("type", True)
        floats = table_text(screen.query_one("#perf-float", SortableTable))
        assert floats == [
            ["roi_heads/mask_predictor", "-", "-", "-"],
            ["rpn/head", "Convolution", "FP32", "484.000"],
        ]
        assert "2 of 10 compute layers stayed in floating point" in text_of(
            screen, "#perf-float-summary"
        )

        await pilot.press("ctrl+p")  # every key is also a command
        await pilot.press(*"Compare")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen

        await pilot.press("v")  # compare with the parent
        await pilot.pause()
        compared = app.screen
        assert isinstance(compared, CompareScreen)
        assert (compared.a_project_id, compared.b_project_id) == (child.id, parent.id)


async def test_performance_screen_shows_the_run_under_the_cursor(
    workspace: Workspace, measured: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, _ = measured
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, PerformanceScreen(parent.id))
        assert "best 8.00 FPS, 125.00 ms median, at bf16" in text_of(screen, "#perf-title")
        assert text_of(screen, "#perf-run").startswith("f32 run: THROUGHPUT, 4 streams")
        # Both baselines measured: no reminder to measure the other one.
        assert not screen.query_one("#perf-baseline").display
        await pilot.press("down")
        await pilot.pause()
        assert screen.selected_precision == "bf16"
        assert text_of(screen, "#perf-run").startswith("bf16 run:")
        assert "ms/image at bf16" in text_of(screen, "#perf-ceiling")


async def test_benchmark_key_runs_a_job_and_refreshes(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, _ = pair
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, PerformanceScreen(parent.id))
        assert "Not benchmarked yet" in text_of(screen, "#perf-empty")
        screen.query_one("#perf-duration", Input).value = "0.5"
        screen.query_one("#perf-results", SortableTable).focus()
        await pilot.press("b")
        await settle(pilot)
        assert screen.query(JobMonitor)
        for _ in range(300):
            await pilot.pause(0.1)
            if screen.runs:
                break
        assert list(screen.runs) == ["f32"]
        job = workspace.jobs(parent.id)[-1]
        assert job.kind == "benchmark" and job.state == "done"
        assert job.params["precision"] == "f32" and job.params["duration_s"] == 0.5
        assert table_text(screen.query_one("#perf-results", SortableTable))[0][0] == "f32"


STORED_SWEEP: SweepData = {
    "cells": [
        sweep_cell(1, 1, 5.0, 200.0),
        sweep_cell(1, 2, 8.0, 240.0),
        sweep_cell(1, 4, 9.5, 410.0),
        {"batch": 2, "streams": 1, "ok": False, "error": "This model cannot run with batch 2."},
    ],
    "settings": BenchmarkSettings(duration_s=5.0, precision=Precision.DEFAULT).to_json(),
}


async def test_configs_screen_estimate_and_sweet_spot(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, _ = pair
    workspace.add_result(project_id=parent.id, kind="sweep", data=dict(STORED_SWEEP))
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, ConfigsScreen(parent.id))
        # Stored results are shown at once; with no threshold the sweet spot is the fastest.
        table = screen.query_one("#configs-table", SortableTable)
        rows = table_text(table)
        assert rows[2] == ["★ 1", "4", "9.50", "410.00"]
        assert rows[3] == ["2", "1", "failed", "failed"]
        assert str(table.ordered_columns[2].label) == "FPS at bf16"
        assert "1 cell(s) failed: This model cannot run with batch 2." in text_of(
            screen, "#configs-sweet"
        )

        screen.query_one("#configs-limit", Input).focus()
        await pilot.press(*"250")
        await pilot.pause()
        sweet = text_of(screen, "#configs-sweet")
        assert "Sweet spot under 250 ms: batch 1 × 2 streams → 8.00 FPS at bf16" in sweet
        assert table_text(table)[1][0] == "★ 1"
        assert table.cursor_row == 1

        screen.query_one("#configs-limit", Input).value = "100"
        await pilot.pause()
        assert "No configuration has a median latency under 100 ms" in text_of(
            screen, "#configs-sweet"
        )

        # The form starts at the schema's defaults: 1 × 2 cells × (5 s + 2 s).
        assert [screen.query_one(f"#configs-{name}", Input).value for name in FORM] == [
            "1",
            "1,2",
            "5",
        ]
        assert "Estimated time: 14 s (2 cells" in text_of(screen, "#configs-estimate")
        # The estimate follows the fields: 2 × 3 cells × (5 s + 2 s).
        screen.query_one("#configs-batches", Input).value = "1,2"
        screen.query_one("#configs-streams", Input).value = "1,2,4"
        await pilot.pause()
        assert "Estimated time: 42 s (6 cells" in text_of(screen, "#configs-estimate")
        screen.query_one("#configs-streams", Input).value = "1,x"
        await pilot.pause()
        # The schema's own message.
        assert "✗ Streams must be whole numbers separated by commas (got '1,x')." in text_of(
            screen, "#configs-estimate"
        )
        screen.query_one("#configs-streams", Input).value = "1,300"
        await pilot.pause()
        assert "Streams 300 is out of range: use 1–256." in text_of(screen, "#configs-estimate")


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield SortableTable()


async def test_sortable_table_sorts_with_missing_values_last_and_keeps_the_sort() -> None:
    rows: list[Row] = [
        ("a", (txt("a"), num(2.0, 0))),
        ("b", (txt("b"), num(None))),
        ("c", (txt("C"), num(5.0, 0))),
        ("d", (txt(None), num(3.0, 0))),
    ]
    app = TableApp()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(SortableTable)
        table.set_columns([("name", "Name"), ("time", "Time")])
        table.set_rows(rows)
        assert table.row_keys == ["a", "b", "c", "d"]
        table.sort_by("time")  # numbers: largest first, the missing one still last
        assert table.row_keys == ["c", "d", "a", "b"]
        assert table.sorted_by == ("time", True)
        await pilot.pause()
        time_column = table.columns[ColumnKey("time")]
        assert str(time_column.label) == "Time ▼"
        # The column widened to its header with the arrow (its cells are one character).
        assert time_column.content_width == len("Time ▼")
        table.sort_by("time")
        assert table.row_keys == ["a", "d", "c", "b"]
        assert str(time_column.label) == "Time ▲"
        table.sort_by("name")  # text: A–Z without case, the missing one last
        assert table.row_keys == ["a", "b", "c", "d"]
        assert [str(c.label) for c in table.ordered_columns] == ["Name ▲", "Time"]
        table.sort_by("name")
        assert table.row_keys == ["c", "b", "a", "d"]
        # New rows keep the sort and the arrow.
        table.set_rows([*rows[::-1], ("e", (txt("e"), num(1.0, 0)))])
        assert table.row_keys == ["e", "c", "b", "a", "d"]
        assert [str(c.label) for c in table.ordered_columns] == ["Name ▼", "Time"]
        # Columns without the sorted one drop the sort.
        table.set_columns([("time", "Time")])
        table.set_rows([(key, cells[1:]) for key, cells in rows])
        assert table.sorted_by is None
        assert table.row_keys == ["a", "b", "c", "d"]


FORM = ("batches", "streams", "seconds")


async def test_forms_follow_the_settings_schemas(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A default or range changed in the core schema is what the forms show and check."""
    parent, _ = pair
    monkeypatch.setattr(
        settings.BenchmarkSchema,
        "duration_s",
        dataclasses.replace(BENCHMARK.duration_s, default=7.5, maximum=9.0),
    )
    monkeypatch.setattr(
        settings.SweepSchema, "streams", dataclasses.replace(SWEEP.streams, default=(1, 2, 4))
    )
    monkeypatch.setattr(
        settings.BenchmarkSchema,
        "hint",
        dataclasses.replace(BENCHMARK.hint, default=Hint.LATENCY),
    )
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, PerformanceScreen(parent.id))
        duration = screen.query_one("#perf-duration", Input)
        assert duration.value == "7.5"
        assert screen.query_one("#perf-hint", Select).value == "LATENCY"
        assert screen.query_one("#perf-streams", Input).value == "auto"
        assert screen.settings_from_form() == BenchmarkSettings(hint=Hint.LATENCY, duration_s=7.5)
        duration.value = "10"
        await pilot.pause()
        assert duration.has_class("-invalid")
        assert duration.tooltip == "Duration 10 is out of range: use 0.5–9 s."
        with pytest.raises(SegtuiError, match="Duration 10 is out of range"):
            screen.settings_from_form()
        # b refuses to start a job with the schema's message; nothing is queued.
        screen.query_one("#perf-results", SortableTable).focus()
        await pilot.press("b")
        await pilot.pause()
        assert workspace.jobs(parent.id) == []
        duration.value = "2"
        await pilot.pause()
        assert not duration.has_class("-invalid")

        await app.push_screen(ConfigsScreen(parent.id))
        await settle(pilot)
        assert app.screen.query_one("#configs-streams", Input).value == "1,2,4"
        assert "Estimated time: 21 s (3 cells" in text_of(app.screen, "#configs-estimate")


async def test_the_screens_read_in_threads_and_say_loading_meanwhile(
    workspace: Workspace,
    measured: tuple[ProjectRecord, ProjectRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The event loop draws "Loading…" while a read is held in its thread, then the figures."""
    parent, child = measured
    workspace.add_result(project_id=parent.id, kind="sweep", data=dict(STORED_SWEEP))
    release = threading.Event()
    readers: list[int] = []

    def held(read: Callable[[Workspace, int], Any]) -> Callable[[Workspace, int], Any]:
        def held_read(ws: Workspace, project_id: int) -> Any:
            readers.append(threading.get_ident())
            release.wait(10)
            return read(ws, project_id)

        return held_read

    for module, name in (
        (performance_screen, "latest_benchmarks"),
        (compare_screen, "latest_benchmarks"),
        (configs_screen, "latest_sweep"),
    ):
        monkeypatch.setattr(module, name, held(getattr(module, name)))
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        try:
            await app.push_screen(PerformanceScreen(child.id))
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, PerformanceScreen)
            assert text_of(screen, "#perf-empty") == "Loading the benchmarks…"
            assert not screen.query_one("#perf-results").display and screen.runs == {}
            release.set()
            await settle(pilot)
            assert list(screen.runs) == ["bf16"] and not screen.query_one("#perf-empty").display

            release.clear()
            await app.push_screen(CompareScreen(child.id, parent.id))
            await pilot.pause()
            compare = app.screen
            assert text_of(compare, "#compare-missing") == "Loading the benchmarks…"
            assert not compare.query_one("#compare-body").display
            release.set()
            await settle(pilot)
            assert compare.query_one("#compare-body").display
            assert "11.08 FPS at bf16" in text_of(compare, "#compare-ratio")

            release.clear()
            await app.push_screen(ConfigsScreen(parent.id))
            await pilot.pause()
            configs = app.screen
            assert text_of(configs, "#configs-sweet") == "Loading the stored sweep…"
            release.set()
            await settle(pilot)
            assert "1 cell(s) failed" in text_of(configs, "#configs-sweet")
        finally:
            release.set()
    # Performance (opened, then back on top twice), Compare (both sides), Configs.
    assert len(readers) >= 4
    assert threading.get_ident() not in readers


def test_compare_snapshot(
    snap_compare: SnapCompare, workspace: Workspace, measured: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = measured

    async def open_compare(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(CompareScreen(child.id, parent.id))
        await settle(pilot)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, terminal_size=(120, 36), run_before=open_compare)
