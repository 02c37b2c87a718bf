"""A live view of one background job: progress bar, stage, time left, and a cancel key.

The job runs in a child process (segtui.core.jobs); this widget only reads its
row in the workspace from an async worker and posts typed messages when it
changes or ends. Cancelling runs in a thread worker (it may wait for the child
to clean up).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Label, ProgressBar

from segtui.core import jobs
from segtui.core.workspace import JobRecord, Workspace

POLL_SECONDS = 0.3


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
    if job.state == "running":
        return f"{job.kind} · {job.stage or 'running'} · {format_eta(job.eta_s)}"
    if job.state == "queued":
        return f"{job.kind} · queued behind another job"
    if job.state == "failed":
        return f"{job.kind} · failed: {job.error or 'see the log'}"
    if job.state == "interrupted":
        return f"{job.kind} · interrupted: {job.error or ''}"
    return f"{job.kind} · {job.state}"


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
        Binding("l", "show_log", "Job log", id="job.log", tooltip="Show the end of the job's log."),
    ]

    DEFAULT_CSS = """
    JobMonitor { height: auto; padding: 0 1; border: round $primary; }
    JobMonitor:focus { border: round $accent; }
    JobMonitor > .job-title { text-style: bold; }
    JobMonitor > ProgressBar { width: 1fr; }
    JobMonitor.-failed { border: round $error; }
    JobMonitor.-done { border: round $success; }
    """

    job: reactive[JobRecord | None] = reactive(None, always_update=True)

    class Finished(Message):
        """The job reached done, failed, cancelled or interrupted."""

        def __init__(self, monitor: JobMonitor, job: JobRecord) -> None:
            super().__init__()
            self.monitor = monitor
            self.job = job

    def __init__(self, job_id: int, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.job_id = job_id

    @property
    def workspace(self) -> Workspace:
        ws: Workspace = self.app.workspace  # type: ignore[attr-defined]
        return ws

    def compose(self) -> ComposeResult:
        yield Label(f"Job {self.job_id}", classes="job-title")
        yield ProgressBar(total=1.0, show_eta=False, id="job-progress")
        yield Label("", id="job-stage")

    def on_mount(self) -> None:
        self.supervise()

    @work(exclusive=True, exit_on_error=False, group="job-monitor", description="Follow a job")
    async def supervise(self) -> None:
        last: tuple[str, float, str] | None = None
        while True:
            job = self.workspace.job(self.job_id)
            if job.state == "running" and job.pid and not jobs.pid_alive(job.pid):
                jobs.recover_jobs(self.workspace)
                job = self.workspace.job(self.job_id)
            key = (job.state, job.progress, job.stage)
            if key != last:
                last = key
                self.job = job
            if job.state in jobs.FINAL_STATES:
                self.post_message(self.Finished(self, job))
                return
            await asyncio.sleep(POLL_SECONDS)

    def watch_job(self, job: JobRecord | None) -> None:
        if job is None:
            return
        self.query_one(".job-title", Label).update(f"Job {job.id}: {job.kind} — {job.state}")
        self.query_one(ProgressBar).update(progress=job.progress)
        self.query_one("#job-stage", Label).update(job_line(job))
        for state in ("failed", "done"):
            self.set_class(
                job.state == state or (state == "failed" and job.state == "interrupted"),
                f"-{state}",
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_job":
            return self.job is not None and self.job.state not in jobs.FINAL_STATES
        return True

    def action_cancel_job(self) -> None:
        job = self.job
        if job is None or job.state in jobs.FINAL_STATES:
            self.notify("The job has already ended.", timeout=3)
            return
        self.notify(f"Cancelling job {self.job_id}…", timeout=3)
        self._cancel(self.workspace.root)

    @work(thread=True, exit_on_error=False, group="job-cancel", description="Cancel a job")
    def _cancel(self, root: object) -> None:
        from pathlib import Path

        with Workspace(Path(str(root))) as ws:
            jobs.cancel(ws, self.job_id)

    def action_show_log(self) -> None:
        job = self.job
        if job is None or not job.log_path:
            return
        tail = jobs.log_tail(job.log_path, lines=30)[-1500:]
        self.notify(tail or "(empty log)", title=f"Job {job.id} log", timeout=15)
