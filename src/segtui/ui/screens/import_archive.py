"""Import a `segtui export` archive (`segtui import`) from the projects list: a small dialog.

The import runs in a thread worker, not as a job: a refused archive must leave no job row
(see core.project_import). Escape while it runs cancels it; the workspace stays as it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from segtui.core.errors import SegtuiError
from segtui.core.progress import CancelToken
from segtui.core.workspace import Workspace
from segtui.ui import messages
from segtui.ui.screens.base import SegtuiModalScreen, segtui_app
from segtui.ui.widgets.path_field import PathCheck, PathField

if TYPE_CHECKING:
    from segtui.core.project_import import ImportedRow, ImportOutcome

CONTENTS = (
    "A .tar.gz from `segtui export`: new ids, links kept, what is already here reused. "
    "A bad archive is refused before anything is written."
)


def _path(value: str) -> Path:
    return Path(os.path.expanduser(value.strip()))


def check_archive_path(value: str) -> PathCheck:
    """The archive: an existing file (the import itself decides whether it is a good one)."""
    if not value.strip():
        return PathCheck(False, "required: the .tar.gz that `segtui export` wrote")
    path = _path(value)
    if not path.exists():
        return PathCheck(False, "no such file")
    if path.is_dir():
        return PathCheck(False, "a folder: pick the .tar.gz file")
    if not path.name.endswith((".tar.gz", ".tgz")):
        return PathCheck(None, "not named .tar.gz: the import checks what it holds")
    return PathCheck(True, "archive file")


def check_dataset_root(value: str) -> PathCheck:
    """The optional folder the dataset's images moved to."""
    if not value.strip():
        return PathCheck(None, "optional: only when the archive has no images and they moved")
    path = _path(value)
    if not path.is_dir():
        return PathCheck(False, "no such folder")
    return PathCheck(True, "folder")


def _rows_summary(what: str, rows: list[ImportedRow]) -> str:
    added = sum(row["status"] != "reused" for row in rows)
    reused = len(rows) - added
    return f"{what} {added} added" + (f", {reused} reused" if reused else "")


def outcome_text(outcome: ImportOutcome) -> str:
    """One line per kind of row: added and reused (renamed ones count as added)."""
    results = outcome["results"]
    added = sum(r["status"] == "added" for r in results)
    here = len(results) - added
    renamed = [r["name"] for r in outcome["projects"] if r["status"] == "renamed"]
    lines = [
        f"✓ Imported: project #{outcome['project_id']}.",
        " · ".join(
            _rows_summary(what, rows)
            for what, rows in (
                ("projects", outcome["projects"]),
                ("models", outcome["models"]),
                ("datasets", outcome["datasets"]),
            )
        ),
        f"results {added} added, {here} already here",
    ]
    if renamed:
        lines.append("renamed (the name was taken): " + ", ".join(renamed))
    return "\n".join(lines)


class ImportScreen(SegtuiModalScreen):
    """Choose the archive (and where the images are now), import it, then open the project."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "close",
            "Close",
            id="import.close",
            tooltip="Close the dialog (while importing: cancel; the workspace stays as it was).",
        ),
        Binding(
            "ctrl+s",
            "start",
            "Import",
            id="import.start",
            tooltip="Import the archive (Enter in a path field does the same).",
        ),
        Binding(
            "o,enter",
            "open",
            "Open project",
            id="import.open",
            tooltip="Open the imported project's page.",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cancel = CancelToken()
        self.running = False
        #: What the import did, once it succeeded (for tests and the open key).
        self.outcome: ImportOutcome | None = None
        #: The last refusal's message, for tests.
        self.refusal: SegtuiError | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="import-dialog"):
            yield Static(Text("Import a project archive", style="bold"), id="import-title")
            yield Static(CONTENTS, id="import-contents")
            yield PathField(
                "Archive",
                check_archive_path,
                placeholder="path of the .tar.gz",
                id="import-file",
            )
            yield PathField(
                "Dataset folder (if the images moved)",
                check_dataset_root,
                placeholder="optional",
                id="import-dataset",
            )
            yield Static(id="import-status")
            yield Static("enter/ctrl+s imports · escape closes", id="import-hint")

    def on_mount(self) -> None:
        self.query_one("#import-file", PathField).input.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open":
            return self.outcome is not None
        if action == "start":
            return self.outcome is None and not self.running
        return True

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def action_close(self) -> None:
        if self.running:
            self.cancel.cancel()
            self.notify("Import cancelled: the workspace is as it was.", timeout=4)
        self.dismiss(None)

    def action_open(self) -> None:
        if self.outcome is not None:
            project_id = self.outcome["project_id"]
            self.dismiss(None)
            segtui_app(self).show_project(project_id)

    def action_start(self) -> None:
        if self.running or self.outcome is not None:
            return
        archive = self.query_one("#import-file", PathField).value
        root_text = self.query_one("#import-dataset", PathField).value
        if not archive:
            self._refused(SegtuiError("The archive path is empty.", "Give the .tar.gz to import."))
            return
        path, root = _path(archive), _path(root_text) if root_text else None
        self.running, self.refusal = True, None
        self._progress(0.0, "Reading the archive")
        self.tasks.run(
            lambda ws: self._import(ws, path, root),
            self._done,
            group="import-archive",
            description="Import the archive",
            exclusive=False,
            refused=self._refused,
        )

    def _import(self, ws: Workspace, path: Path, root: Path | None) -> ImportOutcome:
        """In the worker thread: the import (its module loads here, off the start path)."""
        from segtui.core.project_import import import_archive

        def progress(fraction: float, stage: str) -> None:
            if not self.cancel.cancelled:
                self.app.call_from_thread(self._progress, fraction, stage)

        return import_archive(ws, path, dataset_root=root, progress=progress, cancel=self.cancel)

    def _progress(self, fraction: float, stage: str) -> None:
        # The status line shows the progress until the outcome or the refusal replaces it.
        self._status(Text(f"{fraction:4.0%} {stage}", style="dim"))

    def _status(self, text: Text) -> None:
        self.query_one("#import-status", Static).update(text)

    def _refused(self, error: SegtuiError) -> None:
        self.running, self.refusal = False, error
        self._status(Text(f"✗ {error.message} {error.hint}".strip(), style="red"))
        self.refresh_bindings()

    def _done(self, outcome: ImportOutcome) -> None:
        self.running, self.outcome = False, outcome
        self._status(Text(outcome_text(outcome), style="green"))
        self.query_one("#import-hint", Static).update("enter/o opens the project · escape closes")
        # The fields are done with: Enter and o go to the dialog, not to an input.
        for field in self.query(PathField):
            field.disabled = True
        self.refresh_bindings()
        self.post_message(messages.ProjectsChanged())
        self.notify(f"Archive imported: project #{outcome['project_id']}", timeout=5)


__all__ = ["ImportScreen", "check_archive_path", "outcome_text"]
