"""SVG snapshots of the main screens at 120×36 and 80×24 (deterministic workspace, no timings)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pilot_wait import settle, until
from stored_report import StoredReport, store_report
from test_ui_performance import STORED_SWEEP, measured
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static
from tiny_models import build_omz_maskrcnn

from segtui.core import machine
from segtui.core.machine import MachineInfo
from segtui.core.projects import create_project_from_paths
from segtui.core.records import ProjectRecord
from segtui.core.workspace import Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.compare import CompareScreen
from segtui.ui.screens.configs import ConfigsScreen
from segtui.ui.screens.deploy import DeployScreen
from segtui.ui.screens.help import HelpScreen
from segtui.ui.screens.optimize import OptimizeScreen
from segtui.ui.screens.performance import PerformanceScreen
from segtui.ui.screens.project import ProjectScreen
from segtui.ui.screens.report import ReportScreen
from segtui.ui.screens.start import StartScreen
from segtui.ui.screens.visualize import VisualizeScreen
from segtui.ui.widgets.property_table import PropertyTable

SnapCompare = Callable[..., bool]
__all__ = ["measured"]  # a fixture: the compare snapshot's stored benchmarks


@pytest.fixture
def populated(workspace: Workspace, image_folder: Path, tmp_path: Path) -> Workspace:
    model_path = build_omz_maskrcnn(tmp_path / "m" / "model.xml")
    create_project_from_paths(
        workspace, model_path=model_path, dataset_path=image_folder, name="Tiny Mask R-CNN"
    )
    return workspace


@pytest.fixture
def fixed_machine(monkeypatch: pytest.MonkeyPatch) -> MachineInfo:
    """The project header names the processor: the same one on every machine that runs this."""
    info = MachineInfo("CPU", "Test CPU", ("BF16", "FP32"), ("AMX-BF16", "AVX2"), "bf16")
    monkeypatch.setitem(machine._cache, "CPU", info)
    return info


async def _start_loaded(pilot: Pilot[Any]) -> None:
    """The screens read the workspace in workers: wait for the rows before the picture."""
    screen = pilot.app.screen
    assert isinstance(screen, StartScreen)
    await until(pilot, lambda: screen.loaded)


def _page_drawn(screen: object) -> bool:
    """The page, its device described, and its Model tab's columns sized to their rows (a
    DataTable measures new rows when idle: a picture taken before would catch it half-sized)."""
    if not isinstance(screen, ProjectScreen) or not screen.page or screen.machine is None:
        return False
    table = screen.query_one("#model-info", PropertyTable)
    widest = max((len(name.lstrip("§")) for name, _ in table.properties), default=0)
    sized = widest > 0 and table.ordered_columns[0].content_width >= widest
    return sized and table.virtual_size.width >= sum(c.content_width for c in table.ordered_columns)


async def _project_page(pilot: Pilot[Any]) -> None:
    await _start_loaded(pilot)
    await pilot.press("enter")
    await until(pilot, lambda: _page_drawn(pilot.app.screen))
    # The widths are right now, but a row render cached with the old ones may still be on
    # screen: drop the tables' caches and let the screen lay out and repaint before the picture.
    for table in pilot.app.screen.query(PropertyTable):
        table._clear_caches()
        table.refresh(layout=True)
    await pilot.pause()
    await until(pilot, lambda: _page_drawn(pilot.app.screen))


def test_start_screen(snap_compare: SnapCompare, populated: Workspace) -> None:
    app = SegtuiApp(populated, register_sample=False)
    assert snap_compare(app, terminal_size=(120, 36), run_before=_start_loaded)


def test_project_page(
    snap_compare: SnapCompare, populated: Workspace, fixed_machine: MachineInfo
) -> None:
    app = SegtuiApp(populated, register_sample=False)
    assert snap_compare(app, terminal_size=(120, 36), run_before=_project_page)


# -- 80×24: every main screen must stay usable on the smallest common terminal -------------

SMALL = (80, 24)
#: A snapshot at the smallest common terminal and at the usual one (SVGs named by these ids).
BOTH = pytest.mark.parametrize("size", [SMALL, (120, 36)], ids=["80x24", "120x36"])


def test_start_screen_80x24(snap_compare: SnapCompare, populated: Workspace) -> None:
    app = SegtuiApp(populated, register_sample=False)
    assert snap_compare(app, terminal_size=SMALL, run_before=_start_loaded)


def test_project_page_80x24(
    snap_compare: SnapCompare, populated: Workspace, fixed_machine: MachineInfo
) -> None:
    app = SegtuiApp(populated, register_sample=False)
    assert snap_compare(app, terminal_size=SMALL, run_before=_project_page)


async def _on_project_page(pilot: Pilot[Any], *keys: str) -> None:
    """The project page, drawn, then `keys` pressed and every worker they started done."""
    await _project_page(pilot)
    await pilot.press(*keys)
    await settle(pilot)


@BOTH
def test_optimize_form(
    snap_compare: SnapCompare,
    populated: Workspace,
    fixed_machine: MachineInfo,
    size: tuple[int, int],
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _on_project_page(pilot, "o")
        screen = pilot.app.screen
        assert isinstance(screen, OptimizeScreen)
        await until(pilot, lambda: screen.scope is not None)
        await settle(pilot)
        _steady_cursors(pilot)
        await pilot.pause()

    app = SegtuiApp(populated, register_sample=False)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@BOTH
def test_deploy_dialog(
    snap_compare: SnapCompare,
    populated: Workspace,
    fixed_machine: MachineInfo,
    size: tuple[int, int],
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _on_project_page(pilot, "d")
        screen = pilot.app.screen
        assert isinstance(screen, DeployScreen)
        # The default path is in the test's temporary workspace: the same name on every run.
        field = screen.query_one("#deploy-out", Input)
        root = str(populated.root)
        assert field.value.startswith(root)
        field.value = "<workspace>" + field.value[len(root) :]
        field.cursor_position = 0
        _steady_cursors(pilot)
        await pilot.pause()

    app = SegtuiApp(populated, register_sample=False)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@BOTH
def test_help(
    snap_compare: SnapCompare,
    populated: Workspace,
    fixed_machine: MachineInfo,
    size: tuple[int, int],
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _on_project_page(pilot, "f1")
        screen = pilot.app.screen
        assert isinstance(screen, HelpScreen)
        shown = screen.query_one("#help-workspace", Static)
        shown.update(str(shown.render()).replace(str(populated.root), "<workspace>"))
        await pilot.pause()

    app = SegtuiApp(populated, register_sample=False)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_compare_80x24(
    snap_compare: SnapCompare, workspace: Workspace, measured: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, child = measured

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(CompareScreen(child.id, parent.id))
        await settle(pilot)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def _steady_cursors(pilot: Pilot[Any]) -> None:
    """A focused Input's cursor blinks every 0.5 s: on a loaded machine the picture can be
    taken in either phase, so show it steadily."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False


async def _tables_sized(pilot: Pilot[Any]) -> None:
    """Every worker done, then the tables' row renders dropped and the screen laid out again
    (a render cached before the columns were measured would otherwise be in the picture)."""
    await settle(pilot)
    _steady_cursors(pilot)
    for table in pilot.app.screen.query(DataTable):
        table._clear_caches()
        table.refresh(layout=True)
    await pilot.pause()
    await settle(pilot)


@BOTH
def test_performance(
    snap_compare: SnapCompare,
    workspace: Workspace,
    measured: tuple[ProjectRecord, ProjectRecord],
    fixed_machine: MachineInfo,
    size: tuple[int, int],
) -> None:
    parent, _ = measured

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(PerformanceScreen(parent.id))
        await _tables_sized(pilot)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@BOTH
def test_configs(
    snap_compare: SnapCompare,
    workspace: Workspace,
    pair: tuple[ProjectRecord, ProjectRecord],
    fixed_machine: MachineInfo,
    size: tuple[int, int],
) -> None:
    parent, _ = pair
    workspace.add_result(project_id=parent.id, kind="sweep", data=dict(STORED_SWEEP))

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(ConfigsScreen(parent.id))
        await _tables_sized(pilot)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.fixture
def stored(workspace: Workspace, image_folder: Path, tmp_path: Path) -> StoredReport:
    return store_report(workspace, image_folder, tmp_path)


def test_report_80x24(
    snap_compare: SnapCompare, workspace: Workspace, stored: StoredReport
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.app.push_screen(ReportScreen(stored.child.id))
        await _tables_sized(pilot)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, terminal_size=SMALL, run_before=run_before, press=["t"])


def test_visualize_120x36(
    snap_compare: SnapCompare, workspace: Workspace, stored: StoredReport
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        screen = VisualizeScreen(
            stored.child.id, stored.result.id, "b.jpg", images=["a.png", "b.jpg", "sub/c.bmp"]
        )
        await pilot.app.push_screen(screen)
        # Drawing is in thread workers: wait until b.jpg is shown at the screen's threshold.
        await until(
            pilot,
            lambda: (
                screen.shown is not None
                and screen.shown.request.name == "b.jpg"
                and screen.shown.request == screen.wanted
            ),
        )
        await settle(pilot)

    app = SegtuiApp(workspace, register_sample=False)
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)
