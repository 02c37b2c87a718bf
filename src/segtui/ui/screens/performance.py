"""Performance of one project: the latest benchmark per precision, keys to run one, per-layer tables.

Every figure names the inference precision it was measured at (an FP32 IR runs
in bf16 by default on CPUs that have it). Benchmarks run as "benchmark" jobs in
a child process (segtui.core.jobs) that this screen follows with a JobMonitor;
it never measures anything in the UI process. The per-layer tables come from
the profile stored with each run: time by layer type, count and time by
runtime precision, the slowest layers, and the compute layers an INT8 model
left in floating point, with the share of the time quantization cannot touch.

The figure formatting and `submit_benchmark` are shared with the Compare and
Configs screens.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from segtui.core import jobs
from segtui.core.benchmark import HINTS, BenchmarkSettings
from segtui.core.errors import SegtuiError
from segtui.core.performance import latest_benchmarks
from segtui.core.workspace import JobRecord, Workspace
from segtui.ui.commands import ScreenKeyCommands
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.styles import css_path
from segtui.ui.widgets.job_monitor import JobMonitor
from segtui.ui.widgets.job_queue import JobQueue, finished_notice
from segtui.ui.widgets.table import Row, SortableTable, num, txt

DEFAULT_DURATION_S = 20.0
COMPUTE_TYPES_TEXT = "Convolution/MatMul"


# -- figures -----------------------------------------------------------------------


def fps_text(run: dict[str, Any] | None) -> str:
    """'12.34 FPS at f32': a throughput always with its precision."""
    if not run:
        return "not measured"
    return f"{float(run['throughput_fps']):.2f} FPS at {run.get('precision', '?')}"


def run_settings_text(run: dict[str, Any]) -> str:
    """How a run was configured: hint, streams × requests, batch, duration, requested precision."""
    return (
        f"{run.get('hint', '?')}, {run.get('streams', '?')} streams × "
        f"{run.get('requests', '?')} requests, batch {run.get('batch', '?')}, "
        f"{float(run.get('duration_s', 0)):g} s (asked {run.get('requested_precision', '?')})"
    )


def percent(share: Any) -> str:
    return "-" if share is None else f"{float(share) * 100:.1f} %"


def ceiling_text(run: dict[str, Any] | None) -> Text:
    """The share of the time outside Convolution/MatMul: what quantization cannot speed up."""
    runtime = (run or {}).get("runtime") or {}
    share = runtime.get("non_compute_share")
    if run is None or share is None:
        return Text("No per-layer profile in this run: benchmark again to see where the time goes.")
    text = Text()
    text.append("Quantization cannot touch ")
    text.append(f"{float(share) * 100:.1f} %", style="bold")
    text.append(
        f" of the time (outside {COMPUTE_TYPES_TEXT}; "
        f"{float(runtime.get('total_ms', 0)):.2f} ms/image at {run.get('precision', '?')})."
    )
    return text


RESULT_COLUMNS = (
    ("precision", "Precision"),
    ("fps", "FPS"),
    ("median", "Median ms"),
    ("avg", "Avg ms"),
    ("min", "Min ms"),
    ("max", "Max ms"),
    ("streams", "Streams"),
    ("requests", "Requests"),
    ("batch", "Batch"),
    ("hint", "Hint"),
    ("duration", "Seconds"),
)


def result_rows(runs: dict[str, dict[str, Any]]) -> list[Row]:
    """One row per inference precision measured (the newest run of each)."""
    rows: list[Row] = []
    for precision, run in runs.items():
        rows.append(
            (
                precision,
                (
                    txt(precision),
                    num(float(run["throughput_fps"])),
                    num(float(run["latency_median_ms"])),
                    num(float(run["latency_avg_ms"])),
                    num(float(run["latency_min_ms"])),
                    num(float(run["latency_max_ms"])),
                    num(run.get("streams")),
                    num(run.get("requests")),
                    num(run.get("batch")),
                    txt(run.get("hint")),
                    num(run.get("duration_s"), 1),
                ),
            )
        )
    return rows


TYPE_COLUMNS = (("type", "Layer type"), ("ms", "Time ms"), ("share", "Share"))
PRECISION_COLUMNS = (
    ("precision", "Runtime precision"),
    ("count", "Layers"),
    ("ms", "Time ms"),
    ("share", "Share"),
)
SLOWEST_COLUMNS = (
    ("name", "Layer"),
    ("type", "Type"),
    ("precision", "Precision"),
    ("ms", "Time ms"),
    ("share", "Share"),
)
FLOAT_COLUMNS = (
    ("name", "Original layer"),
    ("type", "Type"),
    ("precision", "Runs in"),
    ("ms", "Time ms"),
)


def type_rows(runtime: dict[str, Any]) -> list[Row]:
    by_type: dict[str, float] = runtime.get("time_by_type_ms") or {}
    total = sum(by_type.values()) or 1.0
    return [
        (name, (txt(name), num(ms, 3), num(ms / total * 100, 1, " %")))
        for name, ms in by_type.items()
    ]


def precision_rows(runtime: dict[str, Any]) -> list[Row]:
    counts: dict[str, int] = runtime.get("by_precision") or {}
    times: dict[str, float] = runtime.get("time_by_precision_ms") or {}
    total = sum(times.values()) or None
    rows: list[Row] = []
    for name in list(dict.fromkeys([*counts, *times])):
        ms = times.get(name)
        share = None if ms is None or total is None else ms / total * 100
        rows.append(
            (
                name or "?",
                (txt(name or "?"), num(counts.get(name)), num(ms, 3), num(share, 1, " %")),
            )
        )
    return rows


def slowest_rows(runtime: dict[str, Any]) -> list[Row]:
    return [
        (
            f"{n}:{layer.get('name', '')}",
            (
                txt(layer.get("name")),
                txt(layer.get("type")),
                txt(layer.get("precision")),
                num(layer.get("ms"), 3),
                num(None if layer.get("share") is None else float(layer["share"]) * 100, 1, " %"),
            ),
        )
        for n, layer in enumerate(runtime.get("slowest") or [])
    ]


def float_rows(runtime: dict[str, Any]) -> list[Row]:
    """Compute layers left in floating point, with type/precision/time where the profile has them."""
    by_original: dict[str, dict[str, Any]] = {}
    for layer in runtime.get("slowest") or []:
        for original in layer.get("original") or []:
            by_original.setdefault(str(original), layer)
    rows: list[Row] = []
    for name in runtime.get("compute_float") or []:
        layer = by_original.get(str(name), {})
        rows.append(
            (
                str(name),
                (
                    txt(name),
                    txt(layer.get("type")),
                    txt(layer.get("precision")),
                    num(layer.get("ms"), 3),
                ),
            )
        )
    return rows


def float_summary(run: dict[str, Any] | None) -> str:
    runtime = (run or {}).get("runtime") or {}
    if not runtime:
        return "No runtime data in this run."
    compute = int(runtime.get("compute_layers", 0))
    left = len(runtime.get("compute_float") or [])
    if not (run or {}).get("int8"):
        return f"Not an INT8 model: all {compute} compute layers run in floating point."
    share = percent(runtime.get("compute_int8_share"))
    return f"{left} of {compute} compute layers stayed in floating point ({share} run in I8/U8)."


# -- jobs -------------------------------------------------------------------------------


def benchmark_params(settings: BenchmarkSettings, *, per_layer: bool = True) -> dict[str, Any]:
    """The params of a "benchmark" job: the settings without the device (the project's), plus per_layer."""
    params = asdict(settings)
    params.pop("device", None)
    return params | {"per_layer": per_layer}


def submit_benchmark(
    ws: Workspace, project_id: int, settings: BenchmarkSettings, precision: str
) -> JobRecord:
    """Queue a benchmark of `project_id` at `precision` ("f32" or "default")."""
    run = BenchmarkSettings(**(asdict(settings) | {"precision": precision}))
    run.validate()
    return jobs.submit(ws, "benchmark", project_id, benchmark_params(run))


def default_pair(ws: Workspace, project_id: int) -> tuple[int, int] | None:
    """(A, B) to compare: the project and its parent, or its newest child and itself."""
    project = ws.project(project_id)
    if project.parent_id is not None:
        return project.id, project.parent_id
    children = ws.children(project.id)
    if children:
        return children[-1].id, project.id
    return None


def parse_optional_int(text: str) -> int | None:
    """'' or 'auto' → None; otherwise a whole number ≥ 1."""
    text = text.strip().lower()
    if text in ("", "auto"):
        return None
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


# -- the screen -------------------------------------------------------------------------


class PerformanceScreen(SegtuiScreen):
    """Throughput and latency of one project per precision, and where its time goes."""

    CSS_PATH = css_path("performance.tcss")
    TITLE = "Performance"
    COMMANDS = Screen.COMMANDS | {ScreenKeyCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="performance.back", tooltip="Back to the project."),
        Binding(
            "b",
            "benchmark('f32')",
            "Benchmark f32",
            id="performance.benchmark_f32",
            tooltip="Measure at true FP32 (INFERENCE_PRECISION_HINT=f32) in a background job.",
        ),
        Binding(
            "d",
            "benchmark('default')",
            "Benchmark default",
            id="performance.benchmark_default",
            tooltip="Measure at the device's default precision (bf16 on CPUs that have it).",
        ),
        Binding(
            "e",
            "toggle_settings",
            "Settings",
            id="performance.settings",
            tooltip="Show or hide the benchmark settings (hint, seconds, streams, batch).",
        ),
        Binding(
            "v",
            "compare",
            "Compare",
            id="performance.compare",
            tooltip="Compare with the parent project (or the newest optimized child).",
        ),
        Binding(
            "i",
            "configs",
            "Configurations",
            id="performance.configs",
            tooltip="Explore inference configurations: a batch × streams sweep.",
        ),
        Binding("r", "reload", "Refresh", id="performance.refresh", tooltip="Reload the results."),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.runs: dict[str, dict[str, Any]] = {}
        self.selected_precision: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="perf-top"):
            yield Static(id="perf-title")
            yield Static(id="perf-empty", classes="empty")
            yield SortableTable(id="perf-results")
            yield Static(id="perf-baseline", classes="muted")
            yield Static(id="perf-run", classes="muted")
            yield Static(id="perf-ceiling")
        with Horizontal(id="perf-settings"):
            yield Label("Hint", classes="field-label")
            yield Select(
                [(h, h) for h in HINTS],
                value="THROUGHPUT",
                allow_blank=False,
                id="perf-hint",
                compact=True,
            )
            yield Label("Seconds", classes="field-label")
            yield Input(str(int(DEFAULT_DURATION_S)), id="perf-duration", compact=True)
            yield Label("Streams", classes="field-label")
            yield Input("auto", id="perf-streams", compact=True)
            yield Label("Batch", classes="field-label")
            yield Input("1", id="perf-batch", compact=True)
        with TabbedContent(id="perf-tabs"):
            with TabPane("By type", id="tab-type"):
                yield SortableTable(id="perf-by-type")
            with TabPane("By precision", id="tab-precision"):
                yield SortableTable(id="perf-by-precision")
            with TabPane("Slowest", id="tab-slowest"):
                yield SortableTable(id="perf-slowest")
            with TabPane("Floating point", id="tab-float"):
                yield Static(id="perf-float-summary", classes="muted")
                yield SortableTable(id="perf-float")
        yield JobQueue(id="perf-jobs")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#perf-results", SortableTable).set_columns(RESULT_COLUMNS)
        self.query_one("#perf-by-type", SortableTable).set_columns(TYPE_COLUMNS)
        self.query_one("#perf-by-precision", SortableTable).set_columns(PRECISION_COLUMNS)
        self.query_one("#perf-slowest", SortableTable).set_columns(SLOWEST_COLUMNS)
        self.query_one("#perf-float", SortableTable).set_columns(FLOAT_COLUMNS)
        self.query_one("#perf-settings").display = False
        self.reload()
        running = jobs.active_job(self.segtui.workspace, self.project_id, "benchmark")
        if running is not None:
            self.follow(running)
        self.query_one("#perf-results", SortableTable).focus()

    def reload(self) -> None:
        ws = self.segtui.workspace
        project = ws.project(self.project_id)
        model = ws.model(project.model_id)
        self.sub_title = f"#{project.id} {project.name}"
        kind = "INT8" if model.analysis.get("int8") else "FP"
        self.runs = latest_benchmarks(ws, self.project_id)
        title = Text.assemble(
            (f"#{project.id} {project.name}", "bold"), f" · {kind} · {project.device}"
        )
        if self.runs:
            best = max(self.runs.values(), key=lambda r: float(r["throughput_fps"]))
            title.append(
                f" · best {float(best['throughput_fps']):.2f} FPS, "
                f"{float(best['latency_median_ms']):.2f} ms median, at {best.get('precision', '?')}"
            )
        self.query_one("#perf-title", Static).update(title)
        requested = {
            str(r.data.get("requested_precision")) for r in ws.results(self.project_id, "benchmark")
        }
        baseline = self.query_one("#perf-baseline", Static)
        baseline.display = (
            project.parent_id is None
            and bool(self.runs)
            and len(requested & {"f32", "default"}) < 2
        )
        baseline.update(
            "Baselines: b = true FP32, d = default precision (bf16 where the CPU has it)."
        )
        table = self.query_one("#perf-results", SortableTable)
        table.set_rows(result_rows(self.runs))
        table.display = bool(self.runs)
        empty = self.query_one("#perf-empty", Static)
        empty.display = not self.runs
        empty.update(
            "Not benchmarked yet. Press b to measure at f32, d at the default precision "
            "(e changes hint, seconds, streams, batch)."
        )
        if self.selected_precision not in self.runs:
            self.selected_precision = next(iter(self.runs), None)
        self.show_run(self.selected_precision)

    def show_run(self, precision: str | None) -> None:
        """Fill the per-layer tables from the run at `precision`."""
        self.selected_precision = precision
        run = self.runs.get(precision) if precision else None
        runtime: dict[str, Any] = (run or {}).get("runtime") or {}
        self.query_one("#perf-run", Static).update(
            f"{precision} run: {run_settings_text(run)}" if run else ""
        )
        self.query_one("#perf-ceiling", Static).update(ceiling_text(run) if run else "")
        self.query_one("#perf-by-type", SortableTable).set_rows(type_rows(runtime))
        self.query_one("#perf-by-precision", SortableTable).set_rows(precision_rows(runtime))
        self.query_one("#perf-slowest", SortableTable).set_rows(slowest_rows(runtime))
        floats = float_rows(runtime)
        float_table = self.query_one("#perf-float", SortableTable)
        float_table.set_rows(floats)
        float_table.display = bool(floats)
        self.query_one("#perf-float-summary", Static).update(float_summary(run) if run else "")

    @on(DataTable.CellHighlighted, "#perf-results")
    def _result_highlighted(self, event: DataTable.CellHighlighted) -> None:
        key = event.cell_key.row_key.value
        if key is not None and key != self.selected_precision:
            self.show_run(key)

    # -- benchmark ------------------------------------------------------------------

    def settings_from_form(self) -> BenchmarkSettings:
        """The settings bar's values (defaults: THROUGHPUT, 20 s, auto streams, batch 1)."""
        try:
            duration = float(self.query_one("#perf-duration", Input).value)
            streams = parse_optional_int(self.query_one("#perf-streams", Input).value)
            batch = parse_optional_int(self.query_one("#perf-batch", Input).value) or 1
        except ValueError as exc:
            raise SegtuiError(
                "Seconds must be a number, streams 'auto' or a whole number, batch a whole number.",
                "Press e to see the settings.",
            ) from exc
        hint = self.query_one("#perf-hint", Select).value
        settings = BenchmarkSettings(
            hint=str(hint), streams=streams, batch=batch, duration_s=duration
        )
        settings.validate()
        return settings

    def action_benchmark(self, precision: str) -> None:
        try:
            job = submit_benchmark(
                self.segtui.workspace, self.project_id, self.settings_from_form(), precision
            )
        except SegtuiError as exc:
            self.notify(str(exc), title="Cannot benchmark", severity="error")
            return
        self.notify(f"Benchmark at {precision} precision: job {job.id}.", timeout=3)
        self.follow(job)

    def follow(self, job: JobRecord) -> None:
        self.query_one("#perf-jobs", JobQueue).follow(job.id)

    def on_job_monitor_finished(self, event: JobMonitor.Finished) -> None:
        finished_notice(self, event.job, "Benchmark")
        self.reload()

    @on(Input.Submitted, "#perf-settings Input")
    def _settings_submitted(self) -> None:
        """Enter in a settings field: back to the results, where b and d start a run."""
        try:
            settings = self.settings_from_form()
        except SegtuiError as exc:
            self.notify(str(exc), title="Benchmark settings", severity="error")
            return
        streams = settings.streams or "auto"
        self.notify(
            f"Next runs: {settings.hint}, {settings.duration_s:g} s, {streams} streams, "
            f"batch {settings.batch}. Press b (f32) or d (default precision).",
            timeout=4,
        )
        self.query_one("#perf-results", SortableTable).focus()

    def action_toggle_settings(self) -> None:
        bar = self.query_one("#perf-settings")
        bar.display = not bar.display
        if bar.display:
            self.query_one("#perf-duration", Input).focus()

    # -- navigation -------------------------------------------------------------------

    def action_compare(self) -> None:
        from segtui.ui.screens.compare import CompareScreen

        pair = default_pair(self.segtui.workspace, self.project_id)
        if pair is None:
            self.notify(
                "This project has no parent and no optimized child to compare with.", timeout=4
            )
            return
        self.app.push_screen(CompareScreen(*pair))

    def action_configs(self) -> None:
        from segtui.ui.screens.configs import ConfigsScreen

        self.app.push_screen(ConfigsScreen(self.project_id))

    def action_reload(self) -> None:
        self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_screen_resume(self) -> None:
        self.reload()
