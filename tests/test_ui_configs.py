"""Explore configurations (Configs) on stored sweeps: what was asked, what ran, never a crash."""

from __future__ import annotations

from conftest import sweep_cell
from pilot_screens import opened, table_text, text_of
from pilot_wait import settle

from segtui.core.benchmark import BenchmarkSettings
from segtui.core.performance import SweepCell, SweepData
from segtui.core.types import Precision
from segtui.core.workspace import ProjectRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.configs import ConfigsScreen
from segtui.ui.widgets.table import SortableTable


def ran_cell(batch: int, asked: int, ran: int, fps: float, latency: float) -> SweepCell:
    """A cell as sweeps store it now: the streams asked for, and the streams the device ran.

    (`sweep_cell` is one as older sweeps stored it: `streams` is what the device ran.)
    """
    return {**sweep_cell(batch, asked, fps, latency), "actual_batch": batch, "actual_streams": ran}


#: A sweep from before the requested configuration was kept, on a 2-core CPU: 1 × 4 ran
#: as 1 × 2 and was stored as 1 × 2, so two cells share a configuration.
OLD_DUPLICATE_SWEEP: SweepData = {
    "cells": [
        sweep_cell(1, 1, 42.9, 23.0),
        sweep_cell(1, 2, 30.7, 60.0),
        sweep_cell(1, 2, 84.7, 23.5),
    ],
    "settings": BenchmarkSettings(duration_s=0.5, precision=Precision.DEFAULT).to_json(),
}


async def test_configs_opens_a_stored_sweep_whose_cells_repeat_a_configuration(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    """Older sweeps can hold two cells with the same actual batch × streams: no DuplicateKey."""
    parent, child = pair
    workspace.add_result(project_id=parent.id, kind="sweep", data=dict(OLD_DUPLICATE_SWEEP))
    capped: SweepData = {
        "cells": [
            ran_cell(1, 1, 1, 42.9, 23.0),
            ran_cell(1, 2, 2, 30.7, 60.0),
            ran_cell(1, 4, 2, 84.7, 23.5),
        ],
        "settings": OLD_DUPLICATE_SWEEP["settings"],
    }
    workspace.add_result(project_id=child.id, kind="sweep", data=dict(capped))
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, ConfigsScreen(parent.id))
        table = screen.query_one("#configs-table", SortableTable)
        assert table.row_keys == ["1x1", "1x2", "1x2#2"]
        # The sweet spot is the third cell itself, not the first cell equal to it in key.
        assert table_text(table) == [
            ["1", "1", "42.90", "23.00"],
            ["1", "2", "30.70", "60.00"],
            ["★ 1", "2", "84.70", "23.50"],
        ]
        assert table.cursor_row == 2
        await pilot.press("escape")
        await settle(pilot)

        # A sweep stored now: keyed by what was asked, the device's change shown beside it.
        screen = await opened(pilot, ConfigsScreen(child.id))
        table = screen.query_one("#configs-table", SortableTable)
        assert table.row_keys == ["1x1", "1x2", "1x4"]
        assert table_text(table)[2] == ["★ 1", "4 → 2", "84.70", "23.50"]
        assert "batch 1 × 4 → 2 streams → 84.70 FPS" in text_of(screen, "#configs-sweet")
        table.focus()
        table.sort_by("streams")  # by the streams asked for
        assert table.row_keys == ["1x4", "1x2", "1x1"]
        # Reloading (as after a finished sweep) keeps the screen whole.
        screen.load_stored()
        await settle(pilot)
        assert len(table.row_keys) == 3


async def test_configs_refuses_a_sweep_on_a_device_this_machine_lacks(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, _ = pair
    gpu = workspace.add_project(
        name="On GPU", model_id=parent.model_id, dataset_id=parent.dataset_id, device="GPU9"
    )
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.push_screen(ConfigsScreen(gpu.id))
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        notices = [str(n.message) for n in app._notifications]
        assert any("GPU9, which this machine does not have" in n for n in notices), notices
    assert workspace.jobs() == []
