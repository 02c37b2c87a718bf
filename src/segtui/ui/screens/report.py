"""The accuracy report of an optimized project: create it, read its summary, sort and filter its table.

Two types, as in the Workbench: optimized vs parent predictions (no
annotations needed) and accuracy on the validation dataset (annotated
datasets only). The report runs as a background job (segtui.core.jobs); the
stored rows are shown in basic (one row per image) or advanced (one row per
image and class) mode, sorted by any column, filtered by class and by
"images where A ≠ B". Enter or v opens Visualize on the row's image.

The form's fields (type, threshold, IoU) are built from the REPORT settings
schema: their initial text, choices and checks are the schema's. The stored
report is read in a thread worker (`LoadedReport`), and so are starting the job
and writing an export: sorting and filtering work on what was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Input, Label, RadioButton, RadioSet, Static
from textual.worker import Worker, WorkerState

from segtui.core import jobs
from segtui.core.errors import SegtuiError
from segtui.core.preflight import submit_checked
from segtui.core.report import ReportData, ReportSettings, export_report, report_data
from segtui.core.settings import REPORT, SettingError
from segtui.core.types import JobKind, JobState, ReportType, ResultKind
from segtui.core.workspace import JobRecord, ProjectRecord, ResultRecord, Workspace
from segtui.ui.screens.base import FINISHED_STATES, SegtuiScreen
from segtui.ui.screens.report_form import field_input
from segtui.ui.screens.report_html import save_html
from segtui.ui.screens.report_visualize import VisualizeLink
from segtui.ui.screens.sensitivity import WHY_BINDING, SensitivityScreen
from segtui.ui.styles import css_path
from segtui.ui.widgets.job_monitor import JobMonitor
from segtui.ui.widgets.report_table import (
    ReportTable,
    TableView,
    advanced_cells,
    basic_cells,
    columns_for,
    filter_advanced,
    filter_basic,
    summary_text,
)
from segtui.ui.widgets.table import Cell

REPORT_TYPE_LABELS = {
    ReportType.PARENT: "Comparison of optimized and parent model predictions",
    ReportType.ANNOTATIONS: "Accuracy evaluation on validation dataset",
}
#: The report type's radio button: a short label for the one-line form.
REPORT_TYPE_BUTTONS = {
    ReportType.PARENT: "Optimized vs parent",
    ReportType.ANNOTATIONS: "On annotations",
}
#: Under the summary of a report made with other accuracy settings than its models have now.
STALE_TEXT = "Stale: the models' accuracy settings changed since; press ctrl+s to run it again."
NARROW_WIDTH = 100
SUBMIT_GROUP = "report-submit"
EXPORT_GROUP = "report-export"


@dataclass(frozen=True)
class ReportProject:
    """The project a report screen is about, read in a thread."""

    project: ProjectRecord
    dataset_name: str
    annotated: bool
    #: The project's newest report job still queued or running (followed on opening).
    active_job_id: int | None


@dataclass(frozen=True)
class LoadedReport:
    """A stored report of one type, read back in a thread (or why it cannot be)."""

    project: ReportProject
    report_type: ReportType
    record: ResultRecord | None
    data: ReportData | None
    #: Why the stored report cannot be read ("message\nhint").
    problem: str | None
    #: Made with other accuracy settings than its models have now (core.settings_versions).
    stale: bool = False


def newest_report_type(ws: Workspace, project_id: int) -> ReportType:
    """The type of the project's newest stored report (the schema's default without one)."""
    stored = [r for t in ReportType for r in ws.results(project_id, _result_kind(t))]
    if not stored:
        return REPORT.type.default
    latest = max(stored, key=lambda r: (r.created_at, r.id))
    return ReportType(latest.kind.removeprefix("report:"))


def read_report(
    ws: Workspace, project_id: int, report_type: ReportType | None, result_id: int | None
) -> LoadedReport:
    """The project and its stored report of `report_type` (None: the newest one's type),
    or the result `result_id`."""
    project = ws.project(project_id)
    dataset = ws.dataset(project.dataset_id)
    active = jobs.active_job(ws, project_id, JobKind.REPORT)
    about = ReportProject(project, dataset.name, dataset.annotated, active.id if active else None)
    chosen = newest_report_type(ws, project_id) if report_type is None else report_type
    if result_id is not None:
        record: ResultRecord | None = ws.result(result_id)
    else:
        stored = ws.results(project_id, _result_kind(chosen))
        record = stored[-1] if stored else None
    data, problem, stale = None, None, False
    if record is not None:
        try:
            data = report_data(record)
        except SegtuiError as exc:
            problem = f"{exc.message}\n{exc.hint}".strip()
        else:
            from segtui.core.settings_versions import staleness  # reads the models' graphs

            stale = staleness(ws, record).stale
    return LoadedReport(about, chosen, record, data, problem, stale)


class ReportScreen(SegtuiScreen):
    """Create and read the accuracy report of one optimized project."""

    CSS_PATH = css_path("report.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "back",
            "Back",
            show=False,
            id="report.back",
            tooltip="Go back to the project.",
        ),
        Binding(
            "ctrl+s",
            "create_report",
            "Create",
            id="report.create",
            tooltip="Run both models on the dataset and build the report (replaces the old one).",
        ),
        Binding(
            "t",
            "toggle_mode",
            "Mode",
            id="report.toggle_mode",
            tooltip="Switch between one row per image and one row per image and class.",
        ),
        Binding(
            "s",
            "cycle_sort",
            "Sort",
            id="report.sort",
            tooltip="Sort by the next column (report order after the last).",
        ),
        Binding(
            "S",
            "reverse_sort",
            "Reverse sort",
            show=False,
            id="report.reverse",
            tooltip="Reverse the sort between ascending and descending.",
        ),
        Binding(
            "f",
            "cycle_class",
            "Class",
            id="report.class_filter",
            tooltip="Show only rows of the next class (all classes after the last).",
        ),
        Binding(
            "d",
            "toggle_differs",
            "A≠B",
            id="report.differs",
            tooltip="Show only images where the optimized model's predictions differ from B.",
        ),
        Binding(
            "e",
            "export",
            "Export",
            show=False,
            id="report.export",
            tooltip="Write the report as CSV, JSON and Markdown into the workspace's reports folder.",
        ),
        Binding(
            "H",
            "save_html",
            "Save HTML",
            show=False,
            id="report.save_html",
            tooltip="Write the report as one HTML page to open in a browser (workspace's reports-html).",
        ),
        Binding(
            "v",
            "visualize",
            "View",
            id="report.visualize",
            tooltip="Show the selected image with both models' masks.",
        ),
        WHY_BINDING,
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.report_type: ReportType = REPORT.type.default
        self.report: ResultRecord | None = None
        self.data: ReportData | None = None
        self.view = TableView()
        #: The image of each row the table shows (the current mode's, filtered), by row key.
        self.row_images: dict[str, str] = {}
        self._total_rows = 0
        #: The project, read in a thread with each report.
        self.page: ReportProject | None = None
        self.job_id: int | None = None
        #: A report job is being started (in a thread): a second ctrl+s waits for it.
        self.submitting = False
        self._was_narrow = False
        self.visualize_link = VisualizeLink(self)

    # -- layout ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="report-create"):
            with Horizontal(id="report-controls"):
                with RadioSet(id="report-type", compact=True):
                    for choice in REPORT.type.choices:
                        yield RadioButton(
                            REPORT_TYPE_BUTTONS[ReportType(choice)],
                            value=choice == REPORT.type.default,
                            id=f"type-{choice}",
                            compact=True,
                        )
                yield Label("Threshold", classes="field-label")
                yield field_input(REPORT.threshold, "report-threshold")
                yield Label("IoU", classes="field-label")
                yield field_input(REPORT.iou, "report-iou")
            yield Static(id="report-note")
        yield Vertical(id="job-area")
        yield Static("Loading the report…", id="report-summary")
        yield Static(id="table-status")
        yield ReportTable(id="report-table")
        yield Footer(compact=True)

    @property
    def table(self) -> ReportTable:
        return self.query_one("#report-table", ReportTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.load_report(newest=True)

    def _note_text(self, dataset_name: str) -> Text:
        text = Text()
        if not self.optimized_project:
            text.append("This project is not an optimized project: ", "bold")
            text.append(
                "there is no parent to compare with. Optimize it, then open the optimized project."
            )
            return text
        text.append(REPORT_TYPE_LABELS[self.report_type], "bold")
        if not self.annotated:
            text.append(
                f" · On annotations: needs an annotated (COCO) dataset; {dataset_name!r} is not.",
                "dim",
            )
        return text

    # -- state -------------------------------------------------------------------

    def _select_type(self, report_type: ReportType) -> None:
        self.report_type = report_type
        button = self.query_one(f"#type-{report_type}", RadioButton)
        if not button.value:
            button.value = True

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        chosen = ReportType((event.pressed.id or "type-parent").removeprefix("type-"))
        if chosen == self.report_type:
            return
        self.report_type = chosen
        if self.page is not None:
            self.query_one("#report-note", Static).update(self._note_text(self.page.dataset_name))
        self.load_report()

    def load_report(self, result_id: int | None = None, *, newest: bool = False) -> None:
        """Read the stored report of the current type (or the result `result_id`; `newest`:
        of the newest report's type) in a thread; the screen shows it when it is in."""
        project_id, report_type = self.project_id, None if newest else self.report_type
        self.tasks.run(
            lambda ws: read_report(ws, project_id, report_type, result_id),
            self.show_report,
            group="report-load",
            description="Load the report",
        )

    def show_report(self, loaded: LoadedReport) -> None:
        first = self.page is None
        self._show_project(loaded.project)
        self._select_type(loaded.report_type)
        self.query_one("#report-note", Static).update(self._note_text(loaded.project.dataset_name))
        self.report, self.data = loaded.record, loaded.data
        self.visualize_link.report_shown()
        if loaded.problem:
            self.notify(loaded.problem, severity="error")
        summary = self.query_one("#report-summary", Static)
        if self.data is None:
            label = REPORT_TYPE_LABELS[self.report_type].lower()
            summary.update(f"No report of this type yet ({label}): press ctrl+s to create one.")
        else:
            text = summary_text(self.data)
            if loaded.stale:
                text.append(f"\n{STALE_TEXT}", "bold")
            summary.update(text)
            # The form shows the settings the report was made with.
            made_with = self.data["summary"]
            for field, widget_id in (
                (REPORT.threshold, "#report-threshold"),
                (REPORT.iou, "#report-iou"),
            ):
                value = made_with.get(field.name)
                if value is not None:
                    self.query_one(widget_id, Input).value = field.format(value)
        if self.view.class_name is not None and self.view.class_name not in self.class_names():
            self.view.class_name = None
        self.refresh_table()
        self.refresh_bindings()
        if first and loaded.project.active_job_id is not None:
            self._follow(loaded.project.active_job_id)

    def _show_project(self, page: ReportProject) -> None:
        self.page = page
        project = page.project
        self.title = f"Accuracy report · Project #{project.id}"
        self.sub_title = project.name
        self.query_one("#type-annotations", RadioButton).disabled = not self.annotated

    @property
    def annotated(self) -> bool:
        """Whether the project's dataset is annotated (False until the project is read)."""
        return self.page is not None and self.page.annotated

    @property
    def optimized_project(self) -> bool:
        """Whether the project has a parent to compare with (False until it is read)."""
        return self.page is not None and self.page.project.parent_id is not None

    def class_names(self) -> list[str]:
        """The classes that appear in the report's advanced rows, sorted."""
        if self.data is None:
            return []
        return sorted({row["class"] for row in self.data["advanced"]})

    def columns(self) -> list[tuple[str, str]]:
        return columns_for(self.view.mode, self.report_type, narrow=self._narrow)

    @property
    def _narrow(self) -> bool:
        return 0 < self.size.width < NARROW_WIDTH

    def on_resize(self) -> None:
        if self._narrow != self._was_narrow:
            self._was_narrow = self._narrow
            self.refresh_table()

    def _rows(self) -> tuple[list[tuple[str, str, list[Cell]]], int]:
        """(row key, image, cells) of the rows that pass the filters, and the mode's row count."""
        if self.data is None:
            return [], 0
        differs_only, name = self.view.differs_only, self.view.class_name
        if self.view.mode == "advanced":
            advanced = self.data["advanced"]
            kept = filter_advanced(advanced, differs_only=differs_only, class_name=name)
            return [(str(n), r["image"], advanced_cells(r)) for n, r in enumerate(kept)], len(
                advanced
            )
        images = None
        if name is not None:
            images = {r["image"] for r in self.data["advanced"] if r["class"] == name}
        basic = self.data["basic"]
        kept_basic = filter_basic(basic, differs_only=differs_only, images=images)
        return [(str(n), r["image"], basic_cells(r)) for n, r in enumerate(kept_basic)], len(basic)

    def refresh_table(self) -> None:
        rows, self._total_rows = self._rows()
        self.row_images = {key: image for key, image, _ in rows}
        self.table.set_columns(self.columns())
        self.table.set_rows([(key, cells) for key, _, cells in rows])
        self._update_status()

    def _update_status(self) -> None:
        status = self.view.describe(
            len(self.row_images), self._total_rows, self.columns(), self.table.sorted_by
        )
        self.query_one("#table-status", Static).update(
            status + ("" if self.data else " · no report")
        )

    def on_report_table_sorted(self, event: ReportTable.Sorted) -> None:
        self._update_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "create_report":
            return self.optimized_project and self.job_id is None
        if action in (
            "toggle_mode",
            "cycle_sort",
            "reverse_sort",
            "cycle_class",
            "toggle_differs",
            "export",
            "save_html",
        ):
            return self.data is not None
        if action == "visualize":
            return bool(self.row_images)
        return super().check_action(action, parameters)

    # -- actions -----------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_toggle_mode(self) -> None:
        self.view.mode = "advanced" if self.view.mode == "basic" else "basic"
        self.refresh_table()

    def action_cycle_sort(self) -> None:
        """The next column in the current direction (ascending to start); report order after the last."""
        keys = [key for key, _ in self.columns()]
        current = self.table.sorted_by
        position = keys.index(current[0]) if current and current[0] in keys else -1
        if position + 1 < len(keys):
            self.table.show_sorted(keys[position + 1], current[1] if current else False)
        else:
            self.table.clear_sort()

    def action_reverse_sort(self) -> None:
        if self.table.sorted_by is not None:
            self.table.sort_by(self.table.sorted_by[0])

    def action_cycle_class(self) -> None:
        names: list[str | None] = [None, *self.class_names()]
        position = names.index(self.view.class_name) if self.view.class_name in names else 0
        self.view.class_name = names[(position + 1) % len(names)]
        self.refresh_table()

    def action_toggle_differs(self) -> None:
        self.view.differs_only = not self.view.differs_only
        self.refresh_table()

    def action_export(self) -> None:
        if self.report is None or self.data is None:
            return
        name = f"project{self.project_id}-{self.report_type}-report{self.report.id}"
        self._export(self.data, self.segtui.workspace.root / "reports" / name)

    def action_save_html(self) -> None:
        if self.report is not None:
            save_html(self, self.project_id, self.report.id)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group=EXPORT_GROUP,
        description="Export the report",
    )
    def _export(self, data: ReportData, out: Path) -> list[Path]:
        return export_report(data, out)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if self.visualize_link.worker_changed(worker, event.state):
            return
        if worker.group == SUBMIT_GROUP and event.state in FINISHED_STATES:
            self.submitting = False  # started (the job is followed next) or refused
        if worker.group != EXPORT_GROUP:
            return
        if event.state == WorkerState.SUCCESS and isinstance(worker.result, list):
            listing = "\n".join(str(p) for p in worker.result)
            self.notify(listing, title="Report exported (all rows)", timeout=12)
        elif event.state == WorkerState.ERROR:
            if isinstance(worker.error, OSError):
                self.notify(
                    f"Could not write the export: {worker.error}", severity="error", timeout=8
                )
            else:
                self.segtui.report_worker_failure(worker)

    def action_visualize(self) -> None:
        self.visualize_link.open_at_cursor()

    def action_why(self) -> None:
        self.app.push_screen(SensitivityScreen(self.project_id))

    def on_data_table_row_selected(self, event: ReportTable.RowSelected) -> None:
        if event.row_key.value is not None and self.report is not None:
            self.visualize_link.open(event.row_key.value)

    def on_data_table_row_highlighted(self) -> None:
        self.visualize_link.cursor_moved()

    def on_screen_resume(self) -> None:
        self.visualize_link.resumed()

    def on_unmount(self) -> None:
        self.visualize_link.closed()

    # -- the report job ------------------------------------------------------------

    def _form_settings(self) -> ReportSettings | None:
        """The settings in the form, or None after saying what is wrong."""
        try:
            return ReportSettings(
                type=self.report_type,
                threshold=REPORT.threshold.parse(self.query_one("#report-threshold", Input).value),
                iou=REPORT.iou.parse(self.query_one("#report-iou", Input).value),
            )
        except SettingError as exc:
            self.notify(f"{exc.message}\n{exc.hint}".strip(), severity="error")
            return None

    def action_create_report(self) -> None:
        if self.submitting:
            return
        if self.report_type == ReportType.ANNOTATIONS and not self.annotated:
            self.notify("This project's dataset is not annotated.", severity="warning")
            return
        settings = self._form_settings()
        if settings is None:
            return
        self.submitting = True
        project_id, params = self.project_id, settings.values()
        self.tasks.run(
            lambda ws: submit_checked(ws, JobKind.REPORT, project_id, params),
            self._report_started,
            group=SUBMIT_GROUP,
            description="Start the report",
            exclusive=False,
            refused=lambda error: self.notify(error.message, severity="error"),
        )

    def _report_started(self, job: JobRecord) -> None:
        self.notify(f"Report job {job.id} started.", timeout=3)
        self._follow(job.id)

    def _follow(self, job_id: int) -> None:
        self.job_id = job_id
        area = self.query_one("#job-area", Vertical)
        area.remove_children()
        monitor = JobMonitor(job_id, id="report-job")
        area.mount(monitor)
        # Focused, the monitor offers its cancel and log keys; the report keys still work.
        monitor.focus()
        self.refresh_bindings()

    def on_job_monitor_finished(self, event: JobMonitor.Finished) -> None:
        job = event.job
        self.job_id = None
        self.refresh_bindings()
        if job.state == JobState.DONE:
            result_id = (job.result or {}).get("result_id")
            self._select_type(ReportType(str(job.params.get("type", self.report_type))))
            self.load_report(int(result_id) if result_id is not None else None)
            event.monitor.remove()
            self.notify("Accuracy report ready.", timeout=4)
            self.table.focus()
        elif job.state == JobState.CANCELLED:
            event.monitor.remove()
            self.notify("Report cancelled; the previous report is kept.", timeout=4)
        else:
            self.notify(
                job.error or "The report job failed: press l on it for its log.",
                title="Report failed",
                severity="error",
                timeout=10,
            )


def _result_kind(report_type: ReportType) -> ResultKind:
    return ResultKind(f"report:{report_type}")
