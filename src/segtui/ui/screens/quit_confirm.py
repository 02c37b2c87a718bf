"""Quitting while a job runs: a small question that says the job goes on, and where to see it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from segtui.core.records import JobRecord
from segtui.core.types import JobState


def job_summary(job: JobRecord) -> str:
    """'optimize #3, 28%: calibrating 56/200' (a queued job says so)."""
    if job.state == JobState.QUEUED:
        return f"{job.kind} #{job.id}, queued"
    summary = f"{job.kind} #{job.id}, {job.progress:.0%}"
    return f"{summary}: {job.stage}" if job.stage else summary


def quit_question(jobs: Sequence[JobRecord]) -> str:
    """What the dialog asks, naming the jobs that go on after the app has quit."""
    first = job_summary(jobs[0])
    more = f" and {len(jobs) - 1} more" if len(jobs) > 1 else ""
    subject = "A job is" if len(jobs) == 1 else "Jobs are"
    pronoun = "It goes" if len(jobs) == 1 else "They go"
    return (
        f"{subject} running ({first}{more}). {pronoun} on after you quit; see "
        f"{'it' if len(jobs) == 1 else 'them'} with `segtui list jobs` or reopen segtui.\n\nQuit? y/n"
    )


class QuitConfirmScreen(ModalScreen[bool]):
    """Asks before quitting while jobs run; dismissed with True to quit. The jobs never wait."""

    DEFAULT_CSS = """
    QuitConfirmScreen { align: center middle; }
    #quit-dialog {
        width: 64; max-width: 100%; height: auto;
        padding: 1 2; border: thick $warning; background: $surface;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Quit", id="quit.yes", tooltip="Quit; the jobs go on."),
        Binding(
            "n,escape",
            "answer(False)",
            "Stay",
            id="quit.no",
            tooltip="Stay in segtui.",
        ),
        Binding(
            "ctrl+q",
            "answer(True)",
            "Quit",
            show=False,
            priority=True,
            id="quit.again",
            tooltip="ctrl+q again quits.",
        ),
    ]

    def __init__(self, jobs: Sequence[JobRecord]) -> None:
        super().__init__()
        self.question = quit_question(jobs)

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog"):
            yield Static(Text(self.question), id="quit-question")

    def action_answer(self, quit_app: bool) -> None:
        self.dismiss(quit_app)
