"""Sensitivity of an optimized project: which quantizer groups cost the accuracy, and one key to
re-optimize with the chosen ones kept in floating point.

The analysis is a "sensitivity" job (segtui.core.sensitivity), started here with the
SENSITIVITY schema's fields and followed with a JobMonitor (progress, ETA, `c` cancels,
`l` the log); the latest stored analysis is shown when it ends and on reopening. The
table ranks the INT8 model's quantizer groups (error score, metric change when kept in float,
time cost); space marks rows, `a` marks the recommended set, and `o` submits an
optimization of the PARENT with the marked groups' layers added to the ignored scope
(core.keep_float), then opens the Optimize page, which follows that job and opens the
new child when it is done. Everything is read and written in thread workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, Static
from textual.worker import Worker

from segtui.core import jobs
from segtui.core.errors import SegtuiError
from segtui.core.keep_float import KeepFloatPlan, keep_float_plan, submit_keep_float
from segtui.core.preflight import submit_checked
from segtui.core.records import JobRecord, ProjectRecord
from segtui.core.sensitivity import SensitivityResult, check_analysable, latest_sensitivity
from segtui.core.settings import SENSITIVITY, SettingError
from segtui.core.types import JobKind, JobState
from segtui.core.workspace import Workspace
from segtui.ui import messages
from segtui.ui.commands import ScreenKeyCommands
from segtui.ui.screens.base import FINISHED_STATES, SegtuiScreen
from segtui.ui.screens.report_form import field_input
from segtui.ui.styles import css_path
from segtui.ui.widgets.job_monitor import JobMonitor
from segtui.ui.widgets.sensitivity_table import (
    SensitivityTable,
    detail_text,
    headline,
    selection_text,
)

LOAD_GROUP = "sensitivity-load"
SUBMIT_GROUP = "sensitivity-submit"
REOPTIMIZE_GROUP = "sensitivity-reoptimize"
EMPTY = (
    "No sensitivity analysis of this project yet. ctrl+s runs one: it scores every "
    "quantizer group of the INT8 model against the parent, measures the metric with the "
    "most suspicious ones kept in floating point, and what each costs in speed."
)
RUNNING = "The analysis is running: its table appears here when it is done."
NOTHING_SELECTED = "Select the groups to keep in floating point first."
SELECT_HINT = "space selects the row under the cursor; a selects the recommended set."

#: The accuracy report's key to this screen: "why is accuracy lost?".
WHY_BINDING = Binding(
    "w",
    "why",
    "Why?",
    id="report.why",
    tooltip="Why is accuracy lost? The sensitivity analysis: which quantizer groups cost it, "
    "and re-optimizing with them kept in floating point.",
)


@dataclass(frozen=True)
class SensitivityPage:
    """The project, its latest stored analysis and a running analysis, read in a thread."""

    project: ProjectRecord
    parent: ProjectRecord | None
    #: (result id, data) of the latest stored analysis.
    analysis: tuple[int, SensitivityResult] | None
    #: An analysis queued or running (followed on opening).
    active: JobRecord | None
    #: Why no analysis can run now ("message hint"), None when one can.
    problem: str | None


def _problem(error: SegtuiError) -> str:
    return f"{error.message} {error.hint}".strip()


def load_page(ws: Workspace, project_id: int) -> SensitivityPage:
    project = ws.project(project_id)
    parent, problem = None, None
    try:
        parent = check_analysable(ws, project_id)
    except SegtuiError as exc:
        problem = _problem(exc)
    active = jobs.active_job(ws, project_id, JobKind.SENSITIVITY)
    return SensitivityPage(project, parent, latest_sensitivity(ws, project_id), active, problem)


@dataclass(frozen=True)
class Reoptimization:
    """The optimization job submitted from an analysis, and its plan."""

    plan: KeepFloatPlan
    job: JobRecord


def reoptimize(ws: Workspace, result_id: int, group_ids: list[int]) -> Reoptimization:
    """Submit the optimization of the parent with `group_ids` kept in floating point."""
    plan = keep_float_plan(ws, result_id, group_ids=group_ids)
    return Reoptimization(plan, submit_keep_float(ws, plan))


class SensitivityScreen(SegtuiScreen):
    """The sensitivity analysis of one optimized project, and re-optimizing from it."""

    CSS_PATH = css_path("sensitivity.tcss")
    COMMANDS = Screen.COMMANDS | {ScreenKeyCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "back",
            "Back",
            show=False,
            id="sensitivity.back",
            tooltip="Go back (a running analysis goes on in the background).",
        ),
        Binding(
            "ctrl+s",
            "start",
            "Analyse",
            id="sensitivity.start",
            tooltip="Run the sensitivity analysis with these settings (a background job; "
            "the stored one is replaced when it is done).",
        ),
        Binding(
            "a",
            "select_recommended",
            "Recommended",
            id="sensitivity.recommended",
            tooltip="Select the recommended set (again: select nothing).",
        ),
        Binding(
            "o",
            "reoptimize",
            "Re-optimize",
            id="sensitivity.reoptimize",
            tooltip="Optimize the parent again with the selected groups kept in floating "
            "point (plus the automatic scope): a new INT8 child project.",
        ),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.page: SensitivityPage | None = None
        self.result_id: int | None = None
        self.result: SensitivityResult | None = None
        self.job_id: int | None = None
        #: A job is being submitted (in a thread): a second key waits for it.
        self.submitting = False
        #: The optimization submitted from here (for the status line and tests).
        self.submitted: Reoptimization | None = None

    # -- layout ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="sens-head"):
            with Horizontal(id="sens-form"):
                for field in SENSITIVITY:
                    yield Label(field.label, classes="field-label long")
                    yield Label(field.flag.removeprefix("--"), classes="field-label short")
                    yield field_input(field, f"sens-field-{field.name}")
            yield Static(id="sens-note")
        yield Vertical(id="job-area")
        yield Static("Loading the analysis…", id="sens-summary")
        yield Static(id="sens-status")
        yield SensitivityTable(id="sens-table")
        yield Static(id="sens-detail")
        yield Footer(compact=True)

    @property
    def table(self) -> SensitivityTable:
        return self.query_one("#sens-table", SensitivityTable)

    def on_mount(self) -> None:
        self.title = f"Sensitivity · Project #{self.project_id}"
        self.table.display = False
        self.query_one("#sens-detail").display = False
        self.table.focus()
        self.load()

    def load(self) -> None:
        project_id = self.project_id
        self.tasks.run(
            lambda ws: load_page(ws, project_id),
            self.show_page,
            group=LOAD_GROUP,
            description="Load the sensitivity analysis",
            refused=self._load_refused,
        )

    def _load_refused(self, error: SegtuiError) -> None:
        self.query_one("#sens-summary", Static).update(Text(f"✗ {_problem(error)}", "red"))

    def show_page(self, page: SensitivityPage) -> None:
        first = self.page is None
        self.page = page
        self.sub_title = page.project.name
        note = self.query_one("#sens-note", Static)
        note.update(Text(f"✗ {page.problem}" if page.problem else "", "red"))
        note.display = bool(page.problem)
        if page.analysis is None:
            self.result_id, self.result = None, None
            self.query_one("#sens-summary", Static).update("" if page.problem else EMPTY)
        else:
            self.result_id, self.result = page.analysis
            self._show_result()
        self.table.display = self.result is not None
        self.query_one("#sens-detail").display = self.result is not None
        self._update_status()
        self.refresh_bindings()
        if first and page.active is not None:
            self._follow(page.active.id)

    def _show_result(self) -> None:
        assert self.result is not None and self.result_id is not None
        result = self.result
        self.query_one("#sens-summary", Static).update(headline(self.result_id, result))
        settings = result["settings"]
        for field in SENSITIVITY:
            value = settings.get(field.name)
            if value is not None:
                self.query_one(f"#sens-field-{field.name}", Input).value = field.format(value)
        self.table.show(result["groups"], self.size.width)
        self._show_detail()

    def on_resize(self) -> None:
        if self.result is not None:
            self.table.relayout(self.size.width)

    def _update_status(self) -> None:
        status = self.query_one("#sens-status", Static)
        if self.result is None:
            status.update("")
            return
        groups = self.result["groups"]
        parts = [f"{len(groups)} groups", selection_text(groups, self.table.marked)]
        sort = self.table.sorted_by
        if sort is not None:
            label = self.table.label_of(sort[0])
            parts.append(f"sorted by {label} {'↓' if sort[1] else '↑'}")
        status.update(" · ".join(parts))

    def _show_detail(self) -> None:
        row = self.table.cursor_group()
        self.query_one("#sens-detail", Static).update(detail_text(row) if row else "")

    def on_sensitivity_table_changed(self, event: SensitivityTable.Changed) -> None:
        self._update_status()
        self.refresh_bindings()

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        self._show_detail()

    # -- keys --------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            return self.page is not None and self.job_id is None and not self.submitting
        if action in ("select_recommended", "reoptimize"):
            return self.result is not None
        return super().check_action(action, parameters)

    def action_back(self) -> None:
        if self.job_id is not None:
            self.notify(
                f"The analysis goes on in the background: job {self.job_id}, in the Jobs tab.",
                timeout=5,
            )
        self.app.pop_screen()

    def action_select_recommended(self) -> None:
        if self.result is None:
            return
        chosen = set(self.result["chosen"])
        self.table.set_marks(set() if self.table.marked == chosen else chosen)

    def _error(self, text: str, hint: str = "") -> None:
        self.notify(f"{text}\n{hint}".strip(), severity="error", timeout=8)

    # -- the analysis job ----------------------------------------------------------

    def _form_values(self) -> dict[str, object] | None:
        """The analysis settings in the form, or None after saying what is wrong."""
        values: dict[str, object] = {}
        for field in SENSITIVITY:
            try:
                values[field.name] = field.parse(
                    self.query_one(f"#sens-field-{field.name}", Input).value
                )
            except SettingError as exc:
                self._error(exc.message, exc.hint)
                return None
        return values

    def action_start(self) -> None:
        page = self.page
        if page is None or self.job_id is not None or self.submitting:
            return
        if page.problem:
            self._error(page.problem)
            return
        params = self._form_values()
        if params is None:
            return
        self.submitting = True
        project_id = self.project_id
        self.tasks.run(
            lambda ws: submit_checked(ws, JobKind.SENSITIVITY, project_id, params),
            self._started,
            group=SUBMIT_GROUP,
            description="Start the sensitivity analysis",
            exclusive=False,
            refused=self._submit_refused,
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group in (SUBMIT_GROUP, REOPTIMIZE_GROUP) and event.state in (
            FINISHED_STATES
        ):
            self.submitting = False  # submitted (shown next) or refused: both end here
            self.refresh_bindings()

    def _submit_refused(self, error: SegtuiError) -> None:
        self._error(error.message, error.hint)

    def _started(self, job: JobRecord) -> None:
        self.notify(f"Sensitivity analysis job {job.id} started.", timeout=3)
        self._follow(job.id)

    def _follow(self, job_id: int) -> None:
        self.job_id = job_id
        area = self.query_one("#job-area", Vertical)
        area.remove_children()
        monitor = JobMonitor(job_id, id="sens-job")
        area.mount(monitor)
        monitor.focus()
        if self.result is None:
            self.query_one("#sens-summary", Static).update(RUNNING)
        self.refresh_bindings()

    def on_job_monitor_finished(self, event: JobMonitor.Finished) -> None:
        job = event.job
        self.job_id = None
        self.refresh_bindings()
        self.load()  # the new analysis, or the previous one back in place of "running"
        if job.state == JobState.DONE:
            event.monitor.remove()
            self.notify("Sensitivity analysis ready.", timeout=4)
            self.table.focus()
        elif job.state == JobState.CANCELLED:
            event.monitor.remove()
            self.notify("Analysis cancelled; the previous one is kept.", timeout=4)
        else:
            self.notify(
                job.error or "The analysis failed: press l for its log.",
                title="Sensitivity analysis failed",
                severity="error",
                timeout=10,
            )

    # -- re-optimizing -------------------------------------------------------------

    def action_reoptimize(self) -> None:
        if self.result is None or self.result_id is None or self.submitting:
            return
        marked = sorted(self.table.marked)
        if not marked:
            self._error(NOTHING_SELECTED, SELECT_HINT)
            return
        self.submitting = True
        result_id = self.result_id
        self.tasks.run(
            lambda ws: reoptimize(ws, result_id, marked),
            self._reoptimizing,
            group=REOPTIMIZE_GROUP,
            description="Start the optimization",
            exclusive=False,
            refused=self._submit_refused,
        )

    def _reoptimizing(self, started: Reoptimization) -> None:
        from segtui.ui.screens.optimize import OptimizeScreen

        self.submitted = started
        plan, job = started.plan, started.job
        groups, names = plan.link["groups"], plan.link["names"]
        self.notify(
            f"Optimization job {job.id} of project #{plan.parent_project_id} started: a new "
            f"INT8 child with {len(groups)} group(s), {len(names)} layer(s), kept in float.",
            title="Re-optimizing",
            timeout=8,
        )
        self.post_message(messages.ProjectsChanged())
        # The Optimize page follows the parent's running optimization and opens the child.
        self.app.push_screen(OptimizeScreen(plan.parent_project_id))


__all__ = ["WHY_BINDING", "SensitivityScreen", "load_page"]
