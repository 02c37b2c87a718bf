"""What keeps a key's frame short: full collections between frames, jobs below the TUI, one help."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest
from textual.widgets import DataTable

from segtui.core import priority
from segtui.core.workspace import Workspace
from segtui.ui import app as app_module
from segtui.ui import idle_gc
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.help import HelpScreen


class Cycle:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def collector() -> Iterator[idle_gc.IdleCollector]:
    collector = idle_gc.IdleCollector()
    yield collector
    collector.stop()


def test_the_collector_holds_full_collections_until_its_check(
    collector: idle_gc.IdleCollector,
) -> None:
    before = gc.get_threshold()
    collector.start()
    assert gc.get_threshold() == (before[0], before[1], idle_gc.OUT_OF_REACH)
    old = Cycle()
    gc.collect()  # `old` survives into the oldest generation, then becomes garbage there
    alive = weakref.ref(old)
    del old
    for _ in range(idle_gc.FULL_AFTER - 1):
        gc.collect(1)  # young collections leave the oldest generation alone
    collector.check()
    assert alive() is not None and collector.collections == 0
    gc.collect(1)
    collector.check()
    assert alive() is None and collector.collections == 1
    collector.stop()
    assert gc.get_threshold() == before


def test_freeze_collects_first_then_hides_what_is_left() -> None:
    garbage = Cycle()
    alive = weakref.ref(garbage)
    del garbage
    kept = [Cycle()]
    try:
        idle_gc.freeze()
        assert alive() is None  # collected, not frozen forever
        assert gc.get_freeze_count() > 0
        assert not any(obj is kept for obj in gc.get_objects())
    finally:
        gc.unfreeze()


async def test_the_app_collects_between_frames_while_it_runs(workspace: Workspace) -> None:
    before = gc.get_threshold()
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert gc.get_threshold()[2] == idle_gc.OUT_OF_REACH
    assert gc.get_threshold() == before


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 0), ("7", 7), ("0", 0), ("-5", 0), ("high", 0), ("", 0)]
)
def test_the_requested_niceness(
    value: str | None, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv(priority.JOB_NICE_ENV, raising=False)
    else:
        monkeypatch.setenv(priority.JOB_NICE_ENV, value)
    assert priority.requested_niceness() == expected


#: Lowers its priority as a job process does; prints its niceness and autogroup line.
LOWER = (
    "import json, os\n"
    "from segtui.core.priority import AUTOGROUP, lower_priority, requested_niceness\n"
    "lower_priority(requested_niceness())\n"
    "group = AUTOGROUP.read_text().strip() if AUTOGROUP.exists() else ''\n"
    "print(json.dumps([os.nice(0), group]))\n"
)


def lowered(*, own_session: bool, niceness: str) -> tuple[int, str]:
    out = subprocess.run(
        [sys.executable, "-c", LOWER],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, priority.JOB_NICE_ENV: niceness},
        start_new_session=own_session,
    )
    assert out.returncode == 0, out.stderr
    nice, group = json.loads(out.stdout)
    return int(nice), str(group)


def test_a_job_in_its_own_session_lowers_its_threads_and_its_session() -> None:
    nice, group = lowered(own_session=True, niceness="10")
    assert nice == 10
    if group:  # a kernel with autogroups: the session's share goes down too
        assert group.endswith("nice 10"), group


def test_a_process_in_the_tuis_session_leaves_the_session_alone() -> None:
    ours = priority.AUTOGROUP.read_text().strip() if priority.AUTOGROUP.exists() else ""
    nice, group = lowered(own_session=False, niceness="10")
    assert nice == 10
    assert group == ours


def test_the_tui_asks_its_jobs_to_give_way_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(priority.JOB_NICE_ENV, raising=False)
    app_module.give_way_to_the_tui()
    assert os.environ[priority.JOB_NICE_ENV] == str(app_module.JOB_NICENESS)
    monkeypatch.setenv(priority.JOB_NICE_ENV, "0")
    app_module.give_way_to_the_tui()
    assert os.environ[priority.JOB_NICE_ENV] == "0"


def test_segtui_freezes_its_start_up_and_lowers_its_jobs(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bool, str | None]] = []

    def run(self: SegtuiApp) -> None:
        seen.append((self.freeze_when_loaded, os.environ.get(priority.JOB_NICE_ENV)))

    monkeypatch.delenv(priority.JOB_NICE_ENV, raising=False)
    monkeypatch.setattr(SegtuiApp, "run", run)
    assert app_module.run_app(workspace.root) == 0
    assert seen == [(True, str(app_module.JOB_NICENESS))]
    assert not SegtuiApp(workspace).freeze_when_loaded  # apps in tests come and go


async def test_help_for_the_same_keys_is_shown_again_without_a_refill(
    workspace: Workspace,
) -> None:
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.press("f1")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        shown: HelpScreen = help_screen
        table = help_screen.query_one("#help-table", DataTable)
        first_keys = list(table.rows)
        assert len(first_keys) >= 3
        await pilot.press("down", "escape", "f1")
        assert app.screen is help_screen
        assert list(table.rows) == first_keys  # the same rows, not added again
        assert table.cursor_row == 0 and table.has_focus
        # Other keys (a help asked from somewhere else) fill it again.
        shown.show("Elsewhere", "nothing", [("x", "Do it", "this screen", "Tip")])
        assert table.row_count == 1 and table.get_row_at(0) == ["x", "this screen", "Do it"]
        assert first_keys[0] not in table.rows
