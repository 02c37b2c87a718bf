"""The accuracy report of an optimized project: create it, read its summary, sort and filter its table.

Two types, as in the Workbench: optimized vs parent predictions (no
annotations needed) and accuracy on the validation dataset (annotated
datasets only). The report runs as a background job (segtui.core.jobs); the
stored rows are shown in basic (one row per image) or advanced (one row per
image and class) mode, sorted by any column, filtered by class and by
"images where A ≠ B". Enter or v opens Visualize on the row's image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Static,
)

from segtui.core import jobs
from segtui.core.errors import SegtuiError
from segtui.core.report import export_report
from segtui.core.workspace import ResultRecord
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.styles import css_path
from segtui.ui.widgets.job_monitor import JobMonitor

Row = dict[str, Any]

REPORT_TYPE_LABELS = {
    "parent": "Comparison of optimized and parent model predictions",
    "annotations": "Accuracy evaluation on validation dataset",
}
NARROW_WIDTH = 100
NUMERIC_COLUMNS = frozenset({"a", "b", "matches", "precision", "ap"})


def columns_for(mode: str, report_type: str, *, narrow: bool = False) -> list[tuple[str, str]]:
    """(row key, column label) of the table in `mode` ("basic" or "advanced").

    `narrow` shortens the long advanced labels so that the table fits 80 columns.
    """
    b_label = "B. parent" if report_type == "parent" else "B. annotations"
    if mode == "basic":
        return [
            ("image", "Image"),
            ("a", "A. optimized detections"),
            ("b", f"{b_label} detections"),
            ("matches", "Matches"),
        ]
    return [
        ("image", "Image"),
        ("class", "Class"),
        ("a", "A"),
        ("b", "B"),
        ("matches", "Matches"),
        ("precision", "Precision" if narrow else "Predicted class precision"),
        ("ap", "AP" if narrow else "Predicted class AP"),
    ]


def cell_text(value: Any) -> str:
    """A table cell: "n/a" for None, numbers without noise."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def sort_rows(rows: Sequence[Row], key: str | None, descending: bool) -> list[Row]:
    """Rows sorted by `key` (numbers as numbers, text case-blind); None ("n/a") always last."""
    if key is None:
        return list(rows)
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]

    def sort_key(row: Row) -> Any:
        value = row[key]
        if key in NUMERIC_COLUMNS:
            return float(value)
        return str(value).casefold()

    # Python's sort is stable: equal values keep the report's order.
    return sorted(present, key=sort_key, reverse=descending) + missing


def filter_rows(
    rows: Sequence[Row],
    *,
    class_name: str | None,
    differs_only: bool,
    images_with_class: set[str] | None = None,
) -> list[Row]:
    """Rows of one class (advanced rows by their class, basic rows by the images that have it)."""
    out = []
    for row in rows:
        if differs_only and not row.get("differs"):
            continue
        if class_name is not None:
            if "class" in row:
                if row["class"] != class_name:
                    continue
            elif images_with_class is not None and row["image"] not in images_with_class:
                continue
        out.append(row)
    return out


def summary_text(data: dict[str, Any]) -> Text:
    """The report's headline figures (mask and box AP, totals, precision) for the summary box."""
    summary = data["summary"]
    totals = data.get("totals") or summary.get("totals") or {}
    text = Text()
    if summary.get("type") == "annotations":
        parent, optimized = summary.get("parent", {}), summary.get("optimized", {})
        text.append("Mask AP ", "bold")
        text.append(
            f"parent {parent.get('mask_ap', 0):.4f} → optimized {optimized.get('mask_ap', 0):.4f}"
        )
        text.append(f" (drop {summary.get('mask_ap_drop', 0):.2f} pts)", "bold")
        text.append("   Box AP ", "bold")
        text.append(f"{parent.get('box_ap', 0):.4f} → {optimized.get('box_ap', 0):.4f}")
        text.append(f" (drop {summary.get('box_ap_drop', 0):.2f} pts)\n", "bold")
        b_name = "annotations"
    else:
        metrics = summary.get("a_vs_b", {})
        text.append("Mask AP of A against B ", "bold")
        text.append(f"{metrics.get('mask_ap', 0):.4f}")
        text.append("   Box AP ", "bold")
        text.append(f"{metrics.get('box_ap', 0):.4f}\n")
        b_name = "parent"
    text.append(
        f"A (optimized) {totals.get('a', 0)} · B ({b_name}) {totals.get('b', 0)} · "
        f"matches {totals.get('matches', 0)} · images {totals.get('images', 0)}, "
    )
    text.append(f"{totals.get('images_differ', 0)} where A ≠ B", "bold")
    text.append(f", {totals.get('images_without_instances', 0)} without instances\n")
    text.append(
        f"Inference precision {summary.get('precision', '?')} · {summary.get('device', '?')} · "
        f"score ≥ {summary.get('threshold', '?')} · match IoU ≥ {summary.get('iou', '?')}",
        "dim",
    )
    return text


@dataclass
class TableView:
    """How the report table is shown: mode, sort, filters."""

    mode: str = "basic"
    sort_key: str | None = None
    descending: bool = False
    class_name: str | None = None
    differs_only: bool = False

    def describe(self, shown: int, total: int, columns: list[tuple[str, str]]) -> str:
        parts = [f"{self.mode.capitalize()} mode", f"{shown} of {total} rows"]
        if self.sort_key is not None:
            label = dict(columns).get(self.sort_key, self.sort_key)
            parts.append(f"sorted by {label} {'↓' if self.descending else '↑'}")
        parts.append(f"class: {self.class_name or 'all'}")
        if self.differs_only:
            parts.append("only where A ≠ B")
        return " · ".join(parts)


def _parse_fraction(text: str, name: str, *, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SegtuiError(
            f"{name} {text!r} is not a number.", f"Enter a value from {low} to {high}."
        ) from None
    if not low <= value <= high:
        raise SegtuiError(
            f"{name} {value} is out of range.", f"Enter a value from {low} to {high}."
        )
    return value


class ReportScreen(SegtuiScreen):
    """Create and read the accuracy report of one optimized project."""

    CSS_PATH = css_path("report.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="report.back", tooltip="Go back to the project."),
        Binding(
            "s",
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
            "o",
            "cycle_sort",
            "Sort",
            id="report.sort",
            tooltip="Sort by the next column (report order after the last).",
        ),
        Binding(
            "r",
            "reverse_sort",
            "Flip",
            id="report.reverse",
            tooltip="Flip the sort between ascending and descending.",
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
            id="report.export",
            tooltip="Write the report as CSV, JSON and Markdown into the workspace's reports folder.",
        ),
        Binding(
            "v",
            "visualize",
            "View",
            id="report.visualize",
            tooltip="Show the selected image with both models' masks.",
        ),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.report_type = "parent"
        self.report: ResultRecord | None = None
        self.view = TableView()
        self.shown_rows: list[Row] = []
        self.annotated = False
        self.optimized_project = False
        self.job_id: int | None = None
        self._was_narrow = False

    # -- layout ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="report-create"):
            with Horizontal(id="report-controls"):
                with RadioSet(id="report-type", compact=True):
                    yield RadioButton(
                        "Optimized vs parent", value=True, id="type-parent", compact=True
                    )
                    yield RadioButton("On annotations", id="type-annotations", compact=True)
                yield Label("Threshold", classes="field-label")
                yield Input(
                    "0.1",
                    id="report-threshold",
                    type="number",
                    compact=True,
                    tooltip="Score threshold for A and B alike (0 to 1).",
                )
                yield Label("IoU", classes="field-label")
                yield Input(
                    "0.5",
                    id="report-iou",
                    type="number",
                    compact=True,
                    tooltip="Mask IoU at which an A instance matches a B instance.",
                )
            yield Static(id="report-note")
        yield Vertical(id="job-area")
        yield Static("No report yet: press s to create one.", id="report-summary")
        yield Static(id="table-status")
        yield DataTable[str](id="report-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        ws = self.segtui.workspace
        project = ws.project(self.project_id)
        dataset = ws.dataset(project.dataset_id)
        self.annotated = dataset.annotated
        self.optimized_project = project.parent_id is not None
        self.title = f"Accuracy report · Project #{project.id}"
        self.sub_title = project.name
        annotations_button = self.query_one("#type-annotations", RadioButton)
        annotations_button.disabled = not self.annotated
        stored = [
            r
            for kind in ("report:parent", "report:annotations")
            for r in ws.results(project.id, kind)
        ]
        if stored:
            latest = max(stored, key=lambda r: (r.created_at, r.id))
            self._select_type(latest.kind.split(":", 1)[1])
        self.query_one("#report-note", Static).update(self._note_text(dataset.name))
        self.load_report()
        self.query_one("#report-table", DataTable).focus()
        active = [j for j in ws.jobs(project.id) if j.kind == "report" and j.active]
        if active:
            self._follow(active[-1].id)

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

    def _select_type(self, report_type: str) -> None:
        self.report_type = report_type
        button = self.query_one(f"#type-{report_type}", RadioButton)
        if not button.value:
            button.value = True

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        chosen = (event.pressed.id or "type-parent").removeprefix("type-")
        if chosen == self.report_type:
            return
        self.report_type = chosen
        project = self.segtui.workspace.project(self.project_id)
        self.query_one("#report-note", Static).update(
            self._note_text(self.segtui.workspace.dataset(project.dataset_id).name)
        )
        self.load_report()

    def load_report(self, result_id: int | None = None) -> None:
        """Show the stored report of the current type (or the result `result_id`)."""
        ws = self.segtui.workspace
        if result_id is not None:
            self.report = ws.result(result_id)
        else:
            stored = ws.results(self.project_id, f"report:{self.report_type}")
            self.report = stored[-1] if stored else None
        summary = self.query_one("#report-summary", Static)
        if self.report is None:
            label = REPORT_TYPE_LABELS[self.report_type].lower()
            summary.update(f"No report of this type yet ({label}): press s to create one.")
        else:
            summary.update(summary_text(self.report.data))
            threshold = self.report.data["summary"].get("threshold")
            iou = self.report.data["summary"].get("iou")
            if threshold is not None:
                self.query_one("#report-threshold", Input).value = str(threshold)
            if iou is not None:
                self.query_one("#report-iou", Input).value = str(iou)
        if self.view.class_name is not None and self.view.class_name not in self.class_names():
            self.view.class_name = None
        self.refresh_table()
        self.refresh_bindings()

    def class_names(self) -> list[str]:
        """The classes that appear in the report's advanced rows, sorted."""
        if self.report is None:
            return []
        return sorted({str(r["class"]) for r in self.report.data.get("advanced", [])})

    def columns(self) -> list[tuple[str, str]]:
        return columns_for(self.view.mode, self.report_type, narrow=self._narrow)

    @property
    def _narrow(self) -> bool:
        return 0 < self.size.width < NARROW_WIDTH

    def on_resize(self) -> None:
        if self._narrow != self._was_narrow:
            self._was_narrow = self._narrow
            self.refresh_table()

    def refresh_table(self) -> None:
        table = self.query_one("#report-table", DataTable)
        cursor_row = table.cursor_row
        table.clear(columns=True)
        columns = self.columns()
        arrow = " ↓" if self.view.descending else " ↑"
        for key, label in columns:
            table.add_column(label + (arrow if key == self.view.sort_key else ""), key=key)
        all_rows: list[Row] = list(self.report.data.get(self.view.mode, [])) if self.report else []
        with_class = None
        if self.view.class_name is not None and self.report is not None:
            with_class = {
                str(r["image"])
                for r in self.report.data.get("advanced", [])
                if r["class"] == self.view.class_name
            }
        rows = filter_rows(
            all_rows,
            class_name=self.view.class_name,
            differs_only=self.view.differs_only,
            images_with_class=with_class,
        )
        self.shown_rows = sort_rows(rows, self.view.sort_key, self.view.descending)
        for n, row in enumerate(self.shown_rows):
            table.add_row(*(cell_text(row.get(key)) for key, _ in columns), key=str(n))
        if self.shown_rows:
            table.move_cursor(row=min(max(cursor_row, 0), len(self.shown_rows) - 1))
        self.query_one("#table-status", Static).update(
            self.view.describe(len(self.shown_rows), len(all_rows), columns)
            + ("" if self.report else " · no report")
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "create_report":
            return self.optimized_project and self.job_id is None
        if action in ("toggle_mode", "cycle_sort", "reverse_sort", "cycle_class", "toggle_differs"):
            return self.report is not None
        if action in ("export", "visualize"):
            return self.report is not None if action == "export" else bool(self.shown_rows)
        return True

    # -- actions -----------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_toggle_mode(self) -> None:
        self.view.mode = "advanced" if self.view.mode == "basic" else "basic"
        if self.view.sort_key not in dict(self.columns()):
            self.view.sort_key = None
        self.refresh_table()

    def action_cycle_sort(self) -> None:
        keys: list[str | None] = [key for key, _ in self.columns()]
        keys.append(None)
        position = keys.index(self.view.sort_key) if self.view.sort_key in keys else -1
        self.view.sort_key = keys[(position + 1) % len(keys)]
        self.refresh_table()

    def action_reverse_sort(self) -> None:
        self.view.descending = not self.view.descending
        self.refresh_table()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == self.view.sort_key:
            self.view.descending = not self.view.descending
        else:
            self.view.sort_key = key
            self.view.descending = key in NUMERIC_COLUMNS
        self.refresh_table()

    def action_cycle_class(self) -> None:
        names: list[str | None] = [None, *self.class_names()]
        position = names.index(self.view.class_name) if self.view.class_name in names else 0
        self.view.class_name = names[(position + 1) % len(names)]
        self.refresh_table()

    def action_toggle_differs(self) -> None:
        self.view.differs_only = not self.view.differs_only
        self.refresh_table()

    def action_export(self) -> None:
        if self.report is None:
            return
        ws = self.segtui.workspace
        base = (
            ws.root
            / "reports"
            / f"project{self.project_id}-{self.report_type}-report{self.report.id}"
        )
        try:
            written = export_report(self.report.data, base)
        except OSError as exc:
            self.notify(f"Could not write the export: {exc}", severity="error", timeout=8)
            return
        listing = "\n".join(str(p) for p in written)
        self.notify(listing, title="Report exported (all rows)", timeout=12)

    def action_visualize(self) -> None:
        table = self.query_one("#report-table", DataTable)
        if not self.shown_rows or self.report is None:
            return
        self._open_visualize(min(max(table.cursor_row, 0), len(self.shown_rows) - 1))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self._open_visualize(int(event.row_key.value))

    def _open_visualize(self, index: int) -> None:
        from segtui.ui.screens.visualize import VisualizeScreen

        assert self.report is not None
        order = list(dict.fromkeys(str(row["image"]) for row in self.shown_rows))
        image = str(self.shown_rows[index]["image"])
        self.app.push_screen(VisualizeScreen(self.project_id, self.report.id, image, images=order))

    # -- the report job ------------------------------------------------------------

    def action_create_report(self) -> None:
        if self.report_type == "annotations" and not self.annotated:
            self.notify("This project's dataset is not annotated.", severity="warning")
            return
        try:
            threshold = _parse_fraction(
                self.query_one("#report-threshold", Input).value, "Threshold", low=0.0, high=1.0
            )
            iou = _parse_fraction(
                self.query_one("#report-iou", Input).value, "IoU", low=0.05, high=1.0
            )
        except SegtuiError as exc:
            self.notify(f"{exc.message}\n{exc.hint or ''}".strip(), severity="error")
            return
        params = {"type": self.report_type, "threshold": threshold, "iou": iou, "precision": "f32"}
        try:
            job = jobs.submit(self.segtui.workspace, "report", self.project_id, params)
        except SegtuiError as exc:
            self.notify(exc.message, severity="error")
            return
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
        if job.state == "done":
            result_id = (job.result or {}).get("result_id")
            report_type = str(job.params.get("type", self.report_type))
            self._select_type(report_type)
            self.load_report(int(result_id) if result_id is not None else None)
            event.monitor.remove()
            self.notify("Accuracy report ready.", timeout=4)
            self.query_one("#report-table", DataTable).focus()
        elif job.state == "cancelled":
            event.monitor.remove()
            self.notify("Report cancelled; the previous report is kept.", timeout=4)
        else:
            self.notify(
                job.error or "The report job failed: press l on it for its log.",
                title="Report failed",
                severity="error",
                timeout=10,
            )
