"""What the workspace stores and hands out: one frozen record per row, typed JSON columns.

The JSON columns (a model's analysis, a dataset's analysis, a job's result) come back as
the TypedDicts below: still plain dicts at run time, so `json.dumps` and `.get` keep
working, but typed for the readers. A job's params stay a JSON object whose shape
depends on its kind: each kind's handler checks them against its settings schema.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from segtui.core.types import DatasetKind, DropType, JobKind, JobState, Method, Preset

if TYPE_CHECKING:
    from segtui.core.formats import AdapterSettings
    from segtui.core.optimize import OptimizationRecord


class PortJson(TypedDict):
    """A model input or output: its name, shape (None for a dynamic dimension) and type."""

    name: str
    shape: list[int | None]
    type: str


class ModelAnalysis(TypedDict):
    """What `models.analyze_model` reads from the graph, plus what the import adds."""

    format_id: str
    format: str
    inputs: list[PortJson]
    outputs: list[PortJson]
    input_size: list[int]
    gflops: float
    #: Parts of the graph have dynamic shapes: `gflops` counts the static part only.
    gflops_partial: bool
    params_m: float
    #: Share of the weights per element type ("f32", "i8", ...).
    weight_precisions: dict[str, float]
    ir_version: str
    opset: int
    op_count: int
    int8: bool
    fake_quantize_count: int
    settings: AdapterSettings
    size_bytes: NotRequired[int]
    #: "ir" or "onnx".
    source_kind: NotRequired[str]
    #: The static input shapes a dynamic model was given on import.
    reshaped_to: NotRequired[list[list[int]]]


class SkippedFile(TypedDict):
    """A file of a dataset folder that is not one of its images, and why."""

    path: str
    reason: str


class DatasetAnalysis(TypedDict):
    """Image sizes and counts of a dataset; the annotation keys for COCO datasets only."""

    image_count: int
    #: The five most common "WxH" sizes and their image counts.
    sizes: dict[str, int]
    distinct_sizes: int
    min_size: list[int] | None
    max_size: list[int] | None
    skipped: list[SkippedFile]
    annotated: bool
    classes: NotRequired[list[str]]
    category_ids: NotRequired[list[int]]
    instance_counts: NotRequired[dict[str, int]]
    annotation_count: NotRequired[int]
    #: The COCO file it was imported from (the workspace keeps a normalised copy).
    source_annotations: NotRequired[str]


class JobResult(TypedDict, total=False):
    """A finished job's result, as read back: each kind fills its own keys (and may add more)."""

    #: optimize: the new INT8 project, its model and how it was made.
    child_project_id: int
    model_id: int
    optimization: OptimizationRecord | None
    #: benchmark, sweep, report: the stored result row.
    result_id: int
    #: sweep: how many (batch, streams) cells were measured.
    cells: int
    #: evaluate: COCO AP and counts.
    metrics: dict[str, float]


#: A job's params as submitted (JSON): each kind reads them through its settings schema.
JobParams = dict[str, object]


#: A JSON object as read or written at an edge of the program: a COCO file, a stored
#: result row before its owner casts it to its TypedDict, a `--json` document.
JsonObject = dict[str, Any]


def _loads(text: str | None) -> Any:
    # The JSON edge: the column's shape is the field's declared type.
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class ModelRecord:
    id: int
    name: str
    format_id: str
    source_path: str
    dir: Path
    xml_name: str
    checksum: str
    analysis: ModelAnalysis
    class_names: list[str]
    optimized_from: int | None
    optimization: OptimizationRecord | None
    created_at: float
    #: The accuracy settings the user set (core.accuracy_settings; {} when none): JSON.
    #: `format_id` and `class_names` above are the effective ones, user values applied.
    accuracy_settings: JsonObject = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row, root: Path) -> ModelRecord:
        return cls(
            id=row["id"],
            name=row["name"],
            format_id=row["format_id"],
            source_path=row["source_path"],
            dir=root / row["dir"],
            xml_name=row["xml_name"],
            checksum=row["checksum"],
            analysis=_loads(row["analysis"]),
            class_names=_loads(row["class_names"]),
            optimized_from=row["optimized_from"],
            optimization=_loads(row["optimization"]),
            created_at=row["created_at"],
            accuracy_settings=_loads(row["accuracy_settings"]) or {},
        )

    @property
    def xml_path(self) -> Path:
        return self.dir / self.xml_name

    @property
    def is_optimized(self) -> bool:
        return self.optimized_from is not None


@dataclass(frozen=True)
class DatasetImage:
    idx: int
    path: str  # relative to the dataset root
    width: int
    height: int
    coco_id: int | None


@dataclass(frozen=True)
class DatasetRecord:
    id: int
    name: str
    kind: DatasetKind
    root: Path
    annotations: Path | None
    analysis: DatasetAnalysis
    created_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row, root: Path) -> DatasetRecord:
        ann = row["annotations"]
        return cls(
            id=row["id"],
            name=row["name"],
            kind=DatasetKind(row["kind"]),
            root=Path(row["root"]),
            annotations=None if ann is None else root / ann,
            analysis=_loads(row["analysis"]),
            created_at=row["created_at"],
        )

    @property
    def annotated(self) -> bool:
        return self.kind == DatasetKind.COCO

    @property
    def image_count(self) -> int:
        return int(self.analysis.get("image_count", 0))


@dataclass(frozen=True)
class ProjectRecord:
    id: int
    name: str
    model_id: int
    dataset_id: int
    device: str
    parent_id: int | None
    created_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ProjectRecord:
        return cls(
            id=row["id"],
            name=row["name"],
            model_id=row["model_id"],
            dataset_id=row["dataset_id"],
            device=row["device"],
            parent_id=row["parent_id"],
            created_at=row["created_at"],
        )


@dataclass(frozen=True)
class JobRecord:
    id: int
    project_id: int | None
    kind: JobKind
    state: JobState
    progress: float
    stage: str
    eta_s: float | None
    pid: int | None
    params: JobParams
    result: JobResult | None
    error: str | None
    log_path: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRecord:
        return cls(
            id=row["id"],
            project_id=row["project_id"],
            kind=JobKind(row["kind"]),
            state=JobState(row["state"]),
            progress=row["progress"],
            stage=row["stage"],
            eta_s=row["eta_s"],
            pid=row["pid"],
            params=_loads(row["params"]),
            result=_loads(row["result"]),
            error=row["error"],
            log_path=row["log_path"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
        )

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state.active


@dataclass(frozen=True)
class ResultRecord:
    id: int
    project_id: int
    job_id: int | None
    kind: str
    #: Its shape depends on `kind`; the module that writes each kind reads it back typed.
    data: JsonObject
    created_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ResultRecord:
        return cls(
            row["id"],
            row["project_id"],
            row["job_id"],
            row["kind"],
            _loads(row["data"]),
            row["created_at"],
        )


@dataclass(frozen=True)
class ProjectRow:
    """One project as the project lists show it (start screen, `segtui list`), from one query."""

    id: int
    name: str
    parent_id: int | None
    model_id: int
    model_name: str
    format_id: str
    dataset_id: int
    dataset_name: str
    annotated: bool
    image_count: int
    device: str
    #: The project's newest job (None when it has none): its id, kind and state.
    latest_job_id: int | None
    latest_job_kind: JobKind | None
    latest_job_state: JobState | None
    #: Its queued or running job, if any (the newest).
    active_job_id: int | None
    #: The best measured throughput and the precision it ran at (None when not measured).
    best_throughput_fps: float | None
    best_precision: str | None
    #: Nesting under its parent in display order (0 for a root project).
    depth: int = 0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ProjectRow:
        """From a row of `Workspace.project_rows`' query."""
        kind, state, fps = row["latest_job_kind"], row["latest_job_state"], row["best_fps"]
        return cls(
            id=row["id"],
            name=row["name"],
            parent_id=row["parent_id"],
            model_id=row["model_id"],
            model_name=row["model_name"],
            format_id=row["format_id"],
            dataset_id=row["dataset_id"],
            dataset_name=row["dataset_name"],
            annotated=row["dataset_kind"] == DatasetKind.COCO,
            image_count=int(row["image_count"]),
            device=row["device"],
            latest_job_id=row["latest_job_id"],
            latest_job_kind=None if kind is None else JobKind(kind),
            latest_job_state=None if state is None else JobState(state),
            active_job_id=row["active_job_id"],
            best_throughput_fps=None if fps is None else float(fps),
            best_precision=None if row["best_precision"] is None else str(row["best_precision"]),
        )

    @property
    def status(self) -> str:
        """One word for the list: the state of its newest job, or "ready"."""
        return status_text(self.latest_job_kind, self.latest_job_state)

    @property
    def throughput_text(self) -> str:
        """The best measured throughput and its precision, '63.8 bf16'; '–' when not measured."""
        if self.best_throughput_fps is None:
            return "–"
        return f"{self.best_throughput_fps:.1f} {self.best_precision or '?'}"


METHOD_NAMES: dict[str, str] = {Method.DEFAULT: "Default", Method.ACCURACY_AWARE: "AccuracyAware"}
PRESET_NAMES: dict[str, str] = {Preset.PERFORMANCE: "Performance", Preset.MIXED: "Mixed"}


def optimization_text(optimization: Mapping[str, object] | None) -> str:
    """'INT8 (Default method, Performance preset)', from a model's stored optimization settings;
    AccuracyAware adds its max drop."""
    if not optimization:
        return "INT8"
    method, preset = optimization.get("method"), optimization.get("preset")
    how = []
    if method:
        how.append(f"{METHOD_NAMES.get(str(method), str(method))} method")
    if preset:
        how.append(f"{PRESET_NAMES.get(str(preset), str(preset))} preset")
    max_drop = optimization.get("max_drop")
    if method == Method.ACCURACY_AWARE and isinstance(max_drop, int | float):
        unit = " %" if optimization.get("drop_type") == DropType.RELATIVE else " points"
        how.append(f"max drop {max_drop:g}{unit}")
    return f"INT8 ({', '.join(how)})" if how else "INT8"


def status_text(kind: JobKind | None, state: JobState | None) -> str:
    """A project's status as the lists show it: its newest job's kind and state, or "ready"."""
    return "ready" if kind is None or state is None else f"{kind} {state}"


__all__ = [
    "DatasetAnalysis",
    "DatasetImage",
    "DatasetRecord",
    "JobParams",
    "JobRecord",
    "JobResult",
    "ModelAnalysis",
    "ModelRecord",
    "PortJson",
    "ProjectRecord",
    "ProjectRow",
    "ResultRecord",
    "SkippedFile",
    "optimization_text",
]
