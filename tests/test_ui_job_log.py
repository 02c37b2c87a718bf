"""The job log: read from a byte offset, shown live, toggled by `l`, fitting the terminal."""

from __future__ import annotations

from pathlib import Path

from pilot_wait import until
from textual.app import ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Static

from segtui.core import jobs
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import JobRecord, ProjectRecord, Workspace
from segtui.ui.app import SegtuiApp
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.screens.project import ProjectScreen
from segtui.ui.widgets.job_log import JobLogScreen, LogBuffer, LogLines, shown_line
from segtui.ui.widgets.job_monitor import JobMonitor

# -- reading and cleaning, without a UI ---------------------------------------------------


def test_read_log_reads_from_an_offset_and_only_the_end_of_a_burst(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_bytes(b"one\ntwo\n")
    assert jobs.read_log(str(log), 0) == jobs.LogChunk(0, 8, b"one\ntwo\n")
    assert jobs.read_log(str(log), 4) == jobs.LogChunk(4, 8, b"two\n")
    assert jobs.read_log(str(log), 8) == jobs.LogChunk(8, 8, b"")
    # Past its end (a new, shorter log in its place): from the top again.
    assert jobs.read_log(str(log), 50) == jobs.LogChunk(0, 8, b"one\ntwo\n")
    assert jobs.read_log(str(log), 0, max_bytes=3) == jobs.LogChunk(5, 8, b"wo\n")
    assert jobs.read_log(str(tmp_path / "absent.txt"), 0) == jobs.LogChunk(0, 0, b"")
    assert jobs.read_log(None, 0) == jobs.LogChunk(0, 0, b"")


def test_a_redrawn_line_shows_its_last_state_without_escapes() -> None:
    assert shown_line(b"\r 10%|#    |\r 50%|##   |\r100%|#####|") == "100%|#####|"
    assert shown_line(b"windows line\r") == "windows line"
    assert shown_line(b"\x1b[31mred\x1b[0m and \x1b]0;title\x07plain") == "red and plain"
    assert shown_line(b"a\tb\x07") == "a       b"
    assert shown_line(b"caf\xc3\xa9 \xff") == "café \ufffd"


def test_the_buffer_appends_replaces_the_open_line_and_starts_over_when_needed() -> None:
    buffer = LogBuffer(max_lines=3)
    first = buffer.feed(jobs.LogChunk(0, 14, b"start\nstep 1/9"))
    assert first is not None and first.lines == ("start", "step 1/9") and not first.cut
    assert buffer.feed(jobs.LogChunk(14, 14, b"")) is None  # nothing new: nothing to paint
    # The progress line redrawn, then ended; the oldest line goes beyond max_lines.
    second = buffer.feed(jobs.LogChunk(14, 40, b"\rstep 9/9\ndone\nsaved"))
    assert second is not None and second.lines == ("step 9/9", "done", "saved")
    assert second.width == len("step 9/9")
    # A chunk that does not start where the last one ended (a long burst, a new log).
    skipped = buffer.feed(jobs.LogChunk(100, 110, b"...end\n"))
    assert skipped is not None and skipped.lines == ("...end",) and skipped.cut
    assert buffer.offset == 110


# -- the screen -----------------------------------------------------------------------------


class MonitorScreen(Screen[None]):
    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.monitor = JobMonitor(job_id)

    def compose(self) -> ComposeResult:
        yield self.monitor


def running_job(workspace: Workspace, log: Path, lines: int) -> JobRecord:
    log.write_text("".join(f"line {n}\n" for n in range(1, lines + 1)))
    job = workspace.add_job(kind=JobKind.OPTIMIZE, project_id=None, params={})
    workspace.update_job(
        job.id, state=JobState.RUNNING, progress=0.28, stage="Quantizing", log_path=str(log)
    )
    return workspace.job(job.id)


def append(log: Path, text: str) -> None:
    with log.open("a") as handle:
        handle.write(text)


async def open_log(pilot: Pilot[None], last_line: str, key: str = "l") -> JobLogScreen:
    await pilot.press(key)
    screen = pilot.app.screen
    assert isinstance(screen, JobLogScreen)
    view = screen.query_one(LogLines)
    await until(pilot, lambda: bool(view.lines) and view.lines[-1] == last_line)
    return screen


def text(screen: Screen[None], selector: str) -> str:
    static = screen.query_one(selector, Static)
    return str(static.content)


def bottom_line_shown(view: LogLines) -> str:
    return view.lines[view.scroll_offset.y + view.scrollable_content_region.height - 1]


async def test_the_log_follows_the_file_scrolls_and_closes_with_l_or_escape(
    workspace: Workspace, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    job = running_job(workspace, log, 100)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        page = MonitorScreen(job.id)
        await app.push_screen(page)
        await until(pilot, lambda: page.monitor.job is not None)
        depth = len(app.screen_stack)
        screen = await open_log(pilot, "line 100")
        view = screen.query_one(LogLines)
        assert text(screen, "#job-log-status") == "optimize · Quantizing · estimating… · 28%"
        assert len(app.screen_stack) == depth + 1
        await until(pilot, lambda: bottom_line_shown(view) == "line 100")

        # The file grows: the newest line is read and kept in view, without a key.
        append(log, "line 101\nline 102\n")
        await until(pilot, lambda: view.lines[-1] == "line 102")
        await until(pilot, lambda: bottom_line_shown(view) == "line 102")
        workspace.update_job(job.id, progress=0.56)
        await until(pilot, lambda: "56%" in text(screen, "#job-log-status"))

        # Scrolled up, it stays where the reader is while lines come in.
        await pilot.press("pageup")
        await until(pilot, lambda: not view.following)
        top = view.scroll_offset.y
        append(log, "line 103\n")
        await until(pilot, lambda: view.lines[-1] == "line 103")
        await pilot.pause(0.1)
        assert view.scroll_offset.y == top and bottom_line_shown(view) != "line 103"
        assert "End follows" in text(screen, "#job-log-hint")
        await pilot.press("end")
        await until(pilot, lambda: bottom_line_shown(view) == "line 103")
        append(log, "line 104\n")
        await until(pilot, lambda: bottom_line_shown(view) == "line 104")

        # A second l closes it: the log is never stacked.
        await pilot.press("l")
        assert app.screen is page and len(app.screen_stack) == depth
        await pilot.press("l")
        assert isinstance(app.screen, JobLogScreen) and len(app.screen_stack) == depth + 1
        # Escape closes the innermost thing only: the log, not the page below.
        await pilot.press("escape")
        assert app.screen is page and len(app.screen_stack) == depth


async def test_a_progress_bar_line_shows_its_last_state_as_it_redraws(
    workspace: Workspace, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    job = running_job(workspace, log, 2)
    append(log, "Statistics collection  10%")
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.push_screen(MonitorScreen(job.id))
        screen = await open_log(pilot, "Statistics collection  10%")
        view = screen.query_one(LogLines)
        append(log, "\rStatistics collection  60%")
        await until(pilot, lambda: view.lines[-1] == "Statistics collection  60%")
        append(log, "\rStatistics collection 100%\nApplying fast bias correction\n")
        await until(pilot, lambda: view.lines[-1] == "Applying fast bias correction")
        assert view.lines == (
            "line 1",
            "line 2",
            "Statistics collection 100%",
            "Applying fast bias correction",
        )


async def test_the_log_fits_at_80_by_24_with_its_title_and_scrolls_sideways(
    workspace: Workspace, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    job = running_job(workspace, log, 60)
    wide = "x" * 150 + " the end of a long line"
    append(log, wide + "\n")
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(MonitorScreen(job.id))
        screen = await open_log(pilot, wide)
        dialog = screen.query_one("#job-log-dialog")
        view = screen.query_one(LogLines)
        assert dialog.border_title == f"Job {job.id} log"
        assert dialog.region.y >= 0 and dialog.region.bottom <= 24
        assert dialog.region.x >= 0 and dialog.region.right <= 80
        for part in ("#job-log-status", "#job-log-hint", "#job-log-lines"):
            region = screen.query_one(part).region
            assert region.height >= 1 and dialog.region.contains_region(region), part
        assert view.scrollable_content_region.height >= 15  # most of the screen is the log
        # Long lines are not wrapped into a wall: one row each, scrolled sideways.
        assert len(view.lines) == 61 and view.virtual_size.width == len(wide)
        await pilot.press("right", "right", "right")
        assert view.scroll_offset.x > 0


async def test_the_jobs_tab_opens_a_finished_jobs_log_with_l_or_enter(
    workspace: Workspace, pair: tuple[ProjectRecord, ProjectRecord], tmp_path: Path
) -> None:
    parent, _child = pair
    log = tmp_path / "done.txt"
    log.write_text("calibrating\nsaved model.xml\n")
    job = workspace.add_job(kind=JobKind.BENCHMARK, project_id=parent.id, params={})
    workspace.update_job(job.id, log_path=str(log))
    workspace.finish_job(job.id, JobState.DONE)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(120, 36)) as pilot:
        app.show_project(parent.id)
        await until(
            pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen.page is not None
        )
        page = app.screen
        await pilot.press("3")
        table = page.query_one("#jobs-table")
        await until(pilot, lambda: app.focused is table)
        depth = len(app.screen_stack)
        for opening, closing in (("l", "l"), ("enter", "escape")):
            log_screen = await open_log(pilot, "saved model.xml", opening)
            assert log_screen.job_id == job.id and len(app.screen_stack) == depth + 1
            assert log_screen.query_one(LogLines).lines == ("calibrating", "saved model.xml")
            status = log_screen.query_one("#job-log-status", Static)
            await until(pilot, lambda s=status: str(s.content) == "benchmark · done")  # type: ignore[misc]
            await pilot.press(closing)
            assert app.screen is page and len(app.screen_stack) == depth


class FocusElsewhereScreen(SegtuiScreen):
    """A job card beside a focused input, as on the Performance or Optimize screens."""

    def __init__(self, job_id: int | None) -> None:
        super().__init__()
        self.job_id = job_id

    def compose(self) -> ComposeResult:
        yield DataTable(id="elsewhere")
        if self.job_id is not None:
            yield JobMonitor(self.job_id)


async def test_l_opens_the_followed_jobs_log_wherever_the_focus_is(
    workspace: Workspace, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    job = running_job(workspace, log, 3)
    app = SegtuiApp(workspace, register_sample=False)
    async with app.run_test(size=(80, 24)) as pilot:
        page = FocusElsewhereScreen(job.id)
        await app.push_screen(page)
        page.query_one("#elsewhere", DataTable).focus()
        await pilot.pause()
        assert not isinstance(app.focused, JobMonitor)
        screen = await open_log(pilot, "line 3")
        assert screen.job_id == job.id
        await pilot.press("l")
        assert app.screen is page
        # Without a job card, l does nothing (and F1 does not list it).
        bare = FocusElsewhereScreen(None)
        await app.push_screen(bare)
        await pilot.press("l")
        assert app.screen is bare and bare.check_action("job_log", ()) is False
