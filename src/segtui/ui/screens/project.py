"""The project page: header (name, device, status, parent/children), tabs Model, Dataset, Jobs.

The page reads the workspace in a thread worker (`ProjectPage`), never on the event
loop, and follows its jobs through the app's job watcher: a progress change updates
its row in place; a job that ends reloads the page (status, throughput, children).
The device's processor, capabilities and default precision are asked once per process,
in a worker of their own (it loads OpenVINO): the header names them when they are in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static, TabbedContent, TabPane

from segtui.core.benchmark import StoredBenchmark
from segtui.core.errors import SegtuiError
from segtui.core.machine import MachineInfo, cached_machine_info, machine_info
from segtui.core.performance import best_throughput
from segtui.core.projects import ProjectDetails, project_details, project_jobs
from segtui.core.records import JobRecord, optimization_text
from segtui.core.workspace import Workspace
from segtui.ui import messages
from segtui.ui.commands import ProjectPageCommands
from segtui.ui.job_watcher import unsubscribe, watcher_of
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.screens.project_properties import dataset_properties, model_properties
from segtui.ui.styles import css_path
from segtui.ui.widgets.job_log import JobsTable
from segtui.ui.widgets.property_table import PropertyTable
from segtui.ui.widgets.sensitivity_table import keep_float_text

HEADER_CELLS = (
    ("model", "Model"),
    ("dataset", "Validation dataset"),
    ("device", "Device"),
    ("status", "Status"),
    ("throughput", "Throughput"),
)
JOB_COLUMNS = ("ID", "Kind", "State", "Progress", "Stage", "Error")


def short_format(display_name: str) -> str:
    """'OMZ Mask R-CNN (instance-segmentation-security)' → 'OMZ Mask R-CNN', for narrow places."""
    return display_name.split(" (", 1)[0]


def throughput_text(best: StoredBenchmark | None) -> str:
    """The best measured throughput, as the Workbench's project header shows it."""
    if not best or best.get("throughput_fps") is None:
        return "not measured"
    precision = f" ({best['precision']})" if best.get("precision") else ""
    return f"{float(best['throughput_fps']):.2f} FPS{precision}"


def job_cells(job: JobRecord) -> tuple[str, ...]:
    return (
        str(job.id),
        job.kind,
        job.state,
        f"{job.progress * 100:.0f}%",
        job.stage or "-",
        (job.error or "").splitlines()[0] if job.error else "",
    )


@dataclass(frozen=True)
class ProjectPage:
    """What the page shows, read in one go off the event loop."""

    details: ProjectDetails
    best: StoredBenchmark | None
    jobs: list[JobRecord]

    @property
    def job_ids(self) -> set[int]:
        return {job.id for job in self.jobs}

    def is_newest(self, job: JobRecord) -> bool:
        """Whether `job` is the project's newest job (the one its status names)."""
        project_id = self.details.project.id
        own = [j.id for j in self.jobs if j.project_id == project_id]
        return job.project_id == project_id and job.id >= max(own, default=0)

    def shows(self, job: JobRecord) -> bool:
        """Whether `job` belongs on this page (its own, or the one that optimized it)."""
        return job.project_id == self.details.project.id or job.id in self.job_ids


def load_page(ws: Workspace, project_id: int) -> ProjectPage:
    details = project_details(ws, project_id)
    return ProjectPage(details, best_throughput(ws, project_id), project_jobs(ws, details.project))


def machine_cell(device: str, machine: MachineInfo | None) -> str:
    """The Device cell: the device, then what "default" precision runs at on it."""
    return device if machine is None else f"{device}\ndefault {machine.default_precision}"


def machine_line(machine: MachineInfo | None) -> Text:
    """The processor and its capabilities: 'Intel(R) Xeon(R) Processor · AMX BF16/INT8, AVX2'."""
    if machine is None:
        return Text("Reading the device's name and capabilities…", style="dim")
    features = machine.features_text
    return Text.assemble(machine.name, (f" · {features}" if features else "", "dim"))


def lineage_parts(details: ProjectDetails) -> list[str | tuple[str, str]]:
    """The line under the header: the parent it was optimized from, its optimized children."""
    parts: list[str | tuple[str, str]] = []
    if details.parent is not None:
        parent = details.parent
        parts += [
            ("Optimized to ", "dim"),
            f"{optimization_text(details.model.optimization)} from #{parent.id} {parent.name}",
            (" (p opens it)", "dim"),
        ]
        kept = keep_float_text(details.model.optimization)
        if kept:
            parts += [(" · ", "dim"), kept]
    if details.children:
        if parts:
            parts.append("   ")
        parts += [
            ("Optimized projects ", "dim"),
            ", ".join(f"#{c.id} {c.name}" for c in details.children),
        ]
    return parts


class ProjectScreen(SegtuiScreen):
    """One project: what it is made of, and its jobs."""

    CSS_PATH = css_path("project.tcss")
    COMMANDS = Screen.COMMANDS | {ProjectPageCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "back",
            "Back",
            show=False,
            id="project.back",
            tooltip="Go back to the previous screen.",
        ),
        Binding(
            "1",
            "show_tab('model')",
            "Model",
            show=False,
            id="project.tab_model",
            tooltip="Show the model's analysis.",
        ),
        Binding(
            "2",
            "show_tab('dataset')",
            "Dataset",
            show=False,
            id="project.tab_dataset",
            tooltip="Show the dataset's analysis.",
        ),
        Binding(
            "3",
            "show_tab('jobs')",
            "Jobs",
            show=False,
            id="project.tab_jobs",
            tooltip="Show the project's jobs.",
        ),
        Binding(
            "p",
            "open_parent",
            "Parent",
            show=False,
            id="project.parent",
            tooltip="Open the project this one was optimized from.",
        ),
        Binding(
            "r",
            "refresh",
            "Refresh",
            show=False,
            id="project.refresh",
            tooltip="Reload the project from the workspace.",
        ),
        Binding(
            "o",
            "optimize",
            "Optimize",
            id="project.optimize",
            tooltip="Perform → Optimize: INT8 quantization with NNCF.",
        ),
        Binding(
            "b",
            "performance",
            "Perf",
            id="project.performance",
            tooltip="Benchmark throughput and latency; per-layer profile.",
        ),
        Binding(
            "c",
            "compare",
            "Compare",
            id="project.compare",
            tooltip="Compare the performance of this project with its parent (or its newest child).",
        ),
        Binding(
            "i",
            "configs",
            "Configs",
            show=False,
            id="project.configs",
            tooltip="Explore inference configurations (batch × streams).",
        ),
        Binding(
            "a",
            "report",
            "Accuracy",
            id="project.report",
            tooltip="Accuracy report: where the optimized model's predictions differ from the parent's.",
        ),
        Binding(
            "w",
            "sensitivity",
            "Sensitivity",
            show=False,
            id="project.sensitivity",
            tooltip="Why is accuracy lost? Which quantizer groups cost it, and re-optimizing "
            "with them kept in floating point.",
        ),
        Binding(
            "d",
            "deploy",
            "Deploy",
            id="project.deploy",
            tooltip="Build a deployment package (.tar.gz with the IR and a standalone infer.py).",
        ),
        Binding(
            "e",
            "model_settings",
            "Accuracy settings",
            show=False,
            id="project.model_settings",
            tooltip="The model's accuracy settings: colour order, mean/scale, resize, "
            "thresholds, class names (edit, preview, save).",
        ),
        Binding(
            "x",
            "export",
            "Export",
            show=False,
            id="project.export",
            tooltip="Export the project (models, results, reports) to one .tar.gz for "
            "segtui import.",
        ),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.page: ProjectPage | None = None
        #: The project's device described (None until its worker has asked OpenVINO).
        self.machine: MachineInfo | None = None
        #: Job changes came while the Jobs tab was hidden: read them when it is shown.
        self._jobs_stale = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="project-header"):
            yield Static(id="project-title")
            with Container(id="project-cells"):
                for cell, label in HEADER_CELLS:
                    with Vertical(classes="cell"):
                        yield Label(label, classes="cell-label")
                        yield Static(id=f"cell-{cell}", classes="cell-value")
            yield Static(id="project-machine")
            yield Static(id="project-lineage")
        with TabbedContent(id="tabs"):
            with TabPane("Model", id="model"):
                yield PropertyTable(id="model-info")
            with TabPane("Dataset", id="dataset"):
                yield PropertyTable(id="dataset-info")
            with TabPane("Jobs", id="jobs"):
                yield Static(
                    "No jobs yet: optimize or benchmark this project to start one.", id="jobs-empty"
                )
                yield JobsTable(id="jobs-table")  # l or enter: the selected job's log
        yield Footer()

    def on_mount(self) -> None:
        jobs = self.query_one("#jobs-table", DataTable)
        for label in JOB_COLUMNS:
            jobs.add_column(label, key=label.lower())
        self.query_one("#model-info", PropertyTable).focus()

    def on_unmount(self) -> None:
        unsubscribe(self)

    def on_screen_resume(self) -> None:
        # Also when the screen is first shown: the first read starts here. Follow the jobs
        # only while on top (see segtui.ui.job_watcher), and catch up now.
        watcher_of(self).subscribe(self)
        self.reload()

    def on_screen_suspend(self) -> None:
        unsubscribe(self)

    def reload(self) -> None:
        """Read the project again (in a worker); the page updates when it has it."""
        project_id = self.project_id
        self.tasks.run(
            lambda ws: load_page(ws, project_id),
            self.show_page,
            group="project-load",
            description="Load the project",
            refused=self._refused,
        )

    def _refused(self, error: SegtuiError) -> None:
        self.notify(error.message, severity="error")
        if self.page is None and self.app.screen is self and len(self.app.screen_stack) > 1:
            self.app.pop_screen()  # nothing to show (e.g. the project is gone)

    def show_page(self, page: ProjectPage) -> None:
        if page == self.page:
            return  # unchanged (e.g. back from help): nothing to repaint
        self.page = page
        project, model, dataset = page.details.project, page.details.model, page.details.dataset
        self.title = f"Project #{project.id}"
        self.sub_title = project.name
        self.query_one("#project-title", Static).update(
            Text.assemble((f"Project #{project.id}", "bold"), "  ", project.name)
        )
        annotated = "annotated" if dataset.annotated else "not annotated"
        cells = {
            "model": f"{model.name}\n{short_format(model.analysis.get('format', model.format_id))}",
            "dataset": f"{dataset.name}\n{annotated} · {dataset.image_count} images",
            "device": machine_cell(project.device, self.machine),
            "status": page.details.status,
            "throughput": throughput_text(page.best),
        }
        for cell, text in cells.items():
            self.query_one(f"#cell-{cell}", Static).update(Text(text))
        self._describe_device(project.device)
        lineage = self.query_one("#project-lineage", Static)
        parts = lineage_parts(page.details)
        lineage.update(Text.assemble(*parts))
        lineage.display = bool(parts)
        self.query_one("#model-info", PropertyTable).set_properties(model_properties(model))
        self.query_one("#dataset-info", PropertyTable).set_properties(dataset_properties(dataset))
        self._show_jobs(page.jobs)
        self.refresh_bindings()

    def _describe_device(self, device: str) -> None:
        """Name the device's processor: at once when known, else from a worker (it loads OpenVINO)."""
        known = self.machine if self.machine and self.machine.device == device else None
        known = known or cached_machine_info(device)
        if known is not None:
            self._show_machine(known)
            return
        self.query_one("#project-machine", Static).update(machine_line(None))
        self.tasks.run(
            lambda _ws: machine_info(device),
            self._show_machine,
            group="project-machine",
            description="Describe the device",
        )

    def _show_machine(self, machine: MachineInfo) -> None:
        self.machine = machine
        self.query_one("#project-machine", Static).update(machine_line(machine))
        if self.page is not None:
            device = self.page.details.project.device
            self.query_one("#cell-device", Static).update(Text(machine_cell(device, machine)))

    def _show_jobs(self, jobs: list[JobRecord]) -> None:
        table = self.query_one("#jobs-table", DataTable)
        row = table.cursor_row
        table.clear()
        for job in jobs:
            table.add_row(*job_cells(job), key=str(job.id))
        if jobs:
            table.move_cursor(row=min(row, len(jobs) - 1))
        table.display = bool(jobs)
        self.query_one("#jobs-empty", Static).display = not jobs

    def on_job_changed(self, event: messages.JobChanged) -> None:
        """A job of this page moved on: its row in place, or the whole page for a new job."""
        job, page = event.job, self.page
        if page is None or not page.shows(job) or self.app.screen is not self:
            # Under another screen it is read again when it comes back (on_screen_resume);
            # until then a change here would only make the screen above repaint.
            return
        status = f"{job.kind} {job.state}"
        cell = self.query_one("#cell-status", Static)
        if page.is_newest(job) and str(cell.content) != status:
            cell.update(Text(status))
        table = self.query_one("#jobs-table", DataTable)
        if str(job.id) not in table.rows:
            self.reload()
        elif self.query_one("#tabs", TabbedContent).active != "jobs":
            self._jobs_stale = True  # repainting a hidden table costs as much as a shown one
        else:
            shown = table.get_row(str(job.id))
            for column, old, text in zip(JOB_COLUMNS, shown, job_cells(job), strict=True):
                if old != text:  # each cell repaints: only those that moved
                    table.update_cell(str(job.id), column.lower(), text)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "jobs" and self._jobs_stale:
            self._jobs_stale = False
            self.reload()

    def on_job_finished(self, event: messages.JobFinished) -> None:
        # Its status, throughput or optimized children may have changed.
        if self.page is not None and self.page.shows(event.job) and self.app.screen is self:
            self.reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        details = self.page.details if self.page else None
        if action in ("open_parent", "report", "sensitivity"):
            return details is not None and details.parent is not None
        if action == "optimize":
            return details is not None and not details.model.analysis.get("int8")
        if action == "compare":
            return details is not None and bool(details.parent or details.children)
        return super().check_action(action, parameters)

    # Perform: each page is its own screen, opened from here.

    def action_optimize(self) -> None:
        from segtui.ui.screens.optimize import OptimizeScreen

        self.app.push_screen(OptimizeScreen(self.project_id))

    def action_performance(self) -> None:
        from segtui.ui.screens.performance import PerformanceScreen

        self.app.push_screen(PerformanceScreen(self.project_id))

    def action_compare(self) -> None:
        from segtui.ui.screens.compare import CompareScreen

        details = self.page.details if self.page else None
        if details is None:
            return
        if details.parent is not None:
            self.app.push_screen(CompareScreen(self.project_id, details.parent.id))
        elif details.children:
            self.app.push_screen(CompareScreen(details.children[-1].id, self.project_id))

    def action_configs(self) -> None:
        from segtui.ui.screens.configs import ConfigsScreen

        self.app.push_screen(ConfigsScreen(self.project_id))

    def action_report(self) -> None:
        from segtui.ui.screens.report import ReportScreen

        self.app.push_screen(ReportScreen(self.project_id))

    def action_sensitivity(self) -> None:
        from segtui.ui.screens.sensitivity import SensitivityScreen

        self.app.push_screen(SensitivityScreen(self.project_id))

    def action_deploy(self) -> None:
        from segtui.ui.screens.deploy import DeployScreen

        self.app.push_screen(DeployScreen(self.project_id))

    def action_model_settings(self) -> None:
        from segtui.ui.screens.model_settings import ModelSettingsScreen

        self.app.push_screen(ModelSettingsScreen(self.project_id))

    def action_export(self) -> None:
        from segtui.ui.screens.export import ExportScreen

        self.app.push_screen(ExportScreen(self.project_id))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_show_tab(self, tab: str) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.active = tab
        pane = tabs.get_pane(tab)
        focusable = [w for w in pane.query("PropertyTable, DataTable") if w.display]
        if focusable:
            focusable[0].focus()

    def action_open_parent(self) -> None:
        parent = self.page.details.parent if self.page else None
        if parent is not None:
            self.post_message(messages.OpenProject(parent.id))

    def action_refresh(self) -> None:
        self.reload()
        self.notify("Project reloaded.", timeout=2)
