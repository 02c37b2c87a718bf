"""Compare projects: A (by default the optimized child) against B (its parent).

Throughput and latency of every precision measured on each side, the ratios of
A's best run against each of B's precisions (so "vs f32" and "vs bf16" are both
there when measured), what each side computed in side by side, where the time
goes in each (core.time_split's categories, with the standalone quantizers), and the
per-layer-type time deltas. A side without a benchmark says so, with the key
that runs one. Both sides are read in a thread worker (`ComparePage`), never on
the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Static

from segtui.core import jobs
from segtui.core.benchmark import BenchmarkRun, BenchmarkSettings, StoredBenchmark
from segtui.core.errors import SegtuiError
from segtui.core.performance import (
    Comparison,
    LayerDelta,
    SplitRow,
    compare_projects,
    latest_benchmarks,
    requested_precisions,
)
from segtui.core.records import JobRecord, ProjectRecord
from segtui.core.types import JobKind, Precision
from segtui.core.workspace import Workspace
from segtui.ui.commands import ScreenKeyCommands
from segtui.ui.screens.base import SegtuiScreen
from segtui.ui.screens.performance import queue_benchmark
from segtui.ui.styles import css_path
from segtui.ui.widgets.benchmark_tables import (
    fps_text,
    header_tags,
    labelled_counts,
    machine_text,
    quantizer_summary,
    runtime_of,
)
from segtui.ui.widgets.job_monitor import JobMonitor
from segtui.ui.widgets.job_queue import JobQueue, finished_notice
from segtui.ui.widgets.table import Row, SortableTable, num, txt

#: (row key, label, how to read it from a run, digits): figures with 0 digits are counts.
FIGURES: tuple[tuple[str, str, Callable[[BenchmarkRun], float], int], ...] = (
    ("fps", "Throughput FPS", lambda run: run["throughput_fps"], 2),
    ("median", "Latency median ms", lambda run: run["latency_median_ms"], 2),
    ("avg", "Latency avg ms", lambda run: run["latency_avg_ms"], 2),
    ("min", "Latency min ms", lambda run: run["latency_min_ms"], 2),
    ("max", "Latency max ms", lambda run: run["latency_max_ms"], 2),
    ("streams", "Streams", lambda run: run["streams"], 0),
    ("batch", "Batch", lambda run: run["batch"], 0),
)
DELTA_COLUMNS = (
    ("type", "Layer type"),
    ("b", "B ms"),
    ("a", "A ms"),
    ("delta", "Δ ms (A − B)"),
    ("speedup", "B / A"),
)


def side_columns(
    a_runs: Mapping[str, BenchmarkRun], b_runs: Mapping[str, BenchmarkRun]
) -> list[tuple[str, str]]:
    """One column per measured run: 'A f32', 'A bf16', 'B f32', ..."""
    columns = [("figure", "")]
    columns += [(f"a:{p}", f"A at {p}") for p in a_runs]
    columns += [(f"b:{p}", f"B at {p}") for p in b_runs]
    return columns


def figure_rows(
    a_runs: Mapping[str, BenchmarkRun], b_runs: Mapping[str, BenchmarkRun]
) -> list[Row]:
    """Throughput and latencies, one row per figure, one column per run (precision in the header)."""
    runs = list(a_runs.values()) + list(b_runs.values())
    rows: list[Row] = []
    for key, label, figure, digits in FIGURES:
        cells = [txt(label)]
        for run in runs:
            value = figure(run)
            cells.append(num(int(value) if digits == 0 else value, digits))
        rows.append((key, cells))
    return rows


def ratio_text(comparison: Comparison, b_requested: Collection[str]) -> Text:
    """A's run against each precision B was measured at (paired like with like, else named).

    `b_requested` is every precision B was ever asked to run at ("f32", "default"),
    to say which baseline is still missing and the key that measures it.
    """
    a_best = comparison["a_best"]
    ratios = comparison["ratios_vs_b"]
    b_runs = comparison["b"]["runs"]
    text = Text()
    text.append(f"A's best run, {fps_text(a_best)}:", style="bold")
    for precision, ratio in ratios.items():
        asked = b_runs[precision].get("requested_precision")
        kind = "default" if asked == "default" else "true FP32"
        a_at = ratio.get("a_precision")
        a_side = f"A at {a_at} " if a_at and a_at != precision else ""
        text.append(f"\n  {a_side}vs B at {precision} ({kind}): ")
        text.append(f"{float(ratio['throughput_ratio']):.2f}× throughput", style="bold")
        text.append(f" · latency B/A {float(ratio['latency_ratio']):.2f}×")
    if "default" in b_requested and "f32" in b_requested and len(ratios) == 1:
        only = next(iter(ratios))
        text.append(f"\n  (this device runs B at {only} by default: one baseline)", style="italic")
    if "f32" not in b_requested:
        text.append("\nB has no true-FP32 run: press b to measure one.", style="italic")
    if "default" not in b_requested:
        text.append("\nB has no default-precision run: press d to measure one.", style="italic")
    a_machine, b_machine = machine_text(a_best), machine_text(comparison["b_best"])
    if a_machine and a_machine == b_machine:
        text.append(f"\nBoth measured on {a_machine}.", style="dim")
    elif a_machine or b_machine:
        for side, machine in (("A", a_machine), ("B", b_machine)):
            text.append(f"\n{side} measured on {machine or 'a processor not recorded'}.", "dim")
    return text


SPLIT_COLUMNS = (
    ("category", "Where the time goes"),
    ("b_ms", "B ms"),
    ("b_share", "B share"),
    ("a_ms", "A ms"),
    ("a_share", "A share"),
)


def split_rows(rows: list[SplitRow]) -> list[Row]:
    """The time split of B's and A's best runs side by side (ms per inference, share)."""
    return [
        (
            r["category"],
            (
                txt(r["category"]),
                num(r["b_ms"], 3),
                num(r["b_share"] * 100, 1, " %"),
                num(r["a_ms"], 3),
                num(r["a_share"] * 100, 1, " %"),
            ),
        )
        for r in rows
    ]


def split_note(comparison: Comparison) -> str:
    """Which runs the split compares and each side's standalone quantizers, or why none."""
    a_best, b_best = comparison["a_best"], comparison["b_best"]
    if not comparison["time_split"]:
        return "No time split in these runs: benchmark both again to see where the time goes."
    lines = [f"A at {a_best.get('precision', '?')} vs B at {b_best.get('precision', '?')}."]
    for side, run in (("A", a_best), ("B", b_best)):
        quantizers = quantizer_summary(runtime_of(run))
        if quantizers:
            lines.append(f"{side}: {quantizers}.")
    return "\n".join(lines)


def precision_columns() -> list[tuple[str, str]]:
    return [
        ("precision", "Computed in"),
        ("a_count", "A layers"),
        ("a_ms", "A ms"),
        ("b_count", "B layers"),
        ("b_ms", "B ms"),
    ]


def precision_rows(a_run: BenchmarkRun, b_run: BenchmarkRun) -> list[Row]:
    """Layers and time by what each side computed in ('F32 (FP16 weights)' for B at f32)."""
    a_counts, a_times = labelled_counts(runtime_of(a_run))
    b_counts, b_times = labelled_counts(runtime_of(b_run))
    names = list(dict.fromkeys([*a_counts, *b_counts, *a_times, *b_times]))
    return [
        (
            name,
            (
                txt(name),
                num(a_counts.get(name)),
                num(a_times.get(name), 3),
                num(b_counts.get(name)),
                num(b_times.get(name), 3),
            ),
        )
        for name in names
    ]


def delta_rows(deltas: list[LayerDelta]) -> list[Row]:
    rows: list[Row] = []
    for d in deltas:
        a_ms, b_ms = float(d["a_ms"]), float(d["b_ms"])
        rows.append(
            (
                str(d["layer_type"]),
                (
                    txt(d["layer_type"]),
                    num(b_ms, 3),
                    num(a_ms, 3),
                    num(float(d["delta_ms"]), 3),
                    num(b_ms / a_ms if a_ms > 0 and b_ms > 0 else None, 2, "×"),
                ),
            )
        )
    return rows


@dataclass(frozen=True)
class Side:
    """One side of the comparison: the project, whether its model is INT8, its newest runs."""

    project: ProjectRecord
    int8: bool
    runs: dict[str, StoredBenchmark]


@dataclass(frozen=True)
class ComparePage:
    """Both sides and their comparison, read in one go in a thread."""

    a: Side
    b: Side
    #: None while a side has no benchmark, or when `problem` says why not.
    comparison: Comparison | None
    problem: str | None
    #: Every precision B was asked to run at ("f32", "default").
    b_requested: frozenset[str]
    #: A benchmark of A or B queued or running (followed when the screen opens).
    running: JobRecord | None


def read_side(ws: Workspace, project_id: int) -> Side:
    project = ws.project(project_id)
    int8 = bool(ws.model(project.model_id).analysis.get("int8"))
    return Side(project, int8, latest_benchmarks(ws, project_id))


def load_comparison(ws: Workspace, a_id: int, b_id: int) -> ComparePage:
    a, b = read_side(ws, a_id), read_side(ws, b_id)
    comparison: Comparison | None = None
    problem = None
    if a.runs and b.runs:
        try:
            comparison = compare_projects(ws, a_id, b_id)
        except SegtuiError as exc:
            problem = str(exc)
    running = [job for pid in (a_id, b_id) if (job := jobs.active_job(ws, pid, JobKind.BENCHMARK))]
    return ComparePage(
        a,
        b,
        comparison,
        problem,
        frozenset(requested_precisions(ws, b_id)),
        running[0] if running else None,
    )


def side_text(label: str, side: Side) -> Text:
    project = side.project
    text = Text()
    text.append(f"{label}: ", style="bold")
    kind = "INT8" if side.int8 else "FP"
    text.append(f"#{project.id} {project.name}{header_tags(project.name, kind, project.device)}")
    return text


def missing_text(page: ComparePage) -> str:
    """Why nothing is compared: the sides without a benchmark (and the keys), or the problem."""
    lacking = [
        f"No benchmark yet for {label}: press {key} to run one."
        for label, key, side in (
            ("A", "a", page.a),
            ("B", "b (and d for the default precision)", page.b),
        )
        if not side.runs
    ]
    return "\n".join(lacking) if lacking else page.problem or ""


class BodyTable(SortableTable):
    """A table as tall as its rows in the scrolling body: it has nothing of its own to scroll,
    so the paging keys (which would only move its cursor) scroll the body as well."""

    def _body(self) -> VerticalScroll | None:
        body = self.parent
        return body if isinstance(body, VerticalScroll) else None

    def action_page_down(self) -> None:
        super().action_page_down()
        if body := self._body():
            body.scroll_page_down(animate=False)

    def action_page_up(self) -> None:
        super().action_page_up()
        if body := self._body():
            body.scroll_page_up(animate=False)

    def action_scroll_end(self) -> None:
        super().action_scroll_end()
        if body := self._body():
            body.scroll_end(animate=False)

    def action_scroll_home(self) -> None:
        super().action_scroll_home()
        if body := self._body():
            body.scroll_home(animate=False)


class CompareScreen(SegtuiScreen):
    """Two projects side by side: figures per precision, ratios, precisions, per-layer deltas."""

    CSS_PATH = css_path("performance.tcss")
    TITLE = "Compare projects"
    COMMANDS = Screen.COMMANDS | {ScreenKeyCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "back",
            "Back",
            show=False,
            id="compare.back",
            tooltip="Back to the previous screen.",
        ),
        Binding("x", "swap", "Swap", id="compare.swap", tooltip="Exchange the two projects (A/B)."),
        Binding(
            "a",
            "benchmark('a', 'f32')",
            "Bench A",
            id="compare.benchmark_a",
            tooltip="Benchmark project A at f32 in a background job.",
        ),
        Binding(
            "b",
            "benchmark('b', 'f32')",
            "B FP32",
            id="compare.benchmark_b",
            tooltip="Benchmark project B at true FP32 in a background job.",
        ),
        Binding(
            "d",
            "benchmark('b', 'default')",
            "B default",
            id="compare.benchmark_b_default",
            tooltip="Benchmark project B at its default precision (bf16 where the CPU has it).",
        ),
        Binding(
            "r",
            "reload",
            "Refresh",
            show=False,
            id="compare.refresh",
            tooltip="Reload the results.",
        ),
    ]

    def __init__(self, a_project_id: int, b_project_id: int) -> None:
        super().__init__()
        self.a_project_id = a_project_id
        self.b_project_id = b_project_id
        self.page: ComparePage | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="compare-sides"):
            yield Static(id="compare-a")
            yield Static(id="compare-b")
        yield Static("Loading the benchmarks…", id="compare-missing", classes="empty")
        with VerticalScroll(id="compare-body"):
            yield Static(id="compare-ratio")
            yield Label("Throughput and latency", classes="section")
            yield BodyTable(id="compare-figures", classes="auto-table")
            yield Label("What the best runs computed in", classes="section")
            yield BodyTable(id="compare-precisions", classes="auto-table")
            yield Label("Where the time goes (best runs)", classes="section")
            yield Static(id="compare-split-note", classes="muted")
            yield BodyTable(id="compare-split", classes="auto-table")
            yield Label("Time by layer type (best runs)", classes="section")
            yield BodyTable(id="compare-deltas", classes="auto-table")
        yield JobQueue(id="compare-jobs")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#compare-precisions", SortableTable).set_columns(precision_columns())
        self.query_one("#compare-deltas", SortableTable).set_columns(DELTA_COLUMNS)
        self.query_one("#compare-split", SortableTable).set_columns(SPLIT_COLUMNS)
        self.query_one("#compare-body").display = False  # until the benchmarks are in
        self.reload()
        self.query_one("#compare-figures", SortableTable).focus()

    def reload(self) -> None:
        """Read both sides again (in a thread); the screen updates when they are in."""
        a_id, b_id = self.a_project_id, self.b_project_id
        self.sub_title = f"A #{a_id} vs B #{b_id}"
        self.tasks.run(
            lambda ws: load_comparison(ws, a_id, b_id),
            self.show_page,
            group="compare-load",
            description="Load the benchmarks",
        )

    def show_page(self, page: ComparePage) -> None:
        first = self.page is None
        self.page = page
        comparison = page.comparison
        self.query_one("#compare-a", Static).update(side_text("A", page.a))
        self.query_one("#compare-b", Static).update(side_text("B", page.b))
        missing = self.query_one("#compare-missing", Static)
        missing.update(missing_text(page))
        missing.display = comparison is None
        self.query_one("#compare-body", VerticalScroll).display = comparison is not None
        if first and page.running is not None:
            self.follow(page.running)
        if comparison is None:
            return
        self.query_one("#compare-ratio", Static).update(ratio_text(comparison, page.b_requested))
        figures = self.query_one("#compare-figures", SortableTable)
        figures.set_columns(side_columns(page.a.runs, page.b.runs))
        figures.set_rows(figure_rows(page.a.runs, page.b.runs))
        self.query_one("#compare-precisions", SortableTable).set_rows(
            precision_rows(comparison["a_best"], comparison["b_best"])
        )
        self.query_one("#compare-split-note", Static).update(split_note(comparison))
        split = self.query_one("#compare-split", SortableTable)
        split.set_rows(split_rows(comparison["time_split"]))
        split.display = bool(comparison["time_split"])
        self.query_one("#compare-deltas", SortableTable).set_rows(
            delta_rows(comparison["layer_deltas"])
        )

    def action_swap(self) -> None:
        self.a_project_id, self.b_project_id = self.b_project_id, self.a_project_id
        self.reload()

    def action_benchmark(self, side: str, precision: str) -> None:
        project_id = self.a_project_id if side == "a" else self.b_project_id
        queue_benchmark(
            self,
            project_id,
            BenchmarkSettings(),
            Precision(precision),
            partial(self._benchmark_queued, side, precision),
        )

    def _benchmark_queued(self, side: str, precision: str, job: JobRecord) -> None:
        self.notify(f"Benchmark of {side.upper()} at {precision}: job {job.id}.", timeout=3)
        self.follow(job)

    def follow(self, job: JobRecord) -> None:
        self.query_one("#compare-jobs", JobQueue).follow(job.id)

    def on_job_monitor_finished(self, event: JobMonitor.Finished) -> None:
        finished_notice(self, event.job, "Benchmark")
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()
