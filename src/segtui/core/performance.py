"""Benchmarks of projects, their comparison, and inference-configuration sweeps."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NotRequired, TypedDict, cast

from segtui.core.accuracy_settings import record_settings
from segtui.core.benchmark import (
    BenchmarkRun,
    BenchmarkSettings,
    StoredBenchmark,
    StoredBenchmarkSettings,
    run_benchmark,
)
from segtui.core.datasets import image_path
from segtui.core.errors import Cancelled, SegtuiError
from segtui.core.machine import MachineJson
from segtui.core.models import LoadedModel, load_registered
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.records import ModelRecord, ResultRecord
from segtui.core.runtime_graph import RuntimeProfile
from segtui.core.settings import SWEEP, checked
from segtui.core.types import Hint, Precision, ResultKind
from segtui.core.workspace import Workspace

#: Each sweep cell spends about this long compiling and warming up before it measures.
CELL_OVERHEAD_S = 2.0


class RatioVsB(TypedDict):
    """A's run paired with one of B's runs: A/B throughput, B/A median latency.

    A's run is the one asked at the same precision as B's (f32 with f32, default with
    default), else the one that ran at the same precision, else A's best; `a_precision`
    and `b_precision` say what each side ran at, so an unpaired ratio says so.
    """

    throughput_ratio: float
    latency_ratio: float
    a_precision: NotRequired[str]
    b_precision: NotRequired[str]


class LayerDelta(TypedDict):
    """Time of one layer type per inference in A and in B (ms), and A − B."""

    layer_type: str
    a_ms: float
    b_ms: float
    delta_ms: float


class SplitRow(TypedDict):
    """One category of the time split (core.time_split) in A's and B's best runs."""

    category: str
    a_ms: float
    b_ms: float
    a_share: float
    b_share: float


class ComparedProject(TypedDict):
    project_id: int
    name: str
    #: The newest run per actual inference precision.
    runs: dict[str, StoredBenchmark]


class Comparison(TypedDict):
    """What `compare_projects` returns (and `segtui compare --json` prints)."""

    a: ComparedProject
    b: ComparedProject
    a_best: StoredBenchmark
    b_best: StoredBenchmark
    #: By B's actual inference precision.
    ratios_vs_b: dict[str, RatioVsB]
    layer_deltas: list[LayerDelta]
    #: Where the time goes in A and in B (empty unless both best runs have the split).
    time_split: list[SplitRow]


class SweepCell(TypedDict):
    """One batch × streams cell of a stored sweep, keyed by the configuration asked for.

    `batch` and `streams` are what the sweep asked (unique within a sweep). A cell
    that ran (`ok`) also holds every other field of its `BenchmarkRun`, and what the
    device actually ran in `actual_batch` and `actual_streams` (OpenVINO caps the
    streams to the cores: 4 asked may run as 2); one that failed holds the `error`
    instead. Sweeps stored before `actual_streams` existed hold the actual streams in
    `streams`, so two of their cells can share a configuration.
    """

    batch: int
    streams: int
    ok: bool
    error: NotRequired[str]
    actual_batch: NotRequired[int]
    actual_streams: NotRequired[int]
    throughput_fps: NotRequired[float]
    latency_median_ms: NotRequired[float]
    precision: NotRequired[str]
    machine: NotRequired[MachineJson]
    accuracy_settings_version: NotRequired[str]


class SweepData(TypedDict):
    """A stored sweep (a "sweep" result)."""

    cells: list[SweepCell]
    #: What the cells share (each cell's own batch and streams are in the cell).
    settings: StoredBenchmarkSettings
    #: The version of the model's accuracy settings (sweeps stored before it lack it).
    accuracy_settings_version: NotRequired[str]


class SweepParams(TypedDict):
    """The params of a "sweep" job."""

    batches: list[int]
    streams: list[int]
    duration_s: float
    precision: str


@dataclass(frozen=True)
class SweepSettings:
    """The grid of a sweep; defaults and ranges are the SWEEP schema's."""

    batches: tuple[int, ...] = SWEEP.batches.default
    streams: tuple[int, ...] = SWEEP.streams.default
    duration_s: float = SWEEP.duration_s.default
    precision: Precision = SWEEP.precision.default

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> SweepSettings:
        """Settings from schema values (job params, parsed options), checked and converted.

        Names the settings do not hold (`latency_limit_ms`) are left out.
        """
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        settings = cls(**checked(SWEEP, known))
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise a SettingError naming every value out of the schema's range, or too many cells."""
        SWEEP.validate(
            {
                "batches": self.batches,
                "streams": self.streams,
                "duration_s": self.duration_s,
                "precision": self.precision,
            }
        )
        SWEEP.check_grid(self.batches, self.streams)

    @property
    def cells(self) -> list[tuple[int, int]]:
        """(batch, streams) pairs, in the order they run."""
        return list(itertools.product(self.batches, self.streams))

    def job_params(self) -> SweepParams:
        return SweepParams(
            batches=list(self.batches),
            streams=list(self.streams),
            duration_s=self.duration_s,
            precision=str(self.precision),
        )


@dataclass(frozen=True)
class _Subject:
    """What a project's benchmarks run on: its model, loaded once, and its images."""

    device: str
    model: ModelRecord
    loaded: LoadedModel
    paths: list[Path]
    #: The version of the accuracy settings the model is loaded with.
    settings_version: str


def _subject(ws: Workspace, project_id: int) -> _Subject:
    project = ws.project(project_id)
    model = ws.model(project.model_id)
    dataset = ws.dataset(project.dataset_id)
    paths = [image_path(dataset, im) for im in ws.dataset_images(dataset.id)]
    loaded = load_registered(model)
    version = record_settings(model, loaded.model).version
    return _Subject(project.device, model, loaded, paths, version)


def _benchmark(
    subject: _Subject,
    settings: BenchmarkSettings,
    *,
    per_layer: bool,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> BenchmarkRun:
    result = run_benchmark(
        subject.loaded.model,
        subject.loaded.adapter,
        subject.paths,
        replace(settings, device=subject.device),
        per_layer=per_layer,
        progress=progress,
        cancel=cancel,
    )
    model = subject.model
    return BenchmarkRun(
        **result.to_json(),
        model_id=model.id,
        int8=bool(model.analysis.get("int8")),
        accuracy_settings_version=subject.settings_version,
    )


def benchmark_project(
    ws: Workspace,
    project_id: int,
    settings: BenchmarkSettings,
    *,
    per_layer: bool = True,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> BenchmarkRun:
    """Benchmark a project's model on its own images; returns the result as stored."""
    return _benchmark(
        _subject(ws, project_id), settings, per_layer=per_layer, progress=progress, cancel=cancel
    )


def _stored(record: ResultRecord) -> StoredBenchmark:
    # The database edge: benchmark jobs wrote the row from a BenchmarkRun.
    return cast(StoredBenchmark, record.data | {"result_id": record.id})


def stored_benchmark(ws: Workspace, result_id: int) -> StoredBenchmark:
    """One stored benchmark (e.g. the one a benchmark job just wrote)."""
    return _stored(ws.result(result_id))


def stored_benchmarks(ws: Workspace, project_id: int) -> list[StoredBenchmark]:
    """Every stored benchmark of a project, oldest first, each with its `result_id`."""
    return [_stored(record) for record in ws.results(project_id, ResultKind.BENCHMARK)]


def latest_benchmarks(ws: Workspace, project_id: int) -> dict[str, StoredBenchmark]:
    """The newest benchmark result per actual inference precision ("f32", "bf16", ...)."""
    return {str(run["precision"]): run for run in stored_benchmarks(ws, project_id)}


def requested_precisions(ws: Workspace, project_id: int) -> set[str]:
    """Every precision a project was asked to run at ("f32", "default"), newest run or not."""
    return {str(run.get("requested_precision")) for run in stored_benchmarks(ws, project_id)}


def best_throughput(ws: Workspace, project_id: int) -> StoredBenchmark | None:
    return max(
        stored_benchmarks(ws, project_id), key=lambda d: float(d["throughput_fps"]), default=None
    )


def compare_projects(ws: Workspace, a_id: int, b_id: int) -> Comparison:
    """Throughput/latency of A and B with ratios; B is usually the parent, A the optimized child.

    Ratios are A / B for throughput (and B / A for latency) against each of B's
    precisions measured, so "vs f32" and "vs bf16" are both given where measured.
    """
    a, b = ws.project(a_id), ws.project(b_id)
    a_runs, b_runs = latest_benchmarks(ws, a.id), latest_benchmarks(ws, b.id)
    if not a_runs or not b_runs:
        missing = [p.name for p, runs in ((a, a_runs), (b, b_runs)) if not runs]
        raise SegtuiError(
            f"No benchmark yet for {', '.join(missing)}.",
            "Run `segtui benchmark PROJECT` (and with --precision default) first.",
        )
    a_best, b_best = _best(a_runs), _best(b_runs)
    ratios = {
        precision: _ratio(_paired(a_runs, b_run), b_run) for precision, b_run in b_runs.items()
    }
    return Comparison(
        a=ComparedProject(project_id=a.id, name=a.name, runs=a_runs),
        b=ComparedProject(project_id=b.id, name=b.name, runs=b_runs),
        a_best=a_best,
        b_best=b_best,
        ratios_vs_b=ratios,
        layer_deltas=layer_deltas(a_best["runtime"], b_best["runtime"]),
        time_split=split_rows(a_best["runtime"], b_best["runtime"]),
    )


def _best(runs: Mapping[str, StoredBenchmark]) -> StoredBenchmark:
    return max(runs.values(), key=lambda d: float(d["throughput_fps"]))


def _paired(a_runs: Mapping[str, StoredBenchmark], b_run: StoredBenchmark) -> StoredBenchmark:
    """A's run to set beside `b_run`: asked at the same precision, else run at it, else A's best."""
    asked = b_run.get("requested_precision")
    same_asked = [r for r in a_runs.values() if asked and r.get("requested_precision") == asked]
    if same_asked:
        return _best({str(i): r for i, r in enumerate(same_asked)})
    return a_runs.get(str(b_run["precision"])) or _best(a_runs)


def _ratio(a_run: StoredBenchmark, b_run: StoredBenchmark) -> RatioVsB:
    return RatioVsB(
        throughput_ratio=round(float(a_run["throughput_fps"]) / float(b_run["throughput_fps"]), 4),
        latency_ratio=round(
            float(b_run["latency_median_ms"]) / float(a_run["latency_median_ms"]), 4
        ),
        a_precision=str(a_run["precision"]),
        b_precision=str(b_run["precision"]),
    )


def layer_deltas(a_runtime: RuntimeProfile, b_runtime: RuntimeProfile) -> list[LayerDelta]:
    """Per layer type: time in B, time in A, and the difference (from per-layer profiles)."""
    a_types = a_runtime.get("time_by_type_ms", {})
    b_types = b_runtime.get("time_by_type_ms", {})
    rows = []
    for layer_type in sorted(set(a_types) | set(b_types)):
        ta, tb = a_types.get(layer_type, 0.0), b_types.get(layer_type, 0.0)
        rows.append(
            LayerDelta(
                layer_type=layer_type,
                a_ms=round(ta, 4),
                b_ms=round(tb, 4),
                delta_ms=round(ta - tb, 4),
            )
        )
    return sorted(rows, key=lambda r: r["delta_ms"])


def split_rows(a_runtime: RuntimeProfile, b_runtime: RuntimeProfile) -> list[SplitRow]:
    """Per time-split category, A's and B's ms and share side by side; none unless both
    profiles have the split (profiles stored before it lack it)."""
    a_ms, b_ms = a_runtime.get("time_split_ms"), b_runtime.get("time_split_ms")
    if not a_ms or not b_ms:
        return []
    a_share = a_runtime.get("time_split_share", {})
    b_share = b_runtime.get("time_split_share", {})
    return [
        SplitRow(
            category=name,
            a_ms=a_ms.get(name, 0.0),
            b_ms=b_ms.get(name, 0.0),
            a_share=a_share.get(name, 0.0),
            b_share=b_share.get(name, 0.0),
        )
        for name in dict.fromkeys([*a_ms, *b_ms])
    ]


def estimate_sweep_seconds(settings: SweepSettings) -> float:
    """Each cell: its measuring time plus ~2 s of compile and warm-up."""
    return len(settings.cells) * (settings.duration_s + CELL_OVERHEAD_S)


def _ok_cell(batch: int, streams: int, run: BenchmarkRun) -> SweepCell:
    # The cell keeps the whole run (the stored shape the screens and `--json` read), but its
    # batch and streams are the ones asked for: the run's are what the device made of them.
    asked = {"batch": batch, "streams": streams, "ok": True}
    actual = {"actual_batch": run["batch"], "actual_streams": run["streams"]}
    return cast(SweepCell, dict(run) | asked | actual)


def actual_streams(cell: SweepCell) -> int | None:
    """The streams a cell ran with, or None when it did not run."""
    if not cell.get("ok"):
        return None
    return int(cell.get("actual_streams", cell["streams"]))


def streams_text(cell: SweepCell) -> str:
    """The streams asked for, and what the device ran where it differs: '4 → 2'."""
    ran = actual_streams(cell)
    asked = int(cell["streams"])
    return f"{asked} → {ran}" if ran is not None and ran != asked else str(asked)


def cell_keys(cells: Sequence[SweepCell]) -> list[str]:
    """A unique key per cell: 'BATCHxSTREAMS' as asked (a sweep stored before the requested
    configuration was kept can repeat one: the repeats get '#2', '#3')."""
    seen: dict[str, int] = {}
    keys = []
    for cell in cells:
        key = f"{cell['batch']}x{cell['streams']}"
        seen[key] = seen.get(key, 0) + 1
        keys.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return keys


def _failed_sweep(rows: Sequence[SweepCell]) -> SegtuiError:
    first = str(rows[0].get("error", "")).strip().splitlines()
    return SegtuiError(
        f"Every cell of the sweep failed ({len(rows)} of {len(rows)}); the first: "
        f"{first[0] if first else 'no error recorded'}",
        "Nothing was stored; the previous sweep is kept. Try batch 1 and fewer streams.",
    )


def sweep_project(
    ws: Workspace,
    project_id: int,
    settings: SweepSettings,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> SweepData:
    """A short benchmark per (batch, streams) cell; a SegtuiError when every cell failed."""
    settings.validate()
    cells = settings.cells
    subject = _subject(ws, project_id)  # the model is loaded once for all cells
    shared = BenchmarkSettings(
        hint=Hint.THROUGHPUT, duration_s=settings.duration_s, precision=settings.precision
    )
    rows: list[SweepCell] = []
    for n, (batch, stream_count) in enumerate(cells):

        def cell_progress(
            fraction: float,
            stage: str,
            n: int = n,
            batch: int = batch,
            streams_: int = stream_count,
        ) -> None:
            progress((n + fraction) / len(cells), f"batch {batch} × streams {streams_}: {stage}")

        try:
            run = _benchmark(
                subject,
                replace(shared, streams=stream_count, batch=batch),
                per_layer=False,
                progress=cell_progress,
                cancel=cancel,
            )
            rows.append(_ok_cell(batch, stream_count, run))
        except Cancelled:
            raise  # the whole sweep stops; a cancelled cell is not a failed one
        except SegtuiError as exc:
            rows.append(SweepCell(batch=batch, streams=stream_count, ok=False, error=str(exc)))
    if not any(row["ok"] for row in rows):
        # A sweep without a single figure must not become the project's newest sweep.
        raise _failed_sweep(rows)
    data = SweepData(cells=rows, settings=shared.to_json())
    # Each measured cell ran the model with the same settings: the sweep records them once.
    versions = [
        row["accuracy_settings_version"] for row in rows if row.get("accuracy_settings_version")
    ]
    if versions:
        data["accuracy_settings_version"] = versions[0]
    return data


def stored_sweep(ws: Workspace, result_id: int) -> SweepData:
    """A sweep as a sweep job stored it."""
    return cast(SweepData, ws.result(result_id).data)  # the database edge


def latest_sweep(ws: Workspace, project_id: int) -> SweepData | None:
    """The project's newest stored sweep, if any."""
    records = ws.results(project_id, ResultKind.SWEEP)
    return cast(SweepData, records[-1].data) if records else None


def sweet_spot(cells: Sequence[SweepCell], latency_limit_ms: float | None) -> SweepCell | None:
    """The best throughput among the cells whose median latency is within the limit (if any)."""
    fitting = [
        c
        for c in cells
        if c.get("ok")
        and (latency_limit_ms is None or float(c["latency_median_ms"]) <= latency_limit_ms)
    ]
    return max(fitting, key=lambda c: float(c["throughput_fps"]), default=None)
