"""Build a deployment package (`segtui deploy`) from the project page: a small dialog."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Checkbox, Input, Static

from segtui.core.deploy import DeployResult, default_output, plan_deployment, write_deployment
from segtui.core.deploy_config import PackagedRuntime, recommended_runtime, runtime_line
from segtui.core.errors import SegtuiError
from segtui.core.settings import DEPLOY
from segtui.core.workspace import ProjectRecord, Workspace
from segtui.ui.screens.base import SegtuiModalScreen

CONTENTS = (
    "The package holds the model's IR, a standalone infer.py that pre- and post-processes "
    "exactly as segtui does, requirements.txt (the runtime, pinned), config.json and a README."
)


@dataclass(frozen=True)
class DeployTarget:
    """The project to package, where its package goes by default (the workspace's deploy/
    folder, shown in the path field before anything is written) and the runtime
    configuration its infer.py will use (from the latest sweep), read in a thread."""

    project: ProjectRecord
    default_out: Path
    runtime: PackagedRuntime


def read_target(ws: Workspace, project_id: int) -> DeployTarget:
    return DeployTarget(
        ws.project(project_id),
        default_output(ws, project_id),
        recommended_runtime(ws, project_id),
    )


def build_package(ws: Workspace, project_id: int, out: Path, with_parent: bool) -> DeployResult:
    """Check the request, gather the package's contents and write it (in a thread)."""
    return write_deployment(plan_deployment(ws, project_id, out, with_parent=with_parent))


class DeployScreen(SegtuiModalScreen):
    """Choose where the .tar.gz goes (and whether the parent model rides along), then build it.

    The project is read, and the package planned and written, in thread workers.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="deploy.close", tooltip="Close without building."),
        Binding(
            "ctrl+s",
            "build",
            "Build",
            id="deploy.build",
            tooltip="Write the package (Enter in the path field does the same).",
        ),
        Binding(
            "ctrl+b",
            "build",
            "Build",
            show=False,
            id="deploy.build_b",
            tooltip="Write the package (the same as ctrl+s).",
        ),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.target: DeployTarget | None = None
        self.result: DeployResult | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="deploy-dialog"):
            yield Static(Text("Loading the project…", style="bold"), id="deploy-title")
            yield Static(CONTENTS, id="deploy-contents")
            yield Input(id="deploy-out", placeholder="path of the .tar.gz")
            yield Checkbox(
                f"{DEPLOY.with_parent.label} (infer.py --parent runs it)",
                value=DEPLOY.with_parent.default,
                id="deploy-parent",
                disabled=True,  # until the project is read: only a child has a parent
            )
            yield Static(id="deploy-status")
            yield Static("enter/ctrl+b builds · escape closes", id="deploy-hint")

    def on_mount(self) -> None:
        self.query_one("#deploy-out", Input).focus()
        project_id = self.project_id
        self.tasks.run(
            lambda ws: read_target(ws, project_id),
            self._show_target,
            group="deploy-load",
            description="Load the project",
        )

    def _show_target(self, target: DeployTarget) -> None:
        self.target = target
        project = target.project
        self.query_one("#deploy-title", Static).update(
            Text(f"Deployment package — project #{project.id} {project.name}", style="bold")
        )
        self.query_one("#deploy-contents", Static).update(
            f"{CONTENTS}\n{runtime_line(target.runtime)}"
        )
        out = self.query_one("#deploy-out", Input)
        if not out.value:
            out.value = str(target.default_out)
        self.query_one("#deploy-parent", Checkbox).disabled = project.parent_id is None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_build()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_build(self) -> None:
        if self.target is None:
            return  # the project is still being read
        out = Path(self.query_one("#deploy-out", Input).value.strip() or self.target.default_out)
        with_parent = self.query_one("#deploy-parent", Checkbox).value
        self.query_one("#deploy-status", Static).update(Text(f"Writing {out} …"))
        project_id = self.project_id
        self.tasks.run(
            lambda ws: build_package(ws, project_id, out, with_parent),
            self._done,
            group="deploy",
            description="Build the deployment package",
            refused=self._refused,
        )

    def _refused(self, error: SegtuiError) -> None:
        self.query_one("#deploy-status", Static).update(
            Text(f"✗ {error.message} {error.hint}".strip(), style="red")
        )

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
