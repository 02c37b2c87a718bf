"""Build a deployment package (`segtui deploy`) from the project page: a small dialog."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Static
from textual.worker import get_current_worker

from segtui.core.deploy import DeployResult, default_package_path, plan_deployment, write_deployment
from segtui.core.errors import SegtuiError
from segtui.core.settings import DEPLOY
from segtui.core.workspace import Workspace

CONTENTS = (
    "The package holds the model's IR, a standalone infer.py that pre- and post-processes "
    "exactly as segtui does, requirements.txt (the runtime, pinned), config.json and a README."
)


class DeployScreen(ModalScreen[None]):
    """Choose where the .tar.gz goes (and whether the parent model rides along), then build it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="deploy.close", tooltip="Close without building."),
        Binding(
            "ctrl+b",
            "build",
            "Build",
            id="deploy.build",
            tooltip="Write the package (Enter in the path field does the same).",
        ),
    ]

    def __init__(self, workspace: Workspace, project_id: int) -> None:
        super().__init__()
        self.workspace = workspace
        self.project_id = project_id
        self.result: DeployResult | None = None
        project = workspace.project(project_id)
        self._title = f"Deployment package — project #{project.id} {project.name}"
        self._default = default_package_path(project.name, Path.cwd())
        self._has_parent = project.parent_id is not None

    def compose(self) -> ComposeResult:
        with Vertical(id="deploy-dialog"):
            yield Static(Text(self._title, style="bold"), id="deploy-title")
            yield Static(CONTENTS, id="deploy-contents")
            yield Input(str(self._default), id="deploy-out", placeholder="path of the .tar.gz")
            yield Checkbox(
                f"{DEPLOY.with_parent.label} (infer.py --parent runs it)",
                value=DEPLOY.with_parent.default,
                id="deploy-parent",
                disabled=not self._has_parent,
            )
            yield Static(id="deploy-status")
            yield Static("enter/ctrl+b builds · escape closes", id="deploy-hint")

    def on_mount(self) -> None:
        self.query_one("#deploy-out", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_build()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_build(self) -> None:
        status = self.query_one("#deploy-status", Static)
        try:
            plan = plan_deployment(
                self.workspace,
                self.project_id,
                Path(self.query_one("#deploy-out", Input).value.strip() or self._default),
                with_parent=self.query_one("#deploy-parent", Checkbox).value,
            )
        except SegtuiError as exc:
            status.update(Text(f"✗ {exc.message} {exc.hint}".strip(), style="red"))
            return
        status.update(Text(f"Writing {plan.out} …"))
        self._write(plan)

    @work(thread=True, exclusive=True, group="deploy")
    def _write(self, plan: object) -> None:
        from segtui.core.deploy import DeployPlan

        assert isinstance(plan, DeployPlan)
        try:
            result = write_deployment(plan)
        except SegtuiError as exc:
            message = Text(f"✗ {exc.message} {exc.hint}".strip(), style="red")
            self.app.call_from_thread(self.query_one("#deploy-status", Static).update, message)
            return
        if get_current_worker().is_cancelled:
            return
        self.app.call_from_thread(self._done, result)

    def _done(self, result: DeployResult) -> None:
        self.result = result
        parent = ", with the parent model" if result.with_parent else ""
        self.query_one("#deploy-status", Static).update(
            Text(
                f"✓ Wrote {result.path} ({result.size_bytes / 1e6:.1f} MB, "
                f"{len(result.files)} files{parent}). Inside: pip install -r requirements.txt, "
                f"python infer.py IMAGES",
                style="green",
            )
        )
        self.notify(f"Deployment package written: {result.path}", timeout=6)
