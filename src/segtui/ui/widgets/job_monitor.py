"""A live view of one background job: progress bar, stage, time left, and a cancel key.

The job runs in a child process (segtui.core.jobs). This widget reads nothing
itself: it subscribes to the app's job watcher (segtui.ui.job_watcher), shows each
`JobChanged`, and posts `JobMonitor.Finished` once when the job ends. Cancelling
runs in a thread worker (it may wait for the child to clean up); `l` opens the
job's live log (segtui.ui.widgets.job_log).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Label, ProgressBar
from textual.worker import Worker, WorkerState

from segtui.core import jobs
from segtui.core.records import JobRecord
from segtui.core.types import JobState
from segtui.core.workspace import Workspace
from segtui.ui import messages
from segtui.ui.job_watcher import unsubscribe, watcher_of
from segtui.ui.widgets.job_log import job_line, open_job_log


class JobMonitor(Vertical, can_focus=True):
    """Follows one job until it ends; `c` cancels it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "c",
            "cancel_job",
            "Cancel job",
            id="job.cancel",
            tooltip="Stop the job and remove its partial files.",
        ),
        Binding(
            "l",
            "show_log",
            "Job log",
            id="job.log",
            tooltip="Show the job's log as it is written (l or escape closes it).",
        ),
    ]

    DEFAULT_CSS = """
    JobMonitor { height: auto; padding: 0 1; border: round $primary; }
    JobMonitor:focus { border: round $accent; }
    JobMonitor > .job-title { text-style: bold; }
    JobMonitor > ProgressBar { width: 1fr; }
    JobMonitor > #job-stage { width: 1fr; }
    /* While it runs the line changes a few times a second: one line, repainted in place. */
    JobMonitor.-running > #job-stage { text-wrap: nowrap; text-overflow: ellipsis; }
    JobMonitor.-failed { border: round $error; }
    JobMonitor.-done { border: round $success; }
    """

    # The children repaint themselves (watch_job); the frame need not.
    job: reactive[JobRecord | None] = reactive(None, always_update=True, repaint=False)

    class Finished(Message):
        """The job reached done, failed, cancelled or interrupted."""

        def __init__(self, monitor: JobMonitor, job: JobRecord) -> None:
            super().__init__()
            self.monitor = monitor
            self.job = job

    def __init__(self, job_id: int, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.job_id = job_id
        self._ended = False
        #: The state the title, classes and line height were laid out for.
        self._painted_state: JobState | None = None

    @property
    def workspace(self) -> Workspace:
        ws: Workspace = self.app.workspace  # type: ignore[attr-defined]
        return ws

    def compose(self) -> ComposeResult:
        yield Label(f"Job {self.job_id}", classes="job-title")
        yield ProgressBar(total=1.0, show_eta=False, id="job-progress")
        yield Label("", id="job-stage")

    def on_mount(self) -> None:
        watcher_of(self).subscribe(self, self.job_id)

    def on_unmount(self) -> None:
        unsubscribe(self)

    def on_job_changed(self, event: messages.JobChanged) -> None:
        if event.job.id != self.job_id or self._ended:
            return
        if self.screen is self.app.screen:
            self.job = event.job
        else:
            # Under another screen: keep the job, repaint when this screen is back on top
            # (a repaint here would make the screen on top repaint as well).
            self.set_reactive(JobMonitor.job, event.job)

    def on_job_finished(self, event: messages.JobFinished) -> None:
        if event.job.id != self.job_id or self._ended:
            return
        self._ended = True
        self.job = event.job
        self.post_message(self.Finished(self, event.job))

    def watch_job(self, job: JobRecord | None) -> None:
        if job is None:
            return
        self.query_one(ProgressBar).update(progress=job.progress)
        stage = self.query_one("#job-stage", Label)
        if job.state == self._painted_state:
            # Progress only: the same one line, so no layout of the whole screen (which a
            # busy page pays for several times a second otherwise).
            stage.update(job_line(job), layout=False)
            return
        self._painted_state = job.state
        self.query_one(".job-title", Label).update(f"Job {job.id}: {job.kind} — {job.state}")
        stage.update(job_line(job))
        self.set_class(job.state == JobState.RUNNING, "-running")
        self.set_class(job.state in (JobState.FAILED, JobState.INTERRUPTED), "-failed")
        self.set_class(job.state == JobState.DONE, "-done")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_job":
            return self.job is not None and self.job.state.active
        return True

    def action_cancel_job(self) -> None:
        job = self.job
        if job is None or job.state.final:
            self.notify("The job has already ended.", timeout=3)
            return
        self.notify(f"Cancelling job {self.job_id}…", timeout=3)
        self._cancel(self.workspace.root)

    @work(thread=True, exit_on_error=False, group="job-cancel", description="Cancel a job")
    def _cancel(self, root: Path) -> None:
        with Workspace(root) as ws:
            jobs.cancel(ws, self.job_id)

    def action_show_log(self) -> None:
        open_job_log(self, self.job_id, self.job)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            what = worker.description or worker.name
            self.notify(f"{what}: {worker.error}", title="Job", severity="error", timeout=10)
