"""Where the time goes on the Performance and Compare screens, the project page's record of
the standalone quantizers, and the HTML comparison; profiles stored before the split."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, cast

from pilot_screens import opened, table_text, text_of
from split_profiles import FLATTEN_FQ, IDLE_FQ, child_run, parent_run
from test_ui_snapshots import BOTH, _tables_sized, fixed_machine
from textual.pilot import Pilot

from segtui.core.html_performance import comparison_html
from segtui.core.machine import MachineInfo
from segtui.core.optimize import OptimizationRecord
from segtui.core.performance import compare_projects
from segtui.core.standalone_fq_record import DROP_REASON, StandaloneQuantizersRecord
from segtui.core.workspace import ProjectRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.compare import CompareScreen
from segtui.ui.screens.performance import PerformanceScreen
from segtui.ui.screens.project_properties import model_properties
from segtui.ui.widgets.benchmark_tables import NO_SPLIT
from segtui.ui.widgets.table import SortableTable

SnapCompare = Callable[..., bool]


def _store(ws: Workspace, pair: tuple[ProjectRecord, ProjectRecord], split: bool) -> None:
    parent, child = pair
    ws.add_result(project_id=parent.id, kind="benchmark", data=parent_run(split))
    ws.add_result(project_id=child.id, kind="benchmark", data=child_run(split))


async def test_performance_shows_where_the_time_goes(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    _store(workspace, pair, split=True)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, PerformanceScreen(pair[1].id))
        assert text_of(screen, "#perf-split-summary") == (
            "Quantized compute is 40.0 % of the time (8.00 of 20.00 ms/image at bf16); "
            "INT8 cannot speed up the rest."
        )
        rows = table_text(screen.query_one("#perf-split", SortableTable))
        assert rows[0] == ["quantized compute", "8.000", "40.0 %"]
        assert rows[2] == ["geometry", "5.000", "25.0 %"]
        assert [row[0] for row in rows][3:] == [
            "standalone quantizers",
            "layout conversions",
            "other",
        ]
        assert text_of(screen, "#perf-quantizers-summary") == (
            "2 quantizers run as layers of their own: 1.00 ms (5.0 %); 1 feeds no INT8 compute"
        )
        quantizers = table_text(screen.query_one("#perf-quantizers", SortableTable))
        assert quantizers == [
            [FLATTEN_FQ, "0.800", "4.0 %", "yes"],
            [IDLE_FQ, "0.200", "1.0 %", "no"],
        ]

        parent = await opened(pilot, PerformanceScreen(pair[0].id))
        assert text_of(parent, "#perf-split-summary").startswith(
            "No compute runs in INT8 (40.00 ms/image at f32)"
        )
        assert table_text(parent.query_one("#perf-split", SortableTable))[1] == [
            "float compute",
            "28.000",
            "70.0 %",
        ]
        assert not parent.query_one("#perf-quantizers", SortableTable).display


async def test_profiles_stored_before_the_split_still_show(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    _store(workspace, pair, split=False)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, PerformanceScreen(pair[1].id))
        assert text_of(screen, "#perf-split-summary") == NO_SPLIT
        assert not screen.query_one("#perf-split", SortableTable).display
        assert text_of(screen, "#perf-quantizers-summary") == ""
        by_type = table_text(screen.query_one("#perf-by-type", SortableTable))
        assert by_type[0][:2] == ["Convolution", "484.000"]

        compare = await opened(pilot, CompareScreen(pair[1].id, pair[0].id))
        assert text_of(compare, "#compare-split-note") == (
            "No time split in these runs: benchmark both again to see where the time goes."
        )
        assert not compare.query_one("#compare-split", SortableTable).display
        deltas = table_text(compare.query_one("#compare-deltas", SortableTable))
        assert deltas[0][0] == "Convolution"


async def test_compare_sets_the_split_side_by_side(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    _store(workspace, pair, split=True)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, CompareScreen(pair[1].id, pair[0].id))
        rows = table_text(screen.query_one("#compare-split", SortableTable))
        assert rows[0] == ["quantized compute", "0.000", "0.0 %", "8.000", "40.0 %"]
        assert rows[1] == ["float compute", "28.000", "70.0 %", "0.500", "2.5 %"]
        assert text_of(screen, "#compare-split-note") == (
            "A at bf16 vs B at f32.\n"
            "A: 2 quantizers run as layers of their own: 1.00 ms (5.0 %); 1 feeds no INT8 "
            "compute."
        )


def test_html_comparison_has_the_split(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    _store(workspace, pair, split=True)
    html = comparison_html(compare_projects(workspace, pair[1].id, pair[0].id))
    table = html[html.index('<table id="split-table">') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr") == 7  # the header and a row per category
    assert "quantized compute" in table and "40.0 %" in table and "70.0 %" in table


def test_html_comparison_without_the_split(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    _store(workspace, pair, split=False)
    html = comparison_html(compare_projects(workspace, pair[1].id, pair[0].id))
    assert "split-table" not in html and "Where the time goes" in html


STANDALONE: StandaloneQuantizersRecord = {
    "found": 3,
    "dropped": [
        {"name": IDLE_FQ, "layer": IDLE_FQ, "reason": DROP_REASON, "consumers": ["mask_head/add"]}
    ],
    "kept": [FLATTEN_FQ, "rpn/conv/fq_input_0"],
    "restored": [],
    "int8_compute_before": 53,
    "int8_compute_after": 53,
}


def test_project_page_lists_what_was_dropped(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    model = workspace.model(pair[1].model_id)
    record = cast(
        OptimizationRecord,
        {
            "method": "default",
            "drop_standalone_quantizers": True,
            "standalone_quantizers": STANDALONE,
        },
    )
    rows = dict(model_properties(dataclasses.replace(model, optimization=record)))
    assert rows["Standalone quantizers"] == (
        f"3 found: 1 dropped (fed no INT8 compute: {IDLE_FQ}), 2 kept (feed INT8 compute)"
    )
    assert rows["Drop standalone quantizers"] == "True"
    # A record from before: no such rows, and nothing fails.
    old = cast(OptimizationRecord, {"method": "default", "preset": "performance"})
    assert "Standalone quantizers" not in dict(
        model_properties(dataclasses.replace(model, optimization=old))
    )


@BOTH
def test_split_snapshot(
    snap_compare: SnapCompare,
    workspace: Workspace,
    pair: tuple[ProjectRecord, ProjectRecord],
    fixed_machine: MachineInfo,
    size: tuple[int, int],
) -> None:
    """The child's Performance screen on its first tab: the split and the quantizers."""
    _store(workspace, pair, split=True)

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(PerformanceScreen(pair[1].id))
        await _tables_sized(pilot)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


__all__ = ["fixed_machine"]  # a fixture of test_ui_snapshots, used above
