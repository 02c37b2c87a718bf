"""Export a project to one .tar.gz (`segtui export`) from the project page: a small dialog.

The archive is written by an "export" job in a child process, followed with a JobMonitor
(progress, cancel, log), like every long job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Checkbox, Input, Static

from segtui.core.errors import SegtuiError
from segtui.core.preflight import submit_checked
from segtui.core.project_export import default_export_path
from segtui.core.records import JobRecord
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import ProjectRecord, Workspace
from segtui.ui.screens.base import SegtuiModalScreen
from segtui.ui.widgets.job_monitor import JobMonitor

CONTENTS = (
    "One .tar.gz with a manifest of checksums: the models' IRs, the projects (with the "
    "parent), benchmarks, sweeps and reports. `segtui import FILE` reads it elsewhere."
)


@dataclass(frozen=True)
class ExportTarget:
    """The project to export, whether it has children, and its default archive path."""

    project: ProjectRecord
    children: int
    default_out: Path


def read_target(ws: Workspace, project_id: int) -> ExportTarget:
    project = ws.project(project_id)
    return ExportTarget(project, len(ws.children(project_id)), default_export_path(ws, project_id))


class ExportScreen(SegtuiModalScreen):
    """Choose the archive's path and what rides along, then follow the export job."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="export.close", tooltip="Close the dialog."),
        Binding(
            "ctrl+s",
            "start",
            "Export",
            id="export.start",
            tooltip="Start the export job (Enter in the path field does the same).",
        ),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.target: ExportTarget | None = None
        self.job_id: int | None = None
        #: The finished job (done, failed, cancelled or interrupted), for tests and the status.
        self.finished: JobRecord | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog"):
            yield Static(Text("Loading the project…", style="bold"), id="export-title")
            yield Static(CONTENTS, id="export-contents")
            yield Input(id="export-out", placeholder="path of the .tar.gz")
            yield Checkbox("With its optimized children", value=True, id="export-children")
            yield Checkbox(
                "With the dataset's images (else re-linked on import)",
                value=False,
                id="export-dataset",
            )
            yield Checkbox("Replace an existing file", value=False, id="export-force")
            yield Vertical(id="export-job")
            yield Static(id="export-status")
            yield Static("enter/ctrl+s exports · escape closes", id="export-hint")

    def on_mount(self) -> None:
        self.query_one("#export-out", Input).focus()
        project_id = self.project_id
        self.tasks.run(
            lambda ws: read_target(ws, project_id),
            self._show_target,
            group="export-load",
            description="Load the project",
        )

    def _show_target(self, target: ExportTarget) -> None:
        self.target = target
        project = target.project
        self.query_one("#export-title", Static).update(
            Text(f"Export — project #{project.id} {project.name}", style="bold")
        )
        out = self.query_one("#export-out", Input)
        if not out.value:
            out.value = str(target.default_out)
        children = self.query_one("#export-children", Checkbox)
        children.label = f"With its optimized children ({target.children})"
        children.disabled = target.children == 0

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def action_close(self) -> None:
        if self.job_id is not None:
            self.notify(
                f"The export goes on in the background: job {self.job_id}, in the Jobs tab.",
                timeout=5,
            )
        self.dismiss(None)

    def params(self) -> dict[str, object]:
        """The export job's parameters, from the form."""
        assert self.target is not None
        text = self.query_one("#export-out", Input).value.strip()
        out = Path(text).expanduser() if text else self.target.default_out
        return {
            "out": str(out.absolute()),
            "with_children": self.query_one("#export-children", Checkbox).value,
            "with_dataset": self.query_one("#export-dataset", Checkbox).value,
            "force": self.query_one("#export-force", Checkbox).value,
        }

    def action_start(self) -> None:
        if self.target is None or self.job_id is not None:
            return  # still loading, or a job is already being followed
        params, project_id = self.params(), self.project_id
        self._status(Text(f"Starting the export to {params['out']} …"))
        self.tasks.run(
            lambda ws: submit_checked(ws, JobKind.EXPORT, project_id, params),
            self._follow,
            group="export-submit",
            description="Start the export",
            exclusive=False,
            refused=self._refused,
        )

    def _status(self, text: Text) -> None:
        self.query_one("#export-status", Static).update(text)

    def _refused(self, error: SegtuiError) -> None:
        self._status(Text(f"✗ {error.message} {error.hint}".strip(), style="red"))

    def _follow(self, job: JobRecord) -> None:
        self.job_id = job.id
        self._status(Text(""))
        monitor = JobMonitor(job.id, id="export-monitor")
        self.query_one("#export-job", Vertical).mount(monitor)
        monitor.focus()

    def on_job_monitor_finished(self, event: JobMonitor.Finished) -> None:
        job = self.finished = event.job
        self.job_id = None
        if job.state == JobState.DONE:
            result = job.result or {}
            size = float(str(result.get("size_bytes", 0))) / 1e6
            self._status(Text(f"✓ Wrote {result.get('path')} ({size:.1f} MB).", style="green"))
            self.notify(f"Project exported: {result.get('path')}", timeout=6)
        elif job.state == JobState.CANCELLED:
            self._status(Text("Export cancelled; nothing was written.", style="yellow"))
        else:
            self._status(
                Text(f"✗ {job.error or 'The export failed: l shows its log.'}", style="red")
            )


__all__ = ["ExportScreen"]
