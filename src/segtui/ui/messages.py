"""Typed messages the screens and the app pass around."""

from __future__ import annotations

from textual.message import Message

from segtui.core.records import JobRecord


class OpenProject(Message):
    """Show the page of a project."""

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id


class ProjectsChanged(Message):
    """Projects were added or changed: lists of projects must be reloaded."""


class ImportProgress(Message):
    """Progress of a model/dataset import running in a thread worker."""

    def __init__(self, fraction: float, stage: str) -> None:
        super().__init__()
        self.fraction = fraction
        self.stage = stage


class JobChanged(Message, bubble=False):
    """A job's row changed (state, progress, stage, ETA): `job` is its newest state.

    Posted by the app's job watcher, forwarded by the app to each subscribed widget (it
    does not bubble: every subscriber gets its own copy). A newer JobChanged for the same
    job replaces one still waiting in a queue, so a flood of progress coalesces.
    """

    def __init__(self, job: JobRecord) -> None:
        super().__init__()
        self.job = job

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobChanged) and message.job.id == self.job.id


class JobFinished(Message, bubble=False):
    """A job reached done, failed, cancelled or interrupted.

    Sent when the watcher sees the job end, and again when a widget starts following
    a job that has already ended; followers act on the first one they get.
    """

    def __init__(self, job: JobRecord) -> None:
        super().__init__()
        self.job = job


class JobWatchFailed(Message):
    """The job watcher could not read the jobs table (it keeps trying)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
