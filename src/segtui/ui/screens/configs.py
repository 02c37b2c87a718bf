"""Explore inference configurations: a batch × streams sweep, its plot, and the sweet spot.

Each cell of the grid is a short benchmark; the estimated time is shown, and
updated as the fields change, before anything starts. The sweep runs as a
"sweep" job in a child process (followed with a JobMonitor) and is stored in
the workspace, so the newest one is shown when the screen opens (read in a
thread worker, `SweepPage`, as everything this screen reads). The sweet spot
is the best throughput whose median latency is under the threshold the user
types; it is marked in the table and the plot and named in a line.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Select, Static
from textual_plotext import PlotextPlot

from segtui.core import jobs
from segtui.core.benchmark import StoredBenchmarkSettings
from segtui.core.errors import SegtuiError
from segtui.core.performance import (
    CELL_OVERHEAD_S,
    SweepCell,
    SweepData,
    SweepSettings,
    cell_keys,
    estimate_sweep_seconds,
    latest_sweep,
    streams_text,
    sweet_spot,
)
from segtui.core.preflight import submit_checked
from segtui.core.records import JobRecord, ProjectRecord
from segtui.core.settings import SWEEP, SettingError, SettingField
from segtui.core.types import JobKind
from segtui.core.workspace import Workspace
from segtui.ui.commands import ScreenKeyCommands
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.styles import css_path
from segtui.ui.widgets.job_monitor import JobMonitor
from segtui.ui.widgets.job_queue import JobQueue, finished_notice
from segtui.ui.widgets.table import Cell, Row, SortableTable, num

#: The form: widget id → (the SWEEP field it edits, its short label, what it is for).
FORM_FIELDS = {
    "configs-batches": (
        "batches",
        "Batches",
        "Batch sizes to try, e.g. 1,2,4 (OMZ Mask R-CNN graphs take batch 1 only).",
    ),
    "configs-streams": (
        "streams",
        "Streams",
        "CPU streams to try, e.g. 1,2,4: parallel inferences on separate cores.",
    ),
    "configs-seconds": (
        "duration_s",
        "s / cell",
        "How long each cell measures (each also spends ~2 s compiling).",
    ),
    "configs-precision": (
        "precision",
        "Precision",
        "default: the device's choice (bf16 on CPUs that have it); f32: true FP32.",
    ),
    "configs-limit": (
        "latency_limit_ms",
        "Max lat. ms",
        "The sweet spot is the best throughput with a median latency under this.",
    ),
}
#: Fields that are narrower or wider than the rest.
FIELD_CLASSES = {
    "configs-seconds": "-short",
    "configs-precision": "-wide",
    "configs-limit": "-short",
}


def form_field(widget_id: str) -> SettingField[Any]:
    return SWEEP.field(FORM_FIELDS[widget_id][0])


def field_tip(widget_id: str) -> str:
    """What the field is for, and the values the schema allows."""
    allowed = form_field(widget_id).range_text()
    return FORM_FIELDS[widget_id][2] + (f" Allowed: {allowed}." if allowed else "")


def field_control(widget_id: str) -> Input | Select[str]:
    """A form control for a SWEEP field, starting at the schema's default."""
    spec = form_field(widget_id)
    control: Input | Select[str]
    if spec.kind == "choice":
        options = [(choice, choice) for choice in spec.choices]
        control = Select(
            options, value=spec.default_text, allow_blank=False, id=widget_id, compact=True
        )
    else:
        # An optional field starts empty (its placeholder says what empty means), to be typed into.
        text = "" if spec.default is None else spec.default_text
        control = Input(text, placeholder=spec.none_text, id=widget_id, compact=True)
    control.tooltip = field_tip(widget_id)
    return control


def cell_columns(cells: list[SweepCell]) -> list[tuple[str, str]]:
    """Batch, streams, FPS and median latency; the header names the precision the cells ran at."""
    ran = sorted({str(c.get("precision")) for c in cells if c.get("ok")})
    at = f" at {'/'.join(ran)}" if ran else ""
    return [
        ("batch", "Batch"),
        ("streams", "Streams"),
        ("fps", f"FPS{at}"),
        ("latency", "Median ms"),
    ]


def duration_text(total_s: float) -> str:
    seconds = round(total_s)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def estimate_text(settings: SweepSettings) -> str:
    total = estimate_sweep_seconds(settings)
    return (
        f"Estimated time: {duration_text(total)} ({len(settings.cells)} cells × "
        f"({settings.duration_s:g} s + ~{CELL_OVERHEAD_S:g} s to compile and warm up))"
    )


def cell_rows(cells: list[SweepCell], best: SweepCell | None, best_style: str) -> list[Row]:
    """One row per cell, keyed by the configuration asked for; the streams column shows what
    the device ran where it differs ('4 → 2')."""
    rows: list[Row] = []
    for key, cell in zip(cell_keys(cells), cells, strict=True):
        streams = Cell(float(cell["streams"]), streams_text(cell), True)
        if cell.get("ok"):
            values: list[Cell] = [
                num(int(cell["batch"])),
                streams,
                num(float(cell["throughput_fps"])),
                num(float(cell["latency_median_ms"])),
            ]
        else:
            failed = Cell(None, "failed", True)
            values = [num(int(cell["batch"])), streams, failed, failed]
        if cell is best:
            values = [v.styled(best_style) for v in values]
            values[0] = Cell(values[0].value, "★ " + values[0].text, True, best_style)
        rows.append((key, values))
    return rows


def best_key(cells: list[SweepCell], best: SweepCell | None) -> str | None:
    """The row key of the sweet spot (the cell itself, not an equal one)."""
    return next((k for k, c in zip(cell_keys(cells), cells, strict=True) if c is best), None)


def sweet_spot_text(cells: list[SweepCell], limit: float | None, best: SweepCell | None) -> Text:
    text = Text()
    measured = [c for c in cells if c.get("ok")]
    if not cells:
        return Text("No sweep yet: set the values above and press ctrl+s to run one.")
    if not measured:
        text.append("Every cell failed. ")
    failures = [c for c in cells if not c.get("ok")]
    if failures:
        first = str(failures[0].get("error", "failed")).splitlines()[0]
        first = first if len(first) <= 90 else first[:89] + "…"
        text.append(f"{len(failures)} cell(s) failed: {first}\n", style="italic")
    if not measured:
        return text
    where = f"under {limit:g} ms" if limit is not None else "(no latency threshold)"
    if best is None:
        fastest = min(float(c["latency_median_ms"]) for c in measured)
        text.append(
            f"No configuration has a median latency {where}; the lowest is {fastest:.2f} ms."
        )
        return text
    text.append(f"Sweet spot {where}: ", style="bold")
    text.append(
        f"batch {best['batch']} × {streams_text(best)} streams → "
        f"{float(best['throughput_fps']):.2f} FPS at {best.get('precision', '?')}, "
        f"{float(best['latency_median_ms']):.2f} ms median latency"
    )
    return text


@dataclass(frozen=True)
class SweepPage:
    """The project, its newest stored sweep and a sweep under way, read in a thread."""

    project: ProjectRecord
    sweep: SweepData | None
    #: A sweep of the project queued or running (followed when the screen opens).
    running: JobRecord | None


def load_sweep(ws: Workspace, project_id: int) -> SweepPage:
    return SweepPage(
        ws.project(project_id),
        latest_sweep(ws, project_id),
        jobs.active_job(ws, project_id, JobKind.SWEEP),
    )


class ConfigsScreen(SegtuiScreen):
    """A batch × streams grid of short benchmarks, throughput against latency, and the sweet spot."""

    CSS_PATH = css_path("performance.tcss")
    TITLE = "Inference configurations"
    COMMANDS = Screen.COMMANDS | {ScreenKeyCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "back", "Back", id="configs.back", tooltip="Back to the previous screen."
        ),
        Binding(
            "ctrl+s",
            "start",
            "Start sweep",
            id="configs.start",
            tooltip="Run a short benchmark for every batch × streams cell (a background job).",
        ),
        Binding(
            "ctrl+l",
            "focus_limit",
            "Latency limit",
            id="configs.limit",
            tooltip="Type the latency threshold the sweet spot must stay under.",
        ),
        Binding(
            "ctrl+t",
            "focus_table",
            "Results",
            id="configs.table",
            tooltip="Move to the results table (s sorts it).",
        ),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.cells: list[SweepCell] = []
        self.best: SweepCell | None = None
        self.sweep_settings: StoredBenchmarkSettings | None = None
        #: The stored sweep has been read at least once.
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="configs-form"):
            for widget_id, (_, label, _) in FORM_FIELDS.items():
                with Vertical(classes=f"field {FIELD_CLASSES.get(widget_id, '')}".strip()):
                    yield Label(label, classes="field-label")
                    yield field_control(widget_id)
        yield Static(id="configs-estimate")
        yield Static(id="configs-sweet")
        with Horizontal(id="configs-results"):
            yield SortableTable(id="configs-table")
            yield PlotextPlot(id="configs-plot")
        yield JobQueue(id="configs-jobs")
        yield Footer()

    def on_mount(self) -> None:
        self.update_estimate()
        self.query_one("#configs-sweet", Static).update("Loading the stored sweep…")
        self.load_stored()
        self.query_one("#configs-batches", Input).focus()

    # -- form -------------------------------------------------------------------------

    def form_text(self, widget_id: str) -> str:
        widget = self.query_one(f"#{widget_id}")
        return str(widget.value) if isinstance(widget, Input | Select) else ""

    def form_settings(self) -> SweepSettings:
        """The grid the form describes, parsed and checked by the SWEEP schema."""
        values: dict[str, object] = {}
        for widget_id in ("configs-batches", "configs-streams", "configs-seconds"):
            values[form_field(widget_id).name] = form_field(widget_id).parse(
                self.form_text(widget_id)
            )
        values["precision"] = self.form_text("configs-precision")
        return SweepSettings.from_values(values)

    def form_limit(self) -> float | None:
        """The latency threshold in ms; None when there is none (or it is not a number)."""
        limit_input = self.query_one("#configs-limit", Input)
        try:
            limit: float | None = form_field("configs-limit").parse(limit_input.value)
        except SettingError as exc:
            limit_input.add_class("-invalid")
            limit_input.tooltip = exc.message
            return None
        limit_input.remove_class("-invalid")
        limit_input.tooltip = field_tip("configs-limit")
        return limit

    def update_estimate(self) -> None:
        label = self.query_one("#configs-estimate", Static)
        try:
            settings = self.form_settings()
        except SegtuiError as exc:
            label.update(Text("✗ " + exc.message))
            label.add_class("-invalid")
            return
        label.remove_class("-invalid")
        label.update(Text("✓ " + estimate_text(settings)))

    @on(Input.Changed, "#configs-batches, #configs-streams, #configs-seconds")
    @on(Select.Changed, "#configs-precision")
    def _form_changed(self) -> None:
        self.update_estimate()

    @on(Input.Changed, "#configs-limit")
    def _limit_changed(self) -> None:
        self.show_cells()

    # -- results ------------------------------------------------------------------------

    def load_stored(self) -> None:
        """Read the newest stored sweep of this project (in a thread), then show it."""
        project_id = self.project_id
        self.tasks.run(
            lambda ws: load_sweep(ws, project_id),
            self.show_stored,
            group="configs-load",
            description="Load the stored sweep",
        )

    def show_stored(self, page: SweepPage) -> None:
        first = not self.loaded
        self.loaded = True
        self.sub_title = f"#{page.project.id} {page.project.name}"
        if page.sweep is not None:
            self.cells = list(page.sweep.get("cells") or [])
            self.sweep_settings = page.sweep.get("settings")
        self.show_cells()
        if first and page.running is not None:
            self.follow(page.running)

    def show_cells(self) -> None:
        limit = self.form_limit()
        self.best = sweet_spot(self.cells, limit)
        best_style = f"bold {self.app.current_theme.success or 'green'}"
        table = self.query_one("#configs-table", SortableTable)
        table.set_columns(cell_columns(self.cells))
        table.set_rows(cell_rows(self.cells, self.best, best_style))
        key = best_key(self.cells, self.best)
        if key is not None:
            table.move_cursor(row=table.row_keys.index(key), column=0)
        sweet = sweet_spot_text(self.cells, limit, self.best)
        if self.sweep_settings and self.cells:
            sweet.append(
                f"\nStored sweep: {len(self.cells)} cells, "
                f"{float(self.sweep_settings.get('duration_s', 0)):g} s each, "
                f"asked {self.sweep_settings.get('precision', '?')} precision.",
                style="dim",
            )
        self.query_one("#configs-sweet", Static).update(sweet)
        self.draw_plot(limit)

    def draw_plot(self, limit: float | None) -> None:
        """FPS against median latency: one line per batch value through its streams values."""
        plot = self.query_one("#configs-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        theme = self.app.current_theme
        palette = [
            Color.parse(c).rgb
            for c in (theme.accent, theme.primary, theme.secondary, theme.warning, theme.foreground)
            if c
        ]
        success = Color.parse(theme.success or theme.primary).rgb
        measured = [c for c in self.cells if c.get("ok")]
        plt.title("Throughput vs latency")
        plt.xlabel("median latency, ms")
        plt.ylabel("FPS")
        if measured:
            lat = [float(c["latency_median_ms"]) for c in measured]
            fps = [float(c["throughput_fps"]) for c in measured]
            batches = sorted({int(c["batch"]) for c in measured})
            for n, batch in enumerate(batches):
                line = sorted(
                    (c for c in measured if int(c["batch"]) == batch),
                    key=lambda c: int(c["streams"]),
                )
                plt.plot(
                    [float(c["latency_median_ms"]) for c in line],
                    [float(c["throughput_fps"]) for c in line],
                    marker="dot",
                    color=palette[n % len(palette)],
                    label=f"batch {batch} (streams {', '.join(streams_text(c) for c in line)})",
                )
            if self.best is not None:
                plt.scatter(
                    [float(self.best["latency_median_ms"])],
                    [float(self.best["throughput_fps"])],
                    marker="★",
                    color=success,
                    label="sweet spot",
                )
            xs = [*lat, *([limit] if limit is not None else [])]
            x_pad = (max(xs) - min(xs)) * 0.1 or max(xs) * 0.1 or 1.0
            y_pad = (max(fps) - min(fps)) * 0.1 or max(fps) * 0.1 or 1.0
            plt.xlim(max(0.0, min(xs) - x_pad), max(xs) + x_pad)
            plt.ylim(max(0.0, min(fps) - y_pad), max(fps) + y_pad)
            if limit is not None:
                plt.vline(limit, Color.parse(theme.error or theme.primary).rgb)
        plot.refresh()

    # -- sweep ------------------------------------------------------------------------

    def action_start(self) -> None:
        try:
            settings = self.form_settings()
        except SegtuiError as exc:
            self._cannot_start(exc)
            return
        project_id, params = self.project_id, dict(settings.job_params())
        self.tasks.run(
            lambda ws: submit_checked(ws, JobKind.SWEEP, project_id, params),
            partial(self._sweep_queued, settings),
            group="configs-submit",
            description="Queue the sweep",
            exclusive=False,  # every start queues its own job: none may be dropped
            refused=self._cannot_start,
        )

    def _sweep_queued(self, settings: SweepSettings, job: JobRecord) -> None:
        self.notify(
            f"Sweep of {len(settings.cells)} cells: job {job.id}, "
            f"about {duration_text(estimate_sweep_seconds(settings))}.",
            timeout=4,
        )
        self.follow(job)

    def _cannot_start(self, error: SegtuiError) -> None:
        self.notify(str(error), title="Cannot start the sweep", severity="error")

    def follow(self, job: JobRecord) -> None:
        self.query_one("#configs-jobs", JobQueue).follow(job.id)

    def on_job_monitor_finished(self, event: JobMonitor.Finished) -> None:
        finished_notice(self, event.job, "Sweep")
        self.load_stored()

    def action_focus_limit(self) -> None:
        self.query_one("#configs-limit", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one("#configs-table", SortableTable).focus()

    def action_back(self) -> None:
        self.app.pop_screen()
