"""Perform → Optimize: the Workbench's INT8 settings page, then the running job until the child exists.

The settings mirror the Workbench (method, calibration scheme, subset size,
AccuracyAware limits) and add what segtui does differently: the
instance-segmentation-aware ignored scope, found from the graph when the screen
opens and shown before anything starts, and the preset the model's format calls
for (Mixed for YOLO-seg), with the reason under it. Starting submits an "optimize" job
(a child process, see segtui.core.jobs); this screen then follows it with a
JobMonitor and, when it is done, replaces itself with the new child project.

The page composes two widgets: the settings form (`OptimizeForm`) and the
submitted job (`PendingOptimization`). The project is read in a thread worker
(`OptimizePage`) and the form is mounted once it is in (it needs the dataset);
queuing the job runs in a thread too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static
from textual.worker import Worker, WorkerState

from segtui.core import jobs
from segtui.core.errors import SegtuiError
from segtui.core.ignored_scope import ScopeAnalysis, analyse_scope
from segtui.core.preflight import submit_checked
from segtui.core.types import JobKind, JobState, Method, Preset
from segtui.core.workspace import DatasetRecord, JobRecord, ModelRecord, ProjectRecord, Workspace
from segtui.ui import messages
from segtui.ui.commands import Command, CommandList
from segtui.ui.screens.base import FINISHED_STATES, SegtuiScreen
from segtui.ui.styles import css_path
from segtui.ui.widgets.job_monitor import JobMonitor
from segtui.ui.widgets.optimize_form import METHOD_HELP, PRESET_HELP, OptimizeForm
from segtui.ui.widgets.optimize_pending import PendingOptimization

LOAD_GROUP = "optimize-load"
SCOPE_GROUP = "optimize-scope"
SUBMIT_GROUP = "optimize-submit"
ALREADY_INT8 = "This project's model is already INT8: optimize its parent instead."
#: The ended states after which the settings can be edited and the job tried again.
RETRY_STATES = (JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED)


@dataclass(frozen=True)
class OptimizePage:
    """The project to optimize, its model and dataset, read in a thread when the page opens."""

    project: ProjectRecord
    model: ModelRecord
    dataset: DatasetRecord
    #: An optimization of the project queued or running (followed instead of a new form).
    running: JobRecord | None


def load_optimize_page(ws: Workspace, project_id: int) -> OptimizePage:
    project = ws.project(project_id)
    return OptimizePage(
        project,
        ws.model(project.model_id),
        ws.dataset(project.dataset_id),
        jobs.active_job(ws, project_id, JobKind.OPTIMIZE),
    )


def title_text(page: OptimizePage) -> Text:
    """The page's heading: the project, its model and its dataset."""
    project, model, dataset = page.project, page.model, page.dataset
    kind = "annotated" if dataset.annotated else "not annotated"
    return Text.assemble(
        (f"Optimize project #{project.id} ", "bold"),
        (project.name, "bold"),
        ("  INT8 calibration with NNCF\n", "dim"),
        ("Model ", "dim"),
        model.name,
        ("  Dataset ", "dim"),
        f"{dataset.name} ({kind}, {max(1, dataset.image_count)} images)",
    )


class OptimizeCommands(CommandList):
    """The Optimize page's commands: start, the method and preset choices; later parent, edit."""

    def build(self) -> list[Command]:
        screen = self.screen
        if not isinstance(screen, OptimizeScreen) or screen.page is None:
            return []
        if screen.job_id is not None:
            commands: list[Command] = [
                (
                    "Open parent project",
                    screen.action_open_parent,
                    "The project being optimized (p)",
                )
            ]
            if screen.check_action("edit_settings", ()):
                commands.append(
                    ("Edit optimization settings", screen.action_edit_settings, "Try again (e)")
                )
            return commands
        form = screen.form
        return [
            (
                "Start optimization",
                screen.action_start,
                "INT8 calibration with these settings (ctrl+s)",
            ),
            (
                "Method: Default",
                partial(form.choose, "method-default"),
                METHOD_HELP[Method.DEFAULT],
            ),
            (
                "Method: AccuracyAware",
                partial(form.choose, "method-aa"),
                METHOD_HELP[Method.ACCURACY_AWARE],
            ),
            (
                "Preset: Performance",
                partial(form.choose, "preset-performance"),
                PRESET_HELP[Preset.PERFORMANCE],
            ),
            ("Preset: Mixed", partial(form.choose, "preset-mixed"), PRESET_HELP[Preset.MIXED]),
            (
                "Toggle the automatic ignored scope",
                partial(form.toggle_switch, "auto-ignore"),
                "Keep the geometry in floating point, or let NNCF quantize it",
            ),
            (
                "Toggle fast bias correction",
                partial(form.toggle_switch, "fast-bias"),
                "Fast (NNCF's default) or the slower, more exact bias correction",
            ),
        ]


class OptimizeScreen(SegtuiScreen):
    """INT8 optimization of one project: settings, then the job until the child project exists."""

    CSS_PATH = css_path("optimize.tcss")
    TITLE = "Optimize"
    COMMANDS = Screen.COMMANDS | {OptimizeCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+s",
            "start",
            "Optimize",
            id="optimize.start",
            tooltip="Start INT8 calibration with these settings (a background job).",
        ),
        Binding(
            "escape",
            "back",
            "Back",
            id="optimize.back",
            tooltip="Go back to the project (a started job goes on in the background).",
        ),
        Binding(
            "p",
            "open_parent",
            "Parent project",
            id="optimize.parent",
            tooltip="Open the project being optimized (the parent of the new one).",
        ),
        Binding(
            "e",
            "edit_settings",
            "Edit settings",
            id="optimize.edit",
            tooltip="Back to the settings, to try again after a failed or cancelled job.",
        ),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.scope_error: str | None = None
        self.job_id: int | None = None
        self.job_state: JobState | None = None
        self.child_ready: int | None = None
        #: The project, read in a thread when the page opens.
        self.page: OptimizePage | None = None
        #: A job is being queued (in a thread): a second start waits for it.
        self.submitting = False

    @property
    def form(self) -> OptimizeForm:
        return self.query_one(OptimizeForm)

    @property
    def scope(self) -> ScopeAnalysis | None:
        """The analysed graph, once the analysis is done."""
        forms = self.query(OptimizeForm)
        return forms.first().scope if forms else None

    # -- layout ----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="form-view"):
            yield Static("Loading the project…", id="opt-title")
            # The settings form goes here once the project is read (it needs the dataset).
            with Horizontal(id="actions"):
                yield Button("Optimize", id="start", variant="primary", compact=True)
                yield Static("ctrl+s starts · escape goes back", id="actions-hint")
            yield Static(id="start-error")
        yield PendingOptimization(id="pending-view")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(PendingOptimization).display = False
        self.query_one("#start-error").display = False
        project_id = self.project_id
        self.tasks.run(
            lambda ws: load_optimize_page(ws, project_id),
            self.show_page,
            group=LOAD_GROUP,
            description="Load the project",
        )

    async def show_page(self, page: OptimizePage) -> None:
        """The project is read: the title, the settings form for its dataset, the graph analysis."""
        self.page = page
        project, model, dataset = page.project, page.model, page.dataset
        self.sub_title = f"Project #{project.id} {project.name}"
        self.query_one("#opt-title", Static).update(title_text(page))
        form = OptimizeForm(
            dataset.image_count, dataset.annotated, format_id=model.format_id, id="form"
        )
        await self.query_one("#form-view").mount(form, before="#actions")
        if model.is_optimized and model.analysis.get("int8"):
            self.scope_error = ALREADY_INT8
            form.show_scope_problem(ALREADY_INT8)
        else:
            self.analyse(model)
        if page.running is not None:
            # One optimization at a time per project: follow the one already under way.
            self._show_pending(page.running)
        else:
            self.query_one("#method").focus()

    # -- the ignored scope, found in a thread ----------------------------------------

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group=SCOPE_GROUP,
        description="Analyse the model's graph",
    )
    def analyse(self, model: ModelRecord) -> ScopeAnalysis:
        return analyse_scope(model)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == SUBMIT_GROUP and event.state in FINISHED_STATES:
            self.submitting = False  # queued (the job is shown next) or refused: both end here
        if event.worker.group != SCOPE_GROUP:
            return
        if event.state == WorkerState.SUCCESS:
            result = event.worker.result
            assert isinstance(result, ScopeAnalysis)
            self.form.show_scope(result)
        elif event.state == WorkerState.ERROR:
            self.segtui.report_worker_failure(event.worker)
            error = event.worker.error
            self.scope_error = str(error) if isinstance(error, SegtuiError) else repr(error)
            self.form.show_scope_problem(
                f"✗ Cannot analyse the graph: {self.scope_error}", bad=True
            )

    # -- starting and following the job -------------------------------------------------

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        pending = self.job_id is not None
        if action == "start":
            return not pending
        if action == "open_parent":
            return pending
        if action == "edit_settings":
            return pending and self.job_state in RETRY_STATES
        return super().check_action(action, parameters)

    def _start_problems(self) -> tuple[dict[str, object], list[str]]:
        """The job's parameters, and what keeps it from starting."""
        settings, problems = self.form.check_all()
        if self.scope_error == ALREADY_INT8:
            problems.insert(0, self.scope_error)
        elif self.scope is None and self.scope_error is None and settings.auto_ignore:
            problems.insert(0, "The model's graph is still being analysed: a moment.")
        if not problems:
            try:
                settings.validate()
            except SegtuiError as exc:
                problems.append(str(exc))
        return settings.to_json(), problems

    def action_start(self) -> None:
        if self.page is None or self.job_id is not None or self.submitting:
            return
        params, problems = self._start_problems()
        if problems:
            self._show_start_error("Cannot start yet.\n" + "\n".join(f"✗ {p}" for p in problems))
            return
        self._show_start_error(None)
        self.submitting = True
        project_id = self.project_id
        self.tasks.run(
            lambda ws: submit_checked(ws, JobKind.OPTIMIZE, project_id, params),
            self._show_pending,
            group=SUBMIT_GROUP,
            description="Queue the optimization",
            exclusive=False,
            refused=lambda error: self._show_start_error(f"✗ {error}"),
        )

    def _show_start_error(self, text: str | None) -> None:
        error = self.query_one("#start-error", Static)
        error.update(Text(text or ""))
        error.display = bool(text)

    def _show_pending(self, job: JobRecord) -> None:
        self.job_id = job.id
        self.job_state = job.state
        self.query_one("#form-view").display = False
        pending = self.query_one(PendingOptimization)
        pending.display = True
        assert self.page is not None
        pending.follow(job, self.page.project).focus()
        self.refresh_bindings()

    def on_job_monitor_finished(self, event: JobMonitor.Finished) -> None:
        job = event.job
        self.job_state = job.state
        self.refresh_bindings()
        child_id = job.result.get("child_project_id") if job.result else None
        if job.state == JobState.DONE and child_id:
            self._child_created(int(child_id))
            return
        self.query_one(PendingOptimization).show_outcome(job)

    def _child_created(self, child_id: int) -> None:
        self.post_message(messages.ProjectsChanged())
        self.notify(
            f"Project #{child_id} created: the INT8 model of #{self.project_id}.",
            title="Optimization done",
            timeout=6,
        )
        # Not `is_current`: that is also true under another full screen (the parent's page).
        if self.app.screen is self:
            self.segtui.show_project(child_id, replace=True)
        else:
            self.child_ready = child_id

    def on_screen_resume(self) -> None:
        if self.child_ready is not None:
            child_id, self.child_ready = self.child_ready, None
            self.segtui.show_project(child_id, replace=True)

    def action_open_parent(self) -> None:
        self.segtui.show_project(self.project_id)

    def action_edit_settings(self) -> None:
        self.job_id = None
        self.job_state = None
        pending = self.query_one(PendingOptimization)
        pending.stop()
        pending.display = False
        self.query_one("#form-view").display = True
        self.query_one("#method").focus()
        self.refresh_bindings()

    def action_back(self) -> None:
        if self.job_id is not None and self.job_state is not None and self.job_state.active:
            self.notify(
                f"The optimization goes on in the background: see the Jobs tab of "
                f"project #{self.project_id}.",
                timeout=5,
            )
        self.app.pop_screen()


__all__ = ["OptimizeCommands", "OptimizeScreen"]
