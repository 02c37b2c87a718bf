"""Following the jobs a screen started, one JobMonitor at a time, and saying how each ended."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Label

from segtui.core.records import JobRecord
from segtui.core.types import JobState
from segtui.ui.widgets.job_monitor import JobMonitor


class JobQueue(Vertical):
    """Follows the jobs a screen started, one JobMonitor at a time (the jobs run one at a time).

    A finished job's monitor goes away when it succeeded and the next queued job
    is shown; a failed one stays (with its log key) until another job is followed.
    `JobMonitor.Finished` bubbles on to the screen, which reloads its results.
    """

    DEFAULT_CSS = """
    JobQueue { height: auto; }
    JobQueue > .queued { color: $text-muted; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.waiting: list[int] = []

    def compose(self) -> ComposeResult:
        yield Label("", classes="queued")

    def on_mount(self) -> None:
        self._update_queued()

    @property
    def monitor(self) -> JobMonitor | None:
        monitors = self.query(JobMonitor)
        return monitors.first() if monitors else None

    def follow(self, job_id: int) -> None:
        current = self.monitor
        if current is not None and (current.job is None or current.job.state.active):
            if job_id != current.job_id and job_id not in self.waiting:
                self.waiting.append(job_id)
            self._update_queued()
            return
        self._show(job_id)

    def _show(self, job_id: int) -> None:
        current = self.monitor
        if current is not None:
            current.remove()
        self.mount(JobMonitor(job_id), before=0)
        self._update_queued()

    def _update_queued(self) -> None:
        label = self.query_one(".queued", Label)
        label.update(
            f"then job(s) {', '.join(map(str, self.waiting))}, queued" if self.waiting else ""
        )
        label.display = bool(self.waiting)

    def on_job_monitor_finished(self, event: JobMonitor.Finished) -> None:
        if self.waiting:
            self._show(self.waiting.pop(0))
        elif event.job.state == JobState.DONE:
            event.monitor.remove()


def finished_notice(screen: Screen[None], job: JobRecord, what: str) -> None:
    """One notification per finished job: done, or why not."""
    if job.state == JobState.DONE:
        screen.notify(f"{what} job {job.id} done.", timeout=3)
    elif job.state in (JobState.FAILED, JobState.INTERRUPTED):
        screen.notify(job.error or "see the log (l)", title=f"{what} failed", severity="error")
    else:
        screen.notify(f"{what} job {job.id} {job.state}.", timeout=3)
