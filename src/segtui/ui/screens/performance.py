"""Performance of one project: the latest benchmark per precision, keys to run one, per-layer tables.

Every figure names the inference precision it was measured at (an FP32 IR runs
in bf16 by default on CPUs that have it). Benchmarks run as "benchmark" jobs in
a child process (segtui.core.jobs) that this screen follows with a JobMonitor;
it never measures anything in the UI process. The per-layer tables come from
the profile stored with each run: where the time goes (quantized compute, float
compute, geometry, standalone quantizers, layout conversions, the rest) with the
quantizers that run as layers of their own, time by layer type, count and time by
runtime precision, the slowest layers, and the compute layers an INT8 model
left in floating point, with the share of the time quantization cannot touch.
The screen reads the workspace in a thread worker (`PerformancePage`), never on the
event loop; queuing a benchmark runs in one too.

The figures and table rows are in `segtui.ui.widgets.benchmark_tables`;
`queue_benchmark` is shared with the Compare screen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget
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
from segtui.core.benchmark import BenchmarkSettings, StoredBenchmark
from segtui.core.errors import SegtuiError
from segtui.core.performance import latest_benchmarks, requested_precisions
from segtui.core.preflight import submit_checked
from segtui.core.records import JobRecord, ProjectRecord
from segtui.core.settings import BENCHMARK, SettingError, SettingField
from segtui.core.settings_versions import CurrentVersions, data_staleness
from segtui.core.types import JobKind, Precision, ResultKind
from segtui.core.workspace import Workspace
from segtui.ui.commands import ScreenKeyCommands
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.styles import css_path
from segtui.ui.widgets.benchmark_tables import (
    FLOAT_COLUMNS,
    PRECISION_COLUMNS,
    QUANTIZER_COLUMNS,
    RESULT_COLUMNS,
    SLOWEST_COLUMNS,
    SPLIT_COLUMNS,
    TYPE_COLUMNS,
    ceiling_text,
    float_rows,
    float_summary,
    header_tags,
    precision_rows,
    quantizer_rows,
    quantizer_summary,
    result_columns,
    result_rows,
    run_settings_text,
    runtime_of,
    slowest_rows,
    split_rows,
    split_summary,
    stale_text,
    type_rows,
)
from segtui.ui.widgets.job_monitor import JobMonitor
from segtui.ui.widgets.job_queue import JobQueue, finished_notice
from segtui.ui.widgets.table import SortableTable

#: The settings bar: the BENCHMARK fields it shows (looked up when used), by widget id.
FORM_FIELDS = {
    "perf-hint": "hint",
    "perf-duration": "duration_s",
    "perf-streams": "streams",
    "perf-batch": "batch",
}


# -- the settings form (from the BENCHMARK schema) ------------------------------------


def field_label(spec: SettingField[Any]) -> str:
    return f"{spec.label} ({spec.unit})" if spec.unit else spec.label


def field_tip(spec: SettingField[Any]) -> str:
    """The schema's help and allowed values, as a form field's tooltip."""
    allowed = spec.range_text()
    return f"{spec.help[:1].upper()}{spec.help[1:]}" + (f" ({allowed})." if allowed else ".")


def settings_bar() -> Iterator[Widget]:
    """The benchmark settings bar, built from the BENCHMARK schema."""
    for widget_id, name in FORM_FIELDS.items():
        spec = BENCHMARK.field(name)
        yield Label(field_label(spec), classes="field-label")
        control: Widget
        if spec.kind == "choice":
            options = [(choice, choice) for choice in spec.choices]
            control = Select(
                options, value=spec.default_text, allow_blank=False, id=widget_id, compact=True
            )
        else:
            control = Input(spec.default_text, id=widget_id, compact=True)
        control.tooltip = field_tip(spec)
        yield control


# -- jobs -------------------------------------------------------------------------------


def submit_benchmark(
    ws: Workspace, project_id: int, settings: BenchmarkSettings, precision: Precision
) -> JobRecord:
    """Queue a benchmark of `project_id` at `precision` (true FP32, or the device's default)."""
    run = replace(settings, precision=precision)
    run.validate()
    return submit_checked(ws, JobKind.BENCHMARK, project_id, dict(run.job_params()))


def queue_benchmark(
    screen: SegtuiScreen,
    project_id: int,
    settings: BenchmarkSettings,
    precision: Precision,
    then: Callable[[JobRecord], object],
) -> None:
    """Queue a benchmark in a thread worker: `then(job)` once queued; a refusal is notified."""
    screen.tasks.run(
        lambda ws: submit_benchmark(ws, project_id, settings, precision),
        then,
        group="benchmark-submit",
        description="Queue a benchmark",
        exclusive=False,  # every key press queues its own job: none may be dropped
        refused=partial(cannot_benchmark, screen),
    )


def cannot_benchmark(screen: SegtuiScreen, error: SegtuiError) -> None:
    screen.notify(str(error), title="Cannot benchmark", severity="error")


def default_pair(ws: Workspace, project_id: int) -> tuple[int, int] | None:
    """(A, B) to compare: the project and its parent, or its newest child and itself."""
    project = ws.project(project_id)
    if project.parent_id is not None:
        return project.id, project.parent_id
    children = ws.children(project.id)
    if children:
        return children[-1].id, project.id
    return None


# -- what the screen shows, read off the event loop ---------------------------------------


@dataclass(frozen=True)
class PerformancePage:
    """One project's benchmarks and what the keys need, read in one go in a thread."""

    project: ProjectRecord
    int8: bool
    runs: dict[str, StoredBenchmark]
    #: Every precision the project was asked to run at ("f32", "default").
    requested: frozenset[str]
    #: (A, B) for the compare key, if there is anything to compare with.
    compare_pair: tuple[int, int] | None
    #: A benchmark of the project queued or running (followed when the screen opens).
    running: JobRecord | None
    #: The precisions whose run recorded accuracy settings the model no longer has.
    stale: frozenset[str] = frozenset()


def stale_precisions(
    ws: Workspace, project_id: int, runs: dict[str, StoredBenchmark]
) -> frozenset[str]:
    """The runs made with other accuracy settings than the model's now (reads its graph)."""
    current = CurrentVersions(ws)
    return frozenset(
        precision
        for precision, run in runs.items()
        if data_staleness(ws, ResultKind.BENCHMARK, project_id, run, current).stale
    )


def load_performance(ws: Workspace, project_id: int) -> PerformancePage:
    project = ws.project(project_id)
    runs = latest_benchmarks(ws, project_id)
    return PerformancePage(
        project=project,
        int8=bool(ws.model(project.model_id).analysis.get("int8")),
        runs=runs,
        requested=frozenset(requested_precisions(ws, project_id)),
        compare_pair=default_pair(ws, project_id),
        running=jobs.active_job(ws, project_id, JobKind.BENCHMARK),
        stale=stale_precisions(ws, project_id, runs),
    )


def title_text(page: PerformancePage) -> Text:
    """'#3 Mask R-CNN · FP · CPU · best 8.00 FPS, 125.00 ms median, at bf16'."""
    project = page.project
    kind = "INT8" if page.int8 else "FP"
    title = Text.assemble(
        (f"#{project.id} {project.name}", "bold"), header_tags(project.name, kind, project.device)
    )
    if page.runs:
        best = max(page.runs.values(), key=lambda r: float(r["throughput_fps"]))
        title.append(
            f" · best {float(best['throughput_fps']):.2f} FPS, "
            f"{float(best['latency_median_ms']):.2f} ms median, at {best.get('precision', '?')}"
        )
    return title


# -- the screen -------------------------------------------------------------------------

NOT_MEASURED = (
    "Not benchmarked yet. Press b to measure at f32, d at the default precision "
    "(e changes hint, seconds, streams, batch)."
)
LOADING = "Loading the benchmarks…"


class PerformanceScreen(SegtuiScreen):
    """Throughput and latency of one project per precision, and where its time goes."""

    CSS_PATH = css_path("performance.tcss")
    TITLE = "Performance"
    COMMANDS = Screen.COMMANDS | {ScreenKeyCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "back",
            "Back",
            show=False,
            id="performance.back",
            tooltip="Close the settings when they are open, else back to the project.",
        ),
        Binding(
            "ctrl+s",
            "benchmark('f32')",
            "Run benchmark",
            show=False,
            id="performance.run",
            tooltip="Run a benchmark at true FP32 with the settings (the same as b).",
        ),
        Binding(
            "b",
            "benchmark('f32')",
            "FP32",
            id="performance.benchmark_f32",
            tooltip="Measure at true FP32 (INFERENCE_PRECISION_HINT=f32) in a background job.",
        ),
        Binding(
            "d",
            "benchmark('default')",
            "Default",
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
            show=False,
            id="performance.configs",
            tooltip="Explore inference configurations: a batch × streams sweep.",
        ),
        Binding(
            "r",
            "reload",
            "Refresh",
            show=False,
            id="performance.refresh",
            tooltip="Reload the results.",
        ),
    ]

    def __init__(self, project_id: int) -> None:
        super().__init__()
        self.project_id = project_id
        self.page: PerformancePage | None = None
        self.selected_precision: str | None = None
        #: The results table's columns that fit the screen (see result_columns).
        self.result_columns: tuple[tuple[str, str], ...] = RESULT_COLUMNS

    @property
    def runs(self) -> dict[str, StoredBenchmark]:
        """The newest run per precision (none until the page is read)."""
        return self.page.runs if self.page is not None else {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="perf-top"):
            yield Static(id="perf-title")
            yield Static(LOADING, id="perf-empty", classes="empty")
            yield SortableTable(id="perf-results")
            yield Static(id="perf-stale")
            yield Static(
                "Baselines: b = true FP32, d = default precision (bf16 where the CPU has it).",
                id="perf-baseline",
                classes="muted",
            )
            yield Static(id="perf-run", classes="muted")
            yield Static(id="perf-ceiling")
        with Horizontal(id="perf-settings"):
            yield from settings_bar()
        with TabbedContent(id="perf-tabs"):
            with TabPane("Where the time goes", id="tab-split"):
                yield Static(id="perf-split-summary", classes="muted")
                yield SortableTable(id="perf-split")
                yield Static(id="perf-quantizers-summary", classes="muted")
                yield SortableTable(id="perf-quantizers")
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
        self.result_columns = result_columns(self.app.size.width)
        self.query_one("#perf-results", SortableTable).set_columns(self.result_columns)
        self.query_one("#perf-split", SortableTable).set_columns(SPLIT_COLUMNS)
        self.query_one("#perf-quantizers", SortableTable).set_columns(QUANTIZER_COLUMNS)
        self.query_one("#perf-by-type", SortableTable).set_columns(TYPE_COLUMNS)
        self.query_one("#perf-by-precision", SortableTable).set_columns(PRECISION_COLUMNS)
        self.query_one("#perf-slowest", SortableTable).set_columns(SLOWEST_COLUMNS)
        self.query_one("#perf-float", SortableTable).set_columns(FLOAT_COLUMNS)
        self.query_one("#perf-settings").display = False
        # Until the benchmarks are in, only the loading line shows.
        self.query_one("#perf-baseline").display = False
        self.query_one("#perf-results").display = False
        self.query_one("#perf-stale").display = False

    def on_resize(self, event: events.Resize) -> None:
        """The results table's columns again where the width changes which of them fit."""
        fitted = result_columns(event.size.width)
        if fitted != self.result_columns:
            self.result_columns = fitted
            table = self.query_one("#perf-results", SortableTable)
            table.set_columns(fitted)
            table.set_rows(result_rows(self.runs, fitted))

    def on_screen_resume(self) -> None:
        # Also when the screen is first shown: the first read starts here.
        self.reload()

    def reload(self) -> None:
        """Read the benchmarks again (in a thread); the screen updates when they are in."""
        project_id = self.project_id
        self.tasks.run(
            lambda ws: load_performance(ws, project_id),
            self.show_page,
            group="performance-load",
            description="Load the benchmarks",
        )

    def show_page(self, page: PerformancePage) -> None:
        if page == self.page:
            return  # unchanged (e.g. back from help): nothing to repaint
        first = self.page is None
        self.page = page
        self.sub_title = f"#{page.project.id} {page.project.name}"
        self.query_one("#perf-title", Static).update(title_text(page))
        self.query_one("#perf-baseline", Static).display = (
            page.project.parent_id is None
            and bool(self.runs)
            and len(page.requested & {"f32", "default"}) < 2
        )
        table = self.query_one("#perf-results", SortableTable)
        table.set_rows(result_rows(self.runs, self.result_columns))
        table.display = bool(self.runs)
        stale = self.query_one("#perf-stale", Static)
        stale.update(stale_text(self.runs, page.stale, self.app.current_theme.warning))
        stale.display = bool(page.stale)
        empty = self.query_one("#perf-empty", Static)
        empty.display = not self.runs
        empty.update(NOT_MEASURED)
        if self.selected_precision not in self.runs:
            self.selected_precision = next(iter(self.runs), None)
        self.show_run(self.selected_precision)
        if first:
            table.focus()
            if page.running is not None:
                self.follow(page.running)

    def show_run(self, precision: str | None) -> None:
        """Fill the per-layer tables from the run at `precision`."""
        self.selected_precision = precision
        run = self.runs.get(precision) if precision else None
        runtime = runtime_of(run)
        self.query_one("#perf-run", Static).update(
            f"{precision} run: {run_settings_text(run)}" if run else ""
        )
        self.query_one("#perf-ceiling", Static).update(ceiling_text(run) if run else "")
        self.show_split(run)
        self.query_one("#perf-by-type", SortableTable).set_rows(type_rows(runtime))
        self.query_one("#perf-by-precision", SortableTable).set_rows(precision_rows(runtime))
        self.query_one("#perf-slowest", SortableTable).set_rows(slowest_rows(runtime))
        floats = float_rows(runtime)
        float_table = self.query_one("#perf-float", SortableTable)
        float_table.set_rows(floats)
        float_table.display = bool(floats)
        self.query_one("#perf-float-summary", Static).update(float_summary(run) if run else "")

    def show_split(self, run: StoredBenchmark | None) -> None:
        """Fill the "Where the time goes" tab: the split and the standalone quantizers."""
        runtime = runtime_of(run)
        self.query_one("#perf-split-summary", Static).update(split_summary(run) if run else "")
        splits = split_rows(runtime)
        split_table = self.query_one("#perf-split", SortableTable)
        split_table.set_rows(splits)
        split_table.display = bool(splits)
        quantizers = quantizer_rows(runtime)
        self.query_one("#perf-quantizers-summary", Static).update(quantizer_summary(runtime))
        quantizer_table = self.query_one("#perf-quantizers", SortableTable)
        quantizer_table.set_rows(quantizers)
        quantizer_table.display = bool(quantizers)

    @on(DataTable.CellHighlighted, "#perf-results")
    def _result_highlighted(self, event: DataTable.CellHighlighted) -> None:
        key = event.cell_key.row_key.value
        if key is not None and key != self.selected_precision:
            self.show_run(key)

    # -- benchmark ------------------------------------------------------------------

    def form_problems(self) -> tuple[dict[str, object], dict[str, str]]:
        """The settings bar parsed by the schema: (values by field name, problems by widget id)."""
        values: dict[str, object] = {}
        problems: dict[str, str] = {}
        for widget_id, name in FORM_FIELDS.items():
            spec = BENCHMARK.field(name)
            widget = self.query_one(f"#{widget_id}")
            text = str(widget.value) if isinstance(widget, Input | Select) else ""
            try:
                values[spec.name] = spec.parse(text)
            except SettingError as exc:
                problems[widget_id] = exc.message
        return values, problems

    def settings_from_form(self) -> BenchmarkSettings:
        """The settings bar's values (its fields start at the schema's defaults)."""
        values, problems = self.form_problems()
        if problems:
            raise SegtuiError(" ".join(problems.values()), "Press e to see the settings.")
        return BenchmarkSettings.from_values(values)

    def action_benchmark(self, precision: str) -> None:
        try:
            settings = self.settings_from_form()
        except SegtuiError as exc:
            cannot_benchmark(self, exc)
            return
        queue_benchmark(
            self,
            self.project_id,
            settings,
            Precision(precision),
            partial(self._benchmark_queued, precision),
        )

    def _benchmark_queued(self, precision: str, job: JobRecord) -> None:
        self.notify(f"Benchmark at {precision} precision: job {job.id}.", timeout=3)
        self.follow(job)

    def follow(self, job: JobRecord) -> None:
        self.query_one("#perf-jobs", JobQueue).follow(job.id)

    def on_job_monitor_finished(self, event: JobMonitor.Finished) -> None:
        finished_notice(self, event.job, "Benchmark")
        self.reload()

    @on(Input.Changed, "#perf-settings Input")
    def _settings_changed(self, event: Input.Changed) -> None:
        """Mark a value the schema refuses as the user types; its tooltip says why."""
        spec = BENCHMARK.field(FORM_FIELDS[str(event.input.id)])
        try:
            spec.parse(event.value)
        except SettingError as exc:
            event.input.add_class("-invalid")
            event.input.tooltip = exc.message
            return
        event.input.remove_class("-invalid")
        event.input.tooltip = field_tip(spec)

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
        else:
            self.query_one("#perf-results", SortableTable).focus()

    # -- navigation -------------------------------------------------------------------

    def action_compare(self) -> None:
        from segtui.ui.screens.compare import CompareScreen

        if self.page is None:
            return  # not read yet: the key does nothing for the moment it takes
        pair = self.page.compare_pair
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
        # Escape closes the innermost thing: the settings first, then the screen.
        if self.query_one("#perf-settings").display:
            self.action_toggle_settings()
            return
        self.app.pop_screen()
