"""Which quantizers cost the accuracy: a sensitivity analysis of an INT8 (optimized) project.

1. Groups: every activation quantizer group of the INT8 model (`core.quantizer_groups`).
2. Error pass: each quantizer applied to the parent's activations on a few images (one
   inference per image): SQNR, clipped share, and whether its calibrated range collapsed.
3. Metric pass: the `top` most suspicious groups (lowest SQNR) are all kept in float, then
   each is quantized back alone: the metric it loses is what keeping it in float is worth
   ("leave one in"). Measured one group alone instead, every group of a model with several
   broken groups gains nothing (each of the others still breaks the output). Collapsed
   ranges (a calibration fault) are refitted to the values seen first, as a re-optimization
   recalibrates them, so that they do not hide the groups that are sensitive.
4. The recommended set: the groups worth at least MIN_GAIN_POINTS, best first, after the
   groups whose quantizers saw no values when ranges collapsed (calibration cannot collect
   statistics for them, which is what collapses the others), at most `keep`; measured once
   together.
5. Cost: a short per-layer profile of both models gives the ms of each group's fed layers
   in float and in INT8.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from typing import TypedDict, cast

from segtui.core.accuracy_values import AccuracySettingsJson
from segtui.core.errors import SegtuiError
from segtui.core.preflight import check_project
from segtui.core.progress import CancelToken, ProgressCallback, no_progress
from segtui.core.settings import SENSITIVITY, checked
from segtui.core.types import ResultKind
from segtui.core.workspace import ProjectRecord, Workspace

#: A group is worth keeping in float when quantizing it back loses at least this (points).
MIN_GAIN_POINTS = 0.2
#: Keeping a group in float is free when it costs at most this share of the INT8 model's time.
FREE_SHARE = 0.01
#: The most score images the per-layer profile runs (it only needs a stable mean).
PROFILE_IMAGES = 3
RESULT_VERSION = 1
#: The metric names a result stores.
METRIC_ANNOTATIONS = "mask_ap"
METRIC_PARENT = "mask_ap_vs_parent"
METRIC_LABELS = {
    METRIC_ANNOTATIONS: "mask AP vs annotations",
    METRIC_PARENT: "mask AP vs the parent's predictions (score ≥ 0.5)",
}


class SensitivitySettingsJson(TypedDict):
    images: int
    top: int
    score_images: int
    keep: int


@dataclass(frozen=True)
class SensitivitySettings:
    """What the user chose for an analysis (defaults and ranges from the SENSITIVITY schema)."""

    images: int = SENSITIVITY.images.default
    top: int = SENSITIVITY.top.default
    score_images: int = SENSITIVITY.score_images.default
    keep: int = SENSITIVITY.keep.default

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> SensitivitySettings:
        """Settings from values by field name, checked by the schema (other names ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**checked(SENSITIVITY, {k: v for k, v in values.items() if k in known}))

    def validate(self) -> None:
        SENSITIVITY.validate(self.to_json())

    def to_json(self) -> SensitivitySettingsJson:
        return {
            "images": self.images,
            "top": self.top,
            "score_images": self.score_images,
            "keep": self.keep,
        }


class SensitivityRow(TypedDict):
    """One quantizer group as the table shows it (see the module doc for each measure)."""

    id: int
    rank: int
    quantizers: list[str]
    fed_layers: list[str]
    fed_types: list[str]
    op_types: list[str]
    compute_layers: int
    #: Worst score (dB, lower is worse) of its quantizers on the parent's activations: the
    #: lower of the SQNR and the median relative error (−20·log10); None: no values seen.
    error_db: float | None
    clipped: float
    no_data: bool
    range_collapsed: bool
    measured: bool
    #: Points of the metric gained by keeping it in float (the other candidates in float too).
    metric_change: float | None
    float_ms: float | None
    int8_ms: float | None
    #: What keeping it in float costs per image (float_ms − int8_ms).
    cost_ms: float | None
    chosen: bool
    #: Why it is recommended: "metric", "no data", or "" when it is not.
    reason: str


class ProfileTotals(TypedDict):
    float_ms: float
    int8_ms: float


class SensitivityResult(TypedDict):
    """A sensitivity analysis as stored (ResultKind.SENSITIVITY) and printed by --json."""

    version: int
    project_id: int
    parent_project_id: int
    model_id: int
    parent_model_id: int
    metric: str
    metric_label: str
    settings: SensitivitySettingsJson
    images: int
    score_images: int
    parent_metric: float
    int8_metric: float
    baseline_metric: float
    candidates_metric: float | None
    chosen_metric: float | None
    refitted: int
    quantizers: int
    body_quantizers: int
    groups: list[SensitivityRow]
    chosen: list[int]
    evaluations: int
    seconds: dict[str, float]
    profile: ProfileTotals | None
    accuracy_settings: AccuracySettingsJson


class SensitivityJobResult(TypedDict):
    """A sensitivity job's result: the stored analysis and its headline."""

    result_id: int
    groups: int
    chosen: list[int]
    metric: str
    evaluations: int


# -- what can be analysed ---------------------------------------------------------------


def check_analysable(ws: Workspace, project_id: int) -> ProjectRecord:
    """The parent of an INT8 project that can be analysed here, or why not (with a hint)."""
    project = ws.project(project_id)
    model = ws.model(project.model_id)
    if project.parent_id is None or not model.is_optimized or not model.analysis.get("int8"):
        raise SegtuiError(
            f"Project {project.name!r} is not an optimized (INT8) project: there are no "
            "quantizers to analyse.",
            f"Optimize it first (`segtui optimize {project.id}`), then analyse the child project.",
        )
    check_project(ws, project.id)
    parent = ws.project(project.parent_id)
    try:
        check_project(ws, parent.id)
    except SegtuiError as exc:
        raise SegtuiError(
            f"The parent model of project {project.name!r} cannot be run: {exc.message}",
            exc.hint,
        ) from None
    if not ws.dataset_images(project.dataset_id):
        raise SegtuiError(
            f"The dataset of project {project.name!r} has no images to measure on.",
            "Create the project with a dataset that has images.",
        )
    return parent


def analyze_project(
    ws: Workspace,
    project_id: int,
    settings: SensitivitySettings,
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> SensitivityResult:
    """Rank the quantizer groups of an INT8 project by what they cost its accuracy."""
    # Imported here: the passes load OpenVINO, which reading a stored analysis does not need.
    from segtui.core.sensitivity_run import run_analysis

    return run_analysis(ws, project_id, settings, progress=progress, cancel=cancel)


# -- stored analyses ----------------------------------------------------------------------


def stored_sensitivity(ws: Workspace, result_id: int) -> SensitivityResult:
    """A stored analysis by its result id, or a clear error."""
    record = ws.result(result_id)
    if record.kind != ResultKind.SENSITIVITY:
        raise SegtuiError(
            f"Result {result_id} is not a sensitivity analysis (it is a {record.kind} result).",
            "See `segtui sensitivity PROJECT --stored` for the project's latest analysis.",
        )
    # The JSON edge: written by analyze_project.
    return cast(SensitivityResult, record.data)


def latest_sensitivity(ws: Workspace, project_id: int) -> tuple[int, SensitivityResult] | None:
    """The project's newest stored analysis (result id, data), if any."""
    records = ws.results(project_id, ResultKind.SENSITIVITY)
    if not records:
        return None
    return records[-1].id, cast(SensitivityResult, records[-1].data)


def ignored_scope_names(result: SensitivityResult, group_ids: Collection[int]) -> list[str]:
    """The fed layers of the given groups, deduplicated in rank order (for an NNCF IgnoredScope)."""
    wanted = set(group_ids)
    names: dict[str, None] = {}
    for row in result["groups"]:
        if row["id"] in wanted:
            names.update(dict.fromkeys(row["fed_layers"]))
    return list(names)


__all__ = [
    "MIN_GAIN_POINTS",
    "SensitivityJobResult",
    "SensitivityResult",
    "SensitivityRow",
    "SensitivitySettings",
    "analyze_project",
    "check_analysable",
    "ignored_scope_names",
    "latest_sensitivity",
    "stored_sensitivity",
]
