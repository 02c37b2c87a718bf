"""One key vocabulary: the same key does the same kind of thing on every screen; footers fit."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pilot_screens import opened
from pilot_wait import settle, until
from textual.binding import Binding
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Footer, Input
from textual.widgets._footer import FooterKey

from segtui.core.types import JobKind, JobState
from segtui.core.workspace import ProjectRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.compare import CompareScreen
from segtui.ui.screens.configs import ConfigsScreen
from segtui.ui.screens.create_project import CreateProjectScreen
from segtui.ui.screens.deploy import DeployScreen
from segtui.ui.screens.help import binding_rows
from segtui.ui.screens.optimize import OptimizeScreen
from segtui.ui.screens.performance import PerformanceScreen
from segtui.ui.screens.project import ProjectScreen
from segtui.ui.screens.quit_confirm import QuitConfirmScreen
from segtui.ui.screens.report import ReportScreen
from segtui.ui.screens.start import StartScreen
from segtui.ui.screens.visualize import VisualizeScreen
from segtui.ui.widgets.property_table import PropertyTable
from segtui.ui.widgets.table import SortableTable, num, txt

SCREENS: list[type[Any]] = [
    StartScreen,
    ProjectScreen,
    PerformanceScreen,
    CompareScreen,
    ConfigsScreen,
    OptimizeScreen,
    ReportScreen,
    VisualizeScreen,
    CreateProjectScreen,
    DeployScreen,
    SortableTable,
]
#: What ctrl+s may do: create, start or run the screen's one thing.
CREATE_ACTIONS = {"create", "start", "create_report", "build", "benchmark('f32')"}
#: What s and S may do: sort (by the focused column, or the next one) and reverse it.
SORT_ACTIONS = {"s": {"sort_cursor_column", "cycle_sort"}, "S": {"reverse_sort"}}


def bindings_of(cls: type[Any]) -> list[tuple[str, Binding]]:
    """(key, binding) for each key of the class's own BINDINGS."""
    pairs = []
    for binding in vars(cls).get("BINDINGS", []):
        assert isinstance(binding, Binding)
        pairs += [(key.strip(), binding) for key in binding.key.split(",")]
    return pairs


def test_the_same_key_means_the_same_kind_of_thing_on_every_screen() -> None:
    creators = set()
    for cls in SCREENS:
        for key, binding in bindings_of(cls):
            if key == "ctrl+s":
                assert binding.action in CREATE_ACTIONS, (cls.__name__, binding.action)
                creators.add(cls.__name__)
            if key in SORT_ACTIONS:
                assert binding.action in SORT_ACTIONS[key], (cls.__name__, key, binding.action)
            if key == "escape":
                assert binding.action in {"back", "close"}, cls.__name__
            assert key not in {"ctrl+q", "f1"}, "quit and help are the app's, everywhere"
    assert creators == {
        "CreateProjectScreen",
        "OptimizeScreen",
        "ConfigsScreen",
        "ReportScreen",
        "DeployScreen",
        "PerformanceScreen",
    }
    app_keys = {key: binding.action for key, binding in bindings_of(SegtuiApp)}
    assert app_keys == {"f1": "help", "ctrl+q": "quit"}


async def _quit_keys(pilot: Pilot[None]) -> None:
    await pilot.press("ctrl+q")
    await until(pilot, lambda: isinstance(pilot.app.screen, QuitConfirmScreen))


async def test_ctrl_q_with_a_running_job_asks_and_says_the_job_goes_on(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, _child = pair
    job = workspace.add_job(kind=JobKind.OPTIMIZE, project_id=parent.id, params={})
    workspace.update_job(
        job.id, state=JobState.RUNNING, progress=0.28, stage="calibrating 56/200", pid=os.getpid()
    )
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await _quit_keys(pilot)
        question = app.screen
        assert isinstance(question, QuitConfirmScreen)
        assert f"optimize #{job.id}, 28%: calibrating 56/200" in question.question
        assert "goes on after you quit" in question.question
        assert "segtui list jobs" in question.question
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, StartScreen)
        assert app.return_code is None  # still running
        await _quit_keys(pilot)
        await pilot.press("y")
        await until(pilot, lambda: app.return_code is not None)
        assert app.return_code == 0
    # The job was never touched: it goes on.
    assert workspace.job(job.id).state == JobState.RUNNING


async def test_ctrl_q_without_jobs_quits_at_once(workspace: Workspace) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+q")
        await until(pilot, lambda: app.return_code is not None)
        assert not any(isinstance(s, QuitConfirmScreen) for s in app.screen_stack)


async def test_escape_closes_the_benchmark_settings_before_the_screen(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    _parent, child = pair
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, PerformanceScreen(child.id))
        await pilot.press("e")
        settings = screen.query_one("#perf-settings")
        assert settings.display
        assert isinstance(app.focused, Input)
        await pilot.press("escape")
        await settle(pilot)
        assert not settings.display
        assert app.screen is screen
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is not screen


async def test_arrows_pick_the_sort_column_and_s_sorts_by_it(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    _parent, child = pair
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await opened(pilot, PerformanceScreen(child.id))
        table = screen.query_one("#perf-by-type", SortableTable)
        table.set_columns([("type", "Type"), ("ms", "ms")])
        table.set_rows([("a", [txt("Convolution"), num(3.0)]), ("b", [txt("If"), num(9.0)])])
        table.display = True
        table.focus()
        await pilot.press("right", "s")
        assert table.sorted_by == ("ms", True)  # numbers: largest first
        assert table.row_keys == ["b", "a"]
        await pilot.press("S")
        assert table.sorted_by == ("ms", False)
        assert table.row_keys == ["a", "b"]
        await pilot.press("left", "s")
        assert table.sorted_by == ("type", False)


async def test_f1_lists_the_screens_own_actions_first(workspace: Workspace) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, StartScreen)
        await until(pilot, lambda: screen.loaded)
        screen.query_one("#projects").focus()
        await settle(pilot)
        rows = binding_rows(app.screen)
        assert rows[0][:3] == ("enter", "Open project", "this screen") or (
            rows[0][1:3] == ("Open project", "this screen")
        )
        own = [desc for _keys, desc, where, _tip in rows if where == "this screen"]
        assert own[:3] == ["Open project", "New project", "Refresh"]
        descriptions = [desc for _keys, desc, _where, _tip in rows]
        assert "Select" not in descriptions  # DataTable's word, said as "Open project"


def footer_keys(screen: Screen[Any]) -> tuple[list[str], int]:
    """The footer's keys as shown ('o Optimize'), and how many of them are cut or hidden."""
    footer = screen.query_one(Footer)
    palette = [key for key in footer.query(FooterKey) if key.has_class("-command-palette")]
    right = palette[0].region.x if palette else footer.region.right
    shown, cut = [], 0
    for key in footer.query(FooterKey):
        if key.has_class("-command-palette"):
            continue
        if key.region.right > right or key.region.width == 0:
            cut += 1
        else:
            shown.append(f"{key.key_display} {key.description}".strip())
    return shown, cut


def screens_for(parent: ProjectRecord, child: ProjectRecord) -> list[Screen[Any]]:
    return [
        ProjectScreen(child.id),
        PerformanceScreen(child.id),
        CompareScreen(parent.id, child.id),
        ConfigsScreen(child.id),
        OptimizeScreen(parent.id),
        ReportScreen(child.id),
        CreateProjectScreen(),
    ]


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_every_footer_fits_and_ends_with_f1(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord], size: tuple[int, int]
) -> None:
    parent, child = pair
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=size) as pilot:
        start = app.screen
        await until(pilot, lambda: isinstance(start, StartScreen) and start.loaded)
        # The footer lays its keys out after the screen's first refresh of its bindings.
        await until(pilot, lambda: bool(footer_keys(start)[0]))
        shown_by_screen = {"StartScreen": footer_keys(start)}
        for page in screens_for(parent, child):
            await opened(pilot, page)
            await until(pilot, lambda: bool(footer_keys(page)[0]))  # noqa: B023
            shown_by_screen[type(page).__name__] = footer_keys(page)
    for name, (shown, cut) in shown_by_screen.items():
        assert cut == 0, (name, size, shown)
        assert shown[-1] == "f1 More", (name, size, shown)
    assert {"a Accuracy", "d Deploy"} <= set(shown_by_screen["ProjectScreen"][0])


async def test_home_and_end_go_through_an_info_table(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord]
) -> None:
    parent, _child = pair
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, ProjectScreen(parent.id))
        info = screen.query_one("#model-info", PropertyTable)
        await until(pilot, lambda: info.row_count > 3)
        info.focus()
        await pilot.press("end")
        assert info.cursor_row == info.row_count - 1
        await pilot.press("home")
        assert info.cursor_row == 0
