"""A job's log, live: the lines so far, the newest followed as the job writes them.

`JobLogScreen` is a dialog the size of the terminal, opened with `l` from a job's
card (`JobMonitor`) or from the Jobs tab of a project (`JobsTable`), and closed with
`l` or Escape. While it is shown it reads what the log gained since the last read,
in a thread (`segtui.core.jobs.read_log`: from a byte offset, at most the end of a
burst), twice a second and whenever the job watcher reports a change. Lines keep
their length and scroll sideways; a progress bar that redraws its line with `\\r`
shows its last state. The view follows the end until the user scrolls up, and
again from End (Textual's anchor).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.dom import DOMNode
from textual.geometry import Size
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from segtui.core import jobs
from segtui.core.records import JobRecord
from segtui.core.types import JobState
from segtui.ui import messages
from segtui.ui.job_watcher import unsubscribe, watcher_of
from segtui.ui.screens.base import segtui_app

#: How often an open log is read again (a job may write without changing its row).
REFRESH_SECONDS = 0.5
#: Lines kept (the oldest go first); a read takes at most the log's last `READ_BYTES`.
MAX_LINES = 5000
READ_BYTES = 512 * 1024
#: A line still being redrawn with `\r` keeps only its last state beyond this size.
_MAX_PARTIAL = 64 * 1024
# Terminal escapes (colours, cursor moves, titles) mean nothing in a log file.
_ESCAPES = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_READ_GROUP = "job-log-read"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min left"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s left"
    return f"{seconds} s left"


def job_line(job: JobRecord) -> str:
    """One line about a job: kind, state, and what it is doing or how it ended."""
    if job.state == JobState.RUNNING:
        return f"{job.kind} · {job.stage or 'running'} · {format_eta(job.eta_s)}"
    if job.state == JobState.QUEUED:
        return f"{job.kind} · queued behind another job"
    if job.state == JobState.FAILED:
        return f"{job.kind} · failed: {job.error or 'see the log'}"
    if job.state == JobState.INTERRUPTED:
        return f"{job.kind} · interrupted: {job.error or ''}"
    return f"{job.kind} · {job.state}"


def shown_line(raw: bytes) -> str:
    """A log line as a terminal would have left it: the last of its `\\r` redraws, no escapes."""
    text = _ESCAPES.sub(b"", raw).decode("utf-8", errors="replace")
    redraws = [part for part in text.split("\r") if part]
    return _CONTROLS.sub("", redraws[-1].expandtabs()) if redraws else ""


@dataclass(frozen=True)
class LogSnapshot:
    """What the view shows: the lines kept, the widest one's cells, and whether the top is cut."""

    lines: tuple[str, ...]
    width: int
    cut: bool


class LogBuffer:
    """The lines of a log read so far, fed chunk by chunk (in one thread at a time)."""

    def __init__(self, max_lines: int = MAX_LINES) -> None:
        self.offset = 0
        self._max_lines = max_lines
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._width = 0
        self._partial = b""  # the last line, not ended yet (a progress bar redrawing it)
        self._cut = False

    def feed(self, chunk: jobs.LogChunk) -> LogSnapshot | None:
        """Take what was read; the new snapshot, or None when nothing changed."""
        if chunk.start != self.offset:
            # A long log's end, a burst larger than a read, or a new log: start over.
            self._lines.clear()
            self._width, self._partial, self._cut = 0, b"", chunk.start > 0
        elif not chunk.data:
            return None
        self.offset = chunk.end
        *ended, self._partial = (self._partial + chunk.data).split(b"\n")
        for raw in ended:
            line = shown_line(raw)
            self._lines.append(line)
            self._width = max(self._width, cell_len(line))
        if len(self._partial) > _MAX_PARTIAL:
            head, _, last = self._partial.rstrip(b"\r").rpartition(b"\r")
            self._partial = b"\r" + last if head else self._partial[-_MAX_PARTIAL:]
        lines = tuple(self._lines)
        width = self._width
        if self._partial:
            last_line = shown_line(self._partial)
            lines = (*lines[max(0, len(lines) + 1 - self._max_lines) :], last_line)
            width = max(width, cell_len(last_line))
        return LogSnapshot(lines, width, self._cut)


class LogLines(ScrollView, can_focus=True):
    """Lines that keep their length: scrolled up, down and sideways, never wrapped."""

    DEFAULT_CSS = """
    LogLines { background: $surface; overflow: auto auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: tuple[str, ...] = ()
        #: Whether the log's beginning is left out (only its end was read).
        self.cut = False
        # By the line's text: a new snapshot shifts the lines but rarely changes them.
        self._strips: LRUCache[str, Strip] = LRUCache(1024)

    def show(self, snapshot: LogSnapshot) -> None:
        self.lines, self.cut = snapshot.lines, snapshot.cut
        self.virtual_size = Size(snapshot.width, len(snapshot.lines))
        self.refresh()

    @property
    def following(self) -> bool:
        """Whether the newest line is in view (and new lines will keep it so)."""
        return self.scroll_y >= self.max_scroll_y

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        style = self.rich_style
        width = self.scrollable_content_region.width
        if index >= len(self.lines):
            return Strip.blank(width, style)
        line = self.lines[index]
        strip = self._strips.get(line)
        if strip is None:
            segments = Text(line, no_wrap=True, style=style).render(self.app.console)
            strip = Strip([s for s in segments if s.text != "\n"], cell_len(line))
            self._strips[line] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, index)


class JobLogScreen(ModalScreen[None]):
    """One job's log, following its end while the job writes it; `l` or Escape closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,l", "close", "Close", id="job_log.close", tooltip="Close the job log."),
    ]

    def __init__(self, job_id: int, job: JobRecord | None = None) -> None:
        super().__init__()
        self.job_id = job_id
        self.job = job
        self.buffer = LogBuffer()
        self._reading = False
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="job-log-dialog") as dialog:
            dialog.border_title = f"Job {self.job_id} log"
            yield Static(id="job-log-status")
            yield LogLines(id="job-log-lines")
            yield Static(id="job-log-hint")

    def on_mount(self) -> None:
        view = self.query_one(LogLines)
        view.anchor()
        self.watch(view, "scroll_y", self._show_hint, init=False)
        self._show_status()
        self._show_hint()
        self._timer = self.set_interval(REFRESH_SECONDS, self.read)
        watcher_of(self).subscribe(self, self.job_id)
        self.read()

    def on_unmount(self) -> None:
        unsubscribe(self)

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    def on_screen_resume(self) -> None:
        self._show_status()
        if self._timer is not None:
            self._timer.resume()
        self.read()

    def on_job_changed(self, event: messages.JobChanged) -> None:
        if event.job.id != self.job_id:
            return
        self.job = event.job
        if self.app.screen is self:  # under help: shown when back on top
            self._show_status()
            self.read()

    def read(self) -> None:
        """Read what the log gained, in a thread (one read at a time)."""
        path = self.job.log_path if self.job else None
        if self._reading or not path:
            return
        self._reading = True
        self.run_worker(
            partial(self._read, path, self.buffer),
            group=_READ_GROUP,
            description="Read the job's log",
            thread=True,
            exit_on_error=False,
        )

    @staticmethod
    def _read(path: str, buffer: LogBuffer) -> LogSnapshot | None:
        return buffer.feed(jobs.read_log(path, buffer.offset, READ_BYTES))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != _READ_GROUP or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        self._reading = False
        if event.state == WorkerState.ERROR:
            # Reading errors come back as an empty read: this is a bug, said once, not twice a second.
            if self._timer is not None:
                self._timer.pause()
            segtui_app(self).report_worker_failure(worker)
            return
        snapshot = worker.result
        if isinstance(snapshot, LogSnapshot):
            self.query_one(LogLines).show(snapshot)
            self._show_hint()
        elif self.job is not None and self.job.state.final and self._timer is not None:
            self._timer.pause()  # ended, and nothing more came after: nothing will

    def _show_status(self) -> None:
        job = self.job
        status = self.query_one("#job-log-status", Static)
        if job is None:
            status.update(Text("Reading the job…", style="dim"))
            return
        percent = f" · {job.progress * 100:.0f}%" if job.state == JobState.RUNNING else ""
        status.update(Text(job_line(job) + percent))
        if job.log_path:
            self.query_one("#job-log-dialog").border_subtitle = job.log_path

    def _show_hint(self) -> None:
        view = self.query_one(LogLines)
        if not view.lines:
            where = "(nothing in the log yet)"
        elif view.following:
            where = "following the end"
        else:
            where = f"line {view.scroll_offset.y + 1} of {len(view.lines)} · End follows"
        cut = " · only the log's end is shown" if view.cut else ""
        keys = "↑↓ PgUp PgDn Home End · ←→ sideways · l/esc close"
        self.query_one("#job-log-hint", Static).update(Text(f"{where}{cut} · {keys}"))

    def action_close(self) -> None:
        self.dismiss()


def open_job_log(node: DOMNode, job_id: int, job: JobRecord | None = None) -> None:
    """Show the log of job `job_id` (once: not over a log already shown)."""
    if not isinstance(node.app.screen, JobLogScreen):
        node.app.push_screen(JobLogScreen(job_id, job))


class JobsTable(DataTable[str]):
    """A table of jobs keyed by job id: `l` or Enter shows the selected job's log."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "show_log", "Log", id="jobs.log", tooltip="Show the selected job's log."),
        Binding(
            "enter", "show_log", "Log", show=False, id="jobs.log_enter", tooltip="Show its log."
        ),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def action_show_log(self) -> None:
        if not self.row_count:
            return
        key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        if key is not None:
            open_job_log(self, int(key))
