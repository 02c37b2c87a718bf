"""The project page: header (name, device, status, parent/children), tabs Model, Dataset, Jobs."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static, TabbedContent, TabPane

from segtui.core.performance import best_throughput
from segtui.core.projects import project_status, project_summary
from segtui.core.workspace import JobRecord
from segtui.ui import messages
from segtui.ui.commands import ProjectPageCommands
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.styles import css_path
from segtui.ui.widgets.property_table import Property, PropertyTable

HEADER_CELLS = (
    ("model", "Model"),
    ("dataset", "Validation dataset"),
    ("device", "Device"),
    ("status", "Status"),
    ("throughput", "Throughput"),
)
JOB_POLL_S = 1.0
JOB_COLUMNS = ("ID", "Kind", "State", "Progress", "Stage", "Error")
_MAX_CLASSES_SHOWN = 8
# Decoding settings that the Model tab already shows in their own rows.
_SETTINGS_SHOWN_ABOVE = {"format_id", "format", "class_names", "input_size"}


def shape_text(shape: list[int | None] | None) -> str:
    if not shape:
        return "scalar"
    return "×".join("?" if d is None else str(d) for d in shape)


def size_text(size: int | float | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return _number(value, 4)
    if isinstance(value, list | tuple):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_value_text(v)}" for k, v in value.items())
    return "-" if value is None else str(value)


def class_names_text(names: list[str]) -> str:
    if not names:
        return "-"
    shown = ", ".join(names[:_MAX_CLASSES_SHOWN])
    more = ", … (all listed below)" if len(names) > _MAX_CLASSES_SHOWN else ""
    return f"{len(names)}: {shown}{more}"


def model_properties(model: dict[str, Any]) -> list[Property]:
    """What the Model tab lists, from the `model` section of project_summary."""
    rows: list[Property] = [
        ("§Model", ""),
        ("Name", str(model.get("name", "-"))),
        ("Format", str(model.get("format", model.get("format_id", "-")))),
        ("Format id", str(model.get("format_id", "-"))),
    ]
    if model.get("source_kind"):
        rows.append(("Imported from", "ONNX" if model["source_kind"] == "onnx" else "OpenVINO IR"))
    for port in model.get("inputs", []):
        rows.append(
            (
                f"Input {port.get('name', '?')}",
                f"{shape_text(port.get('shape'))} {port.get('type', '')}".strip(),
            )
        )
    for port in model.get("outputs", []):
        rows.append(
            (
                f"Output {port.get('name', '?')}",
                f"{shape_text(port.get('shape'))} {port.get('type', '')}".strip(),
            )
        )
    if model.get("input_size"):
        rows.append(("Input size (H×W)", shape_text(model["input_size"])))
    if model.get("reshaped_to"):
        rows.append(("Reshaped to", "; ".join(shape_text(s) for s in model["reshaped_to"])))
    gflops = model.get("gflops")
    if gflops is not None:
        rows.append(("GFLOPs", ("≥ " if model.get("gflops_partial") else "") + _number(gflops, 4)))
    if model.get("params_m") is not None:
        rows.append(("Parameters (M)", _number(model["params_m"], 4)))
    precisions = model.get("weight_precisions") or {}
    rows.append(
        (
            "Weight precision",
            ", ".join(f"{k.upper()} {v * 100:.0f}%" for k, v in precisions.items()) or "-",
        )
    )
    if model.get("int8"):
        rows.append(("FakeQuantize ops", str(model.get("fake_quantize_count", 0))))
    rows.append(("IR version", str(model.get("ir_version", "-"))))
    if model.get("opset"):
        rows.append(("Opset", f"opset{model['opset']}"))
    rows.append(("Size on disk", size_text(model.get("size_bytes"))))
    class_names = [str(n) for n in model.get("class_names", [])]
    rows.append(("Classes", class_names_text(class_names)))
    optimization = model.get("optimization") or {}
    if optimization:
        rows.append(("§Optimization", ""))
        rows += [
            (str(k).replace("_", " ").capitalize(), _value_text(v)) for k, v in optimization.items()
        ]
    settings = model.get("settings") or {}
    if settings:
        rows.append(("§Decoding settings", ""))
        rows += [
            (str(k).replace("_", " "), _value_text(v))
            for k, v in settings.items()
            if k not in _SETTINGS_SHOWN_ABOVE
        ]
    if len(class_names) > _MAX_CLASSES_SHOWN:
        rows.append((f"§Class names ({len(class_names)})", ""))
        rows += [(f"class {i}", name) for i, name in enumerate(class_names)]
    return rows


def dataset_properties(dataset: dict[str, Any]) -> list[Property]:
    """What the Dataset tab lists, from the `dataset` section of project_summary."""
    annotated = bool(dataset.get("annotated"))
    rows: list[Property] = [
        ("§Dataset", ""),
        ("Name", str(dataset.get("name", "-"))),
        ("Type", "Annotated (COCO instances)" if annotated else "Not annotated (images only)"),
        ("Images folder", str(dataset.get("root", "-"))),
        ("Images", str(dataset.get("image_count", 0))),
    ]
    sizes = dataset.get("sizes") or {}
    if sizes:
        distinct = int(dataset.get("distinct_sizes", len(sizes)))
        text = ", ".join(f"{k} ×{v}" for k, v in sizes.items())
        if distinct > len(sizes):
            text += f" (+{distinct - len(sizes)} more sizes)"
        rows.append(("Sizes (W×H)", text))
    if dataset.get("min_size") and dataset.get("max_size"):
        rows.append(
            (
                "Smallest / largest",
                f"{shape_text(dataset['min_size'])} / {shape_text(dataset['max_size'])}",
            )
        )
    if annotated:
        counts: dict[str, int] = dataset.get("instance_counts") or {}
        rows.append(("Annotations", str(dataset.get("annotation_count", sum(counts.values())))))
        rows.append(("§Classes (instances)", ""))
        rows += [(str(name), str(counts.get(str(name), 0))) for name in dataset.get("classes", [])]
    skipped: list[dict[str, str]] = dataset.get("skipped") or []
    rows.append((f"§Skipped files ({len(skipped)})", ""))
    if not skipped:
        rows.append(("(none)", "every file found was a readable image"))
    rows += [(str(s.get("path", "?")), str(s.get("reason", ""))) for s in skipped]
    return rows


def short_format(display_name: str) -> str:
    """'OMZ Mask R-CNN (instance-segmentation-security)' → 'OMZ Mask R-CNN', for narrow places."""
    return display_name.split(" (", 1)[0]


def throughput_text(best: dict[str, Any] | None) -> str:
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


class ProjectScreen(SegtuiScreen):
    """One project: what it is made of, and its jobs."""

    CSS_PATH = css_path("project.tcss")
    COMMANDS = Screen.COMMANDS | {ProjectPageCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "back", "Back", id="project.back", tooltip="Go back to the previous screen."
        ),
        Binding(
            "1",
            "show_tab('model')",
            "Model",
            id="project.tab_model",
            tooltip="Show the model's analysis.",
        ),
        Binding(
            "2",
            "show_tab('dataset')",
            "Dataset",
            id="project.tab_dataset",
            tooltip="Show the dataset's analysis.",
        ),
        Binding(
            "3",
            "show_tab('jobs')",
            "Jobs",
            id="project.tab_jobs",
            tooltip="Show the project's jobs.",
        ),
        Binding(
            "p",
            "open_parent",
            "Parent",
            id="project.parent",
            tooltip="Open the project this one was optimized from.",
        ),
        Binding(
            "r",
            "refresh",
            "Refresh",
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
            "Performance",
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
            "d",
            "deploy",
            "Deploy",
            id="project.deploy",
            tooltip="Build a deployment package (.tar.gz with the IR and a standalone infer.py).",
        ),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.summary: dict[str, Any] = {}
        self._jobs_active = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="project-header"):
            yield Static(id="project-title")
            with Container(id="project-cells"):
                for cell, label in HEADER_CELLS:
                    with Vertical(classes="cell"):
                        yield Label(label, classes="cell-label")
                        yield Static(id=f"cell-{cell}", classes="cell-value")
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
                yield DataTable[str](id="jobs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        jobs = self.query_one("#jobs-table", DataTable)
        for label in JOB_COLUMNS:
            jobs.add_column(label, key=label.lower())
        self.reload()
        self.query_one("#model-info", PropertyTable).focus()
        self.set_interval(JOB_POLL_S, self._poll_jobs)

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        ws = self.segtui.workspace
        self.summary = project_summary(ws, self.project_id)
        project, model, dataset = (self.summary[k] for k in ("project", "model", "dataset"))
        self.title = f"Project #{project['id']}"
        self.sub_title = project["name"]
        self.query_one("#project-title", Static).update(
            Text.assemble((f"Project #{project['id']}", "bold"), "  ", project["name"])
        )
        annotated = "annotated" if dataset.get("annotated") else "not annotated"
        cells = {
            "model": f"{model['name']}\n{short_format(str(model.get('format', model['format_id'])))}",
            "dataset": f"{dataset['name']}\n{annotated} · {dataset.get('image_count', 0)} images",
            "device": project["device"],
            "status": project["status"],
            "throughput": throughput_text(best_throughput(ws, self.project_id)),
        }
        for cell, text in cells.items():
            self.query_one(f"#cell-{cell}", Static).update(Text(text))
        lineage: list[str | tuple[str, str]] = []
        if project.get("parent_id"):
            parent = ws.project(int(project["parent_id"]))
            method = (model.get("optimization") or {}).get("method", "INT8")
            lineage += [
                ("Optimized by ", "dim"),
                f"{method} from #{parent.id} {parent.name}",
                (" (p opens it)", "dim"),
            ]
        children = [ws.project(int(c)) for c in project.get("children", [])]
        if children:
            if lineage:
                lineage.append("   ")
            lineage += [
                ("Optimized projects ", "dim"),
                ", ".join(f"#{c.id} {c.name}" for c in children),
            ]
        lineage_widget = self.query_one("#project-lineage", Static)
        lineage_widget.update(Text.assemble(*lineage))
        lineage_widget.display = bool(lineage)
        self.query_one("#model-info", PropertyTable).set_properties(model_properties(model))
        self.query_one("#dataset-info", PropertyTable).set_properties(dataset_properties(dataset))
        self._show_jobs()
        self.refresh_bindings()

    def _show_jobs(self) -> None:
        ws = self.segtui.workspace
        jobs = ws.jobs(self.project_id)
        parent_id = self.summary["project"].get("parent_id") if self.summary else None
        if parent_id:
            # The optimization that made this project belongs to the parent; show it here too.
            jobs = [
                j
                for j in ws.jobs(int(parent_id))
                if j.kind == "optimize"
                and (j.result or {}).get("child_project_id") == self.project_id
            ] + jobs
        self._jobs_active = any(job.active for job in jobs)
        table = self.query_one("#jobs-table", DataTable)
        row = table.cursor_row
        table.clear()
        for job in jobs:
            table.add_row(*job_cells(job), key=str(job.id))
        if jobs:
            table.move_cursor(row=min(row, len(jobs) - 1))
        table.display = bool(jobs)
        self.query_one("#jobs-empty", Static).display = not jobs

    def _poll_jobs(self) -> None:
        # Jobs run in other processes; follow them while any is queued or running.
        if self._jobs_active:
            self._show_jobs()
            status = project_status(
                self.segtui.workspace, self.segtui.workspace.project(self.project_id)
            )
            self.query_one("#cell-status", Static).update(Text(status))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("open_parent", "report"):
            return bool(self.summary and self.summary["project"].get("parent_id"))
        if action == "optimize":
            return bool(self.summary) and not self.summary["model"].get("int8")
        if action == "compare":
            project = self.summary.get("project", {}) if self.summary else {}
            return bool(project.get("parent_id") or project.get("children"))
        return True

    # Perform: each page is its own screen, opened from here.

    def action_optimize(self) -> None:
        from segtui.ui.screens.optimize import OptimizeScreen

        self.app.push_screen(OptimizeScreen(self.project_id))

    def action_performance(self) -> None:
        from segtui.ui.screens.performance import PerformanceScreen

        self.app.push_screen(PerformanceScreen(self.project_id))

    def action_compare(self) -> None:
        from segtui.ui.screens.compare import CompareScreen

        project = self.summary["project"]
        if project.get("parent_id"):
            self.app.push_screen(CompareScreen(self.project_id, int(project["parent_id"])))
        elif project.get("children"):
            self.app.push_screen(CompareScreen(int(project["children"][-1]), self.project_id))

    def action_configs(self) -> None:
        from segtui.ui.screens.configs import ConfigsScreen

        self.app.push_screen(ConfigsScreen(self.project_id))

    def action_report(self) -> None:
        from segtui.ui.screens.report import ReportScreen

        self.app.push_screen(ReportScreen(self.project_id))

    def action_deploy(self) -> None:
        from segtui.ui.screens.deploy import DeployScreen

        self.app.push_screen(DeployScreen(self.segtui.workspace, self.project_id))

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
        parent_id = self.summary["project"].get("parent_id")
        if parent_id:
            self.post_message(messages.OpenProject(int(parent_id)))

    def action_refresh(self) -> None:
        self.reload()
        self.notify("Project reloaded.", timeout=2)
