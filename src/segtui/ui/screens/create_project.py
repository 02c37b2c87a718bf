"""Create a project from a model file and a dataset, as the Workbench's create-project page."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Header, Input, Label, ProgressBar, Select, Static
from textual.worker import Worker, WorkerState

from segtui.core import import_checks
from segtui.core.errors import SegtuiError
from segtui.core.models import load_model
from segtui.core.progress import CancelToken
from segtui.core.projects import create_project_from_paths
from segtui.core.workspace import ProjectRecord, Workspace
from segtui.ui import messages
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.styles import css_path
from segtui.ui.widgets.path_field import (
    PathField,
    check_dataset_path,
    check_images_dir,
    check_model_path,
)

CREATE_GROUP = "create-project"
COMPACT_BELOW_ROWS = 32


def parse_input_shape(text: str) -> list[int] | None:
    """'1,3,800,1344' or '1x3x800x1344' → [1, 3, 800, 1344]; '' → None; SegtuiError otherwise."""
    if not text.strip():
        return None
    return list(import_checks.check_input_shape(import_checks.parse_input_shape(text)))


class CreateProjectScreen(SegtuiScreen):
    """The form; ctrl+s imports model and dataset in a thread and opens the new project."""

    CSS_PATH = css_path("create_project.tcss")
    TITLE = "Create project"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+s",
            "create",
            "Create",
            id="create.submit",
            tooltip="Import the model and the dataset and create the project.",
        ),
        Binding(
            "escape",
            "back",
            "Back",
            id="create.back",
            tooltip="Go back (cancels a running import).",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._cancel: CancelToken | None = None

    def compose(self) -> ComposeResult:
        devices = self.segtui.devices
        yield Header()
        with VerticalScroll(id="form"):
            yield PathField(
                "Model file",
                check_model_path,
                placeholder="path/to/model.xml or model.onnx",
                id="model-field",
            )
            yield PathField(
                "Dataset",
                check_dataset_path,
                placeholder="folder of images, or COCO instances .json",
                id="dataset-field",
            )
            yield PathField(
                "Images folder (COCO only)",
                check_images_dir,
                placeholder="optional",
                id="images-field",
            )
            with Horizontal(id="options"):
                with Vertical(classes="option"):
                    yield Label("Device", classes="field-label")
                    yield Select(
                        [(d, d) for d in devices], value=devices[0], allow_blank=False, id="device"
                    )
                with Vertical(classes="option"):
                    yield Label("Input shape (optional)", classes="field-label")
                    yield Input(placeholder="N,C,H,W e.g. 1,3,800,1344", id="input-shape")
            yield Label("Project name (optional)", classes="field-label")
            yield Input(placeholder="model · dataset", id="name")
            with Horizontal(id="actions"):
                yield Button("Create project", id="create", variant="primary")
                yield Static("ctrl+s creates · escape goes back", id="actions-hint")
            with Vertical(id="running"):
                yield Static("", id="stage")
                yield ProgressBar(total=1.0, show_eta=False, id="progress")
            yield Static("", id="error")
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        # Borderless inputs on short terminals, so the whole form fits 80×24 without scrolling.
        compact = event.size.height < COMPACT_BELOW_ROWS
        for widget in self.query("Input, Select"):
            if isinstance(widget, Input | Select):
                widget.compact = compact

    def on_mount(self) -> None:
        self.query_one("#running").display = False
        self.query_one("#error").display = False
        self.query_one("#model-field", PathField).input.focus()

    # -- actions -------------------------------------------------------------------

    @on(Button.Pressed, "#create")
    def _create_pressed(self) -> None:
        self.action_create()

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        # Enter in a field moves on, as Tab does; ctrl+s or the button create.
        self.focus_next()

    def action_create(self) -> None:
        if self._cancel is not None:
            return  # already running
        model_field = self.query_one("#model-field", PathField)
        dataset_field = self.query_one("#dataset-field", PathField)
        images_field = self.query_one("#images-field", PathField)
        problems = [
            f"{label}: {field.check.message}"
            for label, field in (
                ("Model", model_field),
                ("Dataset", dataset_field),
                ("Images folder", images_field),
            )
            if field.recheck().ok is False
        ]
        try:
            input_shape = parse_input_shape(self.query_one("#input-shape", Input).value)
        except SegtuiError as exc:
            problems.append(f"Input shape: {exc.message} {exc.hint}")
            input_shape = None
        typed = self.query_one("#name", Input).value
        name: str | None = None
        try:
            name = import_checks.check_name(
                typed or None, "The project name", default="'model · dataset'"
            )
        except SegtuiError as exc:
            problems.append(f"Name: {exc.message}")
        if problems:
            self.show_error(
                "Cannot create the project yet.\n" + "\n".join(f"✗ {p}" for p in problems)
            )
            return
        device = self.query_one("#device", Select).value
        self._cancel = CancelToken()
        self.show_error(None)
        self._set_running(True)
        self.create_project(
            self.segtui.workspace.root,
            model_path=Path(model_field.value).expanduser(),
            dataset_path=Path(dataset_field.value).expanduser(),
            images_dir=Path(images_field.value).expanduser() if images_field.value else None,
            device=str(device),
            name=name,
            input_shape=input_shape,
            cancel=self._cancel,
        )

    def action_back(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            self.notify("Cancelling the import…", timeout=3)
            return
        self.app.pop_screen()

    # -- the worker ------------------------------------------------------------------

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group=CREATE_GROUP,
        description="Create project",
    )
    def create_project(
        self,
        workspace_root: Path,
        *,
        model_path: Path,
        dataset_path: Path,
        images_dir: Path | None,
        device: str,
        name: str | None,
        input_shape: list[int] | None,
        cancel: CancelToken,
    ) -> ProjectRecord:
        def progress(fraction: float, stage: str) -> None:
            self.post_message(messages.ImportProgress(fraction, stage))

        # SQLite connections belong to one thread: this worker opens its own.
        ws = Workspace(workspace_root)
        try:
            # The full model check first: a refused model must not wait for a long dataset scan.
            progress(0.0, f"Checking {model_path.name}…")
            load_model(model_path, input_shape=input_shape)
            cancel.raise_if_cancelled()
            return create_project_from_paths(
                ws,
                model_path=model_path,
                dataset_path=dataset_path,
                images_dir=images_dir,
                device=device,
                name=name,
                input_shape=input_shape,
                progress=progress,
                cancel=cancel,
            )
        finally:
            ws.close()

    def on_import_progress(self, event: messages.ImportProgress) -> None:
        self.query_one("#progress", ProgressBar).update(progress=event.fraction)
        self.query_one("#stage", Static).update(Text(event.stage))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != CREATE_GROUP or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        self._cancel = None
        self._set_running(False)
        if event.state == WorkerState.SUCCESS:
            project = event.worker.result
            assert isinstance(project, ProjectRecord)
            self.post_message(messages.ProjectsChanged())
            self.notify(f"Project #{project.id} created.", timeout=3)
            self.segtui.show_project(project.id, replace=True)
        elif event.state == WorkerState.ERROR:
            self.segtui.report_worker_failure(event.worker)
            error = event.worker.error
            if isinstance(error, SegtuiError):
                text = f"✗ {error.message}" + (f"\n{error.hint}" if error.hint else "")
            else:
                text = f"✗ Unexpected error: {type(error).__name__}: {error}"
            self.show_error(text)

    # -- display ---------------------------------------------------------------------

    def _set_running(self, running: bool) -> None:
        self.query_one("#running").display = running
        self.query_one("#create", Button).disabled = running
        if running:
            self.query_one("#progress", ProgressBar).update(progress=0)
            self.query_one("#running").scroll_visible()

    def show_error(self, text: str | None) -> None:
        error = self.query_one("#error", Static)
        error.update(Text(text or ""))
        error.display = bool(text)
        if text:
            error.scroll_visible()
