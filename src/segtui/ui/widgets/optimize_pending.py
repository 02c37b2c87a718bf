"""The Optimize page once a job is submitted: its settings, its monitor, how it ended.

The end of a failed job's log is read in a thread worker, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from segtui.core import jobs
from segtui.core.settings import OPTIMIZE
from segtui.core.types import JobState, Method
from segtui.core.workspace import JobRecord, ProjectRecord
from segtui.ui.widgets.job_monitor import JobMonitor

LOG_TAIL_LINES = 14
LOG_GROUP = "optimize-log"


def settings_line(params: Mapping[str, object]) -> Text:
    """The settings a job was started with, on one line."""
    aa = params.get("method") == Method.ACCURACY_AWARE
    preset = str(params.get("preset", OPTIMIZE.preset.default))
    subset = params.get("subset_percent", OPTIMIZE.subset_percent.default)
    fast = params.get("fast_bias_correction", OPTIMIZE.fast_bias_correction.default)
    auto = params.get("auto_ignore", OPTIMIZE.auto_ignore.default)
    parts = [
        f"{'AccuracyAware' if aa else 'Default'} method",
        f"{preset.capitalize()} preset",
        f"subset {subset:g} %" if isinstance(subset, int | float) else f"subset {subset} %",
        f"fast bias correction {'on' if fast else 'off'}",
        "automatic ignored scope " + ("on" if auto else "off"),
    ]
    if aa:
        parts.append(f"max drop {params.get('max_drop')} ({params.get('drop_type')})")
    return Text(" · ".join(parts), style="dim")


def outcome_text(job: JobRecord) -> Text:
    """How a job that did not create its child project ended, and what to do next."""
    if job.state == JobState.CANCELLED:
        return Text("Cancelled. Its partial files were removed; e edits the settings.")
    return Text.assemble(
        (f"✗ The optimization {job.state}: ", "bold"),
        job.error or "see the log below",
        "\nNo model was registered. e edits the settings and tries again.",
    )


class PendingOptimization(VerticalScroll):
    """The submitted job: what it optimizes and with which settings, its monitor, its end."""

    def compose(self) -> ComposeResult:
        yield Static(id="pending-title")
        yield Static(id="pending-parent")
        yield Static(id="pending-settings")
        yield Static(id="outcome")
        yield Static(id="log-tail")

    def follow(self, job: JobRecord, project: ProjectRecord) -> JobMonitor:
        """Show `job` (an optimization of `project`) and mount a monitor for it."""
        self.query_one("#pending-title", Static).update(
            Text.assemble(
                ("Optimizing ", "bold"),
                (f"#{project.id} {project.name}", "bold"),
                (" → a new INT8 project, created when calibration ends.", "dim"),
            )
        )
        self.query_one("#pending-parent", Static).update(
            Text.assemble(
                ("Parent project ", "dim"),
                f"#{project.id} {project.name}",
                ("  (p opens it)", "dim"),
            )
        )
        self.query_one("#pending-settings", Static).update(settings_line(job.params))
        self.query_one("#outcome", Static).display = False
        self.query_one("#log-tail", Static).display = False
        self.workers.cancel_group(self, LOG_GROUP)  # an older job's log must not show up here
        self.stop()
        monitor = JobMonitor(job.id, id="monitor")
        self.mount(monitor, before="#outcome")
        return monitor

    def stop(self) -> None:
        """Remove the job's monitor (the page goes back to the settings)."""
        for old in self.query(JobMonitor):
            old.remove()

    def show_outcome(self, job: JobRecord) -> None:
        """Why the job ended without a child project, and the end of its log."""
        outcome = self.query_one("#outcome", Static)
        outcome.update(outcome_text(job))
        outcome.set_class(job.state != JobState.CANCELLED, "-bad")
        outcome.display = True
        log = self.query_one("#log-tail", Static)
        log.update(Text("Reading the log…", style="dim"))
        log.display = True
        self._read_log(job.log_path)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group=LOG_GROUP,
        description="Read the job's log",
    )
    def _read_log(self, path: str | None) -> Text:
        tail = jobs.log_tail(path, LOG_TAIL_LINES)
        return Text(f"Log ({path}):\n{tail}" if tail else "(the job wrote no log)")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == LOG_GROUP and event.state == WorkerState.SUCCESS:
            result = event.worker.result
            assert isinstance(result, Text)
            self.query_one("#log-tail", Static).update(result)


__all__ = ["LOG_TAIL_LINES", "PendingOptimization", "outcome_text", "settings_line"]
