"""Layout at 80×24 and 120×36: what matters lies on the screen, and what is below is reached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pilot_wait import settle, until
from test_ui_performance import measured
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import DataTable, Static
from tiny_models import build_omz_maskrcnn

from segtui.core.projects import create_project_from_paths
from segtui.core.records import ProjectRecord
from segtui.core.workspace import Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.compare import CompareScreen
from segtui.ui.screens.optimize import OptimizeScreen
from segtui.ui.screens.project import ProjectScreen
from segtui.ui.screens.start import StartScreen

__all__ = ["measured"]  # a fixture: stored benchmarks for Compare

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])


@pytest.fixture
def project(workspace: Workspace, image_folder: Path, tmp_path: Path) -> ProjectRecord:
    model_path = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    return create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="Tiny Mask R-CNN"
    )


def on_screen(widget: Widget, size: tuple[int, int]) -> bool:
    """The widget is shown, not empty, and entirely inside the terminal."""
    region = widget.region
    return region.area > 0 and Region(0, 0, *size).contains_region(region)


def visible_columns(table: DataTable[Any]) -> list[str]:
    """The labels of the columns that fit in the table's width without scrolling."""
    shown, x = [], 0
    for column in table.ordered_columns:
        x += column.get_render_width(table)
        if x <= table.scrollable_content_region.width:
            shown.append(column.label.plain)
    return shown


@SIZES
async def test_projects_list_shows_id_name_and_status(
    workspace: Workspace, project: ProjectRecord, size: tuple[int, int]
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=size) as pilot:
        screen = app.screen
        assert isinstance(screen, StartScreen)
        await until(pilot, lambda: screen.loaded)
        await pilot.pause()
        table = screen.query_one("#projects", DataTable)
        assert on_screen(table, size)
        shown = visible_columns(table)
        assert {"ID", "Name", "Status"} <= set(shown), shown
        assert table.max_scroll_x == 0  # nothing cut off to the right


@SIZES
async def test_project_page_leaves_the_tabs_room(
    workspace: Workspace, project: ProjectRecord, size: tuple[int, int]
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=size) as pilot:
        app.show_project(project.id)
        await until(
            pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen.page is not None
        )
        await settle(pilot)
        screen = app.screen
        for selector in ("#project-header", "#tabs", "#model-info", "#cell-status"):
            assert on_screen(screen.query_one(selector), size), selector
        header = screen.query_one("#project-header").region.height
        rows = screen.query_one("#model-info").region.height
        # The tabs' content keeps more than half the screen, even with the processor line.
        assert rows >= size[1] // 2, (header, rows)
        assert header <= (6 if size[1] < 30 else 10), header
        assert screen.query_one("#project-title").display == (size[1] >= 30)


async def test_compare_per_layer_table_reached_with_page_down_and_end(
    workspace: Workspace, measured: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = measured
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(CompareScreen(child.id, parent.id))
        await settle(pilot)
        screen = app.screen
        body = screen.query_one("#compare-body", VerticalScroll)
        deltas = screen.query_one("#compare-deltas", DataTable)
        assert not body.region.contains_region(deltas.region)  # below the fold at first
        assert isinstance(app.focused, DataTable)  # the figures: a table has the keys
        for _ in range(3):
            await pilot.press("pagedown")
        await pilot.pause()
        assert body.scroll_y == body.max_scroll_y > 0
        assert body.region.contains_region(deltas.region)
        await pilot.press("home")
        await pilot.pause()
        assert body.scroll_y == 0
        await pilot.press("end")
        await pilot.pause()
        assert body.region.contains_region(deltas.region)


@SIZES
async def test_ignored_scope_shows_the_whole_layer_name(
    workspace: Workspace, project: ProjectRecord, size: tuple[int, int]
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=size) as pilot:
        app.show_project(project.id)
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OptimizeScreen)
        await until(pilot, lambda: screen.scope is not None)
        await settle(pilot)
        table = screen.query_one("#scope-table", DataTable)
        assert table.row_count > 1
        table.move_cursor(row=table.row_count - 1)
        await pilot.pause()
        name = str(table.get_row_at(table.row_count - 1)[0])
        shown = screen.query_one("#scope-name", Static)
        assert str(shown.render()) == name
        assert shown.region.width <= size[0]


def test_the_benchmark_results_leave_out_low_value_columns_when_narrow() -> None:
    """At 80 columns Min/Max/Avg ms and Requests go first; FPS, latency, hint, seconds stay."""
    from segtui.ui.widgets.benchmark_tables import RESULT_COLUMNS, result_columns, result_rows

    assert result_columns(140) == RESULT_COLUMNS
    assert result_columns(120) == RESULT_COLUMNS
    narrow = [key for key, _label in result_columns(80)]
    assert narrow == ["precision", "fps", "median", "streams", "batch", "hint", "duration"]
    run = {
        "throughput_fps": 8.0,
        "latency_median_ms": 125.0,
        "latency_avg_ms": 126.0,
        "latency_min_ms": 120.0,
        "latency_max_ms": 130.0,
        "streams": 2,
        "requests": 4,
        "batch": 1,
        "hint": "THROUGHPUT",
        "duration_s": 20.0,
    }
    [(key, cells)] = result_rows({"f32": run}, result_columns(80))  # type: ignore[dict-item]
    assert key == "f32" and [str(c.text) for c in cells] == [
        "f32",
        "8.00",
        "125.00",
        "2",
        "1",
        "THROUGHPUT",
        "20.0",
    ]
